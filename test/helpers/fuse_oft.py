"""python/convert.py's fuse_one given a LyCORIS Diag-OFT file after multilora's rewrite (the blocks, rescale and
constraint under GenAI's names), on three layers of a toy UNet (a 3x3 and a 1x1 convolution, a linear layer): prints,
as JSON, its report and how far each fused weight is from LyCORIS's merge computed here another way (each block's
rotation by a linear solve, block by block, in float64). Used by test/convert.spec.js.

    python test/helpers/fuse_oft.py <python/convert.py> <LyCORIS OFT file> <its rewrite for the fuse>
"""
import json
import sys

import torch
from safetensors.torch import load_file

from fuse_common import TOY_STEM, load_convert, toy_unet

convert = load_convert(sys.argv[1])
ALPHA = 0.7
pipe, resnet, before = toy_unet()
lycoris = load_file(sys.argv[2])
report = convert.fuse_one(pipe, convert.module_index(pipe), {"file": sys.argv[3], "alpha": ALPHA, "label": "oft"})


def merged(weight, blocks, rescale, alpha_file):
    """LyCORIS's DiagOFTModule.make_weight at multiplier ALPHA: rows of block k times (ALPHA R_k + (1 - ALPHA) I)^T,
    R_k = (I + Q_k)(I - Q_k)^-1 with Q = blocks - blocks^T scaled to norm alpha_file * out when above it."""
    w = weight.double()
    n, b, _ = blocks.shape
    q = blocks.double() - blocks.double().transpose(1, 2)
    limit = alpha_file * w.shape[0]
    total = q.norm() + 1e-8
    if limit > 0 and total > limit:
        q = q * (limit / total)
    out = torch.empty_like(w)
    eye = torch.eye(b, dtype=torch.float64)
    for k in range(n):
        # R = (I + Q)(I - Q)^-1  <=>  R (I - Q) = I + Q  <=>  (I - Q)^T R^T = (I + Q)^T
        r = torch.linalg.solve((eye - q[k]).T, (eye + q[k]).T).T
        m = ALPHA * r + (1 - ALPHA) * eye
        rows = w[k * b:(k + 1) * b].reshape(b, -1)
        out[k * b:(k + 1) * b] = (m.T @ rows).reshape(b, *w.shape[1:])
    if rescale is not None:
        out = out * rescale.double().reshape(-1, *([1] * (w.dim() - 1)))
    return out


errors = {}
after = resnet.state_dict()
for name in ("conv1", "conv_shortcut", "lin"):
    blocks = lycoris[f"{TOY_STEM}{name}.oft_blocks"]
    rescale = lycoris.get(f"{TOY_STEM}{name}.rescale")
    alpha_file = float(lycoris[f"{TOY_STEM}{name}.alpha"])
    want = merged(before[f"{name}.weight"], blocks, rescale, alpha_file)
    errors[name] = (after[f"{name}.weight"].double() - want).abs().max().item()
    errors[f"{name}_change"] = (after[f"{name}.weight"] - before[f"{name}.weight"]).abs().max().item()
    errors[f"{name}.bias"] = (after[f"{name}.bias"] - before[f"{name}.bias"]).abs().max().item()
print(json.dumps({"report": report, "errors": errors}))
