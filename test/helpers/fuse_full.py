"""python/convert.py's fuse_one given a LyCORIS "full" file after multilora's rewrite (A the difference, B the
identity, the bias difference beside them), on three layers of a toy UNet (a 3x3 and a 1x1 convolution, a linear
layer, each with a bias), in the converter's venv: prints, as JSON, its report and how far each fused weight and
bias is from the layer's own plus alpha times the file's `diff` and `diff_b`, LyCORIS's formula. Used by
test/convert.spec.js.

    python test/helpers/fuse_full.py <python/convert.py> <LyCORIS full file> <its rewrite for the fuse>
"""
import importlib.util
import json
import sys
import types

import torch
from safetensors.torch import load_file

spec = importlib.util.spec_from_file_location("convert", sys.argv[1])
convert = importlib.util.module_from_spec(spec)
spec.loader.exec_module(convert)
convert.emit = lambda *a, **k: None     # its warnings go to the parent as JSON lines: none expected here
ALPHA = 0.7
STEM = "lora_unet_down_blocks_0_resnets_0_"

torch.manual_seed(0)
resnet = torch.nn.Module()
resnet.conv1 = torch.nn.Conv2d(4, 6, 3, padding=1)
resnet.conv_shortcut = torch.nn.Conv2d(4, 6, 1)
resnet.lin = torch.nn.Linear(4, 6)
unet = torch.nn.Module()
unet.down_blocks = torch.nn.ModuleList([torch.nn.Module()])
unet.down_blocks[0].resnets = torch.nn.ModuleList([resnet])
unet.config = {}
before = {k: v.detach().clone() for k, v in resnet.state_dict().items()}

lycoris = load_file(sys.argv[2])
pipe = types.SimpleNamespace(unet=unet)
report = convert.fuse_one(pipe, convert.module_index(pipe), {"file": sys.argv[3], "alpha": ALPHA, "label": "full"})

errors = {}
after = resnet.state_dict()
for name in ("conv1", "conv_shortcut", "lin"):
    for kind, suffix in (("weight", "diff"), ("bias", "diff_b")):
        diff = lycoris.get(f"{STEM}{name}.{suffix}")
        want = before[f"{name}.{kind}"] + (ALPHA * diff.float() if diff is not None else 0)
        errors[f"{name}.{kind}"] = (after[f"{name}.{kind}"] - want).abs().max().item()
errors["conv1_change"] = (after["conv1.weight"] - before["conv1.weight"]).abs().max().item()
print(json.dumps({"report": report, "errors": errors}))
