"""multilora's converter: the Python half of `multilora convert` (lib/convert/index.ts is the other half).

It runs inside the converter's own venv (lib/convert/env.ts makes it from python/requirements.txt), and is
never run by hand. It takes one JSON job as its only argument and answers with JSON lines on stdout, one object each:
    {"event": "progress", "phase": "...", "message": "..."}
    {"event": "warning", "message": "..."}
    {"event": "error", "code": "ERR_...", "message": "..."}     (then exit status 1)
    {"event": "done", ...}                                       (then exit status 0)
Everything else (library logs, the exporter's output) goes to stderr, which lib/convert/index.ts keeps for error messages.

Jobs:
    {"command": "fetch", "repo": "org/name", "revision": null}
        Downloads a diffusers model from the Hugging Face Hub into its cache; "done" gives its folder.
    {"command": "convert", "source": dir, "work": dir, "output": dir, "weight_format": "fp16", "task": "text-to-image",
     "family": "sdxl", "fuse": [{"file": kohya .safetensors, "alpha": 0.8, "label": "name shown in messages"}],
     "scheduler": null or a diffusers scheduler class such as "LCMScheduler"}
        Fuses the LoRAs (already rewritten by lib/lora/format.ts into the kohya names GenAI matches) into the
        weights, then exports to OpenVINO IR with optimum-cli into `output`. Scratch files go under `work`.

The parent keeps our stdin open: when it closes (the parent died), this process stops its exporter and exits.
"""
import collections
import errno
import json
import os
import re
import subprocess
import sys
import threading
import time

OUT = sys.stdout
_children = []


def emit(event, **fields):
    OUT.write(json.dumps({"event": event, **fields}) + "\n")
    OUT.flush()


def progress(phase, message, **extra):
    emit("progress", phase=phase, message=message, **extra)


class Failure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def watch_parent():
    """Exit, with the exporter, when the parent closes our stdin (it died, or gave up on us)."""
    def run():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        stop_children()
        os._exit(3)
    threading.Thread(target=run, daemon=True).start()


def stop_children():
    for child in _children:
        if child.poll() is None:
            try:
                child.kill()
            except OSError:
                pass


def no_space(err):
    return isinstance(err, OSError) and err.errno == errno.ENOSPC


# ---------------------------------------------------------------------------------------------------------------
# fetch

def fetch(job):
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    repo = job["repo"]
    progress("download", f"downloading {repo} from the Hugging Face Hub")
    try:
        folder = snapshot_download(
            repo, revision=job.get("revision"),
            # the diffusers weights and configs; not the single-file checkpoints, ONNX or Flax copies beside them
            allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors", "*/*.json", "*/*.txt", "*/*.model",
                            "*/*.safetensors"],
            # one copy of each weight: not the fp16 variants beside the full ones
            ignore_patterns=["*.fp16.safetensors", "*/*.fp16.safetensors"],
        )
    except (RepositoryNotFoundError, GatedRepoError) as err:
        raise Failure("ERR_CONVERT_SOURCE", f"{repo} is not a model on the Hugging Face Hub that this machine may "
                                            f"download ({type(err).__name__}): check the id, or log in with an "
                                            "access token (HF_TOKEN) for a gated model")
    except RevisionNotFoundError:
        raise Failure("ERR_CONVERT_SOURCE", f"{repo} has no revision {job.get('revision')!r} on the Hugging Face Hub")
    except LocalEntryNotFoundError as err:
        raise Failure("ERR_HUB_UNREACHABLE", f"the Hugging Face Hub could not be reached to download {repo} ({err}); "
                                             "a local diffusers model folder converts offline")
    except OSError as err:
        if no_space(err):
            raise
        raise Failure("ERR_HUB_UNREACHABLE", f"downloading {repo} from the Hugging Face Hub failed ({err}); "
                                             "a local diffusers model folder converts offline")
    emit("done", folder=folder)


# ---------------------------------------------------------------------------------------------------------------
# fuse

# The kohya prefixes GenAI matches, per pipeline component (longest first, so that lora_te1 is not taken for lora_te).
PREFIXES = [("lora_unet_", "unet"), ("lora_te1_", "text_encoder"), ("lora_te2_", "text_encoder_2"),
            ("lora_te_", "text_encoder")]
SGM = re.compile(r"^lora_unet_(input_blocks|middle_block|output_blocks)_")
BARE_UNET = re.compile(r"^(down_blocks|mid_block|up_blocks|conv_in|conv_out|time_embedding|add_embedding)(\.|$)")


def lora_layers(file, unet_config):
    """{stem: {"down": tensor, "up": tensor, "bias": a full difference's bias, "dora_out" / "dora_in": a DoRA
    magnitude (multilora's rewrite names its axis)}, or {"oft", "rescale", "constraint"} for an OFT layer} of a kohya
    file, with Stability's block names mapped to diffusers'."""
    from safetensors.torch import load_file

    tensors = load_file(file)
    if any(SGM.match(k) for k in tensors):
        from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers
        tensors = _maybe_map_sgm_blocks_to_diffusers(tensors, unet_config)
    layers = {}
    for key, value in tensors.items():
        for suffix, role in ((".lora_down.weight", "down"), (".lora_up.weight", "up"), (".diff_b", "bias"),
                             (".dora_scale_out", "dora_out"), (".dora_scale_in", "dora_in"),
                             (".oft_blocks", "oft"), (".oft_rescale", "rescale"), (".oft_constraint", "constraint")):
            if key.endswith(suffix):
                layers.setdefault(key[: -len(suffix)], {})[role] = value
    return {stem: t for stem, t in layers.items() if ("down" in t and "up" in t) or "oft" in t}


def module_index(pipe):
    """{component: [(name with '.' -> '_', module)]} of the layers a LoRA can change (linear and 1x1 convolutions)."""
    import torch

    index = {}
    for component in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, component, None)
        if model is None:
            continue
        index[component] = [(name.replace(".", "_"), module) for name, module in model.named_modules()
                            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))]
    return index


def decomposed(weight, axis, magnitude, alpha, label, stem):
    """DoRA's fused weight, as LyCORIS merges it: `weight` (the layer's own plus alpha * B·A) times
    alpha * (magnitude / its norm - 1) + 1, the norms taken per output row ("out") or per input column ("in"),
    plus float32's eps. At alpha 1 it is PEFT's magnitude * weight / norm."""
    import torch

    dim = 0 if axis == "out" else 1
    rows = weight.transpose(0, dim).reshape(weight.shape[dim], -1)
    if magnitude.numel() != rows.shape[0]:
        raise Failure("ERR_ADAPTER_INCOMPATIBLE",
                      f"{label}: DoRA layer {stem} has {magnitude.numel()} magnitudes for a layer of "
                      f"{rows.shape[0]} {'outputs' if axis == 'out' else 'inputs'}")
    shape = [1] * weight.dim()
    shape[dim] = -1
    norm = rows.norm(dim=1).reshape(shape) + torch.finfo(torch.float32).eps
    scale = magnitude.float().reshape(shape) / norm
    return weight * (alpha * (scale - 1) + 1)


def rotated(weight, blocks, rescale, constraint, alpha, label, stem):
    """LyCORIS's Diag-OFT merged at strength alpha: each block of the weight's output rows times
    (alpha * R + (1 - alpha) * I) transposed, R the Cayley transform (I + Q)(I - Q)^-1 of the block's skew-symmetric
    part Q, its norm held within the constraint; then the rows times `rescale`."""
    import torch

    n, b, _ = blocks.shape
    if n * b != weight.shape[0] or (rescale is not None and rescale.numel() != weight.shape[0]):
        raise Failure("ERR_ADAPTER_INCOMPATIBLE",
                      f"{label}: OFT layer {stem} has {n} blocks of {b} for a layer of {weight.shape[0]} outputs")
    q = blocks.double() - blocks.double().transpose(1, 2)
    norm = torch.norm(q) + 1e-8
    if constraint > 0 and norm > constraint:
        q = q * constraint / norm
    eye = torch.eye(b, dtype=torch.float64)
    r = (eye + q) @ torch.linalg.inv(eye - q)
    mix = alpha * r + (1 - alpha) * eye
    shape = weight.shape
    fused = torch.einsum("knm,kn...->km...", mix, weight.double().reshape(n, b, *shape[1:])).reshape(shape)
    if rescale is not None:
        fused = fused * rescale.double().reshape(-1, *([1] * (weight.dim() - 1)))
    return fused


def fuse_one(pipe, index, spec):
    """Adds alpha * up @ down to every layer that one of the file's stems names, as GenAI does at generate (and alpha *
    the bias difference of a full one to its bias)."""
    import torch

    label, alpha = spec["label"], float(spec["alpha"])
    layers = lora_layers(spec["file"], pipe.unet.config)
    by_component = {}
    unmatched = []
    for stem in sorted(layers):
        prefix = next(((p, c) for p, c in PREFIXES if stem.startswith(p)), None)
        if prefix is None and BARE_UNET.match(stem):
            # a UNet module path: multilora's rewrite names so the layers whose kohya names GenAI drops
            prefix = ("", "unet")
        if prefix is None or prefix[1] not in index:
            unmatched.append(stem)
            continue
        by_component.setdefault(prefix[1], []).append((stem, stem[len(prefix[0]):].replace(".", "_")))
    plan = []
    used = set()
    for component, stems in by_component.items():
        for name, module in index[component]:
            # GenAI's rule (lora/adapter.cpp, LoRAWeightGetterDefault): a stem applies to a layer when the rest of it,
            # after the component's prefix, is a substring of the layer's name with '.' replaced by '_'.
            hit = next((stem for stem, rest in stems if rest in name), None)
            if hit is not None:
                plan.append((hit, component, name, module))
                used.add(hit)
    unmatched += [stem for stems in by_component.values() for stem, _ in stems if stem not in used]
    if not plan:
        raise Failure("ERR_ADAPTER_UNMATCHED",
                      f"{label}: none of its {len(layers)} LoRA layers matches a layer of the model (is it made "
                      f"for another model family? first layers: {', '.join(sorted(layers)[:3])})")
    for stem, component, name, module in plan:
        if "oft" in layers[stem]:
            oft = layers[stem]
            with torch.no_grad():
                module.weight.copy_(rotated(module.weight, oft["oft"], oft.get("rescale"), float(oft["constraint"]),
                                            alpha, label, stem).to(module.weight.dtype))
            continue
        down, up = layers[stem]["down"].float(), layers[stem]["up"].float()
        weight = module.weight
        out_features, in_features = weight.shape[0], weight.shape[1]
        rank = down.shape[0]
        pointwise = (all(d == 1 for d in down.shape[2:])
                     and (weight.dim() == 2 or tuple(weight.shape[2:]) == (1, 1)))
        # a convolution with a bigger kernel (LCM-LoRA's 3x3 ones): A has the layer's kernel, B is 1x1
        kernel = down.dim() == 4 and weight.dim() == 4 and tuple(down.shape[2:]) == tuple(weight.shape[2:])
        # LyCORIS's LoHa and LoKr keep a convolution's kernel flattened into their factors: A of [rank, in * kh * kw]
        flattened = (down.dim() == 2 and up.dim() == 2 and weight.dim() == 4 and up.shape[1] == rank
                     and down.shape[1] == weight[0].numel() and up.shape[0] == out_features)
        ok = flattened or (down.dim() in (2, 4) and up.dim() == down.dim() and up.shape[1] == rank
                           and down.shape[1] == in_features and up.shape[0] == out_features
                           and all(d == 1 for d in up.shape[2:]) and (pointwise or kernel))
        if not ok:
            raise Failure("ERR_ADAPTER_INCOMPATIBLE",
                          f"{label}: LoRA layer {stem} has A {list(down.shape)} and B {list(up.shape)}, which do not "
                          f"fit the model's {component} layer {name} of shape {list(weight.shape)}: the LoRA is made "
                          "for another base model")
        bias = layers[stem].get("bias")
        if bias is not None and (module.bias is None or tuple(bias.shape) != (out_features,)):
            raise Failure("ERR_ADAPTER_INCOMPATIBLE",
                          f"{label}: LoRA layer {stem} changes a bias of shape {list(bias.shape)}, but the model's "
                          f"{component} layer {name} has " + ("no bias" if module.bias is None else
                                                              f"one of shape {list(module.bias.shape)}"))
        delta = alpha * (up.reshape(out_features, rank) @ down.reshape(rank, -1))
        with torch.no_grad():
            dora = next(((axis, layers[stem][f"dora_{axis}"]) for axis in ("out", "in")
                         if f"dora_{axis}" in layers[stem]), None)
            if dora is None:
                weight.add_(delta.reshape(weight.shape).to(weight.dtype))
            else:
                weight.copy_(decomposed(weight.float() + delta.reshape(weight.shape), *dora, alpha, label, stem)
                             .to(weight.dtype))
            if bias is not None:
                module.bias.add_((alpha * bias.float()).to(module.bias.dtype))
    if unmatched:
        emit("warning", message=f"{label}: {len(unmatched)} of its {len(layers)} LoRA layers match no layer of the "
                                f"model and were left out (as OpenVINO GenAI leaves them out at generate), e.g. "
                                f"{', '.join(unmatched[:3])}")
    return {"label": label, "alpha": alpha, "layers": len(layers), "fused_layers": len(plan), "unmatched": len(unmatched)}


def load_and_fuse(job):
    import torch
    from diffusers import DiffusionPipeline

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    progress("load", f"loading {job['source']} with diffusers")
    pipe = DiffusionPipeline.from_pretrained(job["source"], torch_dtype=torch.float32)
    index = module_index(pipe)
    reports = []
    for spec in job["fuse"]:
        progress("fuse", f"fusing {spec['label']} at {spec['alpha']}")
        reports.append(fuse_one(pipe, index, spec))
    fused = os.path.join(job["work"], "fused")
    progress("fuse", "saving the fused weights")
    pipe.save_pretrained(fused, safe_serialization=True)
    return fused, reports


# ---------------------------------------------------------------------------------------------------------------
# export

def export(source, job):
    exe = os.path.join(os.path.dirname(sys.executable), "optimum-cli")
    cmd = [exe, "export", "openvino", "--model", source, "--task", job["task"],
           "--weight-format", job["weight_format"], job["output"]]
    progress("export", f"exporting to OpenVINO IR ({job['weight_format']}) with optimum-intel")
    env = dict(os.environ, TMPDIR=job["work"])
    # Its output goes on to our stderr, and its end is kept for the error message (not in a file: the disk may be full).
    tail = collections.deque(maxlen=400)
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    _children.append(child)
    for raw in child.stdout:
        line = raw.decode("utf-8", "replace")
        tail.append(line)
        sys.stderr.write(line)
    status = child.wait()
    if status != 0:
        text = "".join(tail)
        if "No space left on device" in text or "ENOSPC" in text or "[Errno 28]" in text:
            raise OSError(errno.ENOSPC, "No space left on device (while exporting)")
        raise Failure("ERR_CONVERT_FAILED", f"optimum-cli export openvino failed with status {status}: "
                                            f"{last_error(text)}")


def last_error(text):
    """The exporter's own error line: the last line that names an exception, else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception)\b", line):
            return line[:2000]
    return lines[-1][:2000] if lines else "no output"


def set_scheduler(output, class_name):
    """Makes the exported model's default scheduler another one, from its config (as the tutorial does for LCM)."""
    import diffusers

    progress("export", f"setting the model's scheduler to {class_name}")
    cls = getattr(diffusers, class_name)
    folder = os.path.join(output, "scheduler")
    config = dict(cls.load_config(folder))
    if class_name == "DDIMScheduler":
        config["clip_sample"] = False  # GenAI's DDIM takes no clipped samples
    cls.from_config(config).save_config(folder)


def replace_vae_decoder(output, tiny, weight_format):
    """Puts the decoder of the diffusers AutoencoderTiny in folder `tiny` in place of the model's VAE decoder.

    GenAI reads it as it reads a VAE decoder: the latents, divided by `scaling_factor` (1 for AutoencoderTiny, as in
    diffusers' pipelines), in; the image in [-1, 1] out (DecoderTiny ends so); the size from `block_out_channels`,
    2^(len - 1), kept from the full decoder (convert checked that both scale alike). Its weights are fp16 unless the
    model is fp32 (a tiny decoder of convolutions gains nothing from int8: the CPU runs them in bf16 either way). The
    VAE encoder stays the model's, for imageToImage and inpaint.

    The export runs in a Python process of its own, started with CI=true: OpenVINO's converter sends telemetry from
    forked processes unless CI is set when it starts, and a fork of this process (torch's threads, after a fuse)
    hangs, holding our stdout open so that the conversion never ends. Its output goes to our stderr through a file.
    """
    import shutil
    import tempfile

    progress("export", f"replacing the VAE decoder with the AutoencoderTiny decoder of {tiny}")
    folder = os.path.join(output, "vae_decoder")
    with open(os.path.join(folder, "config.json")) as f:
        # GenAI sizes the latents by 2^(len - 1) of these: the full decoder's, whose factor convert checked is the same
        blocks = json.load(f)["block_out_channels"]
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    job = {"command": "tiny_decoder", "tiny": tiny, "folder": folder, "fp16": weight_format != "fp32",
           "blocks": blocks}
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), json.dumps(job)], stdin=subprocess.PIPE,
                                 stdout=log, stderr=log, env=dict(os.environ, CI="true"))
        _children.append(child)
        status = child.wait()  # not the end of its output: a stray fork of it must not hold us
        child.stdin.close()
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    sys.stderr.write(text)
    if status != 0:
        raise Failure("ERR_CONVERT_FAILED", f"exporting the AutoencoderTiny decoder failed: {last_error(text)}")


def tiny_decoder(job):
    """The Python process of replace_vae_decoder: the decoder to IR, and the config GenAI reads."""
    import openvino as ov
    import torch
    from diffusers import AutoencoderTiny

    vae = AutoencoderTiny.from_pretrained(job["tiny"], torch_dtype=torch.float32).eval()
    channels = vae.config.latent_channels

    class Decoder(torch.nn.Module):
        def __init__(self, decoder):
            super().__init__()
            self.decoder = decoder

        def forward(self, latent_sample):
            return self.decoder(latent_sample)

    with torch.no_grad():
        model = ov.convert_model(Decoder(vae.decoder), example_input=torch.zeros(1, channels, 8, 8),
                                 input=[ov.PartialShape([-1, channels, -1, -1])])
    model.inputs[0].get_tensor().set_names({"latent_sample"})
    model.outputs[0].get_tensor().set_names({"sample"})
    ov.save_model(model, os.path.join(job["folder"], "openvino_model.xml"), compress_to_fp16=job["fp16"])
    config = {
        "_class_name": "AutoencoderTiny",
        "in_channels": vae.config.in_channels,
        "out_channels": vae.config.out_channels,
        "latent_channels": channels,
        "scaling_factor": vae.config.scaling_factor,
        "shift_factor": vae.config.shift_factor,
        "block_out_channels": job["blocks"],
    }
    with open(os.path.join(job["folder"], "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def convert(job):
    started = time.time()
    source, reports = job["source"], []
    if job["fuse"]:
        source, reports = load_and_fuse(job)
    export(source, job)
    if job.get("scheduler"):
        set_scheduler(job["output"], job["scheduler"])
    if job.get("tiny_vae"):
        replace_vae_decoder(job["output"], job["tiny_vae"], job["weight_format"])
    emit("done", fused=reports, seconds=round(time.time() - started, 3))


def main():
    job = json.loads(sys.argv[1])
    watch_parent()
    try:
        {"fetch": fetch, "convert": convert, "tiny_decoder": tiny_decoder}[job["command"]](job)
    except Failure as err:
        emit("error", code=err.code, message=str(err))
        return 1
    except OSError as err:
        if no_space(err):
            emit("error", code="ERR_NO_SPACE", message=f"no space left on the device ({err})")
            return 1
        raise
    finally:
        stop_children()
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: the thread blocked reading stdin would make the interpreter's shutdown abort.
    os._exit(status)
