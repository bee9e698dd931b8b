"""The Python side of `npm run bench:tutorial`: the tutorial's recipe, as its demo writes it.

Text2ImagePipeline(model, "CPU", adapters=AdapterConfig(every adapter of the catalogue)), then per image
generate(prompt from the template, adapters=AdapterConfig(the chosen adapter at its weight) or an empty one for
"none", num_inference_steps, guidance_scale, width, height, rng_seed). The tutorial's demo seeds a torch generator;
the recipe here uses GenAI's own (rng_seed), which multilora's `seed` also uses, so that the bytes can be compared.

Usage: python recipe.py <job.json>. The job is written by scripts/bench-tutorial.mjs; this prints one JSON
line per event on stdout (load, image, done) and writes each image's RGB bytes to the job's outDir.
"""

import hashlib
import json
import resource
import sys
import time
from pathlib import Path

import openvino_genai as ov_genai


def emit(**event):
    print(json.dumps(event), flush=True)


def main():
    job = json.loads(Path(sys.argv[1]).read_text())
    out = Path(job["outDir"])
    catalog = job["catalog"]
    t = time.perf_counter()
    adapters = {name: ov_genai.Adapter(e["path"]) for name, e in catalog.items()}
    config = ov_genai.AdapterConfig()
    for name, adapter in adapters.items():
        config.add(adapter, catalog[name]["alpha"])
    pipe = ov_genai.Text2ImagePipeline(job["model"], "CPU", adapters=config)
    emit(type="load", ms=(time.perf_counter() - t) * 1000)
    for i, image in enumerate(job["images"]):
        style = image["style"]
        chosen = ov_genai.AdapterConfig()
        prompt = image["subject"]
        if style is not None:
            chosen.add(adapters[style], catalog[style]["alpha"])
            prompt = catalog[style]["template"].replace("<subject>", prompt)
        t = time.perf_counter()
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        result = pipe.generate(prompt, adapters=chosen, num_inference_steps=job["steps"],
                               guidance_scale=job["guidance"], width=image["size"], height=image["size"],
                               rng_seed=image["seed"])
        ms = (time.perf_counter() - t) * 1000
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu_ms = (used.ru_utime - cpu.ru_utime + used.ru_stime - cpu.ru_stime) * 1000
        data = bytes(result.data)
        (out / f"{i}.rgb").write_bytes(data)
        pm = pipe.get_performance_metrics()
        steps = list(pm.raw_metrics.iteration_durations)  # microseconds
        emit(type="image", index=i, ms=ms, md5=hashlib.md5(data).hexdigest(),
             stepMs=sum(steps) / len(steps) / 1000 if steps else None, vaeMs=pm.get_vae_decoder_infer_duration(),
             cpuMs=cpu_ms, textMs=sum(pm.get_text_encoder_infer_duration().values()))
    # ru_maxrss is in kilobytes on Linux
    emit(type="done", peakRssMb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
