// Fuse mode for what GenAI's own fuse cannot take: DoRA, LyCORIS "full" differences (with their bias), 3x3 and
// Tucker LoCon, LoHa and LoKr of 3x3 convolutions or with a Tucker core, Diag-OFT. The adapter's rewrite for the
// fuse (convertForGenai with kernels, as `convert --fuse-lora` writes it) is read here into what each matched model
// layer gets; the addon changes the model's weights in memory by python/convert.py's formulas and builds the
// pipeline from them (native/fuse.h). Nothing is written to disk.
import { native } from '../core/binding';
import { fromNative } from '../core/errors';
import { fitLowRank } from './approximate';
import { matrix } from './factorized';
import { f32Scalar, genaiStem, type Approximation, type GenaiNames, type LoraPart } from './format';
import { mlMatrix } from './ml';
import {
  fromFloat32Array,
  isFloat,
  openSafetensors,
  parseSafetensors,
  toFloat32Array,
  writeSafetensors,
  type FloatDtype,
  type TensorData,
  type TensorInfo,
} from './safetensors';

/** A model layer that an adapter changes, with the names of the LoRA layer's tensors in its rewrite. */
export interface FuseTarget {
  part: LoraPart;
  /** The MatMul or Convolution's friendly name in the part's IR. */
  node: string;
  names: GenaiNames;
  /** A Diag-OFT layer: its rewrite holds `.oft_blocks` (and `.oft_rescale`, `.oft_constraint`), no A and B. */
  oft: boolean;
}

/** An adapter to fuse: its rewrite (or file), its alpha and its targets. */
export interface FuseSource {
  /** Names the adapter in messages. */
  label: string;
  load: string | Buffer;
  alpha: number;
  targets: readonly FuseTarget[];
}

/** What the addon applies to one model layer (native/fuse.h, FuseLayer). */
export interface NativeFuseLayer {
  part: LoraPart;
  node: string;
  label: string;
  alpha: number;
  /** B [out, rank] and A [rank, in · kernel], each in float32. */
  up?: Float32Array;
  down?: Float32Array;
  rank?: number;
  bias?: Float32Array;
  magnitude?: Float32Array;
  axis?: 'out' | 'in';
  /** Diag-OFT: alpha · R + (1 - alpha) · I per block, [blocks, b, b]. */
  mix?: Float64Array;
  blocks?: number;
  rescale?: Float32Array;
}

/** Each adapter's layers, in the order the adapters are given (each fuse sees the weights the ones before left). */
export async function fuseLayers(sources: readonly FuseSource[]): Promise<NativeFuseLayer[]> {
  const layers: NativeFuseLayer[] = [];
  for (const source of sources) {
    const reader = await openSafetensors(source.load);
    try {
      const byName = new Map(reader.header.tensors.map((t) => [t.name, t]));
      const floats = async (name: string): Promise<{ info: TensorInfo; data: Float32Array } | undefined> => {
        const info = byName.get(name);
        return info && { info, data: toFloat32Array(await reader.read(info), info.dtype) };
      };
      for (const target of source.targets) {
        const stem = genaiStem(target.names);
        const layer: NativeFuseLayer = {
          part: target.part,
          node: target.node,
          label: `${source.label}, layer ${JSON.stringify(stem)}`,
          alpha: source.alpha,
        };
        const rescale = await floats(`${stem}.oft_rescale`);
        if (rescale) layer.rescale = rescale.data;
        if (target.oft) {
          const blocks = await floats(`${stem}.oft_blocks`);
          const constraint = await floats(`${stem}.oft_constraint`);
          if (!blocks) throw new Error(`the rewrite of ${stem} has no OFT blocks`);
          const [n = 0, b = 0] = blocks.info.shape;
          layer.mix = oftMix(blocks.data, n, b, constraint?.data[0] ?? 0, source.alpha);
          layer.blocks = n;
        } else {
          const down = await floats(target.names.down);
          const up = await floats(target.names.up);
          if (!down || !up) throw new Error(`the rewrite of ${stem} has no A or B`);
          layer.down = down.data;
          layer.up = up.data;
          layer.rank = down.info.shape[0];
          const bias = await floats(`${stem}.diff_b`);
          if (bias) layer.bias = bias.data;
          for (const axis of ['out', 'in'] as const) {
            const magnitude = await floats(`${stem}.dora_scale_${axis}`);
            if (magnitude) {
              layer.magnitude = magnitude.data;
              layer.axis = axis;
            }
          }
        }
        layers.push(layer);
      }
    } finally {
      await reader.close();
    }
  }
  return layers;
}

/**
 * LyCORIS's Diag-OFT at strength alpha, per block: alpha · R + (1 - alpha) · I, R the Cayley transform
 * (I + Q)(I - Q)⁻¹ of the blocks' skew-symmetric part Q, whose norm over all blocks is held within `constraint`
 * (python/convert.py's `rotated`). In float64.
 */
export function oftMix(blocks: Float32Array, n: number, b: number, constraint: number, alpha: number): Float64Array {
  const q = new Float64Array(n * b * b);
  let sum = 0;
  for (let k = 0; k < n; k += 1) {
    for (let i = 0; i < b; i += 1) {
      for (let j = 0; j < b; j += 1) {
        const v = blocks[(k * b + i) * b + j] - blocks[(k * b + j) * b + i];
        q[(k * b + i) * b + j] = v;
        sum += v * v;
      }
    }
  }
  const norm = Math.sqrt(sum) + 1e-8;
  const shrink = constraint > 0 && norm > constraint ? constraint / norm : 1;
  const { Matrix, inverse } = mlMatrix();
  const mix = new Float64Array(n * b * b);
  for (let k = 0; k < n; k += 1) {
    const plus = Matrix.eye(b, b);
    const minus = Matrix.eye(b, b);
    for (let i = 0; i < b; i += 1) {
      for (let j = 0; j < b; j += 1) {
        const v = q[(k * b + i) * b + j] * shrink;
        plus.set(i, j, plus.get(i, j) + v);
        minus.set(i, j, minus.get(i, j) - v);
      }
    }
    const r = plus.mmul(inverse(minus));
    for (let i = 0; i < b; i += 1) {
      for (let j = 0; j < b; j += 1) {
        mix[(k * b + i) * b + j] = alpha * r.get(i, j) + (i === j ? 1 - alpha : 0);
      }
    }
  }
  return mix;
}

/** A DoRA or OFT layer to fit from the model's weights: its target, and what the report says of it. */
export interface WeightedFit {
  target: FuseTarget;
  key: string;
  /** The rank of its exact form (the layer's outputs: a change of the whole weights). */
  from: number;
  /** The model layer's outputs and inputs. */
  out: number;
  in: number;
  /** 1x1 convolution: the fit's A and B get [.., 1, 1]. */
  conv: boolean;
}

/**
 * `approximate` for what depends on the model's weights (DoRA, Diag-OFT of linear and 1x1 layers): each layer's
 * change W' - W, fused alone at strength 1 by the addon from the model's own weights (native/fuse.h, FusedChanges),
 * fitted by a LoRA of at most `rank`; the rewrite's tensors of those layers are replaced by the fit. GenAI then
 * scales the fit linearly by the alpha a call gives (a DoRA merge is not linear in its strength: exact at alpha 1).
 * Adds each fit to `approximation` and `totals`.
 */
export async function fitFromWeights(
  rewrite: Buffer,
  fits: readonly WeightedFit[],
  modelDir: string,
  rank: number,
  approximation: Approximation,
  totals: { error2: number; norm2: number },
): Promise<Buffer> {
  const layers = await fuseLayers([{ label: 'the fit', load: rewrite, alpha: 1, targets: fits.map((f) => f.target) }]);
  let changes: Float32Array[];
  try {
    changes = await native().Model.fusedChanges(modelDir, layers);
  } catch (err) {
    throw fromNative(err);
  }
  // the fitted layers' tensors (A, B, alpha, magnitudes, blocks) give way to the fit's
  const header = parseSafetensors(rewrite);
  const stems = fits.map((f) => `${genaiStem(f.target.names)}.`);
  const kept: TensorData[] = header.tensors
    // a rewrite's tensors are all float (an integer alpha is rewritten as float32)
    .filter(
      (t): t is TensorInfo & { dtype: FloatDtype } => isFloat(t.dtype) && !stems.some((s) => t.name.startsWith(s)),
    )
    .map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      data: rewrite.subarray(t.offset, t.offset + t.byteLength),
    }));
  for (const [i, fit] of fits.entries()) {
    const { pair, error, norm } = fitLowRank(matrix(fit.out, fit.in, changes[i]), rank);
    const k = pair.down.rows;
    const ones = fit.conv ? [1, 1] : [];
    kept.push(
      {
        name: fit.target.names.down,
        dtype: 'F32',
        shape: [k, fit.in, ...ones],
        data: fromFloat32Array(pair.down.data, 'F32'),
      },
      {
        name: fit.target.names.up,
        dtype: 'F32',
        shape: [fit.out, k, ...ones],
        data: fromFloat32Array(pair.up.data, 'F32'),
      },
    );
    if (fit.target.names.alpha) kept.push(f32Scalar(fit.target.names.alpha, k));
    approximation.layers.push({ key: fit.key, from: fit.from, rank: k, error: error / norm || 0 });
    totals.error2 += error ** 2;
    totals.norm2 += norm ** 2;
  }
  if (totals.norm2 > 0) approximation.error = Math.sqrt(totals.error2 / totals.norm2);
  return writeSafetensors(kept, header.metadata);
}
