"""python/convert.py's fuse_one, at alpha 1, of a LoRA rewritten by multilora for the fuse, on the sd15 fixture's
diffusers weights (fp32), against an oracle: a LyCORIS "full" file of the change that an independent implementation
(peft's merge, or LyCORIS's formula) makes to each layer. Prints, as JSON, the report and, over the oracle's layers,
the largest relative error of the change, max |fused - (W + diff)| / max |diff|, and how many layers it has.
Used by test/convert.spec.js.

    python test/helpers/fuse_oracle.py <python/convert.py> <diffusers model> <rewritten LoRA> <oracle full file>
"""
import json
import sys

import torch
from diffusers import DiffusionPipeline
from safetensors.torch import load_file

from fuse_common import load_convert

convert = load_convert(sys.argv[1])

pipe = DiffusionPipeline.from_pretrained(sys.argv[2], torch_dtype=torch.float32)
index = convert.module_index(pipe)
modules = {f"{prefix}{name}": module for prefix, component in convert.PREFIXES if component in index
           for name, module in index[component]}
oracle = {k[: -len(".diff")]: v for k, v in load_file(sys.argv[4]).items() if k.endswith(".diff")}
before = {stem: modules[stem].weight.detach().clone() for stem in oracle}
report = convert.fuse_one(pipe, index, {"file": sys.argv[3], "alpha": 1.0, "label": "oracle"})
worst = 0.0
for stem, diff in oracle.items():
    want = before[stem] + diff
    worst = max(worst, ((modules[stem].weight.detach() - want).abs().max() / diff.abs().max()).item())
print(json.dumps({"report": report, "worst": worst, "layers": len(oracle)}))
