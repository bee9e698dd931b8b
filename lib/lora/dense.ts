// LyCORIS factor sets whose change of the weights has a kernel above 1x1 and no plain LoRA form to hand GenAI:
// LoHa and LoKr with a Tucker core (`hada_t1`/`hada_t2`, `lokr_t2`) and LoKr of a convolution with 4-D factors
// (`lokr_w2` or `lokr_w2_b` of [..., kh, kw]). Only fusing takes them: the change is computed whole, by LyCORIS's
// formulas (lycoris/functional/loha.py, lokr.py, general.py's rebuild_tucker), and handed on as a pair A = the
// change, B = the identity. Shapes, as LyCORIS writes them:
// - LoHa Tucker: hada_tN [r, r, kh, kw], hada_wN_a [r, out], hada_wN_b [r, in];
//   ΔW_N[p, q, ...] = Σ_ij tN[i, j, ...] · wN_b[j, q] · wN_a[i, p], and ΔW = ΔW_1 ⊙ ΔW_2.
// - LoKr: w1 [a, c] (or w1_a [a, r] · w1_b [r, c]); w2 [b, d, kh, kw], or w2_a [b, r] · w2_b [r, d, kh, kw], or Tucker
//   lokr_t2 [r, r, kh, kw] with w2_a [r, b], w2_b [r, d]: w2[p, q, ...] = Σ_ij t2[i, j, ...] · w2_a[i, p] · w2_b[j, q];
//   ΔW[a·B + b, c·D + d, ...] = w1[a, c] · w2[b, d, ...].
import { MultiloraError } from '../core/errors';
import { quote, toFloat32Array, type TensorInfo } from './safetensors';

type Factors = Partial<Record<string, TensorInfo>>;
type Read = (info: TensorInfo) => Buffer | Promise<Buffer>;

export interface DenseOutline {
  out: number;
  inn: number;
  kernel: [number, number];
  /** The rank LyCORIS divides alpha by (its lora_dim), or undefined when every factor is full. */
  dim: number | undefined;
}

function invalid(key: string, problem: string): MultiloraError {
  return new MultiloraError('ERR_ADAPTER_INVALID', `LoRA layer ${quote(key)} ${problem}`);
}

const spatialOf = (t: TensorInfo | undefined): boolean => (t?.shape.length ?? 0) === 4 && t!.shape[2] * t!.shape[3] > 1;

/** Whether a LoHa's or LoKr's factors have a Tucker core or a kernel above 1x1: then only a fuse takes them. */
export function isDense(factors: Factors): boolean {
  return Boolean(
    factors.hada_t1 || factors.hada_t2 || factors.lokr_t2 || spatialOf(factors.lokr_w2) || spatialOf(factors.lokr_w2_b),
  );
}

function dims(key: string, t: TensorInfo | undefined, role: string, rank: number): number[] {
  if (!t || t.shape.length !== rank || t.shape.some((d) => !(d > 0))) {
    throw invalid(
      key,
      `needs ${role} of ${rank} dimensions${t ? `; it has ${quote(t.name)} of shape ${JSON.stringify(t.shape)}` : ''}`,
    );
  }
  return t.shape;
}

/** The shapes of a dense factor set, checked; throws ERR_ADAPTER_INVALID naming what does not fit. */
export function denseOutline(key: string, kind: 'loha' | 'lokr', f: Factors): DenseOutline {
  if (kind === 'loha') {
    const sides = [1, 2].map((n) => {
      const [r = 0, r2 = 0, kh = 0, kw = 0] = dims(key, f[`hada_t${n}`], `hada_t${n}`, 4);
      const [ra = 0, out = 0] = dims(key, f[`hada_w${n}_a`], `hada_w${n}_a`, 2);
      const [rb = 0, inn = 0] = dims(key, f[`hada_w${n}_b`], `hada_w${n}_b`, 2);
      if (r !== r2 || ra !== r || rb !== r) throw invalid(key, `has a Tucker LoHa half ${n} whose ranks disagree`);
      return { r, out, inn, kh, kw };
    });
    const [a, b] = sides as [(typeof sides)[0], (typeof sides)[0]];
    if (a.out !== b.out || a.inn !== b.inn || a.kh !== b.kh || a.kw !== b.kw) {
      throw invalid(key, 'has Tucker LoHa halves of different shapes');
    }
    return { out: a.out, inn: a.inn, kernel: [a.kh, a.kw], dim: a.r };
  }
  let w1: [number, number];
  let dim: number | undefined;
  if (f.lokr_w1) w1 = dims(key, f.lokr_w1, 'lokr_w1', 2) as [number, number];
  else {
    const [a = 0, r = 0] = dims(key, f.lokr_w1_a, 'lokr_w1 or lokr_w1_a', 2);
    const [r2 = 0, c = 0] = dims(key, f.lokr_w1_b, 'lokr_w1_b', 2);
    if (r !== r2) throw invalid(key, 'has lokr_w1_a and lokr_w1_b that do not multiply');
    w1 = [a, c];
    dim = r;
  }
  let w2: [number, number, number, number];
  if (f.lokr_w2) w2 = dims(key, f.lokr_w2, 'lokr_w2', 4) as [number, number, number, number];
  else if (f.lokr_t2) {
    const [r = 0, r2 = 0, kh = 0, kw = 0] = dims(key, f.lokr_t2, 'lokr_t2', 4);
    const [ra = 0, b = 0] = dims(key, f.lokr_w2_a, 'lokr_w2_a', 2);
    const [rb = 0, d = 0] = dims(key, f.lokr_w2_b, 'lokr_w2_b', 2);
    if (r !== r2 || ra !== r || rb !== r) throw invalid(key, 'has a Tucker LoKr whose ranks disagree');
    w2 = [b, d, kh, kw];
    dim = r;
  } else {
    const [b = 0, r = 0] = dims(key, f.lokr_w2_a, 'lokr_w2, lokr_t2 or lokr_w2_a', 2);
    const [r2 = 0, d = 0, kh = 0, kw = 0] = dims(key, f.lokr_w2_b, 'lokr_w2_b', 4);
    if (r !== r2) throw invalid(key, 'has lokr_w2_a and lokr_w2_b that do not multiply');
    w2 = [b, d, kh, kw];
    dim = r;
  }
  return { out: w1[0] * w2[0], inn: w1[1] * w2[1], kernel: [w2[2], w2[3]], dim };
}

async function values(f: Factors, role: string, read: Read): Promise<Float32Array> {
  const t = f[role]!;
  return toFloat32Array(await read(t), t.dtype);
}

/** Σ_ij t[i, j, s] · x[i, p] · y[j, q] as [P, Q, S] (rebuild_tucker with x the first mode's factor). */
function tucker(
  t: Float32Array,
  x: Float32Array,
  y: Float32Array,
  r: number,
  P: number,
  Q: number,
  S: number,
): Float64Array {
  const out = new Float64Array(P * Q * S);
  for (let i = 0; i < r; i += 1) {
    for (let j = 0; j < r; j += 1) {
      for (let s = 0; s < S; s += 1) {
        const core = t[(i * r + j) * S + s];
        if (core === 0) continue;
        for (let p = 0; p < P; p += 1) {
          const xp = core * x[i * P + p];
          for (let q = 0; q < Q; q += 1) out[(p * Q + q) * S + s] += xp * y[j * Q + q];
        }
      }
    }
  }
  return out;
}

/** x [P, R] · y [R, Q] as a Float64Array [P, Q]. */
function product(x: Float32Array, y: Float32Array, P: number, R: number, Q: number): Float64Array {
  const out = new Float64Array(P * Q);
  for (let p = 0; p < P; p += 1) {
    for (let r = 0; r < R; r += 1) {
      const v = x[p * R + r];
      for (let q = 0; q < Q; q += 1) out[p * Q + q] += v * y[r * Q + q];
    }
  }
  return out;
}

/** The whole change of the weights, unscaled, [out, in, kh, kw] row-major, by LyCORIS's formulas. */
export async function denseChange(key: string, kind: 'loha' | 'lokr', f: Factors, read: Read): Promise<Float32Array> {
  const { out, inn, kernel } = denseOutline(key, kind, f);
  const S = kernel[0] * kernel[1];
  if (kind === 'loha') {
    const half = async (n: 1 | 2) => {
      const r = f[`hada_t${n}`]!.shape[0];
      const [t, a, b] = await Promise.all(
        [`hada_t${n}`, `hada_w${n}_a`, `hada_w${n}_b`].map((role) => values(f, role, read)),
      );
      return tucker(t, a, b, r, out, inn, S);
    };
    const [h1, h2] = [await half(1), await half(2)];
    return Float32Array.from(h1, (v, i) => v * h2[i]);
  }
  // w1 [A, C] and w2 [B, D, S], then the Kronecker product
  const [A, C] = f.lokr_w1 ? f.lokr_w1.shape : [f.lokr_w1_a!.shape[0], f.lokr_w1_b!.shape[1]];
  const w1 = f.lokr_w1
    ? Float64Array.from(await values(f, 'lokr_w1', read))
    : product(await values(f, 'lokr_w1_a', read), await values(f, 'lokr_w1_b', read), A, f.lokr_w1_a!.shape[1], C);
  const B = out / A;
  const D = inn / C;
  let w2: Float64Array;
  if (f.lokr_w2) w2 = Float64Array.from(await values(f, 'lokr_w2', read));
  else if (f.lokr_t2) {
    const r = f.lokr_t2.shape[0];
    w2 = tucker(
      await values(f, 'lokr_t2', read),
      await values(f, 'lokr_w2_a', read),
      await values(f, 'lokr_w2_b', read),
      r,
      B,
      D,
      S,
    );
  } else {
    const r = f.lokr_w2_a!.shape[1];
    w2 = product(await values(f, 'lokr_w2_a', read), await values(f, 'lokr_w2_b', read), B, r, D * S);
  }
  const change = new Float32Array(out * inn * S);
  for (let a = 0; a < A; a += 1) {
    for (let c = 0; c < C; c += 1) {
      const v = w1[a * C + c];
      for (let b = 0; b < B; b += 1) {
        for (let d = 0; d < D; d += 1) {
          const to = ((a * B + b) * inn + (c * D + d)) * S;
          const from = (b * D + d) * S;
          for (let s = 0; s < S; s += 1) change[to + s] = v * w2[from + s];
        }
      }
    }
  }
  return change;
}
