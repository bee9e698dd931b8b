# OpenVINO's model cache and a LoRA branch (docs/GENAI-BUGS.md#cache-lora): compiles a toy model twice with one
# CACHE_DIR and prints whether the second compile came from the cache. `lora`: the main product plus x·Aᵀ, scaled by
# alpha, ·Bᵀ, with A, B and alpha in variables, as GenAI adds it to each patched layer; `plain`: the same without
# the alpha, which the CPU plugin does not turn into its LoRA op (the control that shows the cache works).
import json
import sys

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import openvino.opset6 as ops6
from openvino.op.util import Variable, VariableInfo

cache, kind = sys.argv[1], sys.argv[2]


def variable(shape, variable_id):
    info = VariableInfo()
    info.data_shape = ov.PartialShape(shape)
    info.data_type = ov.Type.f32
    info.variable_id = variable_id
    return ops6.read_value(Variable(info))


def model():
    x = ops.parameter([1, 8], np.float32, name='x')
    a, alpha, b = variable([-1, 8], 'A'), variable([1, -1], 'alpha'), variable([8, -1], 'B')
    branch = ops.matmul(x, a, False, True)
    if kind == 'lora':
        branch = ops.multiply(branch, alpha)
    branch = ops.matmul(branch, b, False, True)
    y = ops.add(ops.matmul(x, ops.constant(np.ones((8, 8), np.float32)), False, True), branch)
    sinks = [ops6.assign(a, 'A'), ops6.assign(b, 'B')] + ([ops6.assign(alpha, 'alpha')] if kind == 'lora' else [])
    return ov.Model([ops.result(y)], sinks, [x], kind)


# one model object: a second one would get new automatic node names, and so another entry in the cache
toy = model()
loaded = []
for _ in range(2):
    compiled = ov.Core().compile_model(toy, 'CPU', {'CACHE_DIR': cache})
    loaded.append(bool(compiled.get_property('LOADED_FROM_CACHE')))
print(json.dumps({'kind': kind, 'loadedFromCache': loaded}))
