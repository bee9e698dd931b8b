// LyCORIS's factorized weight updates (LoHa, LoKr) rewritten, with no approximation, as the plain LoRA pair that
// OpenVINO GenAI applies: ΔW = up · down. The identities (W = A·B throughout, A of [out, r], B of [r, in]):
// - Hadamard: (A1·B1) ⊙ (A2·B2) = U·V with U[p, a·r2 + b] = A1[p, a]·A2[p, b] (the row-wise Khatri–Rao product of
//   A1 and A2) and V[a·r2 + b, q] = B1[a, q]·B2[b, q] (the column-wise one of B1 and B2): a LoRA of rank r1·r2.
// - Kronecker: (U1·V1) ⊗ (U2·V2) = (U1 ⊗ U2)·(V1 ⊗ V2). A factor given as A·B splits as (A, B); a full one as (W, I)
//   or (I, W), whichever has the smaller inner size (its in or its out). The rank is the product of the inner sizes.
// Each entry of U and V is one product of two float32 values, so ΔW = U·V differs from the factorized form only by
// the order of its sums.
import { MultiloraError } from '../core/errors';

/** A row-major float32 matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** A LoRA pair: ΔW = up · down, up of [out, rank], down of [rank, in]. */
export interface LoraPair {
  up: Matrix;
  down: Matrix;
}

/** One factor of a Kronecker product: a full matrix, or a low-rank one as a · b. */
export type KronFactor = { full: Matrix } | { a: Matrix; b: Matrix };

function shapeError(problem: string): MultiloraError {
  return new MultiloraError('ERR_ADAPTER_INVALID', problem);
}

/** A rows × cols matrix of `data` (zeros when left out). */
export function matrix(rows: number, cols: number, data?: Float32Array): Matrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1)
    throw shapeError(`A matrix of ${rows} × ${cols} has no entries`);
  const values = data ?? new Float32Array(rows * cols);
  if (values.length !== rows * cols)
    throw shapeError(`A matrix of ${rows} × ${cols} needs ${rows * cols} values, not ${values.length}`);
  return { rows, cols, data: values };
}

/** The n × n identity. */
export function identity(n: number): Matrix {
  const m = matrix(n, n);
  for (let i = 0; i < n; i += 1) m.data[i * n + i] = 1;
  return m;
}

/** a · b, summed in float64. */
export function matmul(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows) throw shapeError(`Cannot multiply ${a.rows} × ${a.cols} by ${b.rows} × ${b.cols}`);
  const out = matrix(a.rows, b.cols);
  const row = new Float64Array(b.cols);
  for (let i = 0; i < a.rows; i += 1) {
    row.fill(0);
    for (let k = 0; k < a.cols; k += 1) {
      const x = a.data[i * a.cols + k];
      if (x === 0) continue;
      const offset = k * b.cols;
      for (let j = 0; j < b.cols; j += 1) row[j] += x * b.data[offset + j];
    }
    out.data.set(row, i * b.cols);
  }
  return out;
}

/** The Kronecker product a ⊗ b: [a.rows·b.rows, a.cols·b.cols]. */
export function kron(a: Matrix, b: Matrix): Matrix {
  const out = matrix(a.rows * b.rows, a.cols * b.cols);
  for (let i = 0; i < a.rows; i += 1)
    for (let j = 0; j < a.cols; j += 1) {
      const x = a.data[i * a.cols + j];
      if (x === 0) continue;
      for (let k = 0; k < b.rows; k += 1) {
        const base = (i * b.rows + k) * out.cols + j * b.cols;
        for (let l = 0; l < b.cols; l += 1) out.data[base + l] = x * b.data[k * b.cols + l];
      }
    }
  return out;
}

function checkPair(a: Matrix, b: Matrix, what: string): void {
  if (a.cols !== b.rows)
    throw shapeError(`${what}: a of ${a.rows} × ${a.cols} and b of ${b.rows} × ${b.cols} do not multiply`);
}

/** LoHa's (a1·b1) ⊙ (a2·b2) as one LoRA pair of rank r1·r2 (see the header). */
export function hadamardAsLora(a1: Matrix, b1: Matrix, a2: Matrix, b2: Matrix): LoraPair {
  checkPair(a1, b1, 'LoHa w1');
  checkPair(a2, b2, 'LoHa w2');
  if (a1.rows !== a2.rows || b1.cols !== b2.cols)
    throw shapeError(
      `LoHa's two products are ${a1.rows} × ${b1.cols} and ${a2.rows} × ${b2.cols}: a Hadamard product needs one shape`,
    );
  const r1 = a1.cols;
  const r2 = a2.cols;
  const out = a1.rows;
  const inn = b1.cols;
  const up = matrix(out, r1 * r2);
  for (let p = 0; p < out; p += 1)
    for (let a = 0; a < r1; a += 1) {
      const x = a1.data[p * r1 + a];
      const base = p * r1 * r2 + a * r2;
      for (let b = 0; b < r2; b += 1) up.data[base + b] = x * a2.data[p * r2 + b];
    }
  const down = matrix(r1 * r2, inn);
  for (let a = 0; a < r1; a += 1)
    for (let b = 0; b < r2; b += 1) {
      const base = (a * r2 + b) * inn;
      for (let q = 0; q < inn; q += 1) down.data[base + q] = b1.data[a * inn + q] * b2.data[b * inn + q];
    }
  return { up, down };
}

/** A factor split as U·V at its smallest inner size. */
function split(f: KronFactor): LoraPair {
  if ('full' in f) {
    const w = f.full;
    return w.cols <= w.rows ? { up: w, down: identity(w.cols) } : { up: identity(w.rows), down: w };
  }
  checkPair(f.a, f.b, 'LoKr factor');
  const { rows, cols } = { rows: f.a.rows, cols: f.b.cols };
  // a low-rank factor whose rank is not below its sides gains nothing from its split: take the smaller side
  if (f.a.cols > Math.min(rows, cols)) return split({ full: matmul(f.a, f.b) });
  return { up: f.a, down: f.b };
}

/** LoKr's w1 ⊗ w2 as one LoRA pair (see the header): its rank is the product of the factors' inner sizes. */
export function kroneckerAsLora(w1: KronFactor, w2: KronFactor): LoraPair {
  const s1 = split(w1);
  const s2 = split(w2);
  return { up: kron(s1.up, s2.up), down: kron(s1.down, s2.down) };
}

/** A Kronecker factor's outline: its sides, and its rank when it is given as a · b. */
export interface FactorShape {
  rows: number;
  cols: number;
  rank?: number;
}

/** The outline of a factor. */
export function factorShape(f: KronFactor): FactorShape {
  return 'full' in f ? { rows: f.full.rows, cols: f.full.cols } : { rows: f.a.rows, cols: f.b.cols, rank: f.a.cols };
}

/** The rank kroneckerAsLora gives for factors of these outlines, without computing it. */
export function kroneckerRank(w1: FactorShape, w2: FactorShape): number {
  const inner = (f: FactorShape): number => Math.min(f.rank ?? Infinity, f.rows, f.cols);
  return inner(w1) * inner(w2);
}
