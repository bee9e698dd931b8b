"""python/convert.py's fuse_one on three layers of a toy UNet (a 3x3 convolution, as LCM-LoRA changes, a 1x1 one and
a linear one), in the converter's venv: prints, as JSON, its report and how far each fused layer is from the layer
plus alpha times its LoRA path, up(down(x)). Used by test/convert.spec.js.

    python test/helpers/fuse_kernel.py <python/convert.py> <scratch folder>
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

from fuse_common import TOY_STEM, load_convert, toy_unet

convert = load_convert(sys.argv[1])
F = torch.nn.functional
ALPHA = 0.7
pipe, resnet, before = toy_unet()

lora = {"conv1": (torch.randn(2, 4, 3, 3), torch.randn(6, 2, 1, 1)),
        "conv_shortcut": (torch.randn(2, 4, 1, 1), torch.randn(6, 2, 1, 1)),
        "lin": (torch.randn(2, 4), torch.randn(6, 2))}
file = os.path.join(sys.argv[2], "kernel.safetensors")
save_file({f"{TOY_STEM}{name}.lora_{role}.weight": t
           for name, (down, up) in lora.items() for role, t in (("down", down), ("up", up))}, file)
report = convert.fuse_one(pipe, convert.module_index(pipe), {"file": file, "alpha": ALPHA, "label": "kernel"})

x, xl = torch.randn(1, 4, 5, 5), torch.randn(3, 4)
errors = {}
with torch.no_grad():
    d, u = lora["conv1"]
    want = F.conv2d(x, before["conv1.weight"], before["conv1.bias"], padding=1) + ALPHA * F.conv2d(
        F.conv2d(x, d, padding=1), u)
    errors["conv1"] = (resnet.conv1(x) - want).abs().max().item()
    d, u = lora["conv_shortcut"]
    want = F.conv2d(x, before["conv_shortcut.weight"], before["conv_shortcut.bias"]) + ALPHA * F.conv2d(
        F.conv2d(x, d), u)
    errors["conv_shortcut"] = (resnet.conv_shortcut(x) - want).abs().max().item()
    d, u = lora["lin"]
    want = F.linear(xl, before["lin.weight"], before["lin.bias"]) + ALPHA * (xl @ d.T @ u.T)
    errors["lin"] = (resnet.lin(xl) - want).abs().max().item()
    # the size of what the LoRA changes, so that "close" means something
    errors["conv1_change"] = (resnet.conv1(x) - F.conv2d(x, before["conv1.weight"], before["conv1.bias"],
                                                         padding=1)).abs().max().item()
print(json.dumps({"report": report, "errors": errors}))
