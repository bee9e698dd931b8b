"""The parity oracle: runs the same generations through Python's openvino_genai (from the SDK venv) and writes the
raw RGB bytes of each image to <out>/<index>.rgb.

Input, a JSON file: {"model": dir, "adapters": {name: path}, "fresh": bool, "calls": [{"prompt", "seed", "width",
"height", "steps", "guidance_scale", "negative_prompt"?, "adapters": {name: alpha}}]}. All adapters are registered
when the pipeline is built, and every call passes its AdapterConfig (the chosen adapters in the call's order; an
empty config for none), as a plain user of openvino_genai would.

With "fresh", each call runs as the first generate of a newly built pipeline: the ground truth for a config, out of
reach of GenAI 2026.3's bugs in switching between configs on one pipeline (see docs/GENAI-BUGS.md).
"""
import json
import os
import sys

import openvino_genai as ov_genai


def main() -> None:
    spec_path, out_dir = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    names = list(spec.get("adapters", {}).keys())
    adapters = {name: ov_genai.Adapter(spec["adapters"][name]) for name in names}
    kwargs = {}
    if adapters:
        kwargs["adapters"] = ov_genai.AdapterConfig([adapters[n] for n in names])
    pipe = None
    os.makedirs(out_dir, exist_ok=True)
    for i, call in enumerate(spec["calls"]):
        if pipe is None or spec.get("fresh"):
            pipe = None
            pipe = ov_genai.Text2ImagePipeline(spec["model"], "CPU", **kwargs)
        args = dict(
            rng_seed=call["seed"],
            width=call["width"],
            height=call["height"],
            num_inference_steps=call["steps"],
            guidance_scale=call["guidance_scale"],
        )
        if "negative_prompt" in call:
            args["negative_prompt"] = call["negative_prompt"]
        if adapters:
            config = ov_genai.AdapterConfig()
            for name, alpha in call.get("adapters", {}).items():
                config.add(adapters[name], alpha)
            args["adapters"] = config
        image = pipe.generate(call["prompt"], **args)
        with open(os.path.join(out_dir, f"{i}.rgb"), "wb") as f:
            f.write(image.data.tobytes())


if __name__ == "__main__":
    main()
