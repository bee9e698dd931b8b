"""The parity oracle: runs the same generations through Python's openvino_genai (from the SDK venv) and writes the
raw RGB bytes of each image to <out>/<index>.rgb.

Input, a JSON file: {"model": dir, "adapters": {name: path}, "fresh": bool, "calls": [{"prompt", "seed", "width",
"height", "steps", "guidance_scale", "negative_prompt"?, "num_images"?, "adapters": {name: alpha}, "noise"?}]}. All
adapters are registered when the pipeline is built, and every call passes its AdapterConfig (the chosen adapters in
the call's order; an empty config for none), as a plain user of openvino_genai would.

With "noise" ([{"shape", "data_base64_f32le"}], e.g. torch.randn values from test/fixtures/torch-randn.json), the call
passes a Generator that hands GenAI these arrays, in order, instead of rng_seed: what openvino_genai.TorchGenerator
would do with torch installed. GenAI asking for another shape, or for more, fails the oracle.

With "task": "image2image" (and "strength"?) or "inpainting", the call runs on an Image2ImagePipeline or an
InpaintingPipeline built from the model directory, as a plain user would build them, with "image" (and "mask"):
{"width", "height", "data_base64"} of RGB bytes. Each task has its own pipeline, built at its first call.

With "fresh", each call runs as the first generate of a newly built pipeline: the ground truth for a config, out of
reach of GenAI 2026.3's bugs in switching between configs on one pipeline (see docs/GENAI-BUGS.md).
"""
import base64
import json
import os
import sys

import numpy as np
import openvino as ov
import openvino_genai as ov_genai


class ReplayGenerator(ov_genai.Generator):
    """Gives GenAI the noise it was handed, array by array."""

    def __init__(self, noise):
        ov_genai.Generator.__init__(self)
        self.arrays = [np.frombuffer(base64.b64decode(n["data_base64_f32le"]), dtype="<f4").reshape(n["shape"]).copy()
                       for n in noise]

    def next(self):
        raise RuntimeError("the oracle's generator was asked for next()")

    def randn_tensor(self, shape):
        if not self.arrays:
            raise RuntimeError(f"the oracle's generator has no more noise (asked for {shape})")
        a = self.arrays.pop(0)
        if list(a.shape) != list(shape):
            raise RuntimeError(f"the oracle's generator holds {list(a.shape)}, GenAI asked for {shape}")
        return ov.Tensor(a)

    def seed(self, new_seed):
        raise RuntimeError("the oracle's generator was asked to reseed")


def rgb_tensor(image):
    """{"width", "height", "data_base64"} of RGB bytes as the u8 [1, height, width, 3] tensor GenAI takes."""
    data = np.frombuffer(base64.b64decode(image["data_base64"]), dtype=np.uint8)
    return ov.Tensor(data.reshape(1, image["height"], image["width"], 3).copy())


def main() -> None:
    spec_path, out_dir = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    names = list(spec.get("adapters", {}).keys())
    adapters = {name: ov_genai.Adapter(spec["adapters"][name]) for name in names}
    kwargs = {}
    if adapters:
        kwargs["adapters"] = ov_genai.AdapterConfig([adapters[n] for n in names])
    classes = {
        "text2image": ov_genai.Text2ImagePipeline,
        "image2image": ov_genai.Image2ImagePipeline,
        "inpainting": ov_genai.InpaintingPipeline,
    }
    pipes = {}
    os.makedirs(out_dir, exist_ok=True)
    for i, call in enumerate(spec["calls"]):
        task = call.get("task", "text2image")
        if task not in pipes or spec.get("fresh"):
            pipes.pop(task, None)
            pipes[task] = classes[task](spec["model"], "CPU", **kwargs)
        pipe = pipes[task]
        inputs = [rgb_tensor(call[k]) for k in ("image", "mask") if k in call]
        args = dict(
            width=call["width"],
            height=call["height"],
            num_inference_steps=call["steps"],
            guidance_scale=call["guidance_scale"],
        )
        if "noise" in call:
            args["generator"] = ReplayGenerator(call["noise"])
        else:
            args["rng_seed"] = call["seed"]
        if "negative_prompt" in call:
            args["negative_prompt"] = call["negative_prompt"]
        if "strength" in call:
            args["strength"] = call["strength"]
        if "num_images" in call:
            args["num_images_per_prompt"] = call["num_images"]
        if adapters:
            config = ov_genai.AdapterConfig()
            for name, alpha in call.get("adapters", {}).items():
                config.add(adapters[name], alpha)
            args["adapters"] = config
        image = pipe.generate(call["prompt"], *inputs, **args)
        if "noise" in call and args["generator"].arrays:
            raise RuntimeError(f"GenAI left {len(args['generator'].arrays)} of the oracle's noise arrays unused")
        with open(os.path.join(out_dir, f"{i}.rgb"), "wb") as f:
            f.write(image.data.tobytes())


if __name__ == "__main__":
    main()
