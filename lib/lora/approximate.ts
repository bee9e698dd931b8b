// A low-rank fit of one layer's change ΔW = up · down, for `approximate: { rank }`: what a LoRA file has in a form
// that GenAI would run at too high a rank (LoHa and LoKr rewritten exactly, of rank r1·r2) or not as a LoRA at all
// (a full weight difference). The fit is the truncated SVD, the best of its rank in the Frobenius norm
// (Eckart–Young), found by a randomized range finder (Halko, Martinsson and Tropp, 2011: Gaussian test matrix,
// oversampling, power iterations), which is exact when the rank asked for reaches the sides of the layer; or, for a
// pair whose inner rank is below its sides (a LoHa's r1·r2), through the Gram matrices of its two sides, which is
// exact and never forms ΔW. The error is that of the singular values left out (a pair), or measured on the float32 fit.
import type { Matrix as MlMatrix } from 'ml-matrix';

import { matmul, matrix, type LoraPair, type Matrix } from './factorized';
import { mlMatrix } from './ml';

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
  const m = new (mlMatrix().Matrix)(rows, cols);
  for (let i = 0; i < rows; i += 1) {
    for (let j = 0; j < cols; j += 1) {
      m.set(i, j, Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
    }
  }
  return m;
}

/** An orthonormal basis of a tall matrix's columns. */
function orthonormal(m: MlMatrix): MlMatrix {
  return new (mlMatrix().QrDecomposition)(m).orthogonalMatrix.subMatrix(0, m.rows - 1, 0, m.columns - 1);
}

function toMl(m: Matrix): MlMatrix {
  const out = new (mlMatrix().Matrix)(m.rows, m.cols);
  for (let i = 0; i < m.rows; i += 1) {
    for (let j = 0; j < m.cols; j += 1) out.set(i, j, m.data[i * m.cols + j]);
  }
  return out;
}

/**
 * The best rank-`rank` fit of ΔW = pair.up · pair.down (or of `change` itself when given whole, [out, in]), with its
 * error. A pair of an inner rank below its sides is fitted through its factors, never multiplied out; a full one (or a
 * whole matrix) through ΔW.
 */
export function fitLowRank(change: LoraPair | Matrix, rank: number): LowRankFit {
  if ('data' in change) return fitDense(change, rank);
  if (change.up.cols < Math.min(change.up.rows, change.down.cols)) return fitProduct(change, rank);
  return fitDense(matmul(change.up, change.down), rank);
}

/**
 * A side's Gram matrix (BᵀB of [out, r] up, or A·Aᵀ of [r, in] down, in float64) as its eigenvectors and the square
 * roots of its eigenvalues, those above rounding only: B = Q·diag(roots)·Vᵀ with Q = B·V·diag(1 / roots) orthonormal.
 */
function sideOf(m: Matrix, transpose: boolean): { v: MlMatrix; roots: number[] } {
  const { EigenvalueDecomposition, Matrix: M } = mlMatrix();
  const r = transpose ? m.cols : m.rows;
  const g = new Float64Array(r * r);
  const { data, cols } = m;
  if (transpose) {
    // BᵀB: the outer products of B's rows, summed
    for (let x = 0; x < m.rows; x += 1) {
      const row = x * cols;
      for (let i = 0; i < r; i += 1) {
        const xi = data[row + i];
        if (xi === 0) continue;
        for (let j = i; j < r; j += 1) g[i * r + j] += xi * data[row + j];
      }
    }
  } else {
    // A·Aᵀ: the dot products of A's rows
    for (let i = 0; i < r; i += 1) {
      for (let j = i; j < r; j += 1) {
        let sum = 0;
        for (let x = 0; x < cols; x += 1) sum += data[i * cols + x] * data[j * cols + x];
        g[i * r + j] = sum;
      }
    }
  }
  const gram = new M(r, r);
  for (let i = 0; i < r; i += 1) for (let j = i; j < r; j += 1) gram.set(i, j, g[i * r + j]).set(j, i, g[i * r + j]);
  const evd = new EigenvalueDecomposition(gram, { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  const floor = Math.max(0, ...values) * 1e-12;
  const keep = values.flatMap((value, i) => (value > floor ? [i] : []));
  const vectors = evd.eigenvectorMatrix;
  const v = new M(r, keep.length);
  keep.forEach((col, c) => {
    for (let i = 0; i < r; i += 1) v.set(i, c, vectors.get(i, col));
  });
  return { v, roots: keep.map((col) => Math.sqrt(values[col] ?? 0)) };
}

/**
 * ΔW = B·A through its factors, never multiplied out, at a cost of (out + in)·r²: with B = Qb·Sb·Vbᵀ and
 * Aᵀ = Qa·Sa·Vaᵀ (from the Gram matrices), ΔW = Qb·(Sb·Vbᵀ·Va·Sa)·Qaᵀ, and the SVD of that small core is ΔW's. The
 * error is that of the singular values left out.
 */
function fitProduct({ up, down }: LoraPair, rank: number): LowRankFit {
  const { Matrix: M, SingularValueDecomposition } = mlMatrix();
  const b = sideOf(up, true);
  const a = sideOf(down, false);
  const core = M.diag(b.roots).mmul(b.v.transpose()).mmul(a.v).mmul(M.diag(a.roots));
  const svd = new SingularValueDecomposition(core, { autoTranspose: true });
  const sigma = svd.diagonal;
  const k = Math.min(rank, sigma.length);
  // up = B·Vb·diag(1 / Sb)·U_k·√S and down = √S·W_kᵀ·diag(1 / Sa)·Vaᵀ·A, each through an r × k matrix
  const scaleRows = (m: MlMatrix, by: number[]): MlMatrix => M.diag(by.map((x) => 1 / x)).mmul(m);
  const small = split(
    b.v.mmul(scaleRows(svd.leftSingularVectors, b.roots)),
    a.v.mmul(scaleRows(svd.rightSingularVectors, a.roots)),
    sigma,
    k,
  );
  const norm2 = sigma.reduce((sum, s) => sum + s * s, 0);
  const kept = sigma.slice(0, k).reduce((sum, s) => sum + s * s, 0);
  const pair = { up: matmul(up, small.up), down: matmul(small.down, down) };
  return { pair, error: Math.sqrt(Math.max(0, norm2 - kept)), norm: Math.sqrt(norm2) };
}

/** ΔW given whole: a range finder over its columns, then the SVD of its projection; the error measured. */
function fitDense(dense: Matrix, rank: number): LowRankFit {
  const { Matrix: M, SingularValueDecomposition } = mlMatrix();
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
  const svd = new SingularValueDecomposition(basis.transpose().mmul(w), { autoTranspose: true });
  const pair = split(basis.mmul(svd.leftSingularVectors), svd.rightSingularVectors, svd.diagonal, k);
  const fitted = matmul(pair.up, pair.down).data;
  let norm2 = 0;
  let error2 = 0;
  for (let i = 0; i < fitted.length; i += 1) {
    norm2 += dense.data[i] * dense.data[i];
    error2 += (dense.data[i] - fitted[i]) ** 2;
  }
  return { pair, error: Math.sqrt(error2), norm: Math.sqrt(norm2) };
}

/** up = U_k·√S, down = √S·V_kᵀ, in float32: the first k singular triplets, their values split evenly. */
function split(left: MlMatrix, right: MlMatrix, sigma: number[], k: number): LoraPair {
  const [out, inn] = [left.rows, right.rows];
  const up = matrix(out, k);
  const down = matrix(k, inn);
  for (let j = 0; j < k; j += 1) {
    const root = Math.sqrt(sigma[j] ?? 0);
    for (let i = 0; i < out; i += 1) up.data[i * k + j] = left.get(i, j) * root;
    for (let q = 0; q < inn; q += 1) down.data[j * inn + q] = right.get(q, j) * root;
  }
  return { up, down };
}
