"""python/convert.py's fuse_one given a LyCORIS Tucker LoCon (lora_down, lora_mid, lora_up, alpha) on the toy UNet's
3x3 convolution, after multilora's rewrite for the fuse: prints, as JSON, its report and how far the fused weight is
from the layer's own plus alpha times LyCORIS's rebuild, einsum("i j ..., i p, j r -> p r ...", mid, up^T, down)
times the file's alpha / rank. Used by test/convert.spec.js.

    python test/helpers/fuse_tucker.py <python/convert.py> <LyCORIS file> <its rewrite for the fuse>
"""
import json
import sys

import torch
from safetensors.torch import load_file

from fuse_common import TOY_STEM, load_convert, toy_unet

convert = load_convert(sys.argv[1])
ALPHA = 0.7
pipe, resnet, before = toy_unet()
lycoris = {k: v.float() for k, v in load_file(sys.argv[2]).items()}
report = convert.fuse_one(pipe, convert.module_index(pipe), {"file": sys.argv[3], "alpha": ALPHA, "label": "tucker"})

stem = f"{TOY_STEM}conv1"
up, mid, down = (lycoris[f"{stem}.lora_{role}.weight"] for role in ("up", "mid", "down"))
rank = down.shape[0]
change = torch.einsum("i j ..., i p, j r -> p r ...", mid, up.reshape(up.shape[0], -1).T, down.reshape(rank, -1))
want = before["conv1.weight"] + ALPHA * (lycoris[f"{stem}.alpha"] / rank) * change
errors = {"conv1": (resnet.conv1.weight.detach() - want).abs().max().item(),
          "conv1_change": (resnet.conv1.weight.detach() - before["conv1.weight"]).abs().max().item()}
print(json.dumps({"report": report, "errors": errors}))
