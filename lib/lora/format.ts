// What a LoRA file is (its key format, layers, ranks and alphas), and how to rewrite it into the form that
// OpenVINO GenAI 2026.3 applies. What GenAI does, from its source (openvinotoolkit/openvino.genai, src/cpp/src/):
// - lora/adapter.cpp, default_lora_patterns(): a tensor is A when its name matches `(.*)[_.]lora[_.](A|down).weight`
//   (or `(.*lora[12]).down.weight`), B likewise with B|up, alpha when `(.*).alpha`; the captured stem names the layer.
// - LoRAWeightGetterDefault: a stem applies to a model layer when it starts with the model part's prefix and the rest
//   is a substring of the layer's name, or of that name with '.' replaced by '_'. Nothing else is tried.
// - collect_applicable_tensors: the `.alpha` tensors are ignored; the alpha given at generate is the whole scale.
// - squeeze_2d: a convolution LoRA must have a 1x1 kernel.
// - Prefixes per model part (image_generation/models/*.cpp, the `value_or(...)` of set_tensor_name_prefix):
//   UNet "lora_unet", CLIP text encoders "lora_te" (stable_diffusion_xl_pipeline.hpp passes "lora_te1" and "lora_te2"),
//   SD3 and Flux transformers "transformer"; the T5 encoder takes no adapters. SD3 applies LoRA to its transformer
//   only ("TODO: Add LoRA Adapter support for text encoders"); Flux to its CLIP encoder and transformer.
// - Before matching, SD/SDXL rename kohya names to diffusers ones (lora/names_mapping.cpp,
//   maybe_map_non_diffusers_lora_to_diffusers, Stability "input_blocks" names included); SD3 and Flux rename kohya
//   and XLabs Flux names (flux_kohya_lora_preprocessing, flux_xlabs_lora_preprocessing).
// A PEFT/diffusers file (`unet.<module>.lora_A.weight`) therefore matches nothing on SD/SDXL: GenAI ignores it
// (docs/GENAI-BUGS.md#peft-ignored), and toGenaiLora rewrites it.
import { MultiloraError } from '../core/errors';
import type { ModelFamily } from '../core/model';
import {
  fromFloat32Array,
  isFloat,
  openSafetensors,
  quote,
  scalarValue,
  toFloat32Array,
  writeSafetensors,
  type FloatDtype,
  type SafetensorsHeader,
  type TensorData,
  type TensorInfo,
} from './safetensors';
import { integer, invalid, isPlainObject, knownKeys, object } from '../core/validate';
import { fitLowRank } from './approximate';
import { denseChange, denseOutline, isDense } from './dense';
import {
  hadamardAsLora,
  kroneckerAsLora,
  kroneckerRank,
  matrix,
  type FactorShape,
  type KronFactor,
  type LoraPair,
} from './factorized';

/**
 * How a file names its tensors:
 * - 'kohya': kohya-ss/A1111 (`lora_unet_<module, '.' -> '_'>.lora_down.weight` / `.lora_up.weight` / `.alpha`,
 *   `lora_te_`, `lora_te1_`, `lora_te2_`);
 * - 'sgm': kohya names of Stability's original UNet blocks (`lora_unet_input_blocks_4_1_...`);
 * - 'locon': kohya names with convolution layers of kernels bigger than 1x1 (LyCORIS LoCon);
 * - 'peft': what diffusers' save_lora_weights writes (`unet.<module>.lora_A.weight` / `.lora_B.weight`,
 *   `text_encoder.`, `text_encoder_2.`, `transformer.`; r and lora_alpha in the `lora_adapter_metadata` metadata);
 * - 'diffusers': diffusers' older names (`unet.<...>.processor.to_q_lora.down.weight`, `<module>.lora.down.weight`,
 *   `text_encoder.<module>.lora_linear_layer.down.weight`);
 * - 'xlabs': XLabs' Flux names (`double_blocks.0.processor.qkv_lora1.down.weight`);
 * - 'comfyui': ComfyUI's LoraSave (`diffusion_model.<module>.lora_up.weight`, dots kept, Stability's block names for
 *   SD/SDXL; `text_encoders.clip_l.transformer.<module>…`, `clip_g` for SDXL's second text encoder);
 * - 'lycoris': LyCORIS's standalone wrapper (`lycoris_<diffusers module, '.' -> '_'>.lora_down.weight`, what
 *   SimpleTuner saves), the kohya suffixes under the prefix `lycoris_`;
 * - 'mixed': more than one of these.
 */
export type LoraFormat = 'kohya' | 'sgm' | 'locon' | 'peft' | 'diffusers' | 'xlabs' | 'comfyui' | 'lycoris' | 'mixed';

/** The model part a layer belongs to, named as diffusers names the pipeline's components. */
export type LoraPart = 'unet' | 'transformer' | 'text_encoder' | 'text_encoder_2' | 'text_encoder_3';

/** The naming of one layer's tensors. */
export type LoraNaming = 'kohya' | 'peft' | 'diffusers' | 'xlabs' | 'comfyui' | 'lycoris';

export interface LoraLayer {
  /** The layer's stem in the file: its tensor names without the suffix (for the older diffusers names, `<part>.<module>`). */
  key: string;
  naming: LoraNaming;
  part: LoraPart;
  /** The module path inside the part: dotted for PEFT/diffusers/XLabs/ComfyUI, with '_' for kohya and LyCORIS. */
  module: string;
  /**
   * A, [rank, in] (or [rank, in, kh, kw]). For a factorized layer (`factorized`), the A that its rewrite gives: not
   * a tensor of the file (its offset is -1), F32 of [rank, in].
   */
  down: TensorInfo;
  /** B, [out, rank] (or [out, rank, 1, 1]); for a factorized layer, the B of its rewrite, [out, rank]. */
  up: TensorInfo;
  /**
   * LyCORIS's LoHa or LoKr (the file's tensors of the factors, which toGenaiLora rewrites as A and B exactly), or a
   * full weight difference ('full': A is the difference, B the identity; only for fusing, with its bias difference).
   */
  factorized?: {
    kind: 'loha' | 'lokr' | 'full' | 'oft';
    tensors: Partial<Record<FactorRole, TensorInfo>>;
    /** A Tucker core or a kernel above 1x1 (lib/lora/dense.ts): the pair is the whole change and the identity. */
    dense?: boolean;
  };
  /**
   * DoRA (weight-decomposed LoRA): the magnitude tensor, and the axis its norms run along: 'out' (one per output
   * row: PEFT's `lora_magnitude_vector` [out], LyCORIS's default `dora_scale` [out, 1, ...]) or 'in' (one per input
   * column: LyCORIS's `dora_scale` [1, in, ...] when trained with wd_on_out off). The fused weight is
   * (W + α·ΔW) · (α·(m / ‖W + α·ΔW‖ − 1) + 1), as LyCORIS merges it (at α = 1, PEFT's m · (W + ΔW) / ‖W + ΔW‖).
   */
  dora?: { magnitude: TensorInfo; axis: 'out' | 'in' };
  /**
   * LyCORIS LoCon with a Tucker core (a convolution of a kernel above 1x1): the file's `lora_down` [r, in, 1, 1] and
   * `lora_mid` [r, r, kh, kw]; `down` is then the A of the exact rewrite, mid · down of [r, in, kh, kw], in F32, and
   * `up` the file's. Only fusing takes it, as any LoRA of a bigger kernel.
   */
  tucker?: { down: TensorInfo; mid: TensorInfo };
  /** The `.alpha` tensor, when the file has one for this layer. */
  alphaTensor?: TensorInfo;
  /** From the `.alpha` tensor, or for PEFT from lora_alpha (or alpha_pattern) in the metadata. */
  alpha?: number;
  /** The rank GenAI runs: A's rows (for LoHa r1·r2, for LoKr the product of its factors' inner sizes). */
  rank: number;
  /** What diffusers, A1111 and ComfyUI multiply B·A by at strength 1: alpha / rank (alpha / √rank with rsLoRA), else 1. */
  scale: number;
  /** True when the metadata asks for rsLoRA scaling (alpha / √rank). */
  rslora?: boolean;
}

export interface LoraAnalysis {
  format: LoraFormat;
  /** Sorted by key. */
  layers: LoraLayer[];
  /** The distinct ranks, ascending. */
  ranks: number[];
  /** The parts with layers, in the order unet, transformer, text_encoder, text_encoder_2, text_encoder_3. */
  parts: LoraPart[];
  /** Tensors that belong to no recognized layer (GenAI would ignore them too). */
  unrecognized: string[];
}

/** Reads one tensor of the analysed file: `SafetensorsReader.read`, or `(info) => readTensor(source, info)`. */
export type TensorRead = (info: TensorInfo) => Buffer | Promise<Buffer>;

/** How the conversion scales B: 'genai' keeps it (GenAI's alpha is the whole scale), 'diffusers' bakes alpha/rank in. */
export type LoraScale = 'genai' | 'diffusers';

export interface GenaiLoraOptions {
  /** The model family the LoRA is for: it decides the names GenAI matches, and which parts it applies LoRA to. */
  family: ModelFamily;
  /**
   * 'genai' (the default): the alpha given at generate stays the whole scale, as GenAI has it.
   * 'diffusers': each B is multiplied by its layer's alpha/rank, so that an alpha given at generate means what it
   * means in diffusers, A1111 and ComfyUI (strength 1 = the LoRA as trained).
   */
  scale?: LoraScale;
  /**
   * Keeps convolution layers with kernels bigger than 1x1 (A of [rank, in, kh, kw], B of [out, rank, 1, 1]) instead
   * of refusing them: for fusing into the weights (`convert`'s fuseLora: LCM-LoRA changes the UNet's 3x3
   * convolutions), never for GenAI at generate, which does not apply them.
   */
  kernels?: boolean;
  /**
   * Fits a LoRA of at most this rank, by truncated SVD, to each layer that has no plain LoRA form GenAI runs (a full
   * weight difference of a linear or 1x1 layer) or whose exact one is of a higher rank (LoHa, LoKr). Plain LoRA
   * layers are kept as they are. Refused for what no LoRA expresses: DoRA, kernels above 1x1, a bias difference.
   */
  approximate?: Approximate;
  /**
   * With `approximate`: DoRA and OFT layers of linear and 1x1 layers pass as they are (their change depends on the
   * model's weights, which the caller reads to fit them: lib/lora/fuse.ts, fitFromWeights).
   */
  withModel?: boolean;
}

/** What `approximate` asks for: the rank of the fit. */
export interface Approximate {
  rank: number;
}

/** The biggest rank `approximate` takes: above it, a LoRA costs as much as most layers it patches. */
export const MAX_APPROXIMATE_RANK = 1024;

/** One layer that a conversion fitted. */
export interface ApproximatedLayer {
  key: string;
  /** The rank of its exact form (a full difference: its out). */
  from: number;
  /** The rank GenAI runs. */
  rank: number;
  /** ‖ΔW − fit‖ / ‖ΔW‖ (Frobenius). */
  error: number;
}

/** What `approximate` did to a file. */
export interface Approximation {
  rank: number;
  layers: ApproximatedLayer[];
  /** Over every fitted layer: √(Σ ‖ΔW − fit‖²) / √(Σ ‖ΔW‖²); 0 when none needed a fit. */
  error: number;
}

/** Checks an `approximate` option: `{ rank }`, an integer from 1 to MAX_APPROXIMATE_RANK. */
export function checkApproximate(value: unknown, name: string): Approximate {
  const opts = object(value, name);
  knownKeys(opts, ['rank'], name);
  return { rank: integer(opts.rank, `${name}.rank`, 1, MAX_APPROXIMATE_RANK) };
}

export interface GenaiLora {
  /** The bytes of the converted file, or null when GenAI reads the file as it is. */
  bytes: Buffer | null;
  /** With `approximate`: the layers fitted and their errors. */
  approximation?: Approximation;
  /** With `approximate`: Σ ‖ΔW − fit‖² and Σ ‖ΔW‖² over the fitted layers, to add more fits to the total. */
  totals?: { error2: number; norm2: number };
}

const PART_ORDER: readonly LoraPart[] = ['unet', 'transformer', 'text_encoder', 'text_encoder_2', 'text_encoder_3'];
const FAMILIES: readonly ModelFamily[] = ['sd', 'sdxl', 'lcm', 'sd3', 'flux', 'other'];

/** The parts each pipeline of GenAI 2026.3 applies LoRA to (see the header of this file). */
const GENAI_PARTS: Readonly<Record<ModelFamily, readonly LoraPart[]>> = {
  sd: ['unet', 'text_encoder'],
  lcm: ['unet', 'text_encoder'],
  sdxl: ['unet', 'text_encoder', 'text_encoder_2'],
  sd3: ['transformer'],
  flux: ['transformer', 'text_encoder'],
  other: PART_ORDER,
};

/** The model parts that GenAI 2026.3 applies LoRA to, for a family. */
export function genaiParts(family: ModelFamily): LoraPart[] {
  if (!FAMILIES.includes(family)) throw invalid(`one of ${FAMILIES.map((f) => `"${f}"`).join(', ')}`, 'family', family);
  return [...GENAI_PARTS[family]];
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor names

/** LoRA variants that GenAI cannot apply (it would ignore their tensors, or apply a wrong result) and we cannot convert. */
const UNSUPPORTED: ReadonlyArray<[RegExp, string]> = [
  [/\.oft_diag$/, 'OFT (an early LyCORIS layout, "oft_diag")'],
  [/\.lora_[AB]\.bias$/, 'LoRA with biases (PEFT lora_bias)'],
  [/\.lora_embedding_[AB]$/, 'embedding LoRA (PEFT lora_embedding_A/B)'],
];

const PARTS = '(unet|transformer|text_encoder|text_encoder_2|text_encoder_3)';
// kohya's prefixes, and the LyCORIS wrapper's (lycoris/wrapper.py: LORA_PREFIX "lycoris", its UNet or transformer only).
const KOHYA =
  /^(lora_(?:unet|te[123]?)|lycoris)_(.+)\.(lora_down\.weight|lora_up\.weight|alpha|hada_w[12]_[ab]|hada_t[12]|lokr_w[12](?:_[ab])?|lokr_t2|diff|diff_b|dora_scale|lora_mid\.weight|oft_blocks|rescale)$/;
const PEFT = new RegExp(`^${PARTS}\\.(.+)\\.(?:lora_(A|B)\\.weight|(alpha)|(lora_magnitude_vector)(?:\\.weight)?)$`);
/**
 * PEFT's own save of a model it wrapped (`PeftModel.save_pretrained`: adapter_model.safetensors, what trainers that use
 * peft without diffusers' loaders leave): the module path under `base_model.model.`, with LoRA's, DoRA's, LoHa's or
 * LoKr's tensors. The part is the model peft wrapped, told by its module names (peftModelPart).
 */
const PEFT_MODEL =
  /^base_model\.model\.(.+)\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector(?:\.weight)?|hada_w[12]_[ab]|hada_t[12]|lokr_w[12](?:_[ab])?|lokr_t2)$/;
// diffusers' LoRAAttnProcessor names; save_attn_procs wrote them with no component prefix (a UNet's).
const DIFFUSERS_PROCESSOR = new RegExp(
  `^(?:${PARTS}\\.)?(.+)\\.processor\\.(to_q|to_k|to_v|to_out|add_q_proj|add_k_proj|add_v_proj|to_add_out)_lora\\.(down|up)\\.weight$`,
);
const DIFFUSERS_LINEAR = new RegExp(`^${PARTS}\\.(.+)\\.(?:lora_linear_layer|lora)\\.(down|up)\\.weight$`);
/**
 * The text encoders' attention in the same era (diffusers 0.14-0.18): `text_encoder.<layer>.self_attn.to_q_lora.down.weight`,
 * for the module `<layer>.self_attn.q_proj` (diffusers' DIFFUSERS_OLD_TO_PEFT maps them so).
 */
const DIFFUSERS_TEXT_ATTN = new RegExp(
  `^${PARTS}\\.(.+\\.self_attn)\\.(to_q|to_k|to_v|to_out)_lora\\.(down|up)\\.weight$`,
);
/**
 * ComfyUI's LoraSave (comfy_extras/nodes_lora_extract.py): the model's own module paths with kohya's suffixes, dots
 * kept; the UNet or DiT under `diffusion_model.`, the text encoders under `text_encoders.<clip_l|clip_g>.transformer.`.
 * ai-toolkit's files for ComfyUI (`lora_keys_use_comfy_prefix`) keep that prefix with PEFT's `lora_A` / `lora_B`.
 */
const COMFYUI =
  /^(diffusion_model|text_encoders\.clip_[lg]\.transformer)\.(.+)\.(lora_down\.weight|lora_up\.weight|lora_A\.weight|lora_B\.weight|alpha)$/;
const XLABS = /^((?:diffusion_model\.)?(?:double|single)_blocks\.\d+\..*lora\d?)\.(down|up)\.weight$/;
/** Top-level modules of the SD3 and Flux transformers (diffusers and original names), under kohya's `lora_unet_`. */
const TRANSFORMER_MODULES =
  /^(?:transformer_blocks|single_transformer_blocks|double_blocks|single_blocks|joint_blocks|context_embedder|x_embedder|time_text_embed|pos_embed|norm_out|proj_out|final_layer|img_in|txt_in|time_in|vector_in|guidance_in|t_embedder|y_embedder)_/;
const SGM_MODULES = /^(?:input_blocks|middle_block|output_blocks)_/;

/**
 * The tensors of LyCORIS's LoHa ((w1_a·w1_b) ⊙ (w2_a·w2_b)), LoKr (w1 ⊗ w2, each full or as _a·_b) and full weight
 * differences (`diff`, and `diff_b` for the bias).
 */
export type FactorRole =
  | 'hada_w1_a'
  | 'hada_w1_b'
  | 'hada_w2_a'
  | 'hada_w2_b'
  | 'lokr_w1'
  | 'lokr_w1_a'
  | 'lokr_w1_b'
  | 'lokr_w2'
  | 'lokr_w2_a'
  | 'lokr_w2_b'
  | 'hada_t1'
  | 'hada_t2'
  | 'lokr_t2'
  | 'diff'
  | 'diff_b'
  | 'oft_blocks'
  | 'rescale';

type Role = 'down' | 'up' | 'alpha' | 'magnitude' | 'mid' | FactorRole;

function isFactorRole(role: Role): role is FactorRole {
  return (
    role.startsWith('hada_') ||
    role.startsWith('lokr_') ||
    role.startsWith('diff') ||
    role === 'oft_blocks' ||
    role === 'rescale'
  );
}

interface ParsedName {
  key: string;
  naming: LoraNaming;
  part: LoraPart;
  module: string;
  role: Role;
}

function kohyaPart(prefix: string, module: string): LoraPart {
  if (prefix === 'lora_unet' || prefix === 'lycoris') return TRANSFORMER_MODULES.test(module) ? 'transformer' : 'unet';
  if (prefix === 'lora_te2') return 'text_encoder_2';
  if (prefix === 'lora_te3') return 'text_encoder_3';
  return 'text_encoder';
}

/** The part of a ComfyUI name: its CLIP-G is SDXL's second text encoder; its DiTs are transformers. */
function comfyPart(prefix: string, module: string): LoraPart {
  if (prefix.startsWith('text_encoders.')) return prefix.includes('clip_g') ? 'text_encoder_2' : 'text_encoder';
  return TRANSFORMER_MODULES.test(module.replaceAll('.', '_')) ? 'transformer' : 'unet';
}

/**
 * The model a PEFT save wrapped, from a module path: a CLIP text model's (`text_model.`) is a text encoder (the first:
 * a file of one model cannot say it was SDXL's second), a DiT's blocks a transformer, else a UNet.
 */
function peftModelPart(module: string): LoraPart {
  if (module.startsWith('text_model.')) return 'text_encoder';
  return TRANSFORMER_MODULES.test(module.replaceAll('.', '_')) ? 'transformer' : 'unet';
}

/** A part that PARTS matched. */
function partNamed(name: string): LoraPart {
  return PART_ORDER.find((part) => part === name) ?? 'unet';
}

/** A role that a `(down|up)` group matched. */
function downOrUp(role: string | undefined): Role {
  return role === 'down' ? 'down' : 'up';
}

function parseName(name: string): ParsedName | undefined {
  let m = KOHYA.exec(name);
  if (m) {
    const [, prefix = '', module = '', suffix] = m;
    const role: Role =
      suffix === 'alpha'
        ? 'alpha'
        : suffix === 'lora_down.weight'
          ? 'down'
          : suffix === 'lora_up.weight'
            ? 'up'
            : suffix === 'dora_scale'
              ? 'magnitude'
              : suffix === 'lora_mid.weight'
                ? 'mid'
                : (suffix as FactorRole);
    const naming = prefix === 'lycoris' ? 'lycoris' : 'kohya';
    return { key: `${prefix}_${module}`, naming, part: kohyaPart(prefix, module), module, role };
  }
  m = PEFT.exec(name);
  if (m) {
    const [, part = '', module = '', ab, alpha, magnitude] = m;
    const role: Role = alpha ? 'alpha' : magnitude ? 'magnitude' : ab === 'A' ? 'down' : 'up';
    return { key: `${part}.${module}`, naming: 'peft', part: partNamed(part), module, role };
  }
  m = PEFT_MODEL.exec(name);
  if (m) {
    const [, module = '', suffix = ''] = m;
    const role: Role =
      suffix === 'lora_A.weight'
        ? 'down'
        : suffix === 'lora_B.weight'
          ? 'up'
          : suffix.startsWith('lora_magnitude_vector')
            ? 'magnitude'
            : (suffix as FactorRole);
    const part = peftModelPart(module);
    return { key: `${part}.${module}`, naming: 'peft', part, module, role };
  }
  m = DIFFUSERS_PROCESSOR.exec(name);
  if (m) {
    const [, part = 'unet', path = '', projection, role] = m;
    const module = `${path}.${projection === 'to_out' ? 'to_out.0' : projection}`;
    return { key: `${part}.${module}`, naming: 'diffusers', part: partNamed(part), module, role: downOrUp(role) };
  }
  m = DIFFUSERS_TEXT_ATTN.exec(name);
  if (m) {
    const [, part = '', path = '', projection = '', role] = m;
    const module = `${path}.${projection.slice(3)}_proj`;
    return { key: `${part}.${module}`, naming: 'diffusers', part: partNamed(part), module, role: downOrUp(role) };
  }
  m = COMFYUI.exec(name);
  if (m) {
    const [, prefix = '', module = '', suffix] = m;
    const role: Role =
      suffix === 'alpha' ? 'alpha' : suffix === 'lora_down.weight' || suffix === 'lora_A.weight' ? 'down' : 'up';
    return { key: `${prefix}.${module}`, naming: 'comfyui', part: comfyPart(prefix, module), module, role };
  }
  m = DIFFUSERS_LINEAR.exec(name);
  if (m) {
    const [, part = '', module = '', role] = m;
    return { key: `${part}.${module}`, naming: 'diffusers', part: partNamed(part), module, role: downOrUp(role) };
  }
  m = XLABS.exec(name);
  if (m) {
    const [, module = '', role] = m;
    return { key: module, naming: 'xlabs', part: 'transformer', module, role: downOrUp(role) };
  }
  return undefined;
}

function formatError(problem: string): MultiloraError {
  return new MultiloraError('ERR_ADAPTER_FORMAT', problem);
}

function invalidLora(problem: string): MultiloraError {
  return new MultiloraError('ERR_ADAPTER_INVALID', problem);
}

// ---------------------------------------------------------------------------------------------------------------
// PEFT metadata

type PeftConfig = Record<string, unknown>;

function peftConfig(metadata: Record<string, string>): PeftConfig | undefined {
  const raw = metadata.lora_adapter_metadata;
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!isPlainObject(parsed)) {
    throw invalidLora('The LoRA\'s "lora_adapter_metadata" metadata is not a JSON object');
  }
  return parsed;
}

/** `<part>.<key>` of diffusers' metadata, or the bare key that a single-part file may use. */
function peftValue(config: PeftConfig, part: LoraPart, key: string): unknown {
  return config[`${part}.${key}`] ?? config[key];
}

/**
 * PEFT's rank_pattern / alpha_pattern: the first pattern that matches the end of the module path, as a module name
 * (what diffusers writes) or, as PEFT reads them, as a regular expression. A file's patterns are the file author's:
 * one such as "(.*)*x" would backtrack for minutes on a 40-character module name and hold the JS thread, so only
 * patterns that cannot backtrack badly run as regular expressions (patternRegex), and on module paths of sane length.
 */
function patternValue(patterns: unknown, module: string, key: string): unknown {
  if (!isPlainObject(patterns)) return undefined;
  for (const [pattern, value] of Object.entries(patterns)) {
    if (module === pattern || module.endsWith(`.${pattern}`)) return value;
    if (!REGEX_SYNTAX.test(pattern)) continue; // a plain module name that did not match
    const re = patternRegex(pattern);
    if (re === undefined) {
      throw invalidLora(
        `The LoRA's metadata has the pattern ${quote(pattern)} (for layer ${quote(key)}), a regular expression that ` +
          'multilora does not run: it repeats a group or has more than two unbounded repeats, which can take ' +
          'exponential time; PEFT files name modules or use simple expressions',
      );
    }
    if (re !== null && module.length <= MAX_PATTERN_SUBJECT && re.test(module)) return value;
  }
  return undefined;
}

/** Characters that make a pattern more than a module name ('.' is in module names too). */
const REGEX_SYNTAX = /[\\^$*+?()[\]{}|]/;
const MAX_PATTERN_LENGTH = 1000;
/** Longer module paths are matched by name only: a regex with two unbounded repeats is quadratic in them. */
const MAX_PATTERN_SUBJECT = 1000;
const patternCache = new Map<string, RegExp | null | undefined>();

/**
 * The RegExp of a PEFT pattern (anchored as PEFT anchors it), null when it does not compile (then it names nothing),
 * or undefined when it could backtrack badly: a quantified group, or more than two unbounded repeats outside
 * character classes. Without those, matching is polynomial of degree at most 3 in the module path's length.
 */
function patternRegex(pattern: string): RegExp | null | undefined {
  if (patternCache.has(pattern)) return patternCache.get(pattern);
  let result: RegExp | null | undefined;
  if (pattern.length > MAX_PATTERN_LENGTH) result = undefined;
  else {
    let unbounded = 0;
    let inClass = false;
    let safe = true;
    for (let i = 0; i < pattern.length && safe; i += 1) {
      const c = pattern[i];
      if (c === '\\') {
        i += 1;
        continue;
      }
      if (inClass) {
        if (c === ']') inClass = false;
        continue;
      }
      if (c === '[') inClass = true;
      else if (c === ')' && /^[*+?{]/.test(pattern.slice(i + 1, i + 2))) safe = false;
      else if (c === '*' || c === '+' || (c === '{' && /^\{\d*,\}/.test(pattern.slice(i)))) unbounded += 1;
    }
    if (!safe || unbounded > 2) result = undefined;
    else {
      try {
        result = new RegExp(`(?:^|\\.)(?:${pattern})$`);
      } catch {
        result = null;
      }
    }
  }
  if (patternCache.size > 1000) patternCache.clear();
  patternCache.set(pattern, result);
  return result;
}

function positive(value: unknown, what: string, layer: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalidLora(
      `The LoRA's metadata gives ${what} ${JSON.stringify(value)} for layer ${quote(layer)}; expected a positive number`,
    );
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------------------
// Analysis

interface Group {
  key: string;
  naming: LoraNaming;
  part: LoraPart;
  module: string;
  down?: TensorInfo;
  up?: TensorInfo;
  alpha?: TensorInfo;
  /** DoRA's magnitude: kohya/LyCORIS `dora_scale`, PEFT `lora_magnitude_vector`. */
  magnitude?: TensorInfo;
  /** LyCORIS LoCon's Tucker core, `lora_mid.weight`. */
  mid?: TensorInfo;
  factors: Partial<Record<FactorRole, TensorInfo>>;
}

/** The outline of a SafetensorsHeader: checkHeader's test. */
function isHeader(header: unknown): header is SafetensorsHeader {
  return isPlainObject(header) && Array.isArray(header.tensors) && isPlainObject(header.metadata);
}

function checkHeader(header: unknown): SafetensorsHeader {
  if (!isHeader(header)) {
    throw invalid('a header from readSafetensorsHeader, parseSafetensors or openSafetensors', 'header', header);
  }
  return header;
}

function spatial(info: TensorInfo): string | undefined {
  if (info.shape.length !== 4) return undefined;
  const [, , kh, kw] = info.shape as [number, number, number, number];
  return kh * kw > 1 ? `${kh}x${kw}` : undefined;
}

/**
 * Works out the format, layers, ranks and parts of a LoRA file from its validated header; `read` fetches the small
 * `.alpha` tensors. Rejects with ERR_ADAPTER_FORMAT for a file that is no LoRA multilora knows, or a kind GenAI cannot
 * apply (Tucker LoHa and LoKr, DoRA, OFT...), and with ERR_ADAPTER_INVALID for a broken one (a layer without its B, ranks that
 * disagree, A and B of different dtypes, which GenAI refuses too).
 */
export async function analyzeLora(header: SafetensorsHeader, read: TensorRead): Promise<LoraAnalysis> {
  const { tensors, metadata } = checkHeader(header);
  if (typeof read !== 'function') throw invalid('a function (info) => Buffer', 'read', read);
  if (tensors.length === 0) throw formatError('The LoRA file holds no tensors');

  const groups = new Map<string, Group>();
  const unrecognized: string[] = [];
  for (const tensor of tensors) {
    for (const [pattern, kind] of UNSUPPORTED) {
      if (pattern.test(tensor.name)) {
        throw formatError(
          `The LoRA is ${kind} (tensor ${quote(tensor.name)}), which OpenVINO GenAI 2026.3 cannot apply and multilora ` +
            'cannot convert; only plain LoRA (A and B matrices, optionally alpha) works',
        );
      }
    }
    const parsed = parseName(tensor.name);
    if (!parsed) {
      unrecognized.push(tensor.name);
      continue;
    }
    let group = groups.get(parsed.key);
    if (!group) {
      group = { key: parsed.key, naming: parsed.naming, part: parsed.part, module: parsed.module, factors: {} };
      groups.set(parsed.key, group);
    }
    const role = parsed.role;
    const previous = isFactorRole(role) ? group.factors[role] : group[role];
    if (previous) {
      throw invalidLora(
        `Two tensors, ${quote(previous.name)} and ${quote(tensor.name)}, both give the ${role} of LoRA layer ${quote(parsed.key)}`,
      );
    }
    if (isFactorRole(role)) group.factors[role] = tensor;
    else group[role] = tensor;
  }
  if (groups.size === 0) {
    throw formatError(
      `None of the ${tensors.length} tensors of the LoRA file is named as a LoRA format that multilora knows ` +
        '(kohya "lora_unet_<module>.lora_down.weight", PEFT "unet.<module>.lora_A.weight", diffusers, XLabs); ' +
        `for example ${quote(unrecognized[0])}`,
    );
  }

  const config = peftConfig(metadata);
  // The layers' alphas are read all at once (hundreds of 4-byte reads, one by one, took a quarter of a second for an
  // SDXL LoRA); a failure is the first layer's in name order, as if they were read one by one.
  const sorted = [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const made = await Promise.allSettled(sorted.map((group) => makeLayer(group, config, read)));
  const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const layers = made.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));

  const namings = new Set(layers.map((l) => l.naming));
  let format: LoraFormat;
  if (namings.size > 1) format = 'mixed';
  else if (namings.has('kohya')) {
    format = layers.some((l) => spatial(l.down) || spatial(l.up))
      ? 'locon'
      : layers.some((l) => l.part === 'unet' && SGM_MODULES.test(l.module))
        ? 'sgm'
        : 'kohya';
  } else format = [...namings][0];

  return {
    format,
    layers,
    ranks: [...new Set(layers.map((l) => l.rank))].sort((a, b) => a - b),
    parts: PART_ORDER.filter((p) => layers.some((l) => l.part === p)),
    unrecognized,
  };
}

async function makeLayer(group: Group, config: PeftConfig | undefined, read: TensorRead): Promise<LoraLayer> {
  if (group.factors.oft_blocks || group.factors.rescale) return makeOftLayer(group, read);
  if (group.factors.diff || group.factors.diff_b) return makeFullLayer(group);
  if (Object.keys(group.factors).length > 0) return makeFactorizedLayer(group, read);
  const { key, down, up, alpha: alphaTensor } = group;
  const names = [down, up, alphaTensor].flatMap((t) => (t ? [quote(t.name)] : [])).join(' and ');
  if (!down || !up) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has ${names} but no ${down ? 'up (B)' : up ? 'down (A)' : 'down (A) or up (B)'} matrix ` +
        '(GenAI refuses it too: "Either A, B or both matrices are missing")',
    );
  }
  const rank = down.shape[0];
  const dims = down.shape.length;
  if (
    (dims !== 2 && dims !== 4) ||
    up.shape.length !== dims ||
    !(rank > 0) ||
    up.shape[1] !== rank ||
    (dims === 4 && spatial(up) !== undefined)
  ) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has down (A) of shape ${JSON.stringify(down.shape)} and up (B) of shape ` +
        `${JSON.stringify(up.shape)}, which make no LoRA pair (A is [rank, in] or [rank, in, kh, kw], B is [out, rank] ` +
        'or [out, rank, 1, 1])',
    );
  }
  if (down.dtype !== up.dtype) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has down (A) in ${down.dtype} but up (B) in ${up.dtype}; GenAI requires one dtype for both`,
    );
  }

  let alpha: number | undefined;
  let scaleRank = rank;
  let rslora = false;
  if (config && (group.naming === 'peft' || group.naming === 'diffusers')) {
    const r =
      patternValue(peftValue(config, group.part, 'rank_pattern'), group.module, key) ??
      peftValue(config, group.part, 'r');
    const given = r === undefined ? undefined : positive(r, 'r', key);
    if (given !== undefined && given !== rank) {
      throw invalidLora(
        `The LoRA's metadata gives r = ${given} for layer ${quote(key)}, but its tensors have rank ${rank}`,
      );
    }
    const a =
      patternValue(peftValue(config, group.part, 'alpha_pattern'), group.module, key) ??
      peftValue(config, group.part, 'lora_alpha');
    if (a !== undefined) alpha = positive(a, 'lora_alpha', key);
    if (peftValue(config, group.part, 'use_dora') === true && !group.magnitude) {
      throw invalidLora(
        `The LoRA's metadata asks for DoRA (use_dora) on ${group.part}, but its layer ${quote(key)} has no ` +
          'lora_magnitude_vector',
      );
    }
    rslora = peftValue(config, group.part, 'use_rslora') === true;
    if (rslora) scaleRank = Math.sqrt(rank);
  }
  if (alphaTensor) alpha = await readAlpha(key, alphaTensor, read);
  const layer: LoraLayer = {
    key,
    naming: group.naming,
    part: group.part,
    module: group.module,
    down,
    up,
    rank,
    scale: alpha === undefined ? 1 : alpha / scaleRank,
  };
  if (alphaTensor) layer.alphaTensor = alphaTensor;
  if (alpha !== undefined) layer.alpha = alpha;
  if (rslora) layer.rslora = true;
  if (group.magnitude) layer.dora = doraOf(key, group.magnitude, up.shape[0], down.shape[1], group.naming === 'peft');
  if (group.mid) {
    const { mid } = group;
    const [r1, r2, kh = 0, kw = 0] = mid.shape;
    if (
      mid.shape.length !== 4 ||
      r1 !== rank ||
      r2 !== rank ||
      spatial(down) !== undefined ||
      mid.dtype !== down.dtype
    ) {
      throw invalidLora(
        `LoRA layer ${quote(key)} has the Tucker core ${quote(mid.name)} of shape ${JSON.stringify(mid.shape)} in ` +
          `${mid.dtype} with down (A) of shape ${JSON.stringify(down.shape)} in ${down.dtype}: LyCORIS's core is ` +
          `[${rank}, ${rank}, kh, kw] beside an A of [${rank}, in, 1, 1], in one dtype`,
      );
    }
    layer.tucker = { down, mid };
    layer.down = madeTensor(`${key}.lora_down.weight`, [rank, down.shape[1], kh, kw]);
  }
  return layer;
}

/**
 * Which axis a DoRA magnitude's norms run along, never a guess: PEFT's `lora_magnitude_vector` is always per output
 * ([out], or [1, out, 1, 1] for a convolution, which a LyCORIS [1, in, 1, 1] would look like on a square layer: the
 * name tells them apart); LyCORIS's `dora_scale` is [out, 1, ...] per output or [1, in, ...] per input. A shape
 * that fits neither fails.
 */
function doraOf(
  key: string,
  magnitude: TensorInfo,
  out: number,
  inn: number,
  peft: boolean,
): NonNullable<LoraLayer['dora']> {
  const [first = 0, second = 1, ...rest] = magnitude.shape;
  const ones = rest.every((d) => d === 1);
  if (peft) {
    if (magnitude.shape.length === 1 && first === out) return { magnitude, axis: 'out' };
    if (magnitude.shape.length === 4 && ones && first === 1 && second === out) return { magnitude, axis: 'out' };
    throw invalidLora(
      `DoRA layer ${quote(key)} has the magnitude ${quote(magnitude.name)} of shape ${JSON.stringify(magnitude.shape)}; ` +
        `PEFT's lora_magnitude_vector for its ${out} outputs is [${out}] (or [1, ${out}, 1, 1] for a convolution)`,
    );
  }
  if (magnitude.shape.length >= 2 && ones && first === out && second === 1) return { magnitude, axis: 'out' };
  if (magnitude.shape.length >= 2 && ones && first === 1 && second === inn) return { magnitude, axis: 'in' };
  throw invalidLora(
    `DoRA layer ${quote(key)} has the magnitude ${quote(magnitude.name)} of shape ${JSON.stringify(magnitude.shape)}; ` +
      `for its ${out} outputs and ${inn} inputs it must be [${out}] or [${out}, 1] (one per output) or [1, ${inn}] ` +
      '(one per input)',
  );
}

async function readAlpha(key: string, info: TensorInfo, read: TensorRead): Promise<number> {
  const value = scalarValue(info, await read(info));
  if (!Number.isFinite(value))
    throw invalidLora(`The alpha of LoRA layer ${quote(key)} is ${value}, not a finite number`);
  return value;
}

/** A tensor that a rewrite makes, not one of the file: F32, no bytes in it (offset -1). */
function madeTensor(name: string, shape: number[]): TensorInfo {
  return { name, dtype: 'F32', shape, begin: -1, end: -1, byteLength: shape.reduce((a, b) => a * b, 4), offset: -1 };
}

/** A factor's sides as a matrix: 2-D, or a 1x1 convolution's [out, in, 1, 1]. */
function factorDims(key: string, info: TensorInfo): [number, number] {
  const [rows = 0, cols = 0, ...kernel] = info.shape;
  const kernelSize = kernel.reduce((a, b) => a * b, 1);
  if (info.shape.length === 4 && kernelSize > 1) {
    throw formatError(
      `LoRA layer ${quote(key)} is a convolution with a ${kernel.join('x')} kernel (tensor ${quote(info.name)}); ` +
        'OpenVINO GenAI 2026.3 applies only 1x1 ones at generate',
    );
  }
  if ((info.shape.length !== 2 && info.shape.length !== 4) || !(rows > 0) || !(cols > 0)) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has ${quote(info.name)} of shape ${JSON.stringify(info.shape)}, not a matrix`,
    );
  }
  return [rows, cols];
}

/** The outline of one LoKr factor: `lokr_wN` in full, or `lokr_wN_a` · `lokr_wN_b`. */
function lokrFactor(group: Group, n: 1 | 2): FactorShape & { low?: TensorInfo } {
  const f = group.factors;
  const full = f[`lokr_w${n}`];
  const a = f[`lokr_w${n}_a`];
  const b = f[`lokr_w${n}_b`];
  if (full && !a && !b) {
    const [rows, cols] = factorDims(group.key, full);
    return { rows, cols };
  }
  if (!full && a && b) {
    const [rows, rankA] = factorDims(group.key, a);
    const [rankB, cols] = factorDims(group.key, b);
    if (rankA !== rankB) {
      throw invalidLora(
        `LoKr layer ${quote(group.key)} has ${quote(a.name)} of shape ${JSON.stringify(a.shape)} and ${quote(b.name)} ` +
          `of shape ${JSON.stringify(b.shape)}, which do not multiply`,
      );
    }
    return { rows, cols, rank: rankA, low: b };
  }
  throw invalidLora(
    `LoKr layer ${quote(group.key)} needs either lokr_w${n} or both lokr_w${n}_a and lokr_w${n}_b; it has ` +
      ([full, a, b].flatMap((t) => (t ? [quote(t.name)] : [])).join(', ') || 'none of them'),
  );
}

/**
 * A full weight difference (LyCORIS "full": `diff` of the layer's weight shape, `diff_b` of its bias): as a LoRA pair,
 * A is the difference and B the identity, of rank `out`, which only fusing takes (toGenaiLora with `kernels`).
 */
function makeFullLayer(group: Group): LoraLayer {
  const { key, factors } = group;
  const { diff, diff_b: bias, ...others } = factors;
  const named = Object.values(factors)
    .map((t) => quote(t.name))
    .join(', ');
  if (!diff || group.down || group.up || group.magnitude || Object.keys(others).length > 0) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has ${named}${group.down || group.up || group.magnitude ? ' and LoRA or DoRA tensors' : ''}: a full weight ` +
        'difference is a "diff" tensor (and a "diff_b" for the bias), alone',
    );
  }
  const [out = 0, inn = 0, ...kernel] = diff.shape;
  if ((diff.shape.length !== 2 && diff.shape.length !== 4) || !(out > 0) || !(inn > 0)) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has ${quote(diff.name)} of shape ${JSON.stringify(diff.shape)}, no weight`,
    );
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== out || bias.dtype !== diff.dtype)) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has ${quote(bias.name)} of shape ${JSON.stringify(bias.shape)} in ${bias.dtype}; ` +
        `the bias difference of ${quote(diff.name)} is [${out}] in ${diff.dtype}`,
    );
  }
  const up = kernel.length ? [out, out, 1, 1] : [out, out];
  return madeLayer(group, { kind: 'full', tensors: factors }, [out, inn, ...kernel], up, undefined, undefined);
}

/**
 * LyCORIS's Diag-OFT: `oft_blocks` [n, b, b] rotate the layer's n·b outputs block by block, W' = R·W with R the
 * Cayley transform of each block's skew-symmetric part, `rescale` [out, 1, ...] (optional) scales the rows, and the
 * `.alpha` is a constraint on the rotation's norm, not a strength. It changes the model's own weights, so only a
 * fuse takes it: A and B are placeholders of [out, out], never written. BOFT (4-D blocks) is refused.
 */
async function makeOftLayer(group: Group, read: TensorRead): Promise<LoraLayer> {
  const { key, factors } = group;
  const { oft_blocks: blocks, rescale, ...others } = factors;
  const named = Object.values(factors)
    .map((t) => quote(t.name))
    .join(', ');
  if (!blocks || group.down || group.up || group.magnitude || group.mid || Object.keys(others).length > 0) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has ${named}${group.down || group.up ? ' and LoRA tensors' : ''}: an OFT layer is ` +
        '"oft_blocks" (and a "rescale"), with an alpha, alone',
    );
  }
  if (blocks.shape.length === 4) {
    throw formatError(
      `LoRA layer ${quote(key)} is BOFT (tensor ${quote(blocks.name)} of shape ${JSON.stringify(blocks.shape)}: ` +
        'butterfly blocks), which multilora does not apply or fuse; only Diag-OFT ([n, b, b] blocks) is fused',
    );
  }
  const [n = 0, b = 0, b2 = 0] = blocks.shape;
  if (blocks.shape.length !== 3 || !(n > 0) || !(b > 0) || b2 !== b) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has ${quote(blocks.name)} of shape ${JSON.stringify(blocks.shape)}; OFT's blocks ` +
        'are [n, b, b]',
    );
  }
  const out = n * b;
  if (rescale && (rescale.shape[0] !== out || rescale.shape.slice(1).some((d) => d !== 1))) {
    throw invalidLora(
      `LoRA layer ${quote(key)} has ${quote(rescale.name)} of shape ${JSON.stringify(rescale.shape)}; for ` +
        `${n} blocks of ${b} it is [${out}, 1, ...]`,
    );
  }
  const alpha = group.alpha ? await readAlpha(key, group.alpha, read) : undefined;
  return madeLayer(group, { kind: 'oft', tensors: factors }, [out, out], [out, out], alpha, undefined);
}

/**
 * A layer whose A and B a rewrite makes (F32 tensors of no bytes in the file), of the given shapes; its scale is
 * LyCORIS's alpha / dim (1 without an alpha or a dim), its DoRA magnitude, if any, LyCORIS's `dora_scale`.
 */
function madeLayer(
  group: Group,
  factorized: NonNullable<LoraLayer['factorized']>,
  downShape: number[],
  upShape: number[],
  alpha: number | undefined,
  dim: number | undefined,
): LoraLayer {
  const { key } = group;
  const [rank = 0, inn = 0] = downShape;
  const [out = 0] = upShape;
  const layer: LoraLayer = {
    key,
    naming: group.naming,
    part: group.part,
    module: group.module,
    down: madeTensor(`${key}.lora_down.weight`, downShape),
    up: madeTensor(`${key}.lora_up.weight`, upShape),
    factorized,
    rank,
    scale: alpha !== undefined && dim !== undefined ? alpha / dim : 1,
  };
  if (group.alpha) layer.alphaTensor = group.alpha;
  if (alpha !== undefined) layer.alpha = alpha;
  if (group.magnitude) layer.dora = doraOf(key, group.magnitude, out, inn, false);
  return layer;
}

/**
 * A LyCORIS LoHa or LoKr layer (non-Tucker, linear or 1x1 convolution): its shapes are checked and its A and B are
 * those of the exact rewrite (lib/lora/factorized.ts). Its scale is LyCORIS's: alpha / dim, dim being the rank of
 * w1_b (LoHa) or of the low-rank LoKr factor (w2_b, else w1_b); 1 without an alpha, and for a LoKr of two full factors.
 */
async function makeFactorizedLayer(group: Group, read: TensorRead): Promise<LoraLayer> {
  const { key, factors } = group;
  const tensors = Object.values(factors);
  const named = tensors.map((t) => quote(t.name)).join(', ');
  if (group.down || group.up) {
    throw invalidLora(`LoRA layer ${quote(key)} has LoRA matrices and LyCORIS factors (${named}) at once`);
  }
  const roles = Object.keys(factors);
  const kind = roles.every((r) => r.startsWith('hada_'))
    ? 'loha'
    : roles.every((r) => r.startsWith('lokr_'))
      ? 'lokr'
      : undefined;
  if (!kind) throw invalidLora(`LoRA layer ${quote(key)} mixes LoHa and LoKr tensors (${named})`);
  const dtype = tensors[0]?.dtype;
  if (tensors.some((t) => t.dtype !== dtype)) {
    throw invalidLora(`LoRA layer ${quote(key)} has factors of different dtypes (${named}); LyCORIS writes one`);
  }
  if (isDense(factors)) return makeDenseLayer(group, kind, read);
  let out: number;
  let inn: number;
  let rank: number;
  let dim: number | undefined;
  if (kind === 'loha') {
    const { hada_w1_a: w1a, hada_w1_b: w1b, hada_w2_a: w2a, hada_w2_b: w2b } = factors;
    if (!w1a || !w1b || !w2a || !w2b) {
      throw invalidLora(
        `LoHa layer ${quote(key)} needs hada_w1_a, hada_w1_b, hada_w2_a and hada_w2_b; it has only ${named}`,
      );
    }
    const [o1, r1] = factorDims(key, w1a);
    const [r1b, i1] = factorDims(key, w1b);
    const [o2, r2] = factorDims(key, w2a);
    const [r2b, i2] = factorDims(key, w2b);
    if (r1 !== r1b || r2 !== r2b || o1 !== o2 || i1 !== i2) {
      throw invalidLora(
        `LoHa layer ${quote(key)} has factors of shapes ${[w1a, w1b, w2a, w2b].map((t) => JSON.stringify(t.shape)).join(', ')}: ` +
          'w1_a · w1_b and w2_a · w2_b must be products of one shape ([out, r] · [r, in])',
      );
    }
    [out, inn, rank, dim] = [o1, i1, r1 * r2, r1];
  } else {
    const w1 = lokrFactor(group, 1);
    const w2 = lokrFactor(group, 2);
    [out, inn, rank] = [w1.rows * w2.rows, w1.cols * w2.cols, kroneckerRank(w1, w2)];
    dim = w2.low ? w2.rank : w1.low ? w1.rank : undefined;
  }
  const alpha = group.alpha ? await readAlpha(key, group.alpha, read) : undefined;
  return madeLayer(group, { kind, tensors: factors }, [rank, inn], [out, rank], alpha, dim);
}

/**
 * A LoHa or LoKr that only fusing takes (lib/lora/dense.ts): its A is the whole change [out, in, kh, kw], its B the
 * identity, its rank out; its scale LyCORIS's alpha / lora_dim (1 when every factor is full).
 */
async function makeDenseLayer(group: Group, kind: 'loha' | 'lokr', read: TensorRead): Promise<LoraLayer> {
  const { key, factors } = group;
  const { out, inn, kernel, dim } = denseOutline(key, kind, factors);
  const alpha = group.alpha ? await readAlpha(key, group.alpha, read) : undefined;
  const factorized = { kind, tensors: factors, dense: true };
  return madeLayer(group, factorized, [out, inn, ...kernel], [out, out, 1, 1], alpha, dim);
}

/** The file's tensors that a layer is made of (for a factorized one, its factors), alpha included. */
export function layerTensors(layer: LoraLayer): TensorInfo[] {
  const own = layer.factorized
    ? Object.values(layer.factorized.tensors)
    : layer.tucker
      ? [layer.tucker.down, layer.tucker.mid, layer.up]
      : [layer.down, layer.up];
  if (layer.dora) own.push(layer.dora.magnitude);
  return layer.alphaTensor ? [...own, layer.alphaTensor] : own;
}

/** Opens a LoRA (a .safetensors path or the bytes of one), validates it and analyses it. */
export async function inspectLora(source: string | Uint8Array): Promise<LoraAnalysis> {
  const reader = await openSafetensors(source);
  try {
    return await analyzeLora(reader.header, reader.read);
  } catch (err) {
    if (err instanceof MultiloraError && typeof source === 'string') {
      throw new MultiloraError(err.code, `${source}: ${err.message}`, { cause: err });
    }
    throw err;
  } finally {
    await reader.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Conversion

/** The names one layer gets in a file for GenAI. */
export interface GenaiNames {
  down: string;
  up: string;
  /** Absent for XLabs names, which have no alpha. */
  alpha?: string;
}

export interface GenaiPlan {
  /** The layers GenAI applies for the family, and their names. */
  layers: Array<{ layer: LoraLayer; names: GenaiNames }>;
  /** Layers of parts GenAI does not apply LoRA to for the family: a converted file leaves them out. */
  dropped: LoraLayer[];
}

/** The name of a rewritten layer before each tensor's suffix: what its side tensors (`.diff_b`, `.dora_scale_*`…) follow. */
export function genaiStem(names: GenaiNames): string {
  return names.down.replace(/\.lora_down\.weight$/, '');
}

function kohyaNames(stem: string): GenaiNames {
  return { down: `${stem}.lora_down.weight`, up: `${stem}.lora_up.weight`, alpha: `${stem}.alpha` };
}

/** The prefix of GenAI's LoRA names for a model part (the defaults of its image-generation models). */
export function genaiPrefix(part: LoraPart, family: ModelFamily): string {
  switch (part) {
    case 'unet':
      return 'lora_unet';
    case 'transformer':
      return 'transformer';
    case 'text_encoder':
      return family === 'sdxl' ? 'lora_te1' : 'lora_te';
    case 'text_encoder_2':
      return 'lora_te2';
    default:
      return 'lora_te3';
  }
}

function genaiNames(layer: LoraLayer, family: ModelFamily): GenaiNames | undefined {
  if (!GENAI_PARTS[family].includes(layer.part)) return undefined;
  const textEncoder = layer.part.startsWith('text_encoder');
  switch (layer.naming) {
    case 'kohya':
      // GenAI's own kohya names, but with the text-encoder prefix that this family's pipeline uses.
      if (layer.part === 'unet' && family !== 'other') {
        const bare = bareUnetModule(layer);
        if (bare) return kohyaNames(bare);
      }
      return kohyaNames(
        textEncoder && family !== 'other' ? `${genaiPrefix(layer.part, family)}_${layer.module}` : layer.key,
      );
    case 'xlabs':
      if (family !== 'flux' && family !== 'other') return undefined;
      return { down: `${layer.key}.down.weight`, up: `${layer.key}.up.weight` };
    default:
      if (layer.part === 'transformer') return kohyaNames(`transformer.${layer.module}`);
      if (layer.part === 'unet') {
        return kohyaNames(bareUnetModule(layer) ?? `lora_unet_${layer.module.replaceAll('.', '_')}`);
      }
      return kohyaNames(`${genaiPrefix(layer.part, family)}_${layer.module.replaceAll('.', '_')}`);
  }
}

/**
 * UNet modules whose kohya name GenAI 2026.3 cannot match (lora/names_mapping.cpp, _convert_unet_lora_key): it turns
 * every '_' of a `lora_unet_` name into '.' and gives back the underscores of a few names only (down_blocks,
 * transformer_blocks, to_q, proj_in...), so `time_emb_proj`, `conv_shortcut`, `conv_in`, `conv_out` and the
 * embeddings' `linear_1` stay `time.emb.proj`..., match no layer, and are dropped with a warning on stderr. Stability's
 * block names (`emb_layers`, `skip_connection`) come through its own mapping. A name without the prefix is the module
 * path itself (GenAI puts `lora_unet.` before it): written so, these layers are matched
 * (docs/GENAI-BUGS.md#kohya-mangled).
 */
const MANGLED_KOHYA = [
  /^((?:down|up)_blocks)_(\d+)_(resnets)_(\d+)_(time_emb_proj|conv_shortcut)$/,
  /^(mid_block)_(resnets)_(\d+)_(time_emb_proj|conv_shortcut)$/,
  /^(conv_in|conv_out)$/,
  /^(time_embedding|add_embedding)_(linear_\d)$/,
];
const MANGLED_DOTTED =
  /^(?:(?:down|up)_blocks\.\d+\.resnets\.\d+\.(?:time_emb_proj|conv_shortcut)|mid_block\.resnets\.\d+\.(?:time_emb_proj|conv_shortcut)|conv_in|conv_out|(?:time|add)_embedding\.linear_\d)$/;

/** The module path of a UNet layer whose kohya name GenAI would drop (MANGLED_KOHYA), else undefined. */
function bareUnetModule(layer: LoraLayer): string | undefined {
  if (layer.naming === 'kohya' || layer.naming === 'lycoris') {
    for (const pattern of MANGLED_KOHYA) {
      const m = pattern.exec(layer.module);
      if (m) return m.slice(1).join('.');
    }
    return undefined;
  }
  if (layer.naming === 'peft' || layer.naming === 'diffusers') {
    return MANGLED_DOTTED.test(layer.module) ? layer.module : undefined;
  }
  return undefined;
}

function checkFamily(value: unknown, name: string): ModelFamily {
  if (!FAMILIES.includes(value as ModelFamily)) {
    throw invalid(`one of ${FAMILIES.map((f) => `"${f}"`).join(', ')}`, name, value);
  }
  return value as ModelFamily;
}

/** The outline of a LoraAnalysis: checkAnalysis's test. */
function isAnalysis(analysis: unknown): analysis is LoraAnalysis {
  return isPlainObject(analysis) && Array.isArray(analysis.layers) && typeof analysis.format === 'string';
}

function checkAnalysis(analysis: unknown): LoraAnalysis {
  if (!isAnalysis(analysis)) throw invalid('the result of analyzeLora', 'analysis', analysis);
  return analysis;
}

/** Which layers a converted file keeps for a family, and under which names. */
export function planGenaiLora(analysis: LoraAnalysis, family: ModelFamily): GenaiPlan {
  checkAnalysis(analysis);
  checkFamily(family, 'family');
  const plan: GenaiPlan = { layers: [], dropped: [] };
  for (const layer of analysis.layers) {
    const names = genaiNames(layer, family);
    if (names) plan.layers.push({ layer, names });
    else plan.dropped.push(layer);
  }
  return plan;
}

/**
 * The LoRA in a form GenAI 2026.3 applies to a model of `options.family`: null when the file can be given to GenAI
 * as it is, else the bytes of a new safetensors file with kohya names GenAI matches (`lora_unet_…`, `lora_te_…` /
 * `lora_te1_…` / `lora_te2_…`, `transformer.<module>…` for SD3 and Flux) holding the layers of the parts GenAI applies
 * LoRA to for that family. `file` is the analysed file: its path or its bytes. With `scale: 'diffusers'`, each B is
 * multiplied by its layer's alpha/rank in its own dtype, and the `.alpha` written equals the rank.
 */
export async function toGenaiLora(
  file: string | Uint8Array,
  analysis: LoraAnalysis,
  options: GenaiLoraOptions,
): Promise<Buffer | null> {
  return (await convertForGenai(file, analysis, options)).bytes;
}

/** toGenaiLora, with what `approximate` did. */
export async function convertForGenai(
  file: string | Uint8Array,
  analysis: LoraAnalysis,
  options: GenaiLoraOptions,
): Promise<GenaiLora> {
  checkAnalysis(analysis);
  const opts = object(options, 'options');
  knownKeys(opts, ['family', 'scale', 'kernels', 'approximate', 'withModel'], 'the conversion options');
  const family = checkFamily(opts.family, 'options.family');
  const scale = opts.scale ?? 'genai';
  if (scale !== 'genai' && scale !== 'diffusers') throw invalid('"genai" or "diffusers"', 'options.scale', scale);
  const kernels = opts.kernels ?? false;
  if (typeof kernels !== 'boolean') throw invalid('a boolean', 'options.kernels', kernels);
  const approximate =
    opts.approximate === undefined ? undefined : checkApproximate(opts.approximate, 'options.approximate');
  const withModel = opts.withModel ?? false;
  if (typeof withModel !== 'boolean') throw invalid('a boolean', 'options.withModel', withModel);

  const plan = planGenaiLora(analysis, family);
  if (plan.layers.length === 0) {
    throw formatError(
      `None of the LoRA's layers (parts: ${analysis.parts.join(', ')}) is in a part that OpenVINO GenAI 2026.3 applies ` +
        `LoRA to on a ${family} model (${GENAI_PARTS[family].join(', ')})`,
    );
  }
  for (const { layer } of plan.layers) {
    // fitted by the caller from the model's weights: checked as for a fuse (DoRA's scale)
    const fromModel = withModel && approximate !== undefined && fittedWithModel(layer);
    checkForGenai(layer, scale, kernels || fromModel, approximate);
  }
  const unchanged =
    plan.dropped.length === 0 &&
    plan.layers.every(
      ({ layer, names }) =>
        !layer.factorized &&
        !layer.tucker &&
        !layer.dora &&
        names.down === layer.down.name &&
        names.up === layer.up.name &&
        // an integer alpha (diffusers writes int64) is rewritten as float32: GenAI refuses the file otherwise
        (layer.alphaTensor === undefined ||
          (layer.alphaTensor.name === names.alpha && isFloat(layer.alphaTensor.dtype))) &&
        (scale === 'genai' || layer.scale === 1),
    );
  const approximation: Approximation | undefined = approximate && { rank: approximate.rank, layers: [], error: 0 };
  if (unchanged) return approximation ? { bytes: null, approximation } : { bytes: null };

  const reader = await openSafetensors(file);
  try {
    const byName = new Map(reader.header.tensors.map((t) => [t.name, t]));
    const read = async (info: TensorInfo): Promise<Buffer> => {
      const own = byName.get(info.name);
      if (!own || own.offset !== info.offset || own.byteLength !== info.byteLength || own.dtype !== info.dtype) {
        throw invalid('the file that the analysis was made of', 'file', file);
      }
      return reader.read(own);
    };
    const out: TensorData[] = [];
    let error2 = 0;
    let norm2 = 0;
    for (const { layer, names } of plan.layers) {
      let { down, up } = layer;
      let rank = layer.rank;
      out.push(...(await sideTensors(layer, names, read)));
      if (layer.factorized?.kind === 'oft') continue; // its blocks are all a fuse needs
      let made = layer.factorized
        ? await factorizedPair(layer, read)
        : layer.tucker
          ? await tuckerPair(layer, layer.tucker, read)
          : undefined;
      if (made && approximation && fitted(layer, approximation.rank)) {
        const fit = fitLowRank(made, approximation.rank);
        made = fit.pair;
        rank = fit.pair.down.rows;
        down = madeTensor(down.name, [rank, ...down.shape.slice(1)]);
        up = madeTensor(up.name, [up.shape[0], rank, ...up.shape.slice(2)]);
        approximation.layers.push({ key: layer.key, from: layer.rank, rank, error: fit.error / fit.norm || 0 });
        error2 += fit.error ** 2;
        norm2 += fit.norm ** 2;
      }
      if (made) {
        // The rewrite's A and B in F32; B scaled as any B
        out.push({ name: names.down, dtype: 'F32', shape: down.shape, data: fromFloat32Array(made.down.data, 'F32') });
        const f = Math.fround(layer.scale);
        const upValues = scale === 'diffusers' && layer.scale !== 1 ? made.up.data.map((v) => v * f) : made.up.data;
        out.push({ name: names.up, dtype: 'F32', shape: up.shape, data: fromFloat32Array(upValues, 'F32') });
      } else {
        out.push({ name: names.down, dtype: floatOf(down), shape: down.shape, data: await read(down) });
        let upData = await read(up);
        if (scale === 'diffusers' && layer.scale !== 1) upData = scaled(upData, up, layer.scale);
        out.push({ name: names.up, dtype: floatOf(up), shape: up.shape, data: upData });
      }
      const alpha = writtenAlpha(layer, rank, scale);
      if (names.alpha && alpha !== undefined) out.push(f32Scalar(names.alpha, alpha));
    }
    if (approximation && norm2 > 0) approximation.error = Math.sqrt(error2 / norm2);
    const totals = approximation ? { totals: { error2, norm2 } } : {};
    const bytes = writeSafetensors(out, {
      multilora_source_format: analysis.format,
      multilora_family: family,
      multilora_scale: scale,
      ...(approximation ? { multilora_approximate_rank: String(approximation.rank) } : {}),
    });
    return approximation ? { bytes, approximation, ...totals } : { bytes };
  } finally {
    await reader.close();
  }
}

/** The ways out for what only a fuse takes, in refusals. */
export const FUSE_WAYS =
  "Fuse it into the model instead: load the pipeline with mode: 'fuse' (multilora fuses it in memory), or " +
  '`multilora convert <model> <out> --fuse-lora <file>`';

/** The ways out for a change that depends on the model's weights (DoRA, OFT), in refusals. */
function weightedWays(approximate: Approximate | undefined): string {
  return approximate
    ? ` (\`approximate\` fits such a change from the model's weights on linear and 1x1 layers only). ${FUSE_WAYS}`
    : `. ${FUSE_WAYS}; or fit a LoRA of lower rank to its change, from the model's weights: the adapter's ` +
        '`approximate: { rank }` (linear and 1x1 layers)';
}

/**
 * Whether `approximate` fits the layer from the model's weights: a DoRA or OFT layer of a linear or 1x1 layer (at
 * the 'diffusers' scale for DoRA, as for the fuse; checked by checkForGenai when the caller does not fit it).
 */
export function fittedWithModel(layer: LoraLayer): boolean {
  const weighted = Boolean(layer.dora) || layer.factorized?.kind === 'oft';
  return weighted && !spatial(layer.down) && !spatial(layer.up) && !layer.factorized?.tensors.diff_b;
}

/** Whether GenAI takes the layer as multilora rewrites it, at generate or in its own fuse. */
export function genaiTakes(layer: LoraLayer, scale: LoraScale, approximate?: Approximate): boolean {
  try {
    checkForGenai(layer, scale, false, approximate);
    return true;
  } catch {
    return false;
  }
}

/**
 * Refuses a layer that GenAI cannot take as the conversion is asked for (at generate, `approximate` at generate, or
 * `kernels` for a fuse), naming the ways out that apply.
 */
function checkForGenai(layer: LoraLayer, scale: LoraScale, kernels: boolean, approximate?: Approximate): void {
  if (layer.factorized?.kind === 'oft') {
    if (kernels) return;
    const blocks = layer.factorized.tensors.oft_blocks ?? layer.down;
    throw formatError(
      `LoRA layer ${quote(layer.key)} is OFT (LyCORIS Diag-OFT, tensor ${quote(blocks.name)}): it rotates the ` +
        "model's own weights, which GenAI's adapters cannot express" +
        weightedWays(approximate),
    );
  }
  const full = layer.factorized?.kind === 'full';
  if (full && !kernels && (!approximate || spatial(layer.down))) {
    const diff = layer.factorized?.tensors.diff ?? layer.down;
    throw formatError(
      `LoRA layer ${quote(layer.key)} is a full weight difference (LyCORIS "full", tensor ${quote(diff.name)}): ` +
        `as a LoRA it would run at rank ${layer.rank}, as costly as the layer itself, at every step. ${FUSE_WAYS}` +
        (spatial(layer.down) ? '' : ", or fit a LoRA of lower rank to it: the adapter's `approximate: { rank }`"),
    );
  }
  const bias = layer.factorized?.tensors.diff_b;
  if (full && !kernels && bias) {
    throw formatError(
      `LoRA layer ${quote(layer.key)} changes its bias too (tensor ${quote(bias.name)}), which no LoRA carries: ` +
        FUSE_WAYS.replace('F', 'f'),
    );
  }
  if (layer.dora && !kernels) {
    throw formatError(
      `LoRA layer ${quote(layer.key)} is DoRA (tensor ${quote(layer.dora.magnitude.name)}): its change of the weights ` +
        "is a new norm of the model's own weights, which GenAI's adapters cannot express" +
        weightedWays(approximate) +
        " (with scale 'diffusers': --fuse-scale diffusers)",
    );
  }
  if (layer.dora && scale !== 'diffusers' && layer.scale !== 1) {
    throw formatError(
      `LoRA layer ${quote(layer.key)} is DoRA: its magnitudes were trained with the layer's alpha/rank ` +
        `(${layer.scale}), so it is fused at the 'diffusers' scale only (--fuse-scale diffusers)`,
    );
  }
  if (kernels && spatial(layer.up) === undefined) return; // A's kernel, B 1x1: a convolution LoRA to fuse
  const kernel = spatial(layer.down) ?? spatial(layer.up);
  if (kernel) {
    throw formatError(
      `LoRA layer ${quote(layer.key)} is a convolution with a ${kernel} kernel (LyCORIS LoCon); OpenVINO GenAI 2026.3 ` +
        'applies only 1x1 ones ("LoRA adapter with not pointwise Convolutional kernel is not supported"), and no fit ' +
        `of lower rank has a smaller kernel. ${FUSE_WAYS}`,
    );
  }
}

/**
 * What a fuse needs beside A and B (python/convert.py reads them), under the name of the layer GenAI matches: a DoRA
 * magnitude as `.dora_scale_out` or `.dora_scale_in` (the axis of its norms), a full difference's `.diff_b`, and an OFT
 * layer's all: `.oft_blocks`, `.oft_rescale`, `.oft_constraint`.
 */
async function sideTensors(layer: LoraLayer, names: GenaiNames, read: TensorRead): Promise<TensorData[]> {
  const stem = genaiStem(names);
  const out: TensorData[] = [];
  const asF32 = async (info: TensorInfo) => fromFloat32Array(toFloat32Array(await read(info), info.dtype), 'F32');
  if (layer.dora) {
    const data = await asF32(layer.dora.magnitude);
    out.push({ name: `${stem}.dora_scale_${layer.dora.axis}`, dtype: 'F32', shape: [data.length / 4], data });
  }
  const bias = layer.factorized?.tensors.diff_b;
  if (bias) out.push({ name: `${stem}.diff_b`, dtype: 'F32', shape: bias.shape, data: await asF32(bias) });
  const { oft_blocks: blocks, rescale } = layer.factorized?.kind === 'oft' ? layer.factorized.tensors : {};
  if (blocks) {
    out.push({ name: `${stem}.oft_blocks`, dtype: 'F32', shape: blocks.shape, data: await asF32(blocks) });
    if (rescale)
      out.push({ name: `${stem}.oft_rescale`, dtype: 'F32', shape: rescale.shape, data: await asF32(rescale) });
    // LyCORIS's constraint on the rotation's norm: alpha times the layer's outputs (none when alpha is 0 or absent)
    out.push(f32Scalar(`${stem}.oft_constraint`, (layer.alpha ?? 0) * layer.rank));
  }
  return out;
}

/**
 * The `.alpha` a converted layer gets, keeping the file's meaning for tools that read it: alpha / rank is the layer's
 * scale (a rewrite's rank being the rewrite's), or 1 once baked in ('diffusers'). None for a plain layer without one.
 */
function writtenAlpha(layer: LoraLayer, rank: number, scale: LoraScale): number | undefined {
  if (!layer.factorized && layer.alpha === undefined) return undefined;
  if (scale === 'diffusers') return rank;
  return layer.factorized || layer.rslora ? layer.scale * rank : layer.alpha;
}

/**
 * Whether `approximate` fits a layer: a full difference of a linear or 1x1 layer (which checkForGenai let through),
 * or a LoHa or LoKr above the rank. Plain LoRA and Tucker LoCon layers keep their own pair.
 */
function fitted(layer: LoraLayer, rank: number): boolean {
  if (!layer.factorized || layer.factorized.dense || layer.factorized.kind === 'oft' || layer.dora) return false;
  if (spatial(layer.down)) return false;
  return layer.factorized.kind === 'full' || layer.rank > rank;
}

/**
 * A Tucker LoCon layer as a LoRA pair of A's kernel, exactly: LyCORIS's ΔW[p, q, k, l] = Σ up[p, i] · mid[i, j, k, l]
 * · down[j, q] is up · A with A[i, q, k, l] = Σ_j mid[i, j, k, l] · down[j, q]. Both in F32.
 */
async function tuckerPair(
  layer: LoraLayer,
  tucker: NonNullable<LoraLayer['tucker']>,
  read: TensorRead,
): Promise<LoraPair> {
  const down = toFloat32Array(await read(tucker.down), tucker.down.dtype);
  const mid = toFloat32Array(await read(tucker.mid), tucker.mid.dtype);
  const [rank, inn, kh, kw] = layer.down.shape as [number, number, number, number];
  const k = kh * kw;
  const a = new Float32Array(rank * inn * k);
  for (let i = 0; i < rank; i += 1) {
    for (let q = 0; q < inn; q += 1) {
      for (let t = 0; t < k; t += 1) {
        let sum = 0;
        for (let j = 0; j < rank; j += 1) sum += mid[(i * rank + j) * k + t] * down[j * inn + q];
        a[(i * inn + q) * k + t] = sum;
      }
    }
  }
  const up = toFloat32Array(await read(layer.up), layer.up.dtype);
  return { down: matrix(rank, inn * k, a), up: matrix(up.length / rank, rank, up) };
}

/** The A and B of a factorized layer's exact rewrite, from its factors' bytes. */
async function factorizedPair(layer: LoraLayer, read: TensorRead): Promise<LoraPair> {
  const { kind, tensors } = layer.factorized ?? { kind: 'loha', tensors: {} };
  if (kind === 'oft') throw formatError(`LoRA layer ${quote(layer.key)} is OFT, which has no LoRA pair`);
  if (kind === 'full' || layer.factorized?.dense) {
    const out = layer.rank;
    const identity = new Float32Array(out * out);
    for (let i = 0; i < out; i += 1) identity[i * out + i] = 1;
    let down: Float32Array;
    if (kind !== 'full') down = await denseChange(layer.key, kind, tensors, read);
    else if (tensors.diff) down = toFloat32Array(await read(tensors.diff), tensors.diff.dtype);
    else throw invalidLora(`LoRA layer ${quote(layer.key)} has no diff`);
    return { down: matrix(out, down.length / out, down), up: matrix(out, out, identity) };
  }
  const m = async (role: FactorRole) => {
    const info = tensors[role];
    if (!info) throw invalidLora(`LoRA layer ${quote(layer.key)} has no ${role}`);
    const [rows, cols] = factorDims(layer.key, info);
    return matrix(rows, cols, toFloat32Array(await read(info), info.dtype));
  };
  if (kind === 'loha')
    return hadamardAsLora(await m('hada_w1_a'), await m('hada_w1_b'), await m('hada_w2_a'), await m('hada_w2_b'));
  const factor = async (n: 1 | 2): Promise<KronFactor> =>
    tensors[`lokr_w${n}`]
      ? { full: await m(`lokr_w${n}`) }
      : { a: await m(`lokr_w${n}_a`), b: await m(`lokr_w${n}_b`) };
  return kroneckerAsLora(await factor(1), await factor(2));
}

/** B × factor in B's own dtype: computed in float32 (the factor rounded to float32 first), rounded back to the dtype. */
function scaled(bytes: Buffer, info: TensorInfo, factor: number): Buffer {
  const values = toFloat32Array(bytes, info.dtype);
  const f = Math.fround(factor);
  for (let i = 0; i < values.length; i += 1) values[i] = values[i] * f;
  return fromFloat32Array(values, floatOf(info));
}

/** A float32 scalar tensor (an `.alpha`, a constraint). */
export function f32Scalar(name: string, value: number): TensorData {
  const data = Buffer.alloc(4);
  data.writeFloatLE(value);
  return { name, dtype: 'F32', shape: [], data };
}

/** A weight's dtype, a float: the reader lets integers through for a one-element alpha only. */
function floatOf(info: TensorInfo): FloatDtype {
  if (!isFloat(info.dtype)) {
    throw invalidLora(`Tensor ${quote(info.name)} is ${info.dtype}: only an alpha may be an integer`);
  }
  return info.dtype;
}
