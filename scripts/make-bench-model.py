#!/usr/bin/env python3
"""Build the benchmark's realistic-size model (issue 6): Stable Diffusion 1.5's architecture at its real
sizes (UNet of ~860M parameters, 512x512) with random weights from fixed seeds, exported to OpenVINO IR,
and rank-16 kohya LoRA files for it. It is not committed: it goes to .bench-models/ (git-ignored).

    bash scripts/make-fixtures.sh --bench-model [--out DIR] [--force] [--no-verify]
    python scripts/make-bench-model.py [--out DIR] [--weight-format fp16|fp32] [--loras N] [--force] [--no-verify]
    python scripts/make-bench-model.py --verify-only [--out DIR] [--precision f32|bf16|default]
                                      # any Python with openvino_genai and numpy: also the step-time probe

What it writes, DIR being .bench-models/ unless --out says otherwise:

    DIR/sd15-512/                     the IR as optimum-cli exports it (model_index.json, scheduler/,
                                      text_encoder/, tokenizer/, unet/, vae_decoder/, vae_encoder/):
                                      give this folder to Text2ImagePipeline
    DIR/sd15-512/loras/bench-N.safetensors   kohya LoRA files (rank 16, fp16, `.alpha` = 16)
    DIR/sd15-512/bench-model.json     the stamp: the recipe, every file's size, what the build measured
                                      and what the verification found

A rerun reuses DIR/sd15-512 when its stamp matches this recipe and every file it lists is there with
the same size; otherwise that folder is deleted and built again (--force always rebuilds). The build
works in DIR/.sd15-512.build/ and moves the model into place only once it is complete and verified.

The verification runs in the SDK's Python (.sdk/sdk.json, made by `npm install`) when there is one,
else in this one: one 512x512 generate of 2 steps without LoRA and one with bench-0 at 1.0, in f32
(INFERENCE_PRECISION_HINT: OpenVINO's default is bf16 on a CPU with AVX512_BF16, as this machine's).
It checks that the latents stay finite, that the LoRA changes the image, and that GenAI finds no
unused LoRA tensor; it reports the load, step and VAE times.

Shared pieces (the byte-level tokenizer, the optimum-cli export, kohya names and files) come from
scripts/make-fixtures.py. On 2 cores the build took ~8 min and 10.6 GB of RAM at its peak (the
optimum-cli export), the verification ~7 min and 9.7 GB; ~6.5 GB of disk while it runs, 2.2 GB after.
The stamp records what it took.
"""

import argparse
import gc
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / ".bench-models"
NAME = "sd15-512"
STAMP = "bench-model.json"
RECIPE_VERSION = 1

SEED = 1500               # UNet; the VAE takes SEED + 1, the text encoder SEED + 2
LORA_SEED = 1600          # bench-N takes LORA_SEED + N
LORA_COUNT = 6
LORA_RANK = 16
# `.alpha` = rank, so that diffusers, A1111 and ComfyUI (which scale B*A by alpha/rank) and GenAI (which
# ignores `.alpha` and scales by the alpha it is given) all read the same LoRA at scale 1.
LORA_ALPHA = 16.0
# down (A) ~ N(0, 1/in), up (B) ~ N(0, DELTA^2/rank): B*A has a std of DELTA/sqrt(in), about a third of
# that of the layer's own random weights (PyTorch's default init: 1/sqrt(3*in)).
LORA_DELTA = 0.2
LORA_DTYPE = "float16"    # as real SD 1.5 LoRA files are mostly saved

# Stable Diffusion 1.5's configs (UNet 859.5M parameters, CLIP ViT-L/14 text encoder, the KL VAE).
UNET_CONFIG = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
}
TEXT_CONFIG = {             # vocab_size and the special token ids come from the local tokenizer
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "projection_dim": 768,
}
VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "act_fn": "silu",
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
SCHEDULER_CONFIG = {        # PNDMScheduler, as SD 1.5 ships it (and as the tiny sd15 fixture uses)
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}

# The modules a typical kohya SD 1.5 LoRA targets. proj_in / proj_out are 1x1 convolutions in SD 1.5
# (use_linear_projection is false), so they are left out.
UNET_TARGET = re.compile(r"\.transformer_blocks\.\d+\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2))$")
TE_TARGET = re.compile(r"\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))$")

VERIFY = {
    "prompt": "a photo of a cat",
    "width": 512,
    "height": 512,
    "num_inference_steps": 2,
    "guidance_scale": 7.5,
    "rng_seed": 42,
    "properties": {"INFERENCE_PRECISION_HINT": "f32"},
    "lora": "bench-0",
    "lora_alpha": 1.0,
}

VERSIONED = ["torch", "diffusers", "transformers", "optimum-intel", "openvino", "openvino-genai",
             "openvino-tokenizers", "safetensors"]


def log(*a):
    print("[make-bench-model]", *a, flush=True)


def load_make_fixtures():
    spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "scripts" / "make-fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def recipe(args):
    versions = {}
    for pkg in VERSIONED:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "recipe_version": RECIPE_VERSION,
        "seed": SEED,
        "unet": UNET_CONFIG,
        "text_encoder": TEXT_CONFIG,
        "vae": VAE_CONFIG,
        "scheduler": {"_class_name": "PNDMScheduler", **SCHEDULER_CONFIG},
        "weight_format": args.weight_format,
        "loras": {"count": args.loras, "seed": LORA_SEED, "rank": LORA_RANK, "alpha": LORA_ALPHA,
                  "delta": LORA_DELTA, "dtype": LORA_DTYPE,
                  "unet_targets": UNET_TARGET.pattern, "text_encoder_targets": TE_TARGET.pattern},
        "versions": versions,
    }


def recipe_sha(r):
    return hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()


def dir_size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def gb(n):
    return round(n / 1e9, 3)


def tree_rss_by_pid():
    """{pid: resident bytes} of this process and all its descendants, read from /proc."""
    children, rss = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/statm") as f:
                rss[int(d)] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    tree, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        tree[pid] = rss.get(pid, 0)
        todo += children.get(pid, [])
    return tree


class PeakRss:
    """The peak of the resident memory of this process and all its descendants, sampled from /proc."""

    def __init__(self, every=0.5):
        self.peak = 0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def tree_rss():
        return sum(tree_rss_by_pid().values())

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.tree_rss())
            self._stop.wait(self._every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------
# Reuse
# --------------------------------------------------------------------------

def read_stamp(model_dir):
    try:
        return json.loads((model_dir / STAMP).read_text())
    except (OSError, ValueError):
        return None


def stamp_problem(model_dir, sha):
    """Why model_dir is not a complete build of this recipe, or None when it is."""
    st = read_stamp(model_dir)
    if st is None:
        return "no stamp" if model_dir.exists() else "not built"
    if st.get("recipe_sha256") != sha:
        return "built from another recipe"
    for rel, size in st.get("files", {}).items():
        p = model_dir / rel
        if not p.is_file() or p.stat().st_size != size:
            return f"{rel} is missing or has another size"
    return None


def file_sizes(model_dir):
    return {p.relative_to(model_dir).as_posix(): p.stat().st_size
            for p in sorted(model_dir.rglob("*")) if p.is_file() and p.name != STAMP}


# --------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------

def build_pipeline(mf, tok_dir):
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    mf.write_tokenizer_files(tok_dir)
    tokenizer = mf.load_tokenizer(tok_dir, "<|endoftext|>")
    vocab = len(tokenizer)
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    torch.manual_seed(SEED + 1)
    vae = AutoencoderKL(**VAE_CONFIG)
    torch.manual_seed(SEED + 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab, bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1, **TEXT_CONFIG))
    for m in (unet, vae, text_encoder):
        m.eval()
        # fp16 values in fp32 tensors: an fp16 and an fp32 export then hold the same weights
        mf.round_to_fp16(m)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=PNDMScheduler(**SCHEDULER_CONFIG), safety_checker=None, feature_extractor=None,
        image_encoder=None, requires_safety_checker=False)
    return pipe


def lora_targets(pipe, mf):
    """[(kohya prefix, component, module, in_features, out_features)] in module order."""
    return mf.linear_modules([("unet", "lora_unet", pipe.unet, UNET_TARGET),
                              ("text_encoder", "lora_te", pipe.text_encoder, TE_TARGET)])


def random_lora(targets, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    dtype = getattr(torch, LORA_DTYPE)
    weights = {}
    for prefix, component, module, fin, fout in targets:
        down = torch.randn((LORA_RANK, fin), generator=g) / math.sqrt(fin)
        up = torch.randn((fout, LORA_RANK), generator=g) * (LORA_DELTA / math.sqrt(LORA_RANK))
        weights[(prefix, component, module)] = (down.to(dtype).contiguous(), up.to(dtype).contiguous())
    return weights


def build(out, args):
    mf = load_make_fixtures()
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    final = out / NAME
    stage = out / f".{NAME}.build"
    for d in (final, stage):
        if d.exists():
            log(f"removing {d}")
            shutil.rmtree(d)
    stage.mkdir(parents=True)
    model = stage / NAME
    timings = {}
    info = {}

    t = time.time()
    pipe = build_pipeline(mf, stage / "clip-tokenizer")
    counts = {c: sum(p.numel() for p in getattr(pipe, c).parameters())
              for c in ("unet", "text_encoder", "vae")}
    for c, n in counts.items():
        log(f"{c}: {n:,} parameters")
    info["parameters"] = counts
    targets = lora_targets(pipe, mf)
    timings["torch_model_s"] = round(time.time() - t, 1)

    t = time.time()
    pipe.save_pretrained(str(stage / "diffusers"), safe_serialization=True)
    info["diffusers_fp32_bytes"] = dir_size(stage / "diffusers")
    del pipe
    gc.collect()
    timings["save_diffusers_s"] = round(time.time() - t, 1)

    t = time.time()
    mf.export_openvino(stage / "diffusers", model, args.weight_format)
    mf.scrub_build_paths(model, stage, "multilora-bench-model")
    shutil.rmtree(stage / "diffusers")
    timings["export_openvino_s"] = round(time.time() - t, 1)

    t = time.time()
    ldir = model / "loras"
    ldir.mkdir()
    meta = mf.kohya_metadata("sd15", rank=LORA_RANK, alpha=LORA_ALPHA)
    n_unet = sum(1 for x in targets if x[1] == "unet")
    info["lora_modules"] = {"unet": n_unet, "text_encoder": len(targets) - n_unet}
    for i in range(args.loras):
        keys = mf.save_kohya(ldir / f"bench-{i}.safetensors", random_lora(targets, LORA_SEED + i), "sd15",
                             alpha=LORA_ALPHA, metadata=meta)
        info["lora_tensors"] = len(keys)
    timings["loras_s"] = round(time.time() - t, 1)
    log(f"{args.loras} LoRA files: {len(targets)} modules each ({n_unet} UNet, {len(targets) - n_unet} text encoder), "
        f"{(ldir / 'bench-0.safetensors').stat().st_size / 1e6:.1f} MB each")
    shutil.rmtree(stage / "clip-tokenizer")
    return stage, model, timings, info


# --------------------------------------------------------------------------
# Verify (runs in the SDK's Python: needs openvino_genai and numpy only)
# --------------------------------------------------------------------------

def safetensors_header(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"]) for k, v in header.items()}


@contextmanager
def captured_output(sink):
    """Send this process's fds 1 and 2 (where GenAI's C++ code writes) to a file; append its text to sink
    and echo it once done."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            f.seek(0)
            text = f.read().decode("utf-8", "replace")
            sink.append(text)
            sys.stdout.write(text)
            sys.stdout.flush()


def verify(model_dir, precision="f32"):
    """One generate without LoRA and one with bench-0; return a report with a "failures" list."""
    import numpy as np
    import openvino_genai as ov_genai

    v = dict(VERIFY)
    v["properties"] = {} if precision == "default" else {"INFERENCE_PRECISION_HINT": precision}
    report = {"settings": v, "python": sys.executable, "openvino_genai": ov_genai.__version__}
    failures = []

    def check(cond, what):
        log("ok  " if cond else "FAIL", what)
        if not cond:
            failures.append(what)

    loras = sorted((model_dir / "loras").glob("bench-*.safetensors"), key=lambda p: int(p.stem.split("-")[1]))
    headers = {p.stem: safetensors_header(p) for p in loras}
    first = headers.get(v["lora"])
    check(first is not None, f"{v['lora']}.safetensors is there ({len(loras)} LoRA files)")
    if first is None:
        return {**report, "failures": failures}
    check(all(h == first for h in headers.values()),
          f"every LoRA file has {v['lora']}'s tensor names, dtypes and shapes ({len(first)} tensors), "
          "so GenAI's name check of it holds for all")

    def run(pipe, adapters):
        marks, finite = [], []

        def on_step(step, num_steps, latent):
            marks.append(time.perf_counter())
            finite.append(bool(np.isfinite(np.asarray(latent.data)).all()))
            return False

        kw = {k: v[k] for k in ("width", "height", "num_inference_steps", "guidance_scale", "rng_seed")}
        if adapters is not None:
            kw["adapters"] = adapters
        t = time.perf_counter()
        img = pipe.generate(v["prompt"], callback=on_step, **kw)
        total = time.perf_counter() - t
        pm = pipe.get_performance_metrics()
        iters = [d / 1e6 for d in pm.raw_metrics.iteration_durations]
        return np.array(img.data, copy=True), {
            "generate_s": round(total, 2),
            "iterations": len(iters),
            "iteration_s": [round(x, 3) for x in iters],
            "step_s_mean": round(sum(iters) / len(iters), 3),
            "step_s_after_first": round(sum(iters[1:]) / max(1, len(iters) - 1), 3),
            "unet_infer_s": [round(d / 1e6, 3) for d in pm.raw_metrics.unet_inference_durations],
            "text_encoder_ms": {k: round(x, 1) for k, x in pm.get_text_encoder_infer_duration().items()},
            "vae_decoder_s": round(pm.get_vae_decoder_infer_duration() / 1e3, 2),
            "latents_finite": all(finite) and len(finite) > 0,
        }

    def stats(img):
        return {"shape": list(img.shape), "mean": round(float(img.mean()), 2), "std": round(float(img.std()), 2)}

    props = v["properties"]
    t = time.perf_counter()
    pipe = ov_genai.Text2ImagePipeline(str(model_dir), "CPU", **props)
    report["plain_load_s"] = round(time.perf_counter() - t, 1)
    plain, report["plain"] = run(pipe, None)
    report["plain"]["image"] = stats(plain)
    del pipe
    log(f"without LoRA: {report['plain']}")

    out = []
    adapter = ov_genai.Adapter(str(model_dir / "loras" / f"{v['lora']}.safetensors"))
    t = time.perf_counter()
    with captured_output(out):
        pipe = ov_genai.Text2ImagePipeline(str(model_dir), "CPU", adapters=ov_genai.AdapterConfig([adapter]), **props)
    report["lora_load_s"] = round(time.perf_counter() - t, 1)
    with captured_output(out):
        with_lora, report["lora"] = run(pipe, ov_genai.AdapterConfig(adapter, v["lora_alpha"]))
    report["lora"]["image"] = stats(with_lora)
    del pipe
    log(f"with {v['lora']} at {v['lora_alpha']}: {report['lora']}")
    unused = [line.strip() for text in out for line in text.splitlines() if "unused lora tensor" in line.lower()]
    report["genai_unused_warnings"] = unused

    expected_iters = v["num_inference_steps"] + 1   # PNDM (PLMS) runs one more UNet step than asked for
    for key in ("plain", "lora"):
        r = report[key]
        check(r["latents_finite"], f"{key}: latents finite at every step")
        check(r["image"]["shape"] == [1, v["height"], v["width"], 3], f"{key}: image shape {r['image']['shape']}")
        check(r["image"]["std"] > 1.0, f"{key}: image not flat (std {r['image']['std']})")
        check(r["iterations"] == expected_iters, f"{key}: {r['iterations']} iterations")
    diff = float(np.abs(plain.astype(np.float64) - with_lora.astype(np.float64)).mean())
    report["lora_vs_plain_mean_abs_diff"] = round(diff, 3)
    check(diff >= 1.0, f"{v['lora']} at {v['lora_alpha']} changes the image: mean |diff| {diff:.3f}/255 >= 1")
    check(not unused, f"GenAI reports no unused LoRA tensor ({len(unused)} warning lines)")
    report["peak_rss_gb"] = gb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    report["failures"] = failures
    return report


def sdk_python():
    try:
        p = Path(json.loads((ROOT / ".sdk" / "sdk.json").read_text())["python"])
        return str(p) if p.is_file() else None
    except (OSError, ValueError, KeyError):
        return None


def verify_in_sdk(model_dir):
    """Run --verify-only on model_dir in the SDK's Python (else this one); return its report."""
    py = sdk_python() or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        rep = Path(tmp) / "report.json"
        cmd = [py, str(Path(__file__).resolve()), "--verify-only", "--model-dir", str(model_dir), "--report", str(rep)]
        log("$", " ".join(cmd))
        rc = subprocess.run(cmd).returncode
        report = json.loads(rep.read_text()) if rep.exists() else {"failures": [f"verification exited {rc}"]}
    if rc != 0 and not report.get("failures"):
        report["failures"] = [f"verification exited {rc}"]
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default: {DEFAULT_OUT})")
    ap.add_argument("--weight-format", choices=["fp16", "fp32"], default="fp16",
                    help="weights in the IR (default fp16: half the disk and the read; OpenVINO computes in "
                         "f32 or bf16 either way, as INFERENCE_PRECISION_HINT says)")
    ap.add_argument("--loras", type=int, default=LORA_COUNT, help=f"how many LoRA files (default {LORA_COUNT})")
    ap.add_argument("--force", action="store_true", help="rebuild even when a complete build is there")
    ap.add_argument("--no-verify", action="store_true", help="do not check the model with openvino_genai")
    ap.add_argument("--verify-only", action="store_true", help="only check the model already built")
    ap.add_argument("--precision", choices=["f32", "bf16", "default"], default="f32",
                    help="--verify-only: INFERENCE_PRECISION_HINT of the check (default f32; 'default' sets "
                         "none: bf16 on a CPU with AVX512_BF16 or AMX)")
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)   # --verify-only on another folder (the build's)
    ap.add_argument("--report", help=argparse.SUPPRESS)      # --verify-only writes its report here
    args = ap.parse_args()
    start = time.time()
    out = Path(args.out).resolve()
    final = out / NAME

    if args.verify_only:
        model_dir = Path(args.model_dir).resolve() if args.model_dir else final
        report = verify(model_dir, args.precision)
        text = json.dumps(report, indent=2)
        if args.report:
            Path(args.report).write_text(text + "\n")
        else:
            print(text)
        log(f"verification took {time.time() - start:.1f} s")
        return 1 if report["failures"] else 0

    if args.loras < 1:
        ap.error("--loras must be at least 1")
    rec = recipe(args)
    sha = recipe_sha(rec)
    problem = "--force" if args.force else stamp_problem(final, sha)
    if problem is None:
        st = read_stamp(final)
        if st.get("verify") is None and not args.no_verify:
            log(f"{final} is complete but was never verified: verifying it")
            report = verify_in_sdk(final)
            if report["failures"]:
                log("verification FAILED:", "; ".join(report["failures"]))
                return 1
            st["verify"] = report
            (final / STAMP).write_text(json.dumps(st, indent=2) + "\n")
        log(f"reusing {final} ({dir_size(final) / 1e9:.2f} GB, built {st.get('built_at')}); --force rebuilds it")
        log(f"total wall time {time.time() - start:.1f} s")
        return 0

    log(f"building {final} ({problem}); weight format {args.weight_format}, {args.loras} LoRA files")
    with PeakRss() as peak:
        stage, model, timings, info = build(out, args)
    timings["build_s"] = round(time.time() - start, 1)
    stamp = {
        "description": "A random-weight Stable Diffusion 1.5 of the real sizes, for benchmarks; built by "
                       "scripts/make-bench-model.py. Its images mean nothing.",
        "recipe": rec,
        "recipe_sha256": sha,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build": {**info, "timings_s": timings, "peak_rss_gb": gb(peak.peak)},
        "sizes_bytes": {sub.name: dir_size(sub) for sub in sorted(model.iterdir()) if sub.is_dir()},
        "files": file_sizes(model),
        "verify": None,
    }
    stamp["sizes_bytes"]["total"] = dir_size(model)
    log(f"built in {timings['build_s']:.1f} s, peak RSS {gb(peak.peak)} GB; sizes: "
        + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in stamp["sizes_bytes"].items()))
    if not args.no_verify:
        t = time.time()
        stamp["verify"] = verify_in_sdk(model)
        stamp["verify"]["took_s"] = round(time.time() - t, 1)
        if stamp["verify"]["failures"]:
            log("verification FAILED:", "; ".join(stamp["verify"]["failures"]))
            log(f"the incomplete build stays in {stage} for a look; a rerun deletes it")
            return 1
    # the stamp goes in last: a folder with a stamp is complete
    (model / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    model.rename(final)
    shutil.rmtree(stage)
    log(f"wrote {final} ({stamp['sizes_bytes']['total'] / 1e9:.2f} GB)")
    log(f"total wall time {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
