"""python/convert.py's fuse_one given a LyCORIS LoHa or LoKr of the toy UNet's 3x3 convolution that only a fuse
takes (a Tucker core, or LoKr's 4-D factors), after multilora's rewrite: prints, as JSON, its report and how far the
fused weight is from the layer's own plus alpha times LyCORIS's change (its einsum and kron formulas) times the
file's alpha / rank. Used by test/convert.spec.js.

    python test/helpers/fuse_dense.py <python/convert.py> <LyCORIS file> <its rewrite for the fuse>
"""
import json
import sys

import torch
from safetensors.torch import load_file

from fuse_common import TOY_STEM, load_convert, toy_unet

convert = load_convert(sys.argv[1])
ALPHA = 0.7
pipe, resnet, before = toy_unet()
f = {k[len(f"{TOY_STEM}conv1."):]: v.float() for k, v in load_file(sys.argv[2]).items()}
report = convert.fuse_one(pipe, convert.module_index(pipe), {"file": sys.argv[3], "alpha": ALPHA, "label": "dense"})

if "hada_t1" in f:
    halves = [torch.einsum("i j ..., j r, i p -> p r ...", f[f"hada_t{n}"], f[f"hada_w{n}_b"], f[f"hada_w{n}_a"])
              for n in (1, 2)]
    change, rank = halves[0] * halves[1], f["hada_t1"].shape[0]
else:
    if "lokr_t2" in f:
        w2 = torch.einsum("i j ..., i p, j r -> p r ...", f["lokr_t2"], f["lokr_w2_a"], f["lokr_w2_b"]).contiguous()
    else:
        r = f["lokr_w2_b"].shape[0]
        w2 = (f["lokr_w2_a"] @ f["lokr_w2_b"].reshape(r, -1)).reshape(-1, *f["lokr_w2_b"].shape[1:])
    change, rank = torch.kron(f["lokr_w1"][:, :, None, None], w2), f["lokr_w2_b"].shape[0]
want = before["conv1.weight"] + ALPHA * (f["alpha"] / rank) * change
errors = {"conv1": (resnet.conv1.weight.detach() - want).abs().max().item(),
          "conv1_change": (resnet.conv1.weight.detach() - before["conv1.weight"]).abs().max().item()}
print(json.dumps({"report": report, "errors": errors}))
