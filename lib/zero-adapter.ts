// The zero adapter: a LoRA of rank 1 whose tensors are all zeros, on every layer that the registered adapters patch.
// It changes no image. It exists so that a call with LoRA after a call without can always list, for every layer, a
// set of adapters other than the one that layer had last, which GenAI 2026.3 needs to set that layer's LoRA tensors
// again (docs/GENAI-BUGS.md §1; native/pipeline.cc, Pipeline::AdapterConfigFor).
import type { PatchedLayer } from './diagnose';
import { writeSafetensors, type TensorData } from './safetensors';

/** The bytes of a safetensors file: zeros of rank 1 for each layer (by GenAI name) that any of `adapters` patches. */
export function zeroAdapterBytes(adapters: ReadonlyArray<{ layers: readonly PatchedLayer[] }>): Buffer {
  const seen = new Set<string>();
  const tensors: TensorData[] = [];
  for (const { layers } of adapters) {
    for (const { down, up } of layers) {
      if (seen.has(down.name)) continue;
      seen.add(down.name);
      // A: [rank, in] (or [rank, in, kh, kw]); B: [out, rank] (or [out, rank, 1, 1]): rank 1.
      const downShape = [1, ...down.shape.slice(1)];
      const upShape = [up.shape[0] ?? 0, 1, ...up.shape.slice(2)];
      tensors.push(zeros(down.name, downShape), zeros(up.name, upShape));
    }
  }
  return writeSafetensors(tensors, { multilora: 'zero adapter' });
}

function zeros(name: string, shape: number[]): TensorData {
  const count = shape.reduce((n, d) => n * d, 1);
  return { name, dtype: 'F32', shape, data: Buffer.alloc(count * 4) };
}
