#!/usr/bin/env python3
"""Build the tutorial's workload at its real size (issue 16, section 1): an SDXL of the real shapes with random
weights from fixed seeds, LCM-LoRA fused through `multilora convert`, and five style LoRAs in the kohya SDXL layout
with the tutorial's catalogue. Not committed: it goes to .bench-models/sdxl-tutorial/ (git-ignored).

    bash scripts/make-fixtures.sh --tutorial-model [--out DIR] [--force] [--weight-format fp16|fp32|int8] [--tiny-vae]
    npm run bench:tutorial-model -- [same options]

The stages, each timed and with its peak resident memory (this process and its children, sampled from /proc):

  diffusers   (with loras, in a child process, whose memory goes back to the system before convert)
              the SDXL pipeline made in diffusers from its configs (below, written from the public SDXL base 1.0
              configs: UNet 2.57 B parameters, CLIP ViT-L and OpenCLIP ViT-bigG text encoders, the SDXL VAE), random
              weights from fixed seeds, rounded to fp16 and saved in fp16 (the tokenizers are a local byte-level
              vocabulary padded to CLIP's 49408 tokens, so that the embeddings have their real shapes)
  loras       a random LCM-LoRA (rank 64, kohya names, the layers LCM-LoRA SDXL targets) and the five style LoRAs
  convert     node dist/cli/main.js convert <diffusers> <model> --fuse-lora <lcm>:1 --fuse-scale diffusers
              --scheduler lcm --weight-format fp16 --no-verify; its own phases ([load], [fuse], [export]) are timed
              and measured one by one from the lines it prints
              with --tiny-vae, also --tiny-vae <a random AutoencoderTiny of TAESDXL's shapes, seed TINY_VAE_SEED>:
              the draft model, whose images only time the tiny decoder (random weights say nothing of its quality)
  (the diffusers folder is then deleted: only the IR, the LoRAs and the catalogue stay)
  verify      the tutorial's call (VERIFY below: "a cat" with X-ray at 0.8, template applied, 4 steps, guidance 0,
              seed 42) at 512x512 then 1024x1024, first in the SDK's Python (the tutorial's recipe: all five adapters
              registered, one chosen), then in multilora's API (all five registered), one process after the other:
              their load and image times, peak memories, and whether their bytes are equal. --no-verify skips it;
              --verify-only runs it on the build there and writes its result into the stamp.

Each stage records three peaks (see tree_memory): the resident memory summed over this script's process tree (pages
shared by two processes count twice: an upper bound), the largest single process (a lower bound), and the machine's
memory in use (other programs included).

What it writes, DIR being .bench-models/ unless --out says otherwise:

    DIR/sdxl-tutorial/model/            the OpenVINO IR, LCM-LoRA fused, LCM scheduler: give it to Pipeline.load
    DIR/sdxl-tutorial/loras/*.safetensors   the five style LoRAs (and lcm-lora-sdxl*.safetensors, what was fused)
    DIR/sdxl-tutorial/catalog.json      the tutorial's catalogue (names, templates, weights, negative prompt)
    DIR/sdxl-tutorial/tutorial-model.json   the stamp: recipe, every file's size, stage times and peak memories

A rerun reuses DIR/sdxl-tutorial when its stamp matches this recipe and every file it lists is there with the same
size; --force rebuilds. The build works in DIR/.sdxl-tutorial.build/ and is renamed into place once complete.

Measured on this machine (2 cores, 24 GB, no swap; another helper's benchmark ran at the same time, so the times
are indicative), the first build with the whole LCM-LoRA (.bench-models/full/, commit 81dc369):
  diffusers 81.5 s (largest process 10.9 GB); loras 5.6 s; convert: load 8.8 s (18.2 GB), fuse and save the fp32
  copy 11.2 s (15.6 GB), optimum-cli export 501 s (14.4 GB, 21.5 GB in use on the machine); verify 629 s.
  In that build this script's own process still held 5.6 GB during convert: the diffusers and loras stages now run in
  a child process. The next build (commit 3368c14, --no-verify, less load beside it) took 340 s: diffusers 45 s,
  loras 9.9 s, convert started with this process at 37 MB: load 4.8 s (14.0 GB), fuse 15.2 s (14.9 GB), export
  260 s (17.0 GB, 18.8 GB in use on the machine). Its IR and LoRAs were byte for byte those of the build before.
  Sizes: IR 6.95 GB (UNet 5.14 GB, text encoders 0.25 + 1.39 GB, VAE decoder 0.10 GB, encoder 0.07 GB); LoRAs
  57-200 MB; the diffusers copy 6.94 GB and the fused fp32 copy about 14 GB while it builds (deleted after).
  Verify: the same bytes from Python's recipe and from multilora at 512x512 and 1024x1024. Load 17.7 / 17.6 s;
  512x512 91.5 / 74.3 s; 1024x1024 265 / 156 s (Python / multilora, one run each, under that other load). The first
  UNet step at a new size is slow (31 s, then 11.6-12.1 s at 512x512). The largest process: 17.9 GB (Python) and
  18.9 GB (multilora) at 1024x1024.

LCM-LoRA and 3x3 convolutions: the real LCM-LoRA SDXL also changes the UNet's 3x3 convolutions (resnets' conv1 and
conv2, the down- and upsamplers: 38 of its 788 layers). Two files are made: lcm-lora-sdxl-full.safetensors (every
target, 393.8 MB as the real file's 394 MB), which is the one fused, and lcm-lora-sdxl.safetensors (the 750 layers
without the 3x3 convolutions, 348.3 MB). `--lcm pointwise` fuses the latter: what `multilora convert` could take
before it fused 3x3 convolutions (it refused them with ERR_ADAPTER_FORMAT, as GenAI does not apply them at generate).
"""

import argparse
import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / ".bench-models"
NAME = "sdxl-tutorial"
STAMP = "tutorial-model.json"
RECIPE_VERSION = 1

SEED = 1600                # UNet; VAE SEED + 1, text encoder SEED + 2, text encoder 2 SEED + 3
LCM_SEED = 1700
STYLE_SEED = 1800          # the style LoRA i takes STYLE_SEED + i
TINY_VAE_SEED = 1900       # --tiny-vae: the AutoencoderTiny whose decoder makes the draft model
LCM_RANK = 64
# down (A) ~ N(0, 1/in), up (B) ~ N(0, DELTA^2/rank): B*A has a std of DELTA/sqrt(in) (the layers' own random
# weights: 1/sqrt(3*in)), as scripts/make-bench-model.py makes its LoRAs.
LORA_DELTA = 0.2
VOCAB_SIZE = 49408         # CLIP's: <|startoftext|> 49406, <|endoftext|> 49407

# The tutorial's catalogue (the LoRA, its prompt template, its weight, its negative prompt) with the rank of the
# random file made for each: ranks 8 to 32, as real style LoRAs (20-200 MB each here).
STYLES = [
    {"name": "X-ray", "file": "xray", "template": "xray <subject>", "alpha": 0.8, "rank": 16},
    {"name": "Point style", "file": "point-style", "template": "<subject>", "alpha": 0.6, "rank": 8},
    {"name": "Ukiyo-e Style", "file": "ukiyo-e", "template": "an illustration of <subject> in Ukiyo-e Art style",
     "alpha": 0.8, "rank": 24, "negativePrompt": "realistic, portrait, 3d"},
    {"name": "Vector Art", "file": "vector-art", "template": "vector <subject>", "alpha": 0.8, "rank": 12},
    {"name": "Chalkboard drawing", "file": "chalkboard", "template": "A colorful chalkboard drawing of <subject>",
     "alpha": 0.45, "rank": 28},
]

# SDXL base 1.0's configs, from its public model card and config files.
UNET_CONFIG = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [320, 640, 1280],
    "layers_per_block": 2,
    "transformer_layers_per_block": [1, 2, 10],
    "attention_head_dim": [5, 10, 20],
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
}
TEXT_CONFIG = {             # CLIP ViT-L/14's text model
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "projection_dim": 768,
}
TEXT_2_CONFIG = {           # OpenCLIP ViT-bigG/14's text model, with its projection
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "projection_dim": 1280,
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
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "force_upcast": True,
}
SCHEDULER_CONFIG = {        # EulerDiscreteScheduler, as SDXL base ships it (convert --scheduler lcm replaces it)
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "interpolation_type": "linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "use_karras_sigmas": False,
}

# What the LCM-LoRA SDXL changes in the UNet (its target modules): attention, feed-forward, the transformers'
# proj_in/proj_out, the resnets' time_emb_proj, conv1, conv2 and conv_shortcut, the down- and upsamplers' conv.
LCM_TARGET = re.compile(r"\.(to_q|to_k|to_v|to_out\.0|proj_in|proj_out|ff\.net\.0\.proj|ff\.net\.2|time_emb_proj"
                        r"|conv1|conv2|conv_shortcut|downsamplers\.0\.conv|upsamplers\.0\.conv)$")
# What kohya's SDXL style LoRAs change: the UNet transformers' attention, feed-forward and proj layers; both text
# encoders' attention and MLP.
STYLE_UNET_TARGET = re.compile(r"\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2)|proj_in|proj_out)$")
STYLE_TE_TARGET = re.compile(r"\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))$")

# The check after the build (--verify-only runs it alone): the tutorial's call, X-ray chosen, on both sides.
VERIFY = {"subject": "a cat", "style": "X-ray", "steps": 4, "guidance_scale": 0.0, "seed": 42, "sizes": [512, 1024]}

VERSIONED = ["torch", "diffusers", "transformers", "optimum-intel", "openvino", "openvino-genai",
             "openvino-tokenizers", "safetensors"]


def log(*a):
    print("[make-tutorial-model]", *a, file=sys.stderr, flush=True)


def load_script(name, file):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


mf = load_script("make_fixtures", "make-fixtures.py")
mb = load_script("make_bench_model", "make-bench-model.py")
mb.STAMP = STAMP   # its stamp helpers (read_stamp, stamp_problem, file_sizes) read the stamp's name from there


def recipe(args):
    import importlib.metadata
    versions = {}
    for pkg in VERSIONED:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "recipe_version": RECIPE_VERSION,
        "seeds": {"model": SEED, "lcm": LCM_SEED, "styles": STYLE_SEED},
        "unet": UNET_CONFIG,
        "text_encoder": TEXT_CONFIG,
        "text_encoder_2": TEXT_2_CONFIG,
        "vocab_size": VOCAB_SIZE,
        "vae": VAE_CONFIG,
        "scheduler": {"_class_name": "EulerDiscreteScheduler", **SCHEDULER_CONFIG},
        "weight_format": args.weight_format,
        "lcm": {"mode": args.lcm, "rank": LCM_RANK, "alpha": LCM_RANK, "delta": LORA_DELTA,
                "targets": LCM_TARGET.pattern, "fuse": "--fuse-lora <file>:1 --fuse-scale diffusers"},
        "styles": STYLES,
        "style_targets": {"unet": STYLE_UNET_TARGET.pattern, "text_encoders": STYLE_TE_TARGET.pattern},
        "versions": versions,
        **({"tiny_vae": {"config": "diffusers AutoencoderTiny defaults (TAESDXL's shapes)", "seed": TINY_VAE_SEED}}
           if args.tiny_vae else {}),
    }


def recipe_sha(r):
    return hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()


def tree_memory():
    """(sum, largest) of the resident memory of this process and its descendants, and the machine's memory in use
    (MemTotal - MemAvailable, other programs included), in bytes. The sum counts twice the pages that two processes
    share (a file both map): an upper bound; the largest one process is a lower bound."""
    rss = mb.tree_rss_by_pid().values()
    total, largest = sum(rss), max(rss, default=0)
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0]) * 1024
    return total, largest, info["MemTotal"] - info["MemAvailable"]


class StagePeaks:
    """Per stage: its time, and the peaks of tree_memory() sampled every 0.5 s."""

    KEYS = ("peak_rss_gb", "peak_process_rss_gb", "peak_machine_used_gb")

    def __init__(self):
        self.stages = {}           # name -> {"s": seconds, "peak_rss_gb": ..., "peak_process_rss_gb": ..., ...}
        self._current = None
        self._start = 0.0
        self._peak = [0, 0, 0]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            now = tree_memory()
            with self._lock:
                self._peak = [max(a, b) for a, b in zip(self._peak, now)]
            self._stop.wait(0.5)

    def begin(self, name):
        self.end()
        n = 2
        while name in self.stages:      # a phase met again (convert's [fuse]: the file read, then the fuse)
            name = f"{name.split('#')[0]}#{n}"
            n += 1
        with self._lock:
            self._current, self._start, self._peak = name, time.time(), list(tree_memory())
        log(f"stage {name}: started")

    def end(self):
        with self._lock:
            if self._current is None:
                return
            name, took, peak = self._current, time.time() - self._start, self._peak
            self._current = None
        self.stages[name] = {"s": round(took, 1), **{k: mb.gb(v) for k, v in zip(self.KEYS, peak)}}
        log(f"stage {name}: {took:.1f} s, peak RSS {mb.gb(peak[0])} GB (largest process {mb.gb(peak[1])} GB, "
            f"machine {mb.gb(peak[2])} GB in use)")

    def close(self):
        self.end()
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------
# Stage: diffusers
# --------------------------------------------------------------------------

def write_tokenizer(dest):
    """The fixtures' byte-level CLIP vocabulary, padded with never-used tokens to CLIP's size, so that the text
    encoders' embeddings have their real shapes; <|startoftext|> and <|endoftext|> keep CLIP's ids."""
    vocab = mf.write_tokenizer_files(dest)
    tokens = sorted(vocab, key=vocab.get)
    special = tokens[-2:]
    tokens = tokens[:-2]
    tokens += [f"<|unused{i}|>" for i in range(VOCAB_SIZE - 2 - len(tokens))] + special
    assert len(tokens) == VOCAB_SIZE
    (Path(dest) / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False),
                                           encoding="utf-8")


def build_diffusers(dest, tok_dir):
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    write_tokenizer(tok_dir)
    tokenizer = mf.load_tokenizer(tok_dir, "<|endoftext|>")
    tokenizer_2 = mf.load_tokenizer(tok_dir, "!")     # SDXL's second tokenizer pads with "!"
    assert len(tokenizer) == VOCAB_SIZE, len(tokenizer)
    ids = {"vocab_size": VOCAB_SIZE, "bos_token_id": VOCAB_SIZE - 2, "eos_token_id": VOCAB_SIZE - 1}

    def made(seed, make):
        torch.manual_seed(seed)
        m = make().eval()
        mf.round_to_fp16(m)        # exact in fp16: the fp16 copy saved holds the very values drawn
        return m.to(torch.float16)

    unet = made(SEED, lambda: UNet2DConditionModel(**UNET_CONFIG))
    vae = made(SEED + 1, lambda: AutoencoderKL(**VAE_CONFIG))
    te1 = made(SEED + 2, lambda: CLIPTextModel(CLIPTextConfig(pad_token_id=VOCAB_SIZE - 1, **ids, **TEXT_CONFIG)))
    te2 = made(SEED + 3, lambda: CLIPTextModelWithProjection(CLIPTextConfig(pad_token_id=0, **ids, **TEXT_2_CONFIG)))
    counts = {c: sum(p.numel() for p in m.parameters())
              for c, m in (("unet", unet), ("text_encoder", te1), ("text_encoder_2", te2), ("vae", vae))}
    for c, n in counts.items():
        log(f"{c}: {n:,} parameters")
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet,
        scheduler=EulerDiscreteScheduler(**SCHEDULER_CONFIG), image_encoder=None, feature_extractor=None,
        force_zeros_for_empty_prompt=True, add_watermarker=False)
    pipe.save_pretrained(str(dest), safe_serialization=True)
    shapes = {
        "lcm": modules(pipe, [("unet", "lora_unet", pipe.unet, LCM_TARGET)]),
        "style": modules(pipe, [("unet", "lora_unet", pipe.unet, STYLE_UNET_TARGET),
                                ("text_encoder", "lora_te1", pipe.text_encoder, STYLE_TE_TARGET),
                                ("text_encoder_2", "lora_te2", pipe.text_encoder_2, STYLE_TE_TARGET)]),
    }
    return counts, shapes


def modules(pipe, parts):
    """[(kohya prefix, module name, weight shape)] of the Linear and Conv2d layers whose names match, in order."""
    import torch
    out = []
    for _component, kohya_prefix, model, pattern in parts:
        for name, mod in model.named_modules():
            if pattern.search(name) and isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
                out.append((kohya_prefix, name, tuple(mod.weight.shape)))
    return out


# --------------------------------------------------------------------------
# Stage: loras
# --------------------------------------------------------------------------

def random_lora(targets, rank, seed):
    """{(kohya prefix, "", module): (down, up)} in fp16. A convolution's down keeps its kernel ([r, in, kh, kw]) and
    its up is 1x1 ([out, r, 1, 1]), as kohya writes them."""
    import torch
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for prefix, module, shape in targets:
        fout, fin, kernel = shape[0], shape[1], tuple(shape[2:])
        fan_in = fin * math.prod(kernel)
        down = torch.randn((rank, fin) + kernel, generator=g) / math.sqrt(fan_in)
        up = torch.randn((fout, rank) + (1,) * len(kernel), generator=g) * (LORA_DELTA / math.sqrt(rank))
        weights[(prefix, "", module)] = (down.to(torch.float16).contiguous(), up.to(torch.float16).contiguous())
    return weights


def make_loras(loras, shapes):
    loras.mkdir(parents=True)
    info = {}
    lcm = shapes["lcm"]
    pointwise = [t for t in lcm if len(t[2]) == 2 or t[2][2:] == (1, 1)]
    full = random_lora(lcm, LCM_RANK, LCM_SEED)
    meta = mf.kohya_metadata("sdxl", rank=LCM_RANK, alpha=float(LCM_RANK))
    meta["multilora_fixture"] = "random weights of LCM-LoRA SDXL's shapes, not a trained LoRA"
    mf.save_kohya(loras / "lcm-lora-sdxl-full.safetensors", full, "sdxl", alpha=float(LCM_RANK), metadata=meta)
    keep = {(p, "", m) for p, m, _ in pointwise}
    mf.save_kohya(loras / "lcm-lora-sdxl.safetensors", {k: v for k, v in full.items() if k in keep}, "sdxl",
                  alpha=float(LCM_RANK), metadata=meta)
    del full
    info["lcm"] = {"layers": len(lcm), "pointwise_layers": len(pointwise), "rank": LCM_RANK}
    styles = shapes["style"]
    for i, s in enumerate(STYLES):
        meta = mf.kohya_metadata("sdxl", rank=s["rank"], alpha=float(s["rank"]))
        meta["multilora_fixture"] = f"random weights for the tutorial's {s['name']} LoRA, not a trained LoRA"
        mf.save_kohya(loras / f"{s['file']}.safetensors", random_lora(styles, s["rank"], STYLE_SEED + i), "sdxl",
                      alpha=float(s["rank"]), metadata=meta)
    n = {p: sum(1 for t in styles if t[0] == p) for p in ("lora_unet", "lora_te1", "lora_te2")}
    info["style_layers"] = n
    for f in sorted(loras.iterdir()):
        log(f"  {f.name}: {f.stat().st_size / 1e6:.1f} MB")
    log(f"LCM-LoRA: {len(lcm)} UNet layers ({len(pointwise)} linear or 1x1); style LoRAs: {n}")
    return info


def write_catalog(path):
    catalog = {}
    for s in STYLES:
        entry = {"path": f"loras/{s['file']}.safetensors", "alpha": s["alpha"], "template": s["template"]}
        if "negativePrompt" in s:
            entry["negativePrompt"] = s["negativePrompt"]
        catalog[s["name"]] = entry
    path.write_text(json.dumps(catalog, indent=2) + "\n")


def make_tiny_vae(dest):
    """A random AutoencoderTiny of TAESDXL's shapes (diffusers' defaults), for convert --tiny-vae: the draft model."""
    import torch
    from diffusers import AutoencoderTiny
    torch.manual_seed(TINY_VAE_SEED)
    AutoencoderTiny().save_pretrained(dest, safe_serialization=True)


def models_child(stage, conn, tiny_vae=False):
    """The diffusers and loras stages, in a process of their own: the memory of the models they make (glibc kept
    5.6 GB of it in this script's process during the export) goes back to the system when it exits."""
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    info = {}
    counts, shapes = build_diffusers(stage / "diffusers", stage / "clip-tokenizer")
    info["parameters"] = counts
    info["diffusers_bytes"] = mb.dir_size(stage / "diffusers")
    conn.send("loras")
    info["loras"] = make_loras(stage / "loras", shapes)
    write_catalog(stage / "catalog.json")
    if tiny_vae:
        make_tiny_vae(stage / "tiny-vae")
    conn.send(info)


def make_models(stage, peaks, tiny_vae=False):
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")     # no fork of a process with threads (StagePeaks') and torch
    parent, child_end = ctx.Pipe()
    peaks.begin("diffusers")
    child = ctx.Process(target=models_child, args=(stage, child_end, tiny_vae))
    child.start()
    child_end.close()
    info = None
    try:
        while info is None:
            msg = parent.recv()
            if isinstance(msg, dict):
                info = msg
            else:
                peaks.begin(msg)
    except EOFError:
        pass
    child.join()
    if info is None or child.exitcode != 0:
        raise RuntimeError(f"making the diffusers model and the LoRAs failed (exit status {child.exitcode})")
    return info


# --------------------------------------------------------------------------
# Stage: convert (multilora's own path)
# --------------------------------------------------------------------------

PHASE = re.compile(r"^\[(\w[\w-]*)\] ")


def convert(diffusers, model, lora, weight_format, peaks, tiny_vae=None):
    """node dist/cli/main.js convert …, its stderr echoed; each of its phases becomes a stage convert:<phase>."""
    cmd = ["node", str(ROOT / "dist" / "cli" / "main.js"), "convert", str(diffusers), str(model),
           "--fuse-lora", f"{lora}:1", "--fuse-scale", "diffusers", "--scheduler", "lcm",
           "--weight-format", weight_format, "--no-verify", "--json"]
    if tiny_vae:
        cmd += ["--tiny-vae", str(tiny_vae)]
    log("$", " ".join(cmd))
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tail = []

    def read_stderr():
        for line in child.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            tail.append(line)
            del tail[:-200]
            m = PHASE.match(line)
            if m:
                peaks.begin(f"convert:{m.group(1)}")

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    out = child.stdout.read()
    status = child.wait()
    reader.join()
    peaks.end()
    if status != 0:
        raise RuntimeError(f"multilora convert exited {status}: {''.join(tail[-5:]).strip()}")
    return json.loads(out)


# --------------------------------------------------------------------------
# Verify: the same images from Python's openvino_genai (the tutorial's recipe) and from multilora
# --------------------------------------------------------------------------

def recipe_run(root, out_dir):
    """The tutorial's recipe, in the SDK's Python: Text2ImagePipeline with the five adapters registered, then one
    image per size with VERIFY's style at its weight. Writes <size>.rgb and prints one JSON line per event."""
    import openvino_genai as ov_genai

    catalog = json.loads((root / "catalog.json").read_text())
    t = time.perf_counter()
    adapters = {name: ov_genai.Adapter(str(root / e["path"])) for name, e in catalog.items()}
    config = ov_genai.AdapterConfig()
    for a in adapters.values():
        config.add(a, 0.0)
    pipe = ov_genai.Text2ImagePipeline(str(root / "model"), "CPU", adapters=config)
    print(json.dumps({"load_s": round(time.perf_counter() - t, 1)}), flush=True)
    e = catalog[VERIFY["style"]]
    prompt = e["template"].replace("<subject>", VERIFY["subject"])
    for size in VERIFY["sizes"]:
        t = time.perf_counter()
        img = pipe.generate(prompt, adapters=ov_genai.AdapterConfig(adapters[VERIFY["style"]], e["alpha"]),
                            num_inference_steps=VERIFY["steps"], guidance_scale=VERIFY["guidance_scale"],
                            width=size, height=size, rng_seed=VERIFY["seed"])
        took = time.perf_counter() - t
        data = bytes(img.data)
        (Path(out_dir) / f"{size}.rgb").write_bytes(data)
        pm = pipe.get_performance_metrics()
        its = list(pm.raw_metrics.iteration_durations)
        print(json.dumps({"size": size, "generate_s": round(took, 2), "md5": hashlib.md5(data).hexdigest(),
                          "unet_step_s": [round(d / 1e6, 2) for d in pm.raw_metrics.unet_inference_durations],
                          "step_mean_s": round(sum(its) / len(its) / 1e6, 2),
                          "vae_decoder_s": round(pm.get_vae_decoder_infer_duration() / 1e3, 2)}), flush=True)


NODE_RUN = r"""
const { Pipeline } = require(process.env.ROOT + '/dist/index.js');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const [root, outDir, verifyJson] = process.argv.slice(1);
const v = JSON.parse(verifyJson);
const catalog = JSON.parse(fs.readFileSync(path.join(root, 'catalog.json'), 'utf8'));
for (const e of Object.values(catalog)) e.path = path.join(root, e.path);
(async () => {
  let t = performance.now();
  const pipeline = await Pipeline.load(path.join(root, 'model'), { adapters: catalog });
  console.log(JSON.stringify({ load_s: +((performance.now() - t) / 1000).toFixed(1) }));
  for (const size of v.sizes) {
    t = performance.now();
    const img = await pipeline.generate(v.subject, {
      adapters: { [v.style]: catalog[v.style].alpha }, applyTemplate: true, steps: v.steps,
      guidanceScale: v.guidance_scale, width: size, height: size, seed: v.seed,
    });
    const took = (performance.now() - t) / 1000;
    fs.writeFileSync(path.join(outDir, `${size}.rgb`), img.data);
    const md5 = crypto.createHash('md5').update(img.data).digest('hex');
    const m = img.metrics;
    const stepS = +(m.stepMs.mean / 1000).toFixed(2);
    console.log(JSON.stringify({ size, generate_s: +took.toFixed(2), md5, step_mean_s: stepS, vae_decoder_s: +(m.vaeDecoderMs / 1000).toFixed(2) }));
  }
  await pipeline.dispose();
})().catch((err) => { console.error(err); process.exit(1); });
"""


def run_side(name, cmd, peaks, env=None):
    """Runs one side as a stage of its own; returns its JSON lines."""
    peaks.begin(f"verify:{name}")
    log("$", " ".join("<script>" if "\n" in a else a for a in cmd))
    child = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    peaks.end()
    lines = [json.loads(x) for x in child.stdout.splitlines() if x.startswith("{")]
    for x in lines:
        log(f"  {name}: {x}")
    if child.returncode != 0:
        raise RuntimeError(f"the {name} side exited {child.returncode}")
    return lines


def verify(root, peaks):
    """Both sides, one after the other (two SDXL pipelines do not fit in 24 GB together): the load, one image per
    size, and whether their bytes are equal."""
    import tempfile
    report = {"call": VERIFY}
    with tempfile.TemporaryDirectory() as tmp:
        sides = {}
        for name in ("python", "multilora"):
            d = Path(tmp) / name
            d.mkdir()
            if name == "python":
                py = mb.sdk_python() or sys.executable
                cmd = [py, str(Path(__file__).resolve()), "--recipe-run", str(root), "--recipe-out", str(d)]
                lines = run_side(name, cmd, peaks)
            else:
                cmd = ["node", "-e", NODE_RUN, str(root), str(d), json.dumps(VERIFY)]
                lines = run_side(name, cmd, peaks, env=dict(os.environ, ROOT=str(ROOT)))
            sides[name] = {"load_s": lines[0]["load_s"], "images": lines[1:],
                           **peaks.stages[f"verify:{name}"]}
        for size in VERIFY["sizes"]:
            a = (Path(tmp) / "python" / f"{size}.rgb").read_bytes()
            b = (Path(tmp) / "multilora" / f"{size}.rgb").read_bytes()
            diff = sum(abs(x - y) for x, y in zip(a, b)) / max(1, len(a)) if a != b else 0.0
            report[f"identical_{size}"] = a == b
            report[f"mean_abs_diff_{size}"] = round(diff, 4)
            log(f"{size}x{size}: python and multilora give {'the same bytes' if a == b else f'other bytes ({diff:.4f}/255 mean)'}")
    report["sides"] = sides
    report["identical"] = all(report[f"identical_{s}"] for s in VERIFY["sizes"])
    return report


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default: {DEFAULT_OUT})")
    ap.add_argument("--weight-format", choices=["fp16", "fp32", "int8"], default="fp16",
                    help="convert's --weight-format (default fp16)")
    ap.add_argument("--lcm", choices=["full", "pointwise"], default="full",
                    help="which LCM-LoRA to fuse: all of it (default), or without its 3x3 convolutions")
    ap.add_argument("--tiny-vae", action="store_true",
                    help="the draft model: a random AutoencoderTiny's decoder in place of the VAE decoder")
    ap.add_argument("--force", action="store_true", help="rebuild even when a complete build is there")
    ap.add_argument("--keep-diffusers", action="store_true", help="keep the diffusers folder in the build")
    ap.add_argument("--no-verify", action="store_true", help="skip the check after the build")
    ap.add_argument("--verify-only", action="store_true",
                    help="only check the build there (Python's recipe and multilora, same bytes?) into its stamp")
    ap.add_argument("--recipe-run", help=argparse.SUPPRESS)   # the Python side of the check, in the SDK's Python
    ap.add_argument("--recipe-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    start = time.time()
    out = Path(args.out).resolve()
    final = out / NAME
    if args.recipe_run:
        recipe_run(Path(args.recipe_run), args.recipe_out)
        return 0
    if args.verify_only:
        st = mb.read_stamp(final)
        if st is None:
            log(f"{final} has no stamp: build it first")
            return 1
        peaks = StagePeaks()
        try:
            st["verify"] = verify(final, peaks)
        finally:
            peaks.close()
        (final / STAMP).write_text(json.dumps(st, indent=2) + "\n")
        log(f"verified {final} in {time.time() - start:.1f} s: the same bytes: {st['verify']['identical']}")
        return 0
    rec = recipe(args)
    sha = recipe_sha(rec)
    problem = "--force" if args.force else mb.stamp_problem(final, sha)
    if problem is None:
        st = mb.read_stamp(final)
        log(f"reusing {final} ({mb.dir_size(final) / 1e9:.2f} GB, built {st.get('built_at')}); --force rebuilds it")
        print(final)
        return 0
    if not (ROOT / "dist" / "cli" / "main.js").is_file():
        log("dist/ is missing: run `npm install` first")
        return 1

    log(f"building {final} ({problem}): weight format {args.weight_format}, LCM-LoRA {args.lcm}")
    stage = out / f".{NAME}.build"
    for d in (final, stage):
        if d.exists():
            log(f"removing {d}")
            shutil.rmtree(d)
    stage.mkdir(parents=True)
    peaks = StagePeaks()
    info = {}
    try:
        info.update(make_models(stage, peaks, args.tiny_vae))
        peaks.begin("convert")
        lcm = stage / "loras" / ("lcm-lora-sdxl.safetensors" if args.lcm == "pointwise" else
                                 "lcm-lora-sdxl-full.safetensors")
        result = convert(stage / "diffusers", stage / "model", lcm, args.weight_format, peaks,
                         stage / "tiny-vae" if args.tiny_vae else None)
        info["convert"] = {k: result.get(k) for k in ("pipelineClass", "family", "weightFormat", "fused", "bytes",
                                                       "warnings", "elapsedMs")}
        if not args.keep_diffusers:
            shutil.rmtree(stage / "diffusers")
        shutil.rmtree(stage / "clip-tokenizer", ignore_errors=True)
        shutil.rmtree(stage / "tiny-vae", ignore_errors=True)
        report = None if args.no_verify else verify(stage, peaks)
    finally:
        peaks.close()
    stamp = {
        "description": "The tutorial's workload with random weights (SDXL of the real shapes, LCM-LoRA fused, five "
                       "style LoRAs); built by scripts/make-tutorial-model.py. Its images mean nothing.",
        "recipe": rec,
        "recipe_sha256": sha,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build": {**info, "stages": peaks.stages, "total_s": round(time.time() - start, 1)},
        "sizes_bytes": {sub.name: mb.dir_size(sub) for sub in sorted(stage.iterdir()) if sub.is_dir()},
        "files": mb.file_sizes(stage),
        "verify": report,
    }
    (stage / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")  # last: a folder with a stamp is complete
    stage.rename(final)
    log("stages: " + ", ".join(f"{k} {v['s']} s / {v['peak_rss_gb']} GB" for k, v in peaks.stages.items()))
    log(f"wrote {final} ({mb.dir_size(final) / 1e9:.2f} GB) in {time.time() - start:.1f} s")
    print(final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
