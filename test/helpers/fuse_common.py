"""What the fuse helpers (fuse_kernel.py, fuse_full.py, fuse_oracle.py) share: python/convert.py loaded as a module,
its JSON-line events silenced, and a toy UNet of three layers with biases (a 3x3 convolution, a 1x1 one, a linear
layer) under the names a kohya LoRA gives them."""
import importlib.util
import types

import torch

TOY_STEM = "lora_unet_down_blocks_0_resnets_0_"


def load_convert(path):
    spec = importlib.util.spec_from_file_location("convert", path)
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    convert.emit = lambda *a, **k: None     # its warnings go to the parent as JSON lines: none expected here
    return convert


def toy_unet():
    """(a pipeline holding the toy UNet, its one resnet, that resnet's weights before any fuse)."""
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
    return types.SimpleNamespace(unet=unet), resnet, before
