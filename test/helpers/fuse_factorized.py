"""python/convert.py's fuse_one given a LyCORIS LoHa and LoKr of the toy UNet's 3x3 convolution and its linear layer
(factors flattened over the kernel, as LyCORIS keeps them without Tucker), after multilora's rewrite for the fuse:
prints, as JSON, its report and how far each fused weight is from the layer's own plus alpha times LyCORIS's change,
(w1_a @ w1_b) * (w2_a @ w2_b) or kron(w1, w2_a @ w2_b), reshaped to the weight, times the file's alpha / dim.
Used by test/convert.spec.js.

    python test/helpers/fuse_factorized.py <python/convert.py> <LyCORIS file> <its rewrite for the fuse>
"""
import json
import sys

import torch
from safetensors.torch import load_file

from fuse_common import TOY_STEM, load_convert, toy_unet

convert = load_convert(sys.argv[1])
ALPHA = 0.7
pipe, resnet, before = toy_unet()
f = {k: v.float() for k, v in load_file(sys.argv[2]).items()}
report = convert.fuse_one(pipe, convert.module_index(pipe), {"file": sys.argv[3], "alpha": ALPHA, "label": "factors"})

errors = {}
after = resnet.state_dict()
for name in ("conv1", "lin"):
    t = lambda role: f[f"{TOY_STEM}{name}.{role}"]  # noqa: E731
    if f"{TOY_STEM}{name}.hada_w1_a" in f:
        change = (t("hada_w1_a") @ t("hada_w1_b")) * (t("hada_w2_a") @ t("hada_w2_b"))
        dim = t("hada_w1_b").shape[0]
    else:
        change = torch.kron(t("lokr_w1"), t("lokr_w2_a") @ t("lokr_w2_b"))
        dim = t("lokr_w2_b").shape[0]
    weight = before[f"{name}.weight"]
    want = weight + ALPHA * (t("alpha") / dim) * change.reshape(weight.shape)
    errors[name] = (after[f"{name}.weight"] - want).abs().max().item()
    errors[f"{name}_change"] = (after[f"{name}.weight"] - weight).abs().max().item()
print(json.dumps({"report": report, "errors": errors}))
