// Diagnostics before compile: what a LoRA file is, what GenAI will make of it on this model, and whether it fits.
// The LoRA's layers are matched against the model's IR the way GenAI 2026.3 matches them (adapter.cpp,
// LoRAWeightGetterDefault): a LoRA layer's name, minus the prefix of the model part, must be a substring of a
// MatMul or Convolution's friendly name (as it is, or with '.' turned into '_'); each layer takes the first LoRA
// layer, in name order, that matches. Shapes are then compared, so that a LoRA made for another base model fails
// here, with the layer and both shapes, instead of at the first generate.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

import { native } from '../core/binding';
import { MultiloraError, fromNative } from '../core/errors';
import {
  analyzeLora,
  genaiParts,
  genaiPrefix,
  layerTensors,
  convertForGenai,
  fittedWithModel,
  FUSE_WAYS,
  genaiTakes,
  planGenaiLora,
  type Approximate,
  type Approximation,
  type LoraFormat,
  type LoraLayer,
  type LoraPart,
  type LoraScale,
} from './format';
import { fitFromWeights, type FuseTarget, type WeightedFit } from './fuse';
import type { ModelInfo } from '../core/model';
import { isFloat, openSafetensors, type FloatDtype, type TensorInfo } from './safetensors';

/** What multilora found out about an adapter before GenAI read it. */
export interface AdapterReport {
  format: LoraFormat;
  /** The distinct LoRA ranks, ascending. */
  ranks: number[];
  /** The model parts it has layers for. */
  targets: LoraPart[];
  /** LoRA tensors that patch a layer of this model. */
  matched: number;
  /** LoRA tensors that patch nothing here: no such layer, or a part GenAI does not apply LoRA to, or unrecognized. */
  unmatched: number;
  /** Their names (at most 100). */
  unmatchedTensors: string[];
  /** Whether multilora rewrote it (PEFT/diffusers names, or the 'diffusers' scale) before GenAI read it. */
  converted: boolean;
  /** With the adapter's `approximate`: the layers fitted by SVD, each with its relative error, and the total. */
  approximation?: Approximation;
}

/**
 * An AdapterReport without the tensor names and per-layer fits: what a worker publishes and the server shows of each
 * adapter. `approximation` keeps the rank asked for, the total relative error and how many layers were fitted.
 */
export type AdapterSummary = Omit<AdapterReport, 'unmatchedTensors' | 'approximation'> & {
  approximation?: { rank: number; error: number; fitted: number };
};

export function summarizeReport(report: AdapterReport): AdapterSummary {
  const { format, ranks, targets, matched, unmatched, converted, approximation } = report;
  const summary: AdapterSummary = { format, ranks, targets, matched, unmatched, converted };
  if (approximation) {
    const { rank, error, layers } = approximation;
    summary.approximation = { rank, error, fitted: layers.length };
  }
  return summary;
}

export interface ModelLayer {
  name: string;
  type: 'MatMul' | 'Convolution';
  shape: number[];
  transposeB: boolean;
}

const PART_DIRS: Record<LoraPart, string> = {
  unet: 'unet',
  transformer: 'transformer',
  text_encoder: 'text_encoder',
  text_encoder_2: 'text_encoder_2',
  text_encoder_3: 'text_encoder_3',
};

const layerCache = new Map<string, Promise<ModelLayer[]>>();

/** The MatMul and Convolution layers of one model part, read once per IR file (and again if the file changes). */
function modelLayers(model: ModelInfo, part: LoraPart): Promise<ModelLayer[]> {
  const xml = path.join(model.dir, PART_DIRS[part], 'openvino_model.xml');
  if (!existsSync(xml)) return Promise.resolve([]);
  const key = `${xml}:${statSync(xml).mtimeMs}`;
  let layers = layerCache.get(key);
  if (!layers) {
    layers = (native().Model.layers(xml) as Promise<ModelLayer[]>).catch((err) => {
      layerCache.delete(key);
      throw fromNative(err);
    });
    layerCache.set(key, layers);
  }
  return layers;
}

/**
 * Starts reading the layers of every model part that GenAI applies LoRA to for this model, so that the IR is read
 * while the adapters' files are: prepareAdapter then finds them read (or reads them again, and reports the failure).
 */
export function prefetchModelLayers(model: ModelInfo): void {
  for (const part of genaiParts(model.family)) modelLayers(model, part).catch(() => undefined);
}

/**
 * Rejects a LoRA with a NaN or infinite value in a tensor GenAI would use. GenAI applies every registered adapter to
 * every generate call (multilora passes alpha 0 for those a call does not choose: docs/GENAI-BUGS.md#switching),
 * and 0 × NaN is NaN: one such weight turns every image of the pipeline black, not only those that choose the adapter
 * (seen on the tiny fixture).
 * A file is looked through by the addon, off the JS thread, each tensor read once (a few hundred MB of SDXL LoRAs
 * took over a second on the JS thread); bytes given in memory are looked through here.
 */
async function checkFinite(
  label: string,
  file: string | Buffer,
  layers: readonly LoraLayer[],
  read: (info: TensorInfo) => Promise<Buffer>,
): Promise<void> {
  // an integer alpha has no NaN to hide
  const tensors = layers.flatMap(layerTensors).filter((t): t is TensorInfo & { dtype: FloatDtype } => isFloat(t.dtype));
  let found: [TensorInfo, number] | undefined;
  if (typeof file === 'string') {
    let hit: [number, number] | null;
    try {
      hit = await native().Adapter.nonFinite(
        file,
        tensors.map((t) => [t.offset, t.byteLength, t.dtype]),
      );
    } catch (err) {
      throw fromNative(err);
    }
    if (hit) found = [tensors[hit[0]], hit[1]];
  } else {
    for (const info of tensors) {
      const at = firstNonFinite(await read(info), info.dtype);
      if (at >= 0) {
        found = [info, at];
        break;
      }
    }
  }
  if (found) {
    const [info, at] = found;
    throw new MultiloraError(
      'ERR_ADAPTER_INVALID',
      `${label}: its tensor ${JSON.stringify(info.name)} holds a NaN or infinite value (element ${at}). GenAI applies ` +
        'every registered adapter to every call (at alpha 0 when a call does not choose it), and 0 × NaN is NaN: it ' +
        'would turn every image of the pipeline black. Use a LoRA file without them (a diverged training run writes such files)',
    );
  }
}

/** The index of the first NaN or ±Infinity (exponent bits all ones) among the values, or -1. Assumes a little-endian host, as safetensors is. */
function firstNonFinite(bytes: Buffer, dtype: FloatDtype): number {
  const size = dtype === 'F32' ? 4 : 2;
  const data = bytes.byteOffset % size === 0 ? bytes : Buffer.from(bytes); // typed arrays need aligned memory
  const count = Math.floor(data.length / size);
  if (dtype === 'F32') {
    const words = new Uint32Array(data.buffer, data.byteOffset, count);
    for (let i = 0; i < count; i += 1) if ((words[i] & 0x7f800000) === 0x7f800000) return i;
    return -1;
  }
  const mask = dtype === 'F16' ? 0x7c00 : 0x7f80;
  const halves = new Uint16Array(data.buffer, data.byteOffset, count);
  for (let i = 0; i < count; i += 1) if ((halves[i] & mask) === mask) return i;
  return -1;
}

function stemOf(downName: string): string {
  return downName.replace(/[_.]lora[_.](?:A|down)\.weight$/, '').replace(/\.down\.weight$/, '');
}

function dims(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

const SGM_RESNET: ReadonlyArray<[RegExp, string]> = [
  [/^in_layers_2/, 'conv1'],
  [/^out_layers_3/, 'conv2'],
  [/^emb_layers_1/, 'time_emb_proj'],
  [/^skip_connection/, 'conv_shortcut'],
];

/**
 * A kohya UNet stem's rest (`_input_blocks_4_1_…`) in diffusers' block names, as GenAI renames Stability's (sgm) names
 * before it matches them (lora/names_mapping.cpp, maybe_map_sgm_blocks_to_diffusers with two layers per block, as
 * SD 1.5 and SDXL have, then _convert_unet_lora_key): `input_blocks_4_1` is `down_blocks_1_attentions_0`. Other rests
 * are returned as they are.
 */
function sgmAsDiffusers(rest: string): string {
  const mid = /^_middle_block_(\d+)_(.*)$/.exec(rest);
  if (mid) {
    const [, index, tail = ''] = mid;
    const block = index === '1' ? 'mid_block_attentions_0' : `mid_block_resnets_${index === '2' ? 1 : 0}`;
    return `_${block}_${SGM_RESNET.reduce((name, [from, to]) => name.replace(from, to), tail)}`;
  }
  const m = /^_(input_blocks|output_blocks)_(\d+)_(\d+)_(.*)$/.exec(rest);
  if (!m) return rest;
  const [, kind, first = '0', second = '0', tail = ''] = m;
  const i = Number(first);
  const inner = Number(second);
  let block: string;
  if (kind === 'input_blocks') {
    if (tail.startsWith('op')) return `_down_blocks_${Math.floor((i - 1) / 3)}_downsamplers_0_conv${tail.slice(2)}`;
    block = `down_blocks_${Math.floor((i - 1) / 3)}_${inner === 1 ? 'attentions' : 'resnets'}_${(i - 1) % 3}`;
  } else {
    block = `up_blocks_${Math.floor(i / 3)}_${['resnets', 'attentions', 'upsamplers'][inner] ?? 'resnets'}_${inner === 2 ? 0 : i % 3}`;
  }
  const renamed = SGM_RESNET.reduce((name, [from, to]) => name.replace(from, to), tail);
  return `_${block}_${renamed}`;
}

/** in and out features of a layer's weights. */
function features(layer: ModelLayer): { in: number; out: number } {
  const [a = 0, b = 0] = layer.shape;
  if (layer.type === 'Convolution' || layer.transposeB) return { out: a, in: b };
  return { in: a, out: b };
}

/**
 * Checks a LoRA layer against the model layer it patches: throws ERR_ADAPTER_FORMAT for what GenAI cannot take as
 * loaded, ERR_ADAPTER_INCOMPATIBLE for a LoRA made for another model. 'own': only multilora's fuse takes it (fuse
 * mode); 'weighted': `approximate` fits it from the model's weights (DoRA, OFT).
 */
function checkNode(
  label: string,
  layer: LoraLayer,
  node: ModelLayer,
  fuse: boolean,
  withModel: boolean,
): 'own' | 'weighted' | undefined {
  const { in: inFeatures, out: outFeatures } = features(node);
  const [rankA, loraIn] = layer.down.shape;
  const [loraOut, rankB] = layer.up.shape;
  const kernel = node.type === 'Convolution' ? node.shape.slice(2) : [];
  const kernelSize = kernel.reduce((a, b) => a * b, 1);
  // the fuse takes what GenAI refuses: a kernel flattened into the factors, OFT's blocks (checked natively)
  const flattened = kernelSize > 1 && loraIn === inFeatures * kernelSize && loraOut === outFeatures;
  if (fuse && (layer.factorized?.kind === 'oft' || flattened)) return 'own';
  if (withModel && fittedWithModel(layer)) {
    if (kernelSize > 1) {
      throw new MultiloraError(
        'ERR_ADAPTER_FORMAT',
        `${label}: its layer ${JSON.stringify(layer.key)} changes the convolution ${JSON.stringify(node.name)}, ` +
          `whose kernel is ${kernel.join('x')}, by the model's own weights; a fit of lower rank keeps the kernel, ` +
          `which GenAI does not apply at generate. ${FUSE_WAYS}`,
      );
    }
    return 'weighted';
  }
  if (layer.factorized && flattened) {
    // LyCORIS flattens a convolution's kernel into its factors' columns: the layer is no 1x1 convolution
    throw new MultiloraError(
      'ERR_ADAPTER_FORMAT',
      `${label}: its layer ${JSON.stringify(layer.key)} is a ${layer.factorized.kind === 'loha' ? 'LoHa' : 'LoKr'} ` +
        `of the convolution ${JSON.stringify(node.name)}, whose kernel is ${kernel.join('x')}; OpenVINO GenAI 2026.3 ` +
        `applies only 1x1 ones at generate. ${FUSE_WAYS}`,
    );
  }
  if (loraIn !== inFeatures || loraOut !== outFeatures || rankA !== rankB) {
    throw new MultiloraError(
      'ERR_ADAPTER_INCOMPATIBLE',
      `${label} does not fit this model (a LoRA made for another base model?): its layer ${JSON.stringify(layer.key)} ` +
        `has A ${dims(layer.down.shape)} and B ${dims(layer.up.shape)}, but the model's layer ` +
        `${JSON.stringify(node.name)} has weights ${dims(node.shape)} (${inFeatures} in, ${outFeatures} out)`,
    );
  }
  return undefined;
}

export interface PreparedAdapter {
  /** What GenAI should read: the file as it is, or rewritten bytes. */
  load: string | Buffer;
  report: AdapterReport;
  /** The model layers it patches, as `<part>:<node name>`: which layers get a LoRA rank when it is listed. */
  layers: string[];
  /** Prepared for fuse mode: each matched model layer with the LoRA layer's names in `load` (lib/lora/fuse.ts). */
  fuse?: { targets: FuseTarget[]; own: boolean };
}

/**
 * Reads a LoRA's header, works out its format and targets, rewrites it when GenAI would not apply it as it is, and
 * checks it against the model. Throws ERR_ADAPTER_INVALID, ERR_ADAPTER_FORMAT, ERR_ADAPTER_UNMATCHED or
 * ERR_ADAPTER_INCOMPATIBLE.
 */
export async function prepareAdapter(
  name: string,
  file: string | Buffer,
  model: ModelInfo,
  scale: LoraScale,
  approximate?: Approximate,
  fuse = false,
): Promise<PreparedAdapter> {
  const label = `Adapter ${JSON.stringify(name)}`;
  try {
    return await prepare(label, file, model, scale, approximate, fuse);
  } catch (err) {
    // Say which adapter, and which file, each failure is about.
    if (!(err instanceof MultiloraError) || err.message.startsWith(label)) throw err;
    const where = typeof file === 'string' ? file : `<${file.length} bytes>`;
    const message = err.message.includes(where) ? `${label}: ${err.message}` : `${label} (${where}): ${err.message}`;
    throw new MultiloraError(err.code, message, { cause: err });
  }
}

async function prepare(
  label: string,
  file: string | Buffer,
  model: ModelInfo,
  scale: LoraScale,
  approximate: Approximate | undefined,
  fuse: boolean,
): Promise<PreparedAdapter> {
  const reader = await openSafetensors(file);
  try {
    const analysis = await analyzeLora(reader.header, (info) => reader.read(info));
    await checkFinite(label, file, analysis.layers, (info) => reader.read(info));
    // For fuse mode, kept kernels and what only a fuse takes (DoRA, full differences, OFT): multilora fuses those
    // itself (lib/lora/fuse.ts); the rewrite is the same bytes for what GenAI's fuse takes.
    // With `approximate` at generate, DoRA and OFT of linear and 1x1 layers are fitted from the model's weights
    // below (lib/lora/fuse.ts, fitFromWeights).
    const withModel = !fuse && approximate !== undefined;
    const conversion = await convertForGenai(file, analysis, {
      family: model.family,
      scale,
      ...(fuse ? { kernels: true } : {}),
      ...(approximate ? { approximate } : {}),
      ...(withModel ? { withModel } : {}),
    });
    let converted = conversion.bytes;
    const { approximation } = conversion;
    const weighted: WeightedFit[] = [];
    const plan = planGenaiLora(analysis, model.family);

    // Match each model layer to the first LoRA layer (in GenAI's order) whose name fits, part by part.
    const used = new Set<LoraLayer>();
    const patched: string[] = [];
    const targets: FuseTarget[] = [];
    // whether GenAI's own fuse would refuse a layer, so that multilora must fuse the adapter itself
    let own = fuse && plan.layers.some(({ layer }) => !genaiTakes(layer, scale, approximate));
    for (const part of new Set(plan.layers.map(({ layer }) => layer.part))) {
      const prefix = genaiPrefix(part, model.family);
      const candidates = plan.layers
        .filter(({ layer }) => layer.part === part)
        .map(({ layer, names }) => ({ layer, names, stem: stemOf(names.down) }))
        // a UNet module path without the prefix (the rewrite's for what GenAI's kohya names drop): GenAI puts
        // `lora_unet.` before it
        .map((c) => (part === 'unet' && !c.stem.startsWith(prefix) ? { ...c, stem: `${prefix}.${c.stem}` } : c))
        .filter(({ stem }) => stem.startsWith(prefix))
        .sort((x, y) => (x.stem < y.stem ? -1 : x.stem > y.stem ? 1 : 0))
        .map(({ layer, names, stem }) => ({
          layer,
          names,
          rest: part === 'unet' ? sgmAsDiffusers(stem.slice(prefix.length)) : stem.slice(prefix.length),
        }));
      for (const node of await modelLayers(model, part)) {
        const dotted = node.name;
        const underscored = dotted.replaceAll('.', '_');
        const hit = candidates.find(({ rest }) => dotted.includes(rest) || underscored.includes(rest));
        if (!hit) continue;
        used.add(hit.layer);
        patched.push(`${part}:${node.name}`);
        targets.push({ part, node: node.name, names: hit.names, oft: hit.layer.factorized?.kind === 'oft' });
        const kind = checkNode(label, hit.layer, node, fuse, withModel);
        if (kind === 'own') own = true;
        if (kind === 'weighted') {
          const { in: inFeatures, out: outFeatures } = features(node);
          const target = targets[targets.length - 1];
          const conv = node.type === 'Convolution';
          weighted.push({ target, key: hit.layer.key, from: outFeatures, out: outFeatures, in: inFeatures, conv });
        }
      }
    }

    if (weighted.length > 0 && approximate && approximation) {
      const totals = conversion.totals ?? { error2: 0, norm2: 0 };
      converted = await fitFromWeights(converted!, weighted, model.dir, approximate.rank, approximation, totals);
    }

    const tensorsOf = (layer: LoraLayer): string[] => layerTensors(layer).map((t) => t.name);
    const unmatchedTensors = [
      ...analysis.layers.filter((layer) => !used.has(layer)).flatMap(tensorsOf),
      ...analysis.unrecognized,
    ];
    const matched = [...used].reduce((n, layer) => n + tensorsOf(layer).length, 0);
    if (matched === 0) {
      throw new MultiloraError(
        'ERR_ADAPTER_UNMATCHED',
        `${label} patches no layer of this ${model.family} model (${model.pipelineClass}): none of its ` +
          `${analysis.layers.length} layers (parts: ${analysis.parts.join(', ') || 'none'}) names a layer that the model has` +
          (unmatchedTensors.length ? `, e.g. ${JSON.stringify(unmatchedTensors[0])}` : ''),
      );
    }
    // The ranks GenAI runs: a fitted layer's is the fit's
    const fits = new Map(approximation?.layers.map((l) => [l.key, l.rank]));
    const ranks = [...new Set(analysis.layers.map((l) => fits.get(l.key) ?? l.rank))].sort((a, b) => a - b);
    const report: AdapterReport = {
      format: analysis.format,
      ranks,
      targets: analysis.parts,
      matched,
      unmatched: unmatchedTensors.length,
      unmatchedTensors: unmatchedTensors.slice(0, 100),
      converted: converted !== null,
    };
    if (approximation) report.approximation = approximation;
    return {
      load: converted ?? file,
      report,
      layers: patched,
      ...(fuse ? { fuse: { targets, own } } : {}),
    };
  } finally {
    await reader.close();
  }
}
