// A low-rank fit of one layer's change ΔW = up · down, for `approximate: { rank }`: what a LoRA file has in a form
// that GenAI would run at too high a rank (LoHa and LoKr rewritten exactly, of rank r1·r2) or not as a LoRA at all
// (a full weight difference). The fit is the truncated SVD, the best of its rank in the Frobenius norm
// (Eckart–Young), found by a randomized range finder (Halko, Martinsson and Tropp, 2011: Gaussian test matrix,
// oversampling, power iterations), which is exact when the rank asked for reaches the sides of the layer. The error
// is measured, not estimated: the fit's float32 pair is multiplied out and compared with ΔW.
import type { Matrix as MlMatrix } from 'ml-matrix';

import { matmul, matrix, type LoraPair, type Matrix } from './factorized';

/** Columns added to the range finder's test matrix beyond the rank asked for. */
const OVERSAMPLE = 10;
/** Power iterations: each sharpens the basis found when the singular values decay slowly. */
const POWER_ITERATIONS = 3;

export interface LowRankFit {
  /** up [out, k], down [k, in], k = min(rank, out, in); the square roots of the singular values on either side. */
  pair: LoraPair;
  /** ‖ΔW − up · down‖ (Frobenius). */
  error: number;
  /** ‖ΔW‖ (Frobenius). */
  norm: number;
}

type Ml = typeof import('ml-matrix');
let ml: Ml | undefined;

/** ml-matrix is loaded on first use: only an adapter registered with `approximate` needs it. */
function lib(): Ml {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ml ??= require('ml-matrix') as Ml;
  return ml;
}

/** A seeded N(0, 1) matrix (mulberry32 and Box–Muller), so that a fit is the same on every run. */
function gaussian(rows: number, cols: number, seed: number): MlMatrix {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const m = new (lib().Matrix)(rows, cols);
  for (let i = 0; i < rows; i += 1) {
    for (let j = 0; j < cols; j += 1) {
      m.set(i, j, Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
    }
  }
  return m;
}

/** An orthonormal basis of a tall matrix's columns. */
function orthonormal(m: MlMatrix): MlMatrix {
  return new (lib().QrDecomposition)(m).orthogonalMatrix.subMatrix(0, m.rows - 1, 0, m.columns - 1);
}

function toMl(m: Matrix): MlMatrix {
  const out = new (lib().Matrix)(m.rows, m.cols);
  for (let i = 0; i < m.rows; i += 1) {
    for (let j = 0; j < m.cols; j += 1) out.set(i, j, m.data[i * m.cols + j]);
  }
  return out;
}

/**
 * The best rank-`rank` fit of ΔW = pair.up · pair.down (or of `change` itself when given whole, [out, in]), with its
 * error. The product is formed once: the fit works on ΔW, whatever rank its pair has.
 */
export function fitLowRank(change: LoraPair | Matrix, rank: number): LowRankFit {
  const { Matrix: M, SingularValueDecomposition } = lib();
  const dense = 'data' in change ? change : matmul(change.up, change.down);
  const w = toMl(dense);
  const [out, inn] = [w.rows, w.columns];
  const k = Math.min(rank, out, inn);
  const width = Math.min(k + OVERSAMPLE, out, inn);
  let basis: MlMatrix;
  if (width === Math.min(out, inn)) {
    // the whole column space (or the row space, for a wide ΔW): the truncation below is then exact
    basis = out <= inn ? M.eye(out) : orthonormal(w);
  } else {
    basis = orthonormal(w.mmul(gaussian(inn, width, 0x5eed)));
    for (let i = 0; i < POWER_ITERATIONS; i += 1) {
      basis = orthonormal(w.mmul(orthonormal(w.transpose().mmul(basis))));
    }
  }
  const small = basis.transpose().mmul(w); // [width, in]
  const svd = new SingularValueDecomposition(small, { autoTranspose: true });
  const sigma = svd.diagonal;
  const left = basis.mmul(svd.leftSingularVectors);
  const right = svd.rightSingularVectors;
  const up = matrix(out, k);
  const down = matrix(k, inn);
  for (let j = 0; j < k; j += 1) {
    const root = Math.sqrt(sigma[j] ?? 0);
    for (let i = 0; i < out; i += 1) up.data[i * k + j] = left.get(i, j) * root;
    for (let q = 0; q < inn; q += 1) down.data[j * inn + q] = right.get(q, j) * root;
  }
  const fitted = matmul(up, down).data;
  let norm2 = 0;
  let error2 = 0;
  for (let i = 0; i < fitted.length; i += 1) {
    norm2 += dense.data[i] * dense.data[i];
    error2 += (dense.data[i] - fitted[i]) ** 2;
  }
  return { pair: { up, down }, error: Math.sqrt(error2), norm: Math.sqrt(norm2) };
}
