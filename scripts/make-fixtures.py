#!/usr/bin/env python3
"""Build the test fixtures under test/fixtures/ (tiny random models, LoRA files,
torch.randn reference values, a manifest and a README), and the package's embedded
default model: the SDXL one, which ships with the package and so goes to models/
(models/sdxl-tiny/ and its LoRAs in models/sdxl-tiny-loras/), not under test/.

Run it through scripts/make-fixtures.sh, which runs it in the project's tools venv
(python/requirements.txt: torch, diffusers, transformers, optimum-intel, openvino-genai, ...).

Everything is deterministic: weights come from fixed seeds, and rerunning gives
the same files (the manifest records their sha256).

    python scripts/make-fixtures.py                 # build test/fixtures
    python scripts/make-fixtures.py --verify        # build, then check with openvino_genai
    python scripts/make-fixtures.py --verify-only   # check the fixtures already there
    python scripts/make-fixtures.py --diffusers-out DIR   # also write the diffusers
                                                    # (PyTorch, fp16) form of sd15-tiny to DIR

The diffusers (safetensors, fp16) form of both models is kept in test/fixtures/diffusers/
(unless --no-diffusers-in-fixtures): every weight is rounded to fp16 before the fp32 IR
export, so converting that copy gives the committed IR's very values.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "test" / "fixtures"
# Where the embedded default model (the sdxl family) and its LoRAs go: the package ships this folder.
MODELS_OUT = ROOT / "models"
EMBEDDED_FAMILY = "sdxl"

LORA_RANK = 4
LORA_ALPHA = 2.0          # stored as `.alpha`; alpha / rank = 0.5
LORA_STD_DOWN = 0.25      # std of lora_down (A) entries
LORA_STD_UP = 0.25        # std of lora_up (B) entries
SEEDS = {
    "sd15": {"model": 1000, "style-a": 1101, "style-b": 1102, "wrong-base": 1103, "unmatched": 1104},
    "sdxl": {"model": 2000, "style-a": 2101, "style-b": 2102, "wrong-base": 2103, "unmatched": 2104},
}
RANDN_SHAPES = [[1, 4, 8, 8], [1, 4, 32, 32]]
RANDN_SEEDS = [0, 42, 2147483647, 4294967295]
# More torch.randn cases, each (seed, shape): sizes that are not a multiple of 16 (torch draws the last 16 again;
# 72x72 pixels give 9x9 latents), fewer than 16 (torch's double-precision path), and a batch of two images.
RANDN_EXTRA = [(0, [1, 4, 9, 9]), (42, [1, 4, 9, 9]), (42, [1, 4, 5, 3]), (42, [1]), (42, [3, 5]),
               (4294967295, [1, 1, 2, 3]), (42, [2, 4, 8, 8])]
# Successive torch.randn calls on one generator, as a scheduler or image-to-image makes them: (seed, shapes).
RANDN_SEQUENCES = [(42, [[1, 4, 8, 8], [1, 4, 8, 8]]), (7, [[3], [1, 4, 4, 4], [1]])]

# What verification uses (and what the manifest tells tests to use).
VERIFY = {
    "prompt": "a photo of a cat",
    "rng_seed": 42,
    "width": 64,
    "height": 64,
    "num_inference_steps": 4,
    "guidance_scale": {"sd15": 7.5, "sdxl": 5.0},
}


def log(*a):
    print("[make-fixtures]", *a, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# --------------------------------------------------------------------------
# Tokenizer: a local byte-level CLIP BPE vocabulary (no hub).
# --------------------------------------------------------------------------

def byte_symbols():
    """The byte -> printable unicode character table of byte-level BPE (as in CLIP/GPT-2):
    printable latin-1 bytes map to themselves, the others to code points from 256 up."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


# A few merges, so that the BPE model actually merges something; order = rank.
MERGES = [
    ("t", "h"), ("i", "n"), ("a", "n"), ("e", "r"), ("o", "n"), ("r", "e"),
    ("th", "e</w>"), ("in", "g</w>"), ("a", "t</w>"), ("c", "at</w>"), ("o", "g</w>"),
    ("d", "og</w>"), ("an", "d</w>"), ("o", "f</w>"), ("p", "h"), ("ph", "o"),
    ("pho", "t"), ("phot", "o</w>"), ("s", "t"), ("l", "e</w>"), ("y", "le</w>"),
    ("st", "yle</w>"),
]


def write_tokenizer_files(dest):
    """Write vocab.json + merges.txt of a byte-level CLIP tokenizer; return the vocab."""
    table = byte_symbols()
    symbols = [table[b] for b in range(256)]
    tokens = symbols + [s + "</w>" for s in symbols]
    for a, b in MERGES:
        merged = a + b
        assert a in tokens and b in tokens, (a, b)
        assert merged not in tokens, merged
        tokens.append(merged)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (dest / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES), encoding="utf-8")
    return vocab


def load_tokenizer(src, pad_token):
    from transformers import CLIPTokenizer
    tok = CLIPTokenizer.from_pretrained(str(src), model_max_length=77, pad_token=pad_token)
    return tok


# --------------------------------------------------------------------------
# Tiny random pipelines
# --------------------------------------------------------------------------

def round_to_fp16(module):
    """Make every float weight exactly representable in fp16, so that the fp16
    diffusers copy and the fp32 OpenVINO IR hold the same values."""
    import torch
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dtype.is_floating_point:
                t.copy_(t.to(torch.float16).to(t.dtype))


def text_config(vocab_size, projection_dim=32):
    from transformers import CLIPTextConfig
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=projection_dim,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )


def tiny_vae(scaling_factor, force_upcast):
    from diffusers import AutoencoderKL
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
    )


def build_sd15(tok_dir, seed):
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = load_tokenizer(tok_dir, "<|endoftext|>")
    vocab_size = len(tokenizer)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        # as SD 1.5: attention in the higher-resolution blocks, none in the lowest
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    torch.manual_seed(seed + 1)
    vae = tiny_vae(0.18215, False)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(text_config(vocab_size))
    scheduler = PNDMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
        timestep_spacing="leading",
    )
    for m in (unet, vae, text_encoder):
        m.eval()
        round_to_fp16(m)
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, image_encoder=None,
        requires_safety_checker=False,
    )


def build_sdxl(tok_dir, seed):
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = load_tokenizer(tok_dir, "<|endoftext|>")
    tokenizer_2 = load_tokenizer(tok_dir, "!")   # SDXL's second tokenizer pads with "!"
    vocab_size = len(tokenizer)

    te1_hidden, te2_proj, time_dim = 32, 32, 8
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        # as SDXL: no attention in the highest-resolution block
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        transformer_layers_per_block=(1, 2),
        norm_num_groups=8,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        # the hidden states of both text encoders, concatenated: 32 + 32
        cross_attention_dim=te1_hidden + 32,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        # 6 time ids (original size, crop top-left, target size) x 8 + pooled text embeds (32)
        projection_class_embeddings_input_dim=6 * time_dim + te2_proj,
    )
    torch.manual_seed(seed + 1)
    vae = tiny_vae(0.13025, True)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(text_config(vocab_size))
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(text_config(vocab_size, projection_dim=te2_proj))
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        prediction_type="epsilon",
        steps_offset=1,
        timestep_spacing="leading",
        use_karras_sigmas=False,
    )
    for m in (unet, vae, text_encoder, text_encoder_2):
        m.eval()
        round_to_fp16(m)
    return StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler,
        image_encoder=None, feature_extractor=None,
        force_zeros_for_empty_prompt=True, add_watermarker=False,
    )


def export_openvino(diffusers_dir, out_dir, weight_format="fp32"):
    """optimum-cli export openvino --task text-to-image (tokenizers included); the fixtures use fp32
    weights, scripts/make-bench-model.py may ask for fp16."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    cli = Path(sys.executable).parent / "optimum-cli"
    cmd = [str(cli), "export", "openvino", "--model", str(diffusers_dir), "--task", "text-to-image",
           "--weight-format", weight_format, str(out_dir)]
    log("$", " ".join(cmd))
    subprocess.run(cmd, check=True)


# --------------------------------------------------------------------------
# LoRA files
# --------------------------------------------------------------------------

UNET_TARGET = re.compile(r"\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$")
TE_TARGET = re.compile(r"\.self_attn\.(q_proj|k_proj|v_proj|out_proj)$")


def lora_targets(pipe, family):
    """[(kohya prefix, peft prefix, module name, in_features, out_features)] in module order."""
    parts = [("unet", "lora_unet", pipe.unet, UNET_TARGET)]
    if family == "sd15":
        parts.append(("text_encoder", "lora_te", pipe.text_encoder, TE_TARGET))
    else:
        parts.append(("text_encoder", "lora_te1", pipe.text_encoder, TE_TARGET))
        parts.append(("text_encoder_2", "lora_te2", pipe.text_encoder_2, TE_TARGET))
    return linear_modules(parts)


def linear_modules(parts):
    """parts: [(peft prefix, kohya prefix, torch module, name pattern)] ->
    [(kohya prefix, peft prefix, module name, in_features, out_features)] of the Linear layers whose names match,
    in module order."""
    import torch
    out = []
    for peft_prefix, kohya_prefix, model, pattern in parts:
        for name, mod in model.named_modules():
            if pattern.search(name):
                assert isinstance(mod, torch.nn.Linear), name
                out.append((kohya_prefix, peft_prefix, name, mod.in_features, mod.out_features))
    return out


def kohya_name(kohya_prefix, module):
    return f"{kohya_prefix}_{module.replace('.', '_')}"


def random_lora(targets, seed, scale_in=1, scale_out=1):
    """{(peft_prefix, module): (down [r, in], up [out, r])}, fp32, from one seeded generator."""
    import torch
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for kohya_prefix, peft_prefix, module, fin, fout in targets:
        down = torch.randn((LORA_RANK, fin * scale_in), generator=g, dtype=torch.float32) * LORA_STD_DOWN
        up = torch.randn((fout * scale_out, LORA_RANK), generator=g, dtype=torch.float32) * LORA_STD_UP
        weights[(kohya_prefix, peft_prefix, module)] = (down.contiguous(), up.contiguous())
    return weights


def canonical_safetensors(path):
    """Rewrite a safetensors file with its header in a fixed order. The safetensors library writes
    the __metadata__ entries in hash-map order, which changes from run to run; the tensors and their
    bytes are kept as they are."""
    import struct
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", None)
    ordered = {}
    if meta:
        ordered["__metadata__"] = {k: meta[k] for k in sorted(meta)}
    for k in sorted(header, key=lambda k: (header[k]["data_offsets"][0], k)):
        ordered[k] = header[k]
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + data)


def kohya_metadata(family, rank=LORA_RANK, alpha=LORA_ALPHA):
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(alpha),
        "ss_base_model_version": "sd_v1" if family == "sd15" else "sdxl_base_v1-0",
        "multilora_fixture": "random test weights, not a trained LoRA",
    }


def save_kohya(path, weights, family, alpha=LORA_ALPHA, metadata=None):
    """Write {(kohya prefix, peft prefix, module): (down, up)} with kohya keys, an `.alpha` per module
    (float32) and kohya's header metadata (the fixtures' own unless `metadata` is given)."""
    import torch
    from safetensors.torch import save_file
    sd = {}
    for (kohya_prefix, _peft_prefix, module), (down, up) in weights.items():
        k = kohya_name(kohya_prefix, module)
        sd[f"{k}.lora_down.weight"] = down
        sd[f"{k}.lora_up.weight"] = up
        sd[f"{k}.alpha"] = torch.tensor(alpha, dtype=torch.float32)
    save_file(sd, str(path), metadata=kohya_metadata(family) if metadata is None else metadata)
    canonical_safetensors(path)
    return sorted(sd)


def save_peft(path, weights, family):
    """Write the PEFT/diffusers form with diffusers' own save_lora_weights."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    layers = {}
    for (_kohya_prefix, peft_prefix, module), (down, up) in weights.items():
        d = layers.setdefault(peft_prefix, {})
        d[f"{module}.lora_A.weight"] = down.clone()
        d[f"{module}.lora_B.weight"] = up.clone()

    def meta(targets):
        # what a peft LoraConfig holds; diffusers writes it into the safetensors header
        return {"r": LORA_RANK, "lora_alpha": LORA_ALPHA, "target_modules": sorted(targets)}

    unet_meta = meta(["to_q", "to_k", "to_v", "to_out.0"])
    te_meta = meta(["q_proj", "k_proj", "v_proj", "out_proj"])
    with tempfile.TemporaryDirectory() as tmp:
        if family == "sd15":
            StableDiffusionPipeline.save_lora_weights(
                tmp, unet_lora_layers=layers["unet"], text_encoder_lora_layers=layers["text_encoder"],
                unet_lora_adapter_metadata=unet_meta, text_encoder_lora_adapter_metadata=te_meta,
                weight_name=path.name)
        else:
            StableDiffusionXLPipeline.save_lora_weights(
                tmp, unet_lora_layers=layers["unet"], text_encoder_lora_layers=layers["text_encoder"],
                text_encoder_2_lora_layers=layers["text_encoder_2"],
                unet_lora_adapter_metadata=unet_meta, text_encoder_lora_adapter_metadata=te_meta,
                text_encoder_2_lora_adapter_metadata=te_meta,
                weight_name=path.name)
        shutil.copyfile(Path(tmp) / path.name, path)
    canonical_safetensors(path)
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return sorted(f.keys())


def save_unmatched(path, family, seed):
    import torch
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(seed)
    te_prefixes = ["lora_te"] if family == "sd15" else ["lora_te1", "lora_te2"]
    names = [f"lora_unet_nonexistent_block_{i}_attn1_{p}" for i in range(2) for p in ("to_q", "to_k", "to_v", "to_out_0")]
    names += [f"{t}_text_model_nonexistent_layers_0_self_attn_{p}" for t in te_prefixes
              for p in ("q_proj", "k_proj", "v_proj", "out_proj")]
    sd = {}
    for n in names:
        sd[f"{n}.lora_down.weight"] = torch.randn((LORA_RANK, 32), generator=g) * LORA_STD_DOWN
        sd[f"{n}.lora_up.weight"] = torch.randn((32, LORA_RANK), generator=g) * LORA_STD_UP
        sd[f"{n}.alpha"] = torch.tensor(LORA_ALPHA, dtype=torch.float32)
    save_file(sd, str(path), metadata=kohya_metadata(family))
    canonical_safetensors(path)
    return sorted(sd)


def peft_to_kohya(src, dst):
    """Rename a PEFT/diffusers LoRA file to kohya keys (used by the verification)."""
    from safetensors.numpy import load_file, save_file
    prefixes = {"unet.": "lora_unet_", "text_encoder.": "lora_te_", "text_encoder_2.": "lora_te2_"}
    sd = load_file(str(src))
    has_te2 = any(k.startswith("text_encoder_2.") for k in sd)
    if has_te2:
        prefixes["text_encoder."] = "lora_te1_"
    out = {}
    for k, v in sd.items():
        m = re.match(r"^(unet|text_encoder|text_encoder_2)\.(.+)\.lora_([AB])\.weight$", k)
        assert m, k
        kp = prefixes[m.group(1) + "."] + m.group(2).replace(".", "_")
        out[f"{kp}.lora_{'down' if m.group(3) == 'A' else 'up'}.weight"] = v
    save_file(out, str(dst))
    return out


# --------------------------------------------------------------------------
# torch.randn reference values
# --------------------------------------------------------------------------

def torch_randn_reference():
    import torch

    def f32le(t):
        return t.numpy().astype("<f4").ravel()

    cases = []
    for seed, shape in [(seed, shape) for shape in RANDN_SHAPES for seed in RANDN_SEEDS] + RANDN_EXTRA:
        a = f32le(torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32))
        cases.append({
            "seed": seed,
            "shape": shape,
            "first8": [float(x) for x in a[:8]],
            "data_base64_f32le": base64.b64encode(a.tobytes()).decode("ascii"),
        })
    sequences = []
    for seed, shapes in RANDN_SEQUENCES:
        g = torch.Generator().manual_seed(seed)
        data = [f32le(torch.randn(shape, generator=g, dtype=torch.float32)) for shape in shapes]
        sequences.append({
            "seed": seed,
            "shapes": shapes,
            "data_base64_f32le": [base64.b64encode(a.tobytes()).decode("ascii") for a in data],
        })
    return {
        "description": "torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32) "
                       "on the CPU; data is the full array, row-major, as base64 of little-endian float32. "
                       "sequences: successive torch.randn calls on one generator, one array each.",
        "torch_version": torch.__version__,
        # torch registers its normal kernel for AVX2 but not AVX-512: both kinds of CPU run the AVX2 one.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cases": cases,
        "sequences": sequences,
    }


def write_torch_randn_only(out):
    """Rewrite torch-randn.json alone, and its entry in manifest.json (the models stay as they are)."""
    path = out / "torch-randn.json"
    path.write_text(json.dumps(torch_randn_reference(), indent=1) + "\n")
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["torch-randn.json"] = {"bytes": path.stat().st_size, "sha256": sha256(path)}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"wrote {path} ({path.stat().st_size} bytes) and its manifest entry")


# --------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------

MODEL_NAMES = {"sd15": "sd15-tiny", "sdxl": "sdxl-tiny"}


def model_dir(out, family):
    """The IR of a family's model: the embedded default model in models/, the other in the fixtures folder."""
    if family == EMBEDDED_FAMILY:
        return MODELS_OUT / MODEL_NAMES[family]
    return out / "models" / MODEL_NAMES[family]


def lora_dir(out, family):
    """The LoRA files of a family: beside the embedded default model for it, else in the fixtures folder."""
    if family == EMBEDDED_FAMILY:
        return MODELS_OUT / f"{MODEL_NAMES[family]}-loras"
    return out / "loras" / family


def embedded_dirs(out):
    return [model_dir(out, EMBEDDED_FAMILY), lora_dir(out, EMBEDDED_FAMILY)]

# What `--verify` found OpenVINO GenAI 2026.3 to do with these files (checked each run).
GENAI_NOTES = [
    "Adapters must be registered when the pipeline is built; each generate passes its own AdapterConfig "
    "(an empty one for none).",
    "A pipeline built with adapters registered gives a slightly different no-LoRA image than one built "
    "without any (about 0.5/255 mean, at most 4).",
    "BUG: a LoRA'd layer whose rank goes to 0 between calls (an AdapterConfig that is empty or holds only "
    "adapters that match no layer, such as style-a-peft or unmatched) and back to the same rank gives an "
    "all-black image (all zeros) until its rank changes again; and when a call lists the same adapters as "
    "the one before, only a change of the last adapter's alpha is applied. docs/GENAI-BUGS.md has the "
    "details and the workaround (every registered adapter in every call, unused ones at alpha 0).",
    "PEFT/diffusers keys (unet.<module>.lora_A.weight) are ignored with a warning 'There unused LoRA tensors'.",
    "A LoRA with the right names but other shapes (wrong-base) makes generate throw 'ParameterMismatch: Can "
    "not clone with new dims'; the same pipeline still generates with an empty AdapterConfig.",
    "The .alpha tensors are ignored: the alpha passed to GenAI is the whole scale of B*A.",
]


def build(out, diffusers_out, keep_diffusers_in_fixtures):
    import diffusers
    import torch
    import transformers

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    out.mkdir(parents=True, exist_ok=True)
    for d in [out / "models", out / "loras", out / "diffusers", *embedded_dirs(out)]:
        if d.exists():
            shutil.rmtree(d)
    manifest = {
        "description": "Test fixtures of multilora: tiny random-weight models and LoRA files. "
                       "Generated by scripts/make-fixtures.py (run: bash scripts/make-fixtures.sh). "
                       "The images they give mean nothing; only their differences do.",
        "generated_with": {
            "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
        "verify_settings": VERIFY,
        "genai_2026_3_notes": GENAI_NOTES,
        "models": {},
        "loras": {},
    }
    try:
        import openvino
        import openvino_genai
        import optimum.intel.version as oiv
        manifest["generated_with"].update({
            "openvino": openvino.__version__, "openvino_genai": openvino_genai.__version__,
            "optimum_intel": oiv.__version__})
    except Exception:  # noqa: BLE001
        pass

    with tempfile.TemporaryDirectory(prefix="multilora-fixtures-") as tmp:
        tmp = Path(tmp)
        tok_dir = tmp / "clip-tokenizer"
        write_tokenizer_files(tok_dir)
        for family in ("sd15", "sdxl"):
            name = MODEL_NAMES[family]
            log(f"building {name}")
            pipe = (build_sd15 if family == "sd15" else build_sdxl)(tok_dir, SEEDS[family]["model"])
            ddir = tmp / name
            pipe.save_pretrained(str(ddir), safe_serialization=True)
            export_openvino(ddir, model_dir(out, family))
            dests = []
            if keep_diffusers_in_fixtures:
                dests.append(out / "diffusers" / name)
            if diffusers_out and family == "sd15":
                dests.append(Path(diffusers_out))
            if dests:
                # exact: every weight was rounded to fp16 when the model was built (round_to_fp16)
                pipe16 = pipe.to(torch.float16)
                for d in dests:
                    if d.exists():
                        shutil.rmtree(d)
                    pipe16.save_pretrained(str(d), safe_serialization=True)
                    log(f"wrote the diffusers form (fp16) of {name} to {d}")
                pipe = pipe.to(torch.float32)
            scrub_build_paths(out, tmp)
            manifest["models"][name] = model_entry(family, name, out, pipe)
            manifest["loras"].update(make_loras(family, pipe, out))
            if family == "sdxl":
                manifest["loras"].update(make_layouts(pipe, out))
            del pipe

    (out / "torch-randn.json").write_text(json.dumps(torch_randn_reference(), indent=1) + "\n")
    if keep_diffusers_in_fixtures:
        manifest["diffusers"] = {
            name: {
                "family": family,
                "path": rel(out / "diffusers" / name, out), "format": "diffusers (safetensors, fp16)",
                "pipeline": manifest["models"][name]["pipeline"],
                "same_weights_as": rel(model_dir(out, family), out),
                "note": "The fp32 IR was made from these very weights: every weight was rounded to fp16 "
                        "before the export, so converting this copy gives the same values.",
            } for family, name in MODEL_NAMES.items()}
    manifest["files"] = file_list(out, out, skip={"manifest.json", "README.md"})
    for d in embedded_dirs(out):
        manifest["files"].update(file_list(d, out))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_readme(out, manifest, keep_diffusers_in_fixtures)
    log(f"fixtures written to {out} ({dir_size(out) / 1e6:.2f} MB)")


def scrub_build_paths(out, tmp, name="multilora-fixtures"):
    """The configs record the (random) build folder as _name_or_path: make that a fixed name."""
    for p in sorted(q for d in [out, *embedded_dirs(out)] if d.exists() for q in d.rglob("*.json")):
        text = p.read_text(encoding="utf-8")
        if str(tmp) in text:
            p.write_text(text.replace(str(tmp), name), encoding="utf-8")


def rel(p, base):
    """p relative to base, as the manifest writes paths (the embedded model's start with ../../models/)."""
    return Path(os.path.relpath(p, base)).as_posix()


def file_list(d, base, skip=()):
    return {rel(p, base): {"bytes": p.stat().st_size, "sha256": sha256(p)}
            for p in sorted(Path(d).rglob("*")) if p.is_file() and rel(p, base) not in skip}


def model_entry(family, name, out, pipe):
    mdir = model_dir(out, family)
    sched = json.loads((mdir / "scheduler" / "scheduler_config.json").read_text())
    unet_cfg = json.loads((mdir / "unet" / "config.json").read_text())
    vae_cfg = json.loads((mdir / "vae_decoder" / "config.json").read_text())
    vae_scale = 2 ** (len(vae_cfg["block_out_channels"]) - 1)
    entry = {
        "family": family,
        "pipeline": type(pipe).__name__,
        "path": rel(mdir, out),
        "format": "OpenVINO IR (optimum-cli export openvino --task text-to-image --weight-format fp32), "
                  "tokenizers converted (openvino-tokenizers)",
        "seed": SEEDS[family]["model"],
        "scheduler": sched["_class_name"],
        "vae_scale_factor": vae_scale,
        "unet_sample_size": unet_cfg["sample_size"],
        "default_width": unet_cfg["sample_size"] * vae_scale,
        "default_height": unet_cfg["sample_size"] * vae_scale,
        "cross_attention_dim": unet_cfg["cross_attention_dim"],
        "text_encoders": ["text_encoder"] + (["text_encoder_2"] if family == "sdxl" else []),
        "text_encoder_hidden_size": pipe.text_encoder.config.hidden_size,
        "text_encoder_layers": pipe.text_encoder.config.num_hidden_layers,
        "tokenizer_vocab_size": len(pipe.tokenizer),
        "tokenizer_max_length": pipe.tokenizer.model_max_length,
        "unet_block_out_channels": list(unet_cfg["block_out_channels"]),
        "unet_transformer_blocks": sorted({m.group(1) for n, _ in pipe.unet.named_modules()
                                           for m in [re.match(r"^(.*\.transformer_blocks\.\d+)$", n)] if m}),
        "embedded_default": family == "sdxl",
    }
    if family == "sdxl":
        entry["addition_time_embed_dim"] = unet_cfg["addition_time_embed_dim"]
        entry["projection_class_embeddings_input_dim"] = unet_cfg["projection_class_embeddings_input_dim"]
    try:
        import openvino_genai
        pipe_ov = openvino_genai.Text2ImagePipeline(str(mdir), "CPU")
        cfg = pipe_ov.get_generation_config()
        entry["genai_generation_config"] = {
            "width": int(cfg.width), "height": int(cfg.height),
            "num_inference_steps": int(cfg.num_inference_steps),
            "guidance_scale": round(float(cfg.guidance_scale), 6),
            "num_images_per_prompt": int(cfg.num_images_per_prompt),
            "max_sequence_length": int(cfg.max_sequence_length),
            "strength": round(float(cfg.strength), 6),
        }
        del pipe_ov
    except Exception as e:  # noqa: BLE001
        entry["genai_generation_config_error"] = str(e)
    return entry


def example_keys(keys):
    """A few telling keys: the first UNet self-attention q, an out projection, the first text-encoder key."""
    picks = []
    for pattern in (r"attn1[._]to_q", r"to_out", r"(lora_te|text_encoder)", r"(lora_te2|text_encoder_2)"):
        for k in keys:
            if re.search(pattern, k) and k not in picks:
                stem = re.sub(r"\.(lora_(down|up|A|B)\.weight|alpha)$", "", k)
                picks += [x for x in keys if x.startswith(stem + ".") and x not in picks]
                break
    return picks


def make_loras(family, pipe, out):
    ldir = lora_dir(out, family)
    ldir.mkdir(parents=True, exist_ok=True)
    seeds = SEEDS[family]
    targets = lora_targets(pipe, family)
    n_unet = sum(1 for t in targets if t[1] == "unet")
    n_te = len(targets) - n_unet
    target_desc = {
        "unet": "to_q, to_k, to_v, to_out.0 of attn1 and attn2 in every transformer block",
        "text_encoders": "q_proj, k_proj, v_proj, out_proj of every self-attention layer",
        "modules": n_unet + n_te, "unet_modules": n_unet, "text_encoder_modules": n_te,
    }
    te_prefix = "lora_te_" if family == "sd15" else "lora_te1_ / lora_te2_"
    kohya_fmt = f"kohya (lora_unet_ / {te_prefix} + diffusers module path with '_'; .lora_down/.lora_up/.alpha)"
    entries = {}

    def entry(fname, **kw):
        p = ldir / fname
        e = {"family": family, "path": rel(p, out), "bytes": p.stat().st_size, "sha256": sha256(p)}
        e.update(kw)
        entries[f"{family}/{fname[:-len('.safetensors')]}"] = e

    weights = {}
    for style in ("style-a", "style-b"):
        weights[style] = random_lora(targets, seeds[style])
        keys = save_kohya(ldir / f"{style}.safetensors", weights[style], family)
        entry(f"{style}.safetensors", format=kohya_fmt, rank=LORA_RANK, alpha=LORA_ALPHA,
              alpha_over_rank=LORA_ALPHA / LORA_RANK, dtype="float32", seed=seeds[style],
              targets=target_desc, tensors=len(keys), example_keys=example_keys(keys),
              shares_weights_with=(["peft-style-a"] if style == "style-a" else []),
              expect="changes the image at alpha 1.0 and 0.5; differs from the other style; "
                     "GenAI ignores .alpha (the alpha passed is the whole scale)")
    keys = save_peft(ldir / "style-a-peft.safetensors", weights["style-a"], family)
    entry("style-a-peft.safetensors",
          format="peft/diffusers (what diffusers' save_lora_weights writes: <component>.<module>.lora_A.weight / "
                 ".lora_B.weight; r and lora_alpha in the header metadata 'lora_adapter_metadata', no alpha tensors)",
          rank=LORA_RANK, alpha=LORA_ALPHA, dtype="float32", targets=target_desc, tensors=len(keys),
          example_keys=example_keys(keys),
          shares_weights_with=[f"{family}/style-a"],
          same_as="style-a: lora_A == lora_down, lora_B == lora_up, bit for bit",
          expect="OpenVINO GenAI 2026.3 silently ignores it (warning 'There unused LoRA tensors'): the image "
                 "equals the one without LoRA; renamed to kohya keys it gives style-a's image. Selected alone "
                 "after a LoRA ran, it breaks the pipeline (see genai_2026_3_notes)")
    wrong = random_lora(targets, seeds["wrong-base"], scale_in=2, scale_out=2)
    keys = save_kohya(ldir / "wrong-base.safetensors", wrong, family)
    entry("wrong-base.safetensors", format=kohya_fmt, rank=LORA_RANK, alpha=LORA_ALPHA, dtype="float32",
          targets=target_desc, tensors=len(keys), example_keys=example_keys(keys),
          shape_note="same keys as style-a, in_features and out_features doubled (a LoRA made for a bigger base)",
          expect="generate raises ('ParameterMismatch: Can not clone with new dims' in GenAI 2026.3)")
    keys = save_unmatched(ldir / "unmatched.safetensors", family, seeds["unmatched"])
    entry("unmatched.safetensors", format="kohya", rank=LORA_RANK, alpha=LORA_ALPHA, dtype="float32",
          targets="layers that exist in no model (lora_unet_nonexistent_block_..., text_model_nonexistent_...)",
          tensors=len(keys), example_keys=example_keys(keys),
          expect="no effect: the image equals the one without LoRA (GenAI warns of unused tensors). Selected "
                 "alone after a LoRA ran, it breaks the pipeline (see genai_2026_3_notes)")
    if family == "sd15":
        make_lycoris(family, pipe, ldir, entry)
        make_dora(family, pipe, ldir, entry)
    return entries


# LyCORIS fixtures (sd15 only): LoHa and LoKr made by peft's own modules, written with the names and shapes that
# LyCORIS's kohya-format files have (`lora_unet_<module>.hada_w1_a`, `.lokr_w1`, `.alpha`, ...), each beside the
# same change of the weights as a plain full-rank LoRA (A = identity, B = peft's get_delta_weight, no alpha): the
# oracle that multilora's exact rewrite is checked against, layer by layer and in images.
LYCORIS = {
    # name: (peft config, seed, std of every factor). alpha / r = 0.5 for both, so a missing scale shows.
    "loha": ("LoHaConfig", dict(r=4, alpha=2.0), 1201, 0.42),
    # decompose_both: 64-wide layers get w1 = w1_a @ w1_b, 32-wide ones a full w1; w2 is always w2_a @ w2_b.
    "lokr": ("LoKrConfig", dict(r=2, alpha=1.0, decompose_both=True), 1202, 0.5),
}
LYCORIS_TARGETS = [
    ("unet", "lora_unet", r".*\.attn[12]\.(to_q|to_k|to_v|to_out\.0)"),
    ("text_encoder", "lora_te", r".*\.self_attn\.(q_proj|k_proj|v_proj|out_proj)"),
]


def lycoris_lora(pipe, algo):
    """({kohya tensor name: tensor} in LyCORIS's layout, {kohya tensor name: tensor} of the full-rank twin)."""
    import copy
    import peft
    import torch
    config_name, kwargs, seed, std = LYCORIS[algo]
    g = torch.Generator().manual_seed(seed)
    factors, full = {}, {}
    for part, kohya_prefix, pattern in LYCORIS_TARGETS:
        model = copy.deepcopy(getattr(pipe, part)).to(torch.float32)
        config = getattr(peft, config_name)(target_modules=pattern, init_weights=False, **kwargs)
        model = peft.inject_adapter_in_model(config, model)
        for name, mod in model.named_modules():
            if not isinstance(mod, peft.tuners.lycoris_utils.LycorisLayer):
                continue
            stem = kohya_name(kohya_prefix, name)
            with torch.no_grad():
                for role in mod.adapter_layer_names:
                    if "default" in getattr(mod, role):
                        param = getattr(mod, role)["default"]
                        param.copy_(torch.randn(param.shape, generator=g, dtype=torch.float32) * std)
                        factors[f"{stem}.{role}"] = param.detach().clone().contiguous()
                factors[f"{stem}.alpha"] = torch.tensor(kwargs["alpha"], dtype=torch.float32)
                delta = mod.get_delta_weight("default").detach().to(torch.float32).contiguous()
            full[f"{stem}.lora_down.weight"] = torch.eye(delta.shape[1], dtype=torch.float32)
            full[f"{stem}.lora_up.weight"] = delta
    return factors, full


# DoRA fixtures (sd15 only): one DoRA made with peft (LoraConfig(use_dora=True)), seeded A, B and magnitudes, written
# in PEFT's names (`lora_magnitude_vector`, norms per output row), in kohya/LyCORIS names (`dora_scale` [out, 1]), and
# beside a LyCORIS DoRA whose norms run per input column (`dora_scale` [1, in], wd_on_out off); each with its fused
# change of the weights as a LyCORIS "full" file: peft's merge_and_unload for the first two, LyCORIS's formula for
# the third.
DORA = {"r": 4, "alpha": 2.0, "seed": 1301, "std": 0.25, "magnitude_std": 0.3}


def dora_weights(pipe):
    """{(part, kohya prefix, module): (W, A, B, m_out, m_in, fused)}: `fused` is peft's merge (norms per output)."""
    import copy
    import peft
    import torch
    g = torch.Generator().manual_seed(DORA["seed"])
    scale = DORA["alpha"] / DORA["r"]
    out = {}
    for part, kohya_prefix, pattern in LYCORIS_TARGETS:
        base = copy.deepcopy(getattr(pipe, part)).to(torch.float32)
        config = peft.LoraConfig(r=DORA["r"], lora_alpha=DORA["alpha"], use_dora=True, target_modules=pattern)
        model = peft.inject_adapter_in_model(config, base)
        layers = {}
        with torch.no_grad():
            for name, mod in model.named_modules():
                if not isinstance(mod, peft.tuners.lora.LoraLayer) or "default" not in mod.lora_A:
                    continue
                a, b = mod.lora_A["default"].weight, mod.lora_B["default"].weight
                a.copy_(torch.randn(a.shape, generator=g) * DORA["std"])
                b.copy_(torch.randn(b.shape, generator=g) * DORA["std"])
                w = mod.get_base_layer().weight.detach().clone()
                changed = w + scale * (b @ a)
                jitter = 1 + DORA["magnitude_std"] * torch.randn(w.shape[0], generator=g)
                m_out = changed.norm(dim=1) * jitter
                mod.lora_magnitude_vector["default"].weight.copy_(m_out)
                m_in = changed.norm(dim=0) * (1 + DORA["magnitude_std"] * torch.randn(w.shape[1], generator=g))
                layers[name] = (w, a.detach().clone(), b.detach().clone(), m_out.clone(), m_in)
            for name in layers:
                model.get_submodule(name).merge()  # peft's own merge: the base layer's weight becomes the fused one
        for name, (w, a, b, m_out, m_in) in layers.items():
            fused = model.get_submodule(name).get_base_layer().weight.detach().clone()
            out[(part, kohya_prefix, name)] = (w, a, b, m_out, m_in, fused)
    return out


def make_dora(family, pipe, ldir, entry):
    import torch
    from safetensors.torch import save_file
    layers = dora_weights(pipe)
    scale = DORA["alpha"] / DORA["r"]
    peft_sd, kohya, kohya_in, full, full_in = {}, {}, {}, {}, {}
    eps = torch.finfo(torch.float32).eps
    for (part, kohya_prefix, name), (w, a, b, m_out, m_in, fused) in sorted(layers.items()):
        stem = kohya_name(kohya_prefix, name)
        peft_sd[f"{part}.{name}.lora_A.weight"] = a.contiguous()
        peft_sd[f"{part}.{name}.lora_B.weight"] = b.contiguous()
        peft_sd[f"{part}.{name}.lora_magnitude_vector"] = m_out.contiguous()
        for sd, magnitude in ((kohya, m_out.reshape(-1, 1)), (kohya_in, m_in.reshape(1, -1))):
            sd[f"{stem}.lora_down.weight"] = a.contiguous()
            sd[f"{stem}.lora_up.weight"] = b.contiguous()
            sd[f"{stem}.alpha"] = torch.tensor(DORA["alpha"], dtype=torch.float32)
            sd[f"{stem}.dora_scale"] = magnitude.contiguous()
        full[f"{stem}.diff"] = (fused - w).contiguous()
        # LyCORIS's apply_weight_decompose with wd_on_out off, at multiplier 1: norms per input column
        changed = w + scale * (b @ a)
        full_in[f"{stem}.diff"] = (changed * (m_in.reshape(1, -1) / (changed.norm(dim=0, keepdim=True) + eps))
                                   - w).contiguous()
    meta = json.dumps({"r": DORA["r"], "lora_alpha": DORA["alpha"], "use_dora": True})
    lyc = {"ss_network_module": "lycoris.kohya", "ss_network_dim": str(DORA["r"]),
           "ss_network_alpha": str(DORA["alpha"]), "multilora_fixture": "random test weights, not a trained LoRA"}
    files = [
        ("dora-peft", peft_sd, {"lora_adapter_metadata": meta}),
        ("dora", kohya, {**lyc, "ss_network_args": json.dumps({"algo": "lora", "dora_wd": True})}),
        ("dora-full", full, {"multilora_fixture": "peft's merge of dora-peft, as a LyCORIS full file (oracle)"}),
        ("dora-in", kohya_in, {**lyc, "ss_network_args": json.dumps({"algo": "lora", "dora_wd": True,
                                                                     "wd_on_output": False})}),
        ("dora-in-full", full_in, {"multilora_fixture": "LyCORIS's merge of dora-in, as a full file (oracle)"}),
    ]
    for stem, tensors, metadata in files:
        save_file(tensors, str(ldir / f"{stem}.safetensors"), metadata=metadata)
        canonical_safetensors(ldir / f"{stem}.safetensors")
    common = dict(layers=len(layers), dtype="float32", seed=DORA["seed"], rank=DORA["r"], alpha=DORA["alpha"])
    entry("dora-peft.safetensors", format="PEFT DoRA (unet.<module>.lora_A.weight, .lora_B.weight, "
          ".lora_magnitude_vector [out]; r, lora_alpha, use_dora in lora_adapter_metadata)",
          oracle=f"{family}/dora-full", expect="fused, peft's merged weights", **common)
    entry("dora.safetensors", format="LyCORIS/kohya DoRA (lora_down, lora_up, alpha, dora_scale [out, 1])",
          same_as="dora-peft's tensors", oracle=f"{family}/dora-full", expect="fused, peft's merged weights",
          **common)
    entry("dora-full.safetensors", format="LyCORIS full (diff = peft's merged weight - the base weight)", **common)
    entry("dora-in.safetensors", format="LyCORIS/kohya DoRA with norms per input column (dora_scale [1, in])",
          oracle=f"{family}/dora-in-full", expect="fused, LyCORIS's formula", **common)
    entry("dora-in-full.safetensors", format="LyCORIS full (diff = LyCORIS's merge of dora-in - the base weight)",
          **common)


def make_lycoris(family, pipe, ldir, entry):
    from safetensors.torch import save_file
    for algo, (config_name, kwargs, seed, std) in LYCORIS.items():
        factors, full = lycoris_lora(pipe, algo)
        meta = {"ss_network_module": "lycoris.kohya", "ss_network_args": json.dumps({"algo": algo}),
                "ss_network_dim": str(kwargs["r"]), "ss_network_alpha": str(kwargs["alpha"]),
                "ss_base_model_version": "sd_v1",
                "multilora_fixture": "random test weights, not a trained LoRA"}
        save_file(factors, str(ldir / f"{algo}.safetensors"), metadata=meta)
        canonical_safetensors(ldir / f"{algo}.safetensors")
        save_file(full, str(ldir / f"{algo}-full.safetensors"),
                  metadata={"multilora_fixture": f"{algo}.safetensors as a full-rank LoRA (oracle)"})
        canonical_safetensors(ldir / f"{algo}-full.safetensors")
        layers = len(full) // 2
        entry(f"{algo}.safetensors",
              format=f"LyCORIS {algo} in kohya names ({'hada_w1_a/b, hada_w2_a/b' if algo == 'loha' else 'lokr_w1 or lokr_w1_a/b, lokr_w2_a/b'}, .alpha)",
              made_by=f"peft {config_name}({', '.join(f'{k}={v}' for k, v in kwargs.items())}) on the UNet's attention and the text "
                      f"encoder's self-attention projections, every factor seeded randn * {std}",
              seed=seed, layers=layers, tensors=len(factors), dtype="float32",
              oracle=f"{family}/{algo}-full",
              expect="applied exactly: its rewrite as one LoRA gives, layer by layer, the B*A of its full-rank twin")
        entry(f"{algo}-full.safetensors",
              format="kohya LoRA of full rank (lora_down = identity, lora_up = the change of the weights, no .alpha)",
              made_by=f"peft's get_delta_weight of each layer of {algo}.safetensors (alpha / r included)",
              layers=layers, tensors=len(full), dtype="float32",
              expect=f"the same images as {family}/{algo} at alpha 1 with the 'diffusers' scale")


# --------------------------------------------------------------------------
# Layouts of published LoRA files (sdxl-tiny, test-only): test/fixtures/loras/layouts/
# --------------------------------------------------------------------------
# Each file reproduces, at the tiny model's sizes, the names, shapes, dtypes and alpha encodings that one real writer
# gives its files (what each writer does is summed up in the comment above its entry in LAYOUTS); most have beside
# them a "twin": the same weights, in the same dtype, in the canonical kohya naming (`lora_unet_<diffusers module,
# '.' -> '_'>`, `lora_te1_`, `lora_te2_`, `.alpha` float32 0-dim): a layout read right gives its twin's image.
# The block numbers of Stability's (sgm) names are those of the real SDXL (two resnets per down block), which
# GenAI and diffusers assume: `input_blocks.4.1` is `down_blocks.1.attentions.0` there and here.

LAYOUT_RANK = 4
LAYOUT_STD = 0.25
# Linear layers of every kind a kohya or diffusers LoRA trains on SDXL: attention projections, proj_in/proj_out, the
# feed-forward output, in the down, mid and up blocks; the text encoders' self-attention and MLP.
LAYOUT_UNET = [
    "down_blocks.1.attentions.0.proj_in",
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
    "down_blocks.1.attentions.0.transformer_blocks.1.attn1.to_out.0",
    "down_blocks.1.attentions.0.transformer_blocks.1.ff.net.2",
    "mid_block.attentions.0.transformer_blocks.0.attn2.to_v",
    "up_blocks.0.attentions.0.proj_out",
    "up_blocks.0.attentions.1.transformer_blocks.0.attn1.to_k",
]
LAYOUT_UNET_ATTN = [m for m in LAYOUT_UNET if re.search(r"\.attn[12]\.", m)]
LAYOUT_TE = [
    ("text_encoder", "text_model.encoder.layers.0.self_attn.q_proj"),
    ("text_encoder", "text_model.encoder.layers.1.mlp.fc1"),
    ("text_encoder_2", "text_model.encoder.layers.0.self_attn.out_proj"),
    ("text_encoder_2", "text_model.encoder.layers.1.mlp.fc2"),
]
LAYOUT_TE_ATTN = [
    ("text_encoder", "text_model.encoder.layers.0.self_attn.q_proj"),
    ("text_encoder", "text_model.encoder.layers.1.self_attn.v_proj"),
    ("text_encoder_2", "text_model.encoder.layers.0.self_attn.out_proj"),
    ("text_encoder_2", "text_model.encoder.layers.1.self_attn.k_proj"),
]
# LCM-LoRA's targets (diffusers' train_lcm_distill_lora_sdxl_wds.py): attention, proj_in/out, ff, and the resnets'
# conv1/conv2 (3x3), conv_shortcut (1x1), time_emb_proj, the downsamplers' and upsamplers' convs (3x3).
LAYOUT_LCM = [
    "down_blocks.0.resnets.0.conv1",
    "down_blocks.0.resnets.0.conv2",
    "down_blocks.0.resnets.0.time_emb_proj",
    "down_blocks.0.downsamplers.0.conv",
    "down_blocks.1.resnets.0.conv_shortcut",
    "down_blocks.1.attentions.0.proj_in",
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
    "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2",
    "mid_block.attentions.0.proj_out",
    "up_blocks.0.upsamplers.0.conv",
    "up_blocks.1.resnets.1.conv1",
]
KOHYA_TE = {"text_encoder": "lora_te1", "text_encoder_2": "lora_te2"}
COMFY_TE = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}
SGM_RESNET = {"conv1": "in_layers.2", "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1",
              "conv_shortcut": "skip_connection"}


def sgm_module(module):
    """A diffusers UNet module path as Stability's (sgm) UNet names it, numbered as the real SDXL's blocks are
    (diffusers' _maybe_map_sgm_blocks_to_diffusers, read backwards, with two layers per block)."""
    m = re.match(r"^down_blocks\.(\d+)\.(attentions|resnets)\.(\d+)\.(.*)$", module)
    if m:
        block, kind, layer, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        inner = 1 if kind == "attentions" else 0
        return f"input_blocks.{3 * block + layer + 1}.{inner}.{SGM_RESNET.get(rest, rest)}"
    m = re.match(r"^mid_block\.attentions\.0\.(.*)$", module)
    if m:
        return f"middle_block.1.{m.group(1)}"
    m = re.match(r"^up_blocks\.(\d+)\.(attentions|resnets)\.(\d+)\.(.*)$", module)
    if m:
        block, kind, layer, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        inner = 1 if kind == "attentions" else 0
        return f"output_blocks.{3 * block + layer}.{inner}.{SGM_RESNET.get(rest, rest)}"
    raise ValueError(f"no sgm name for {module}")


def layout_weights(pipe, layers, seed, dtype):
    """{(part, module): (down, up)} for [(part, module)]: seeded randn * LAYOUT_STD, rounded to `dtype` (and held in
    it); a convolution's down is [r, in, kh, kw] and up [out, r, 1, 1], as kohya and PEFT write them."""
    import torch
    g = torch.Generator().manual_seed(seed)
    out = {}
    for part, module in layers:
        layer = getattr(pipe, part).get_submodule(module)
        if isinstance(layer, torch.nn.Conv2d):
            kh, kw = layer.kernel_size
            down_shape, up_shape = (LAYOUT_RANK, layer.in_channels, kh, kw), (layer.out_channels, LAYOUT_RANK, 1, 1)
        else:
            down_shape, up_shape = (LAYOUT_RANK, layer.in_features), (layer.out_features, LAYOUT_RANK)
        down = torch.randn(down_shape, generator=g) * LAYOUT_STD
        up = torch.randn(up_shape, generator=g) * LAYOUT_STD
        out[(part, module)] = (down.to(dtype).contiguous(), up.to(dtype).contiguous())
    return out


def kohya_stem(part, module):
    prefix = "lora_unet" if part == "unet" else KOHYA_TE[part]
    return f"{prefix}_{module.replace('.', '_')}"


def twin_tensors(weights, alpha):
    """The canonical kohya form of `weights`: kohya names of the diffusers modules, `.alpha` float32 0-dim when the
    layout has an alpha (None: it has none, so none here either)."""
    import torch
    sd = {}
    for (part, module), (down, up) in weights.items():
        stem = kohya_stem(part, module)
        sd[f"{stem}.lora_down.weight"] = down
        sd[f"{stem}.lora_up.weight"] = up
        if alpha is not None:
            sd[f"{stem}.alpha"] = torch.tensor(float(alpha), dtype=torch.float32)
    return sd


def layouts_kohya_sgm(pipe, seed):
    # kohya-ss/sd-scripts (networks/lora.py, library/sdxl_original_unet.py): SDXL is trained on Stability's UNet, so
    # `lora_unet_<sgm module, '.' -> '_'>`; text encoders `lora_te1_` (CLIP-L) and `lora_te2_` (CLIP-G); `.alpha` a
    # 0-dim buffer; save_weights casts every tensor, alpha included, to --save_precision (fp16 here); ss_* metadata.
    import torch
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_UNET] + LAYOUT_TE, seed, torch.float16)
    sd = {}
    for (part, module), (down, up) in weights.items():
        stem = f"lora_unet_{sgm_module(module).replace('.', '_')}" if part == "unet" else kohya_stem(part, module)
        sd[f"{stem}.lora_down.weight"] = down
        sd[f"{stem}.lora_up.weight"] = up
        sd[f"{stem}.alpha"] = torch.tensor(2.0, dtype=torch.float16)
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(LAYOUT_RANK), "ss_network_alpha": "2.0",
            "ss_base_model_version": "sdxl_base_v1-0", "ss_v2": "False", "ss_output_name": "kohya-sgm",
            "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
            "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
            "multilora_fixture": "random test weights, not a trained LoRA"}
    return sd, meta, weights, 2.0


def layouts_lcm(pipe, seed):
    # LCM-LoRA SDXL (latent-consistency/lcm-lora-sdxl, written by get_module_kohya_state_dict of diffusers'
    # examples/consistency_distillation/train_lcm_distill_lora_sdxl_wds.py): kohya's prefix on diffusers' module
    # names, `.alpha` in the save dtype, fp16 (the published files' size says so); 3x3 convolutions as
    # down [r, in, 3, 3] / up [out, r, 1, 1]; no text encoder. alpha 0.5 at rank 4: the real file's 8 / 64.
    import torch
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_LCM], seed, torch.float16)
    sd = twin_tensors(weights, None)
    for (part, module) in weights:
        sd[f"{kohya_stem(part, module)}.alpha"] = torch.tensor(0.5, dtype=torch.float16)
    return sd, {"multilora_fixture": "random test weights, not a trained LoRA"}, None, None


def layouts_peft(pipe, seed):
    # diffusers' save_lora_weights of PEFT layers (lora_base.py, peft's get_peft_model_state_dict), as Flux/SD3
    # scripts and other trainers leave them: `unet.<module>.lora_A.weight` / `.lora_B.weight`, `text_encoder.`,
    # `text_encoder_2.`; no alpha tensors, r and lora_alpha in the `lora_adapter_metadata` metadata; float32.
    import torch
    from diffusers import StableDiffusionXLPipeline
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_UNET] + LAYOUT_TE, seed, torch.float32)
    layers = {"unet": {}, "text_encoder": {}, "text_encoder_2": {}}
    for (part, module), (down, up) in weights.items():
        layers[part][f"{module}.lora_A.weight"] = down
        layers[part][f"{module}.lora_B.weight"] = up
    meta = {"r": LAYOUT_RANK, "lora_alpha": 2.0}
    with tempfile.TemporaryDirectory() as tmp:
        StableDiffusionXLPipeline.save_lora_weights(
            tmp, unet_lora_layers=layers["unet"], text_encoder_lora_layers=layers["text_encoder"],
            text_encoder_2_lora_layers=layers["text_encoder_2"], unet_lora_adapter_metadata=meta,
            text_encoder_lora_adapter_metadata=meta, text_encoder_2_lora_adapter_metadata=meta,
            weight_name="peft.safetensors")
        from safetensors.torch import load_file
        from safetensors import safe_open
        path = Path(tmp) / "peft.safetensors"
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
        sd = load_file(str(path))
    return sd, metadata, weights, 2.0


def layouts_diffusers_script(pipe, seed):
    # What diffusers' SDXL LoRA scripts (examples/dreambooth/train_dreambooth_lora_sdxl.py) save: peft's state dict
    # through convert_state_dict_to_diffusers (PEFT_TO_DIFFUSERS) before save_lora_weights, so the UNet's attention
    # projections become `.lora.down.weight` / `.lora.up.weight` and the text encoders' `.lora_linear_layer.down.weight`;
    # lora_alpha = rank in the metadata, as the scripts set it; float32 (trainable LoRA parameters stay fp32).
    import torch
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_UNET_ATTN] + LAYOUT_TE_ATTN, seed, torch.float32)
    layers = {"unet": {}, "text_encoder": {}, "text_encoder_2": {}}
    for (part, module), (down, up) in weights.items():
        layers[part][f"{module}.lora_A.weight"] = down
        layers[part][f"{module}.lora_B.weight"] = up
    meta = {"r": LAYOUT_RANK, "lora_alpha": LAYOUT_RANK}
    with tempfile.TemporaryDirectory() as tmp:
        StableDiffusionXLPipeline.save_lora_weights(
            tmp, unet_lora_layers=convert_state_dict_to_diffusers(layers["unet"]),
            text_encoder_lora_layers=convert_state_dict_to_diffusers(layers["text_encoder"]),
            text_encoder_2_lora_layers=convert_state_dict_to_diffusers(layers["text_encoder_2"]),
            unet_lora_adapter_metadata=meta, text_encoder_lora_adapter_metadata=meta,
            text_encoder_2_lora_adapter_metadata=meta, weight_name="d.safetensors")
        from safetensors.torch import load_file
        from safetensors import safe_open
        path = Path(tmp) / "d.safetensors"
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
        sd = load_file(str(path))
    return sd, metadata, weights, float(LAYOUT_RANK)


def processor_key(module, role):
    """`<block>.attnN.processor.to_q_lora.<role>.weight`: the old LoRAAttnProcessor's names (to_out.0 as to_out)."""
    block, proj = re.match(r"^(.*\.attn[12])\.(to_q|to_k|to_v|to_out)(?:\.0)?$", module).groups()
    return f"{block}.processor.{proj}_lora.{role}.weight"


def layouts_diffusers_sdxl_019(pipe, seed):
    # diffusers 0.19-0.20 (the first SDXL LoRA scripts): the UNet's LoRAAttnProcessor layers
    # (`unet.<block>.attn1.processor.to_q_lora.down.weight`, `to_out_lora`), the text encoders' patched
    # LoRALinearLayer (`text_encoder.<module>.lora_linear_layer.down.weight`, `text_encoder_2.`); no alpha, no
    # metadata; float32.
    import torch
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_UNET_ATTN] + LAYOUT_TE_ATTN, seed, torch.float32)
    sd = {}
    for (part, module), (down, up) in weights.items():
        for role, t in (("down", down), ("up", up)):
            if part == "unet":
                sd[f"unet.{processor_key(module, role)}"] = t
            else:
                sd[f"{part}.{module}.lora_linear_layer.{role}.weight"] = t
    return sd, None, weights, None


def layouts_attn_procs(pipe, seed):
    # diffusers' save_attn_procs (2023, before SDXL; ComfyUI issue #1144 shows such keys): the UNet's
    # LoRAAttnProcessor layers with no component prefix (`down_blocks.1.attentions.0.transformer_blocks.0.attn1.
    # processor.to_q_lora.down.weight`); UNet only; no alpha; float32.
    import torch
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_UNET_ATTN], seed, torch.float32)
    sd = {}
    for (part, module), (down, up) in weights.items():
        sd[processor_key(module, "down")] = down
        sd[processor_key(module, "up")] = up
    return sd, None, weights, None


def layouts_comfyui(pipe, seed):
    # ComfyUI's LoraSave (comfy_extras/nodes_lora_extract.py): `diffusion_model.<its UNet's sgm module path>` with
    # kohya's `.lora_up.weight` / `.lora_down.weight` and dots kept; SDXL's text encoders under
    # `text_encoders.clip_l.transformer.` and `text_encoders.clip_g.transformer.`; no alpha (scale 1); fp16
    # (`.half()`); no metadata.
    import torch
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_UNET] + LAYOUT_TE, seed, torch.float16)
    sd = {}
    for (part, module), (down, up) in weights.items():
        stem = (f"diffusion_model.{sgm_module(module)}" if part == "unet"
                else f"text_encoders.{COMFY_TE[part]}.transformer.{module}")
        sd[f"{stem}.lora_up.weight"] = up
        sd[f"{stem}.lora_down.weight"] = down
    return sd, None, weights, None


def layouts_lycoris(pipe, seed):
    # LyCORIS's standalone wrapper (lycoris/wrapper.py, LORA_PREFIX "lycoris"; what SimpleTuner's LyCORIS training
    # saves, and ComfyUI's loader maps as `lycoris_<diffusers module>`): `lycoris_<diffusers module, '.' -> '_'>` with
    # LoCon's `.lora_down.weight` / `.lora_up.weight` / `.alpha`; UNet only; every tensor in the save dtype (bf16).
    import torch
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_UNET], seed, torch.bfloat16)
    sd = {}
    for (part, module), (down, up) in weights.items():
        stem = f"lycoris_{module.replace('.', '_')}"
        sd[f"{stem}.lora_down.weight"] = down
        sd[f"{stem}.lora_up.weight"] = up
        sd[f"{stem}.alpha"] = torch.tensor(2.0, dtype=torch.bfloat16)
    return sd, {"multilora_fixture": "random test weights, not a trained LoRA"}, weights, 2.0


def layouts_alpha_int64(pipe, seed):
    # diffusers' convert_state_dict_to_kohya (utils/state_dict_utils.py, the scripts' --output_kohya_format): kohya's
    # prefixes on diffusers' module names, and an `.alpha` of torch.tensor(len(lora_down)): the rank, as int64, 0-dim.
    import torch
    from diffusers.utils import convert_state_dict_to_kohya
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_UNET] + LAYOUT_TE, seed, torch.float32)
    peft_sd = {}
    for (part, module), (down, up) in weights.items():
        peft_sd[f"{part}.{module}.lora_A.weight"] = down
        peft_sd[f"{part}.{module}.lora_B.weight"] = up
    return convert_state_dict_to_kohya(peft_sd), None, weights, float(LAYOUT_RANK)


def layouts_alpha_shape1(pipe, seed):
    # kohya names with the `.alpha` of each layer a one-element 1-D tensor, shape [1] (loaders read it as a scalar:
    # diffusers' and ComfyUI's `.item()`), as some re-saved files have it; float32.
    import torch
    weights = layout_weights(pipe, [("unet", m) for m in LAYOUT_UNET], seed, torch.float32)
    sd = twin_tensors(weights, None)
    for (part, module) in weights:
        sd[f"{kohya_stem(part, module)}.alpha"] = torch.tensor([2.0], dtype=torch.float32)
    return sd, None, weights, 2.0


# name: (maker, seed, what the manifest says)
LAYOUTS = {
    "kohya-sgm": (layouts_kohya_sgm, 3001, "kohya SDXL: lora_unet_<sgm blocks> (input_blocks_4_1_...), lora_te1_, "
                  "lora_te2_; fp16, alpha fp16 0-dim; ss_* and modelspec.* metadata"),
    "lcm": (layouts_lcm, 3002, "LCM-LoRA SDXL: lora_unet_<diffusers blocks>, 3x3 convolutions (resnets conv1/conv2, "
            "downsamplers/upsamplers) as [r, in, 3, 3] / [out, r, 1, 1], conv_shortcut [r, in, 1, 1], time_emb_proj; "
            "fp16, alpha fp16 0-dim"),
    "peft": (layouts_peft, 3003, "diffusers/PEFT: unet.<module>.lora_A.weight, text_encoder., text_encoder_2.; "
             "r and lora_alpha in lora_adapter_metadata; fp32"),
    "diffusers-script": (layouts_diffusers_script, 3004, "diffusers SDXL scripts: unet.<module>.lora.down.weight, "
                         "text_encoder(_2).<module>.lora_linear_layer.down.weight; lora_adapter_metadata; fp32"),
    "diffusers-0.19": (layouts_diffusers_sdxl_019, 3005, "diffusers 0.19: unet.<block>.processor.to_q_lora.down.weight, "
                       "text_encoder(_2).<module>.lora_linear_layer.down.weight; no alpha; fp32"),
    "attn-procs": (layouts_attn_procs, 3006, "diffusers save_attn_procs: <block>.processor.to_q_lora.down.weight with "
                   "no prefix; UNet only; fp32"),
    "comfyui": (layouts_comfyui, 3007, "ComfyUI LoraSave: diffusion_model.<sgm module>.lora_up.weight, "
                "text_encoders.clip_l.transformer., text_encoders.clip_g.transformer.; no alpha; fp16"),
    "lycoris": (layouts_lycoris, 3008, "LyCORIS wrapper: lycoris_<diffusers module>.lora_down.weight; UNet only; "
                "bf16, alpha bf16 0-dim"),
    "alpha-int64": (layouts_alpha_int64, 3009, "diffusers convert_state_dict_to_kohya: lora_unet_/lora_te1_/lora_te2_ "
                    "<diffusers module>, alpha int64 0-dim (= rank); fp32"),
    "alpha-shape1": (layouts_alpha_shape1, 3010, "kohya names, alpha float32 of shape [1]; fp32"),
}


def make_layouts(pipe, out):
    """test/fixtures/loras/layouts/<name>.safetensors and <name>-twin.safetensors: {manifest key: entry}."""
    from safetensors.torch import save_file
    ldir = out / "loras" / "layouts"
    ldir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, (maker, seed, what) in LAYOUTS.items():
        sd, metadata, weights, alpha = maker(pipe, seed)
        files = [(name, sd, metadata)]
        if weights is not None:
            files.append((f"{name}-twin", twin_tensors(weights, alpha),
                          {"multilora_fixture": f"{name}.safetensors in canonical kohya names (same weights, dtype)"}))
        for stem, tensors, meta in files:
            path = ldir / f"{stem}.safetensors"
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
            canonical_safetensors(path)
        e = {"family": "sdxl", "path": rel(ldir / f"{name}.safetensors", out), "layout": what, "seed": seed,
             "rank": LAYOUT_RANK, "alpha": alpha, "layers": len(weights) if weights else len(LAYOUT_LCM),
             "tensors": len(sd), "bytes": (ldir / f"{name}.safetensors").stat().st_size,
             "example_keys": sorted(sd)[:3]}
        if weights is not None:
            e["twin"] = rel(ldir / f"{name}-twin.safetensors", out)
        entries[f"layouts/{name}"] = e
    return entries


def write_readme(out, manifest, kept_diffusers):
    sizes = {}
    for d in [model_dir(out, "sd15"), model_dir(out, "sdxl"), lora_dir(out, "sd15"), lora_dir(out, "sdxl"),
              out / "diffusers" / "sd15-tiny", out / "diffusers" / "sdxl-tiny"]:
        if d.exists():
            sizes[rel(d, out)] = dir_size(d)
    sizes["torch-randn.json"] = (out / "torch-randn.json").stat().st_size
    size_rows = "\n".join(f"| `{k}` | {v / 1e6:.2f} MB |" for k, v in sizes.items())
    total = sum(sizes.values())
    gw = manifest["generated_with"]
    sd = manifest["models"]["sd15-tiny"]
    xl = manifest["models"]["sdxl-tiny"]

    def gcfg(m):
        c = m.get("genai_generation_config", {})
        return (f"{c.get('width')}x{c.get('height')}, {c.get('num_inference_steps')} steps, "
                f"guidance {c.get('guidance_scale')}")

    diff_text = (
        "- `diffusers/sd15-tiny/`, `diffusers/sdxl-tiny/`: the diffusers (PyTorch, safetensors, fp16) form of\n"
        "  `sd15-tiny` and `sdxl-tiny`. Every weight was rounded to fp16 before the IR export, so each copy holds\n"
        "  exactly its IR's values. `optimum-cli export openvino --task text-to-image --weight-format fp32` of it\n"
        "  gives byte-identical images in OpenVINO GenAI and the same UNet and VAE `.bin` files; its text encoders\n"
        "  hold the same values stored as fp16 (transformers loads them in the checkpoint's dtype) with a Convert\n"
        "  to f32, and keep 12 Adds of all-zero biases each that the export from fp32 weights folds away.\n"
        if kept_diffusers else
        "- The diffusers (PyTorch) form of the models is not kept here; "
        "`python scripts/make-fixtures.py --diffusers-out DIR` writes `sd15-tiny`'s.\n")
    layout_rows = "\n".join(f"  - `{name}`: {what}" for name, (_maker, _seed, what) in LAYOUTS.items())
    text = f"""# Test fixtures

Generated; do not edit by hand. Rebuild with

    bash scripts/make-fixtures.sh            # in the tools' venv (python/requirements.txt): make-fixtures.py --verify
    bash scripts/make-fixtures.sh --bench-model   # the benchmark's model instead: see the end of this file

Every weight here is random (fixed seeds): the images mean nothing, only their differences do.
Rerunning the script gives the same files (`manifest.json` lists each file's sha256).
Made with torch {gw.get('torch')}, diffusers {gw.get('diffusers')}, transformers {gw.get('transformers')},
optimum-intel {gw.get('optimum_intel')}, OpenVINO {gw.get('openvino')}, OpenVINO GenAI {gw.get('openvino_genai')}.

## What is here
- `models/sd15-tiny/`: a tiny Stable Diffusion 1.5-like pipeline (`StableDiffusionPipeline`, {sd['scheduler']}),
  exported to OpenVINO IR by optimum-intel (fp32, tokenizers converted). UNet (32, 64) channels with
  cross-attention transformer blocks, CLIP text encoder of hidden size 32 and 2 layers, VAE (32, 64), a
  local byte-level CLIP BPE vocabulary. VAE scale {sd['vae_scale_factor']}, UNet sample size {sd['unet_sample_size']}.
  GenAI defaults: {gcfg(sd)}.
- `../../models/sdxl-tiny/` (not here: the package ships it): the same for an SDXL-like pipeline
  (`StableDiffusionXLPipeline`, {xl['scheduler']}), two text encoders (the second a
  `CLIPTextModelWithProjection`), cross-attention dim 64, `text_time` added conditioning (time embed dim 8,
  projection input 6*8 + 32 = 80). The project's embedded default model.
  GenAI defaults: {gcfg(xl)}.
{diff_text}- `loras/sd15/`, `../../models/sdxl-tiny-loras/`: LoRA files for each family (rank {LORA_RANK}, `.alpha` = {LORA_ALPHA}, so
  alpha/rank = {LORA_ALPHA / LORA_RANK}; float32):
  - `style-a.safetensors`, `style-b.safetensors`: kohya/A1111 keys
    (`lora_unet_<diffusers module path, '.' -> '_'>.lora_down.weight` / `.lora_up.weight` / `.alpha`,
    text encoders `lora_te_` (SD 1.5), `lora_te1_` / `lora_te2_` (SDXL)), on to_q/to_k/to_v/to_out.0 of
    attn1 and attn2 of every UNet transformer block and q/k/v/out_proj of every text-encoder self-attention.
    A and B hold different random weights.
  - `style-a-peft.safetensors`: style-a's very weights in the PEFT/diffusers format written by diffusers'
    `save_lora_weights` (`unet.<module>.lora_A.weight`, `text_encoder.…`, `text_encoder_2.…`; r and
    lora_alpha in the safetensors header). OpenVINO GenAI 2026.3 ignores this format (image = no LoRA).
  - `wrong-base.safetensors`: style-a's keys with shapes for a bigger base model (in/out doubled):
    GenAI's generate throws ("Can not clone with new dims").
  - `unmatched.safetensors`: kohya keys of layers that exist in no model: no effect.
  - `loha.safetensors`, `lokr.safetensors` (sd15 only): LyCORIS LoHa and LoKr in kohya names (`hada_w1_a`, ...,
    `lokr_w1`, `lokr_w1_a`, ..., `.alpha`), made by peft's LoHa and LoKr modules with seeded random factors;
    `loha-full.safetensors`, `lokr-full.safetensors`: each one's change of the weights (peft's
    `get_delta_weight`, alpha / r included) as a full-rank LoRA (A = identity, B = the change, no alpha): the
    oracle of their exact rewrite.
  - `dora-peft.safetensors`, `dora.safetensors`, `dora-in.safetensors` (sd15 only): one DoRA made with peft
    (`LoraConfig(use_dora=True)`, seeded A, B and magnitudes) in PEFT's names (`lora_magnitude_vector` [out]) and
    in LyCORIS's (`dora_scale` [out, 1]), and a LyCORIS DoRA with norms per input column (`dora_scale` [1, in]);
    `dora-full.safetensors` and `dora-in-full.safetensors`: their fused change of the weights as LyCORIS "full"
    files (`diff` only), from peft's own merge and from LyCORIS's formula: the oracles of the fuse.
- `loras/layouts/` (for `sdxl-tiny`, test-only): one LoRA file per layout that published files have, with the
  names, shapes, dtypes and alpha encodings of the real writers at the tiny model's sizes (rank {LAYOUT_RANK}, seeded
  randn * {LAYOUT_STD}), and beside each but `lcm` its twin `<layout>-twin.safetensors`: the same weights in the
  same dtype, in kohya names of the diffusers modules (`lora_unet_`, `lora_te1_`, `lora_te2_`, float32 `.alpha`
  when the layout has one). Stability's block names are numbered as the real SDXL's (`input_blocks.4.1` =
  `down_blocks.1.attentions.0`), as GenAI and diffusers map them.
{layout_rows}
- `torch-randn.json`: `torch.randn(shape, generator=torch.Generator().manual_seed(seed))` (CPU, float32) for
  shapes {RANDN_SHAPES} and seeds {RANDN_SEEDS}, and for (seed, shape) {RANDN_EXTRA}: full arrays as base64 of
  little-endian float32, and the first 8 values; and successive calls on one generator, (seed, shapes)
  {RANDN_SEQUENCES}.
- `manifest.json`: every model and LoRA (family, path, defaults, format, rank, alpha, targets, shared weights,
  what is expected of it, sizes and sha256).

## Checked by `--verify`
With every adapter registered at pipeline construction, seed {VERIFY['rng_seed']}, {VERIFY['width']}x{VERIFY['height']},
{VERIFY['num_inference_steps']} steps, guidance {VERIFY['guidance_scale']['sd15']} (SD 1.5) / {VERIFY['guidance_scale']['sdxl']} (SDXL):
no LoRA, style-a 1.0, style-b 1.0, a 0.5 + b 0.7 (and a 0.5, b 0.5 alone) all differ pairwise by at least 1/255 mean;
style-a-peft equals no LoRA, its kohya-renamed copy equals style-a; wrong-base throws; unmatched equals no LoRA;
the same seed twice gives the same bytes; 96x64 gives a 64-high, 96-wide image.

Mind GenAI 2026.3's bugs in switching adapter configs between calls on one pipeline when you use these: a
layer whose LoRA rank goes to 0 (an empty AdapterConfig, or only adapters that match nothing) and back to the
same rank gives all-black images, and a change to any alpha but the last adapter's is ignored.
`docs/GENAI-BUGS.md` says what they are and how multilora avoids them.

## Sizes
| what | size |
|---|---|
{size_rows}
| total | {total / 1e6:.2f} MB |

## The benchmark's model (not here)
`bash scripts/make-fixtures.sh --bench-model [--out DIR]` builds, with scripts/make-bench-model.py, a
random-weight Stable Diffusion 1.5 of the real sizes (UNet 859,520,964 parameters, CLIP ViT-L/14-sized text
encoder, SD's VAE; 512x512) as fp16-weight IR, and six rank-16 kohya LoRAs for it (`loras/bench-0` ...
`bench-5`, on the UNet's attention and feed-forward Linear layers and the text encoder's q/k/v/out_proj and
fc1/fc2), into `.bench-models/sd15-512/` (git-ignored, ~2.2 GB). A rerun reuses a complete build (its
stamp `bench-model.json` also records sizes, timings and the openvino_genai check); `--force` rebuilds.
"""
    (out / "README.md").write_text(text)


# --------------------------------------------------------------------------
# Verify with openvino_genai
# --------------------------------------------------------------------------

def verify(out):
    """Check the fixtures with openvino_genai; print a JSON report; return 0 when every check passed."""
    import openvino_genai as ov_genai
    from safetensors.numpy import load_file

    report = {}
    failures = []

    def check(cond, what):
        log("ok  " if cond else "FAIL", what)
        if not cond:
            failures.append(what)

    def mad(a, b):
        return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())

    def maxd(a, b):
        return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())

    def diff(a, b):
        return {"mean": round(mad(a, b), 4), "max": maxd(a, b), "equal": bool(np.array_equal(a, b))}

    steps = VERIFY["num_inference_steps"]
    for family in ("sd15", "sdxl"):
        name = MODEL_NAMES[family]
        mdir = model_dir(out, family)
        ldir = lora_dir(out, family)
        guidance = VERIFY["guidance_scale"][family]
        r = report[name] = {"guidance_scale": guidance}
        with tempfile.TemporaryDirectory() as tmp:
            renamed = Path(tmp) / "style-a-peft-as-kohya.safetensors"
            peft_to_kohya(ldir / "style-a-peft.safetensors", renamed)
            # the renamed PEFT file holds style-a's tensors, bit for bit
            a_sd = load_file(str(ldir / "style-a.safetensors"))
            rn_sd = load_file(str(renamed))
            same = set(rn_sd) == {k for k in a_sd if not k.endswith(".alpha")} and \
                all(np.array_equal(v, a_sd[k]) for k, v in rn_sd.items())
            check(same, f"{name}: style-a-peft renamed to kohya keys holds style-a's tensors bit for bit")

            # diffusers reads the kohya files (alpha 2.0 each) and the PEFT file (r 4, lora_alpha 2.0)
            from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
            dcls = StableDiffusionPipeline if family == "sd15" else StableDiffusionXLPipeline
            n_tensors = len(rn_sd)
            for fname in ("style-a", "style-b", "style-a-peft"):
                sd, *rest = dcls.lora_state_dict(str(ldir), weight_name=f"{fname}.safetensors",
                                                     return_lora_metadata=True)
                alphas, meta = rest[0], rest[-1]
                if fname == "style-a-peft":
                    ok = len(sd) == n_tensors and meta and meta.get("unet.lora_alpha") == LORA_ALPHA \
                        and meta.get("unet.r") == LORA_RANK
                else:
                    ok = len(sd) == n_tensors and alphas and set(alphas.values()) == {LORA_ALPHA}
                check(bool(ok), f"{name}: diffusers {dcls.__name__}.lora_state_dict reads {fname} "
                                f"({len(sd)} tensors)")

            paths = {"a": ldir / "style-a.safetensors", "b": ldir / "style-b.safetensors",
                     "peft": ldir / "style-a-peft.safetensors", "peft_kohya": renamed,
                     "unmatched": ldir / "unmatched.safetensors"}

            def new_pipe():
                ad = {k: ov_genai.Adapter(str(p)) for k, p in paths.items()}
                t = time.time()
                p = ov_genai.Text2ImagePipeline(str(mdir), "CPU",
                                                adapters=ov_genai.AdapterConfig(list(ad.values())))
                return p, ad, time.time() - t

            times = []

            def gen(p, ad, pairs, width=VERIFY["width"], height=VERIFY["height"]):
                cfg = ov_genai.AdapterConfig()
                for k, alpha in pairs:
                    cfg.add(ad[k], alpha)
                t = time.time()
                img = p.generate(VERIFY["prompt"], adapters=cfg, rng_seed=VERIFY["rng_seed"], width=width,
                                 height=height, num_inference_steps=steps, guidance_scale=guidance)
                times.append(time.time() - t)
                return np.array(img.data, copy=True)

            pipe, ad, load_s = new_pipe()
            r["load_s"] = round(load_s, 2)
            # Order matters, for a GenAI 2026.3 bug (probed below): once a matching LoRA has run, a generate
            # with no matching adapter selected (an empty AdapterConfig, or only adapters that match no layer)
            # leaves the pipeline giving all-black images whenever a LoRA is selected again. So every
            # selection without effect comes before the first LoRA here.
            none = gen(pipe, ad, [])
            peft = gen(pipe, ad, [("peft", 1.0)])
            um = gen(pipe, ad, [("unmatched", 1.0)])
            imgs = {
                "none": none,
                "a1": gen(pipe, ad, [("a", 1.0)]),
                "b1": gen(pipe, ad, [("b", 1.0)]),
                "a05_b07": gen(pipe, ad, [("a", 0.5), ("b", 0.7)]),
                "a05": gen(pipe, ad, [("a", 0.5)]),
                "b05": gen(pipe, ad, [("b", 0.5)]),
            }
            pk = gen(pipe, ad, [("peft_kohya", 1.0)])
            again_a = gen(pipe, ad, [("a", 1.0)])
            wide = gen(pipe, ad, [("a", 1.0)], width=96, height=64)
            zero_alphas = gen(pipe, ad, [("a", 0.0), ("b", 0.0)])
            after_zero = gen(pipe, ad, [("a", 1.0)])
            again_none = gen(pipe, ad, [])
            after_empty = gen(pipe, ad, [("a", 1.0)])
            del pipe

            r["image_shape"] = list(none.shape)
            r["none_mean"] = round(float(none.mean()), 3)
            r["none_std"] = round(float(none.std()), 3)
            check(none.shape == (1, 64, 64, 3), f"{name}: shape {none.shape}")
            check(none.std() > 5, f"{name}: no-LoRA image std {none.std():.2f} > 5")
            keys = list(imgs)
            r["pairwise_mean_abs_diff"] = {}
            for i, k1 in enumerate(keys):
                for k2 in keys[i + 1:]:
                    d = mad(imgs[k1], imgs[k2])
                    r["pairwise_mean_abs_diff"][f"{k1}~{k2}"] = round(d, 3)
                    check(d >= 1.0, f"{name}: {k1} vs {k2}: mean |diff| {d:.3f} >= 1.0")
            r["peft_vs_none"] = diff(peft, none)
            check(np.array_equal(peft, none), f"{name}: style-a-peft is ignored: equals no LoRA {r['peft_vs_none']}")
            r["peft_as_kohya_vs_a1"] = diff(pk, imgs["a1"])
            check(np.array_equal(pk, imgs["a1"]),
                  f"{name}: style-a-peft renamed to kohya gives style-a's image {r['peft_as_kohya_vs_a1']}")
            r["unmatched_vs_none"] = diff(um, none)
            check(np.array_equal(um, none), f"{name}: unmatched equals no LoRA {r['unmatched_vs_none']}")
            check(np.array_equal(again_a, imgs["a1"]), f"{name}: style-a, same seed twice: same bytes")
            r["non_square_96x64_shape"] = list(wide.shape)
            check(wide.shape == (1, 64, 96, 3), f"{name}: width 96, height 64 gives shape {wide.shape}")
            r["a0_b0_vs_none"] = diff(zero_alphas, none)
            check(np.array_equal(zero_alphas, none), f"{name}: a and b at alpha 0 equal no LoRA {r['a0_b0_vs_none']}")
            check(np.array_equal(after_zero, imgs["a1"]), f"{name}: style-a after a+b at alpha 0: style-a's bytes")
            check(np.array_equal(again_none, none), f"{name}: no LoRA again after LoRA runs: same bytes")

            # Probes of the GenAI 2026.3 bug (information, not checks): after a LoRA ran, an empty selection
            # or one of adapters matching nothing, then a LoRA again -> all black. Alpha-0 adapters are safe.
            r["genai_bug_a1_after_empty_selection"] = {"vs_a1": diff(after_empty, imgs["a1"]),
                                                       "all_black": bool(after_empty.max() == 0)}
            pipe, ad, _ = new_pipe()
            gen(pipe, ad, [("a", 1.0)])
            gen(pipe, ad, [("unmatched", 1.0)])
            after = gen(pipe, ad, [("a", 1.0)])
            r["genai_bug_a1_after_unmatched_alone"] = {"vs_a1": diff(after, imgs["a1"]),
                                                       "all_black": bool(after.max() == 0)}
            del pipe
            pipe, ad, _ = new_pipe()
            gen(pipe, ad, [("a", 1.0)])
            gen(pipe, ad, [("unmatched", 1.0), ("b", 0.0)])
            after = gen(pipe, ad, [("a", 1.0)])
            r["a1_after_unmatched_plus_b_at_0"] = {"vs_a1": diff(after, imgs["a1"]),
                                                   "all_black": bool(after.max() == 0)}
            del pipe
            r["generate_s"] = {"min": round(min(times), 3), "max": round(max(times), 3)}

            # a pipeline built without adapters, against the no-LoRA image of one built with them
            plain = ov_genai.Text2ImagePipeline(str(mdir), "CPU")
            img = plain.generate(VERIFY["prompt"], rng_seed=VERIFY["rng_seed"], width=64, height=64,
                                 num_inference_steps=steps, guidance_scale=guidance)
            r["none_without_adapters_registered_vs_none"] = diff(np.array(img.data, copy=True), none)
            del plain

            # wrong-base, in a pipeline of its own
            wb = ov_genai.Adapter(str(ldir / "wrong-base.safetensors"))
            wp = ov_genai.Text2ImagePipeline(str(mdir), "CPU", adapters=ov_genai.AdapterConfig([wb]))
            err = None
            try:
                wp.generate(VERIFY["prompt"], adapters=ov_genai.AdapterConfig(wb, 1.0), rng_seed=42, width=64,
                            height=64, num_inference_steps=steps, guidance_scale=guidance)
            except Exception as e:  # noqa: BLE001
                err = str(e)
            r["wrong_base_error"] = err.strip().splitlines()[-1][:300] if err else None
            check(err is not None and "Can not clone with new dims" in err,
                  f"{name}: wrong-base raises ({r['wrong_base_error']})")
            try:
                wp.generate(VERIFY["prompt"], adapters=ov_genai.AdapterConfig(), rng_seed=42, width=64, height=64,
                            num_inference_steps=steps, guidance_scale=guidance)
                r["wrong_base_registered_then_no_lora"] = "generates"
            except Exception as e:  # noqa: BLE001
                r["wrong_base_registered_then_no_lora"] = "raises: " + str(e).strip().splitlines()[-1][:200]
            del wp

    # torch-randn.json: decodes, agrees with its own first8, and with this torch
    import torch
    ref = json.loads((out / "torch-randn.json").read_text())
    worst = 0.0
    for c in ref["cases"]:
        data = np.frombuffer(base64.b64decode(c["data_base64_f32le"]), dtype="<f4")
        ok_len = data.size == int(np.prod(c["shape"]))
        now = torch.randn(c["shape"], generator=torch.Generator().manual_seed(c["seed"]),
                          dtype=torch.float32).numpy().ravel()
        worst = max(worst, float(np.abs(now - data).max()) if ok_len else float("inf"))
        check(ok_len and list(map(float, data[:8])) == c["first8"],
              f"torch-randn seed {c['seed']} shape {c['shape']}: size and first8 agree")
    for sq in ref.get("sequences", []):
        g = torch.Generator().manual_seed(sq["seed"])
        for shape, b64 in zip(sq["shapes"], sq["data_base64_f32le"]):
            data = np.frombuffer(base64.b64decode(b64), dtype="<f4")
            now = torch.randn(shape, generator=g, dtype=torch.float32).numpy().ravel()
            worst = max(worst, float(np.abs(now - data).max()) if data.size == now.size else float("inf"))
    report["torch_randn_max_abs_diff_vs_this_torch"] = worst
    check(worst == 0.0, "torch-randn.json equals torch.randn of the torch in this venv")

    print(json.dumps(report, indent=2))
    if failures:
        for f in failures:
            log("FAILED:", f)
        log(f"{len(failures)} check(s) FAILED")
        return 1
    log("all checks passed")
    return 0


def main():
    global MODELS_OUT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="fixtures folder (default: test/fixtures)")
    ap.add_argument("--models-out", default=str(MODELS_OUT),
                    help="where the embedded default model and its LoRAs go (default: models)")
    ap.add_argument("--diffusers-out", default=None,
                    help="also write the diffusers (PyTorch, fp16) form of sd15-tiny to this folder")
    ap.add_argument("--no-diffusers-in-fixtures", action="store_true",
                    help="do not keep the diffusers form of the models under test/fixtures/diffusers/")
    ap.add_argument("--verify", action="store_true", help="after building, check the fixtures with openvino_genai")
    ap.add_argument("--verify-only", action="store_true", help="only check the fixtures already built")
    ap.add_argument("--torch-randn-only", action="store_true",
                    help="rewrite torch-randn.json (and its manifest entry) only; needs only torch")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    MODELS_OUT = Path(args.models_out).resolve()
    if args.torch_randn_only:
        write_torch_randn_only(out)
        return 0
    if not args.verify_only:
        t = time.time()
        build(out, args.diffusers_out, not args.no_diffusers_in_fixtures)
        log(f"build took {time.time() - t:.1f} s")
    if args.verify or args.verify_only:
        t = time.time()
        rc = verify(out)
        log(f"verify took {time.time() - t:.1f} s")
        return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
