"""The Python side of `npm run bench` (scripts/bench.mjs): openvino_genai from the SDK venv, driven by the
runners' line protocol (scripts/bench/protocol.md). It makes the same GenAI calls as multilora and as the C++
driver (native/bench/driver.cc): the listed adapters in registration order (bench.mjs marks the others "~", as
multilora's listFor leaves them out), then a tensor-less spacer adapter whose alpha changes whenever the list or an
alpha changed."""

import hashlib
import os
import sys
import tempfile
import time

import openvino_genai as ov_genai

# A safetensors file without tensors: 8-byte header length, then "{}" padded to 8 bytes.
EMPTY_SAFETENSORS = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "


class Runner:
    def __init__(self):
        self.pipe = None
        self.adapters = []
        self.spacer = None
        self.last_alphas = None
        self.spacer_alpha = 0.0
        self.tmp = tempfile.mkdtemp(prefix="multilora-bench-py-")

    def load(self, f):
        if len(f) != 6:
            return "err\tload takes 5 fields"
        self.pipe = None
        self.adapters = []
        self.last_alphas = None
        self.spacer_alpha = 0.0
        model, device, shape, cache, paths = f[1:]
        props = {}
        if cache != "-":
            props["CACHE_DIR"] = cache
        if paths != "-":
            self.adapters = [ov_genai.Adapter(p) for p in paths.split("|")]
            spacer_path = os.path.join(self.tmp, "spacer.safetensors")
            with open(spacer_path, "wb") as out:
                out.write(EMPTY_SAFETENSORS)
            self.spacer = ov_genai.Adapter(spacer_path)
            config = ov_genai.AdapterConfig()
            for a in self.adapters:
                config.add(a)
            props["adapters"] = config
        start = time.perf_counter()
        # As multilora builds it: from an InpaintingPipeline when the model has a VAE encoder.
        inpainting = os.path.exists(os.path.join(model, "vae_encoder", "openvino_model.xml"))
        cls = ov_genai.InpaintingPipeline if inpainting else ov_genai.Text2ImagePipeline
        if shape == "-":
            pipe = cls(model, device, **props)
        else:
            w, h, n, g = shape.split("x")
            pipe = cls(model)
            pipe.reshape(int(n), int(h), int(w), float(g))
            pipe.compile(device, **props)
        self.pipe = ov_genai.Text2ImagePipeline(pipe) if inpainting else pipe
        return "ok\t%f" % ((time.perf_counter() - start) * 1000)

    def config_for(self, csv):
        # one alpha per registered adapter; "~": left out of the list (multilora's listFor, computed by bench.mjs)
        alphas = [0.0] * len(self.adapters)
        if csv != "-":
            for i, v in enumerate(csv.split(",")[: len(alphas)]):
                alphas[i] = None if v == "~" else float(v)
        if alphas != self.last_alphas:
            self.spacer_alpha += 1
        self.last_alphas = alphas
        config = ov_genai.AdapterConfig()
        for a, alpha in zip(self.adapters, alphas):
            if alpha is not None:
                config.add(a, alpha)
        config.add(self.spacer, self.spacer_alpha)
        return config

    def gen(self, f):
        if self.pipe is None:
            return "err\tno pipeline loaded"
        if len(f) != 8:
            return "err\tgen takes 7 fields"
        kwargs = dict(
            rng_seed=int(f[1]),
            width=int(f[2]),
            height=int(f[3]),
            num_inference_steps=int(f[4]),
            guidance_scale=float(f[5]),
        )
        if self.adapters:
            kwargs["adapters"] = self.config_for(f[6])
        start = time.perf_counter()
        image = self.pipe.generate(f[7], **kwargs)
        int(image.data[0, 0, 0, 0])  # read inside the clock, as the other runners do
        ms = (time.perf_counter() - start) * 1000
        step_ms = self.pipe.get_performance_metrics().get_iteration_duration().mean
        # The md5 of every byte of the image, outside the clock: the runners' images are compared whole.
        md5 = hashlib.md5(image.data.tobytes()).hexdigest()
        return "ok\t%f\tmd5=%s\tstepMs=%f" % (ms, md5, step_ms)


def main():
    runner = Runner()
    print("ready\tpython", flush=True)
    for line in sys.stdin:
        f = line.rstrip("\n").split("\t")
        if not f or not f[0]:
            continue
        if f[0] == "quit":
            break
        try:
            if f[0] == "load":
                reply = runner.load(f)
            elif f[0] == "gen":
                reply = runner.gen(f)
            else:
                reply = "err\tunknown command " + f[0]
        except Exception as e:  # noqa: BLE001 - every failure becomes one reply line
            reply = "err\t" + " ".join(str(e).split())
        print(reply, flush=True)


if __name__ == "__main__":
    main()
