"""python/convert.py's fuse_one given a LyCORIS "full" file after multilora's rewrite (A the difference, B the
identity, the bias difference beside them), on three layers of a toy UNet (a 3x3 and a 1x1 convolution, a linear
layer, each with a bias), in the converter's venv: prints, as JSON, its report and how far each fused weight and
bias is from the layer's own plus alpha times the file's `diff` and `diff_b`, LyCORIS's formula. Used by
test/convert.spec.js.

    python test/helpers/fuse_full.py <python/convert.py> <LyCORIS full file> <its rewrite for the fuse>
"""
import json
import sys

from safetensors.torch import load_file

from fuse_common import TOY_STEM, load_convert, toy_unet

convert = load_convert(sys.argv[1])
ALPHA = 0.7
pipe, resnet, before = toy_unet()
lycoris = load_file(sys.argv[2])
report = convert.fuse_one(pipe, convert.module_index(pipe), {"file": sys.argv[3], "alpha": ALPHA, "label": "full"})

errors = {}
after = resnet.state_dict()
for name in ("conv1", "conv_shortcut", "lin"):
    for kind, suffix in (("weight", "diff"), ("bias", "diff_b")):
        diff = lycoris.get(f"{TOY_STEM}{name}.{suffix}")
        want = before[f"{name}.{kind}"] + (ALPHA * diff.float() if diff is not None else 0)
        errors[f"{name}.{kind}"] = (after[f"{name}.{kind}"] - want).abs().max().item()
errors["conv1_change"] = (after["conv1.weight"] - before["conv1.weight"]).abs().max().item()
print(json.dumps({"report": report, "errors": errors}))
