// The check before a converted model moves into place: it loads, and generates an image that is not uniform.
import { AbortError, MultiloraError } from '../core/errors';
import type { Image } from '../core/options';
import { Pipeline } from '../core/pipeline';
import type { ConvertResult } from './options';

export async function verifyModel(dir: string, signal?: AbortSignal): Promise<NonNullable<ConvertResult['verified']>> {
  let t = performance.now();
  let pipeline: Pipeline;
  try {
    pipeline = await Pipeline.load(dir, { onWarning: () => undefined });
  } catch (err) {
    throw new MultiloraError('ERR_CONVERT_FAILED', `The converted model does not load: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const loadMs = performance.now() - t;
  try {
    const size = 8 * pipeline.model.vaeScaleFactor;
    const steps = 2;
    t = performance.now();
    let image: Image;
    try {
      image = await pipeline.generate('a photo of a cat', { width: size, height: size, steps, seed: 42, signal });
    } catch (err) {
      if (signal?.aborted) throw new AbortError(signal.reason);
      throw new MultiloraError(
        'ERR_CONVERT_FAILED',
        `The converted model loads but does not generate: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const generateMs = performance.now() - t;
    const first = image.data[0];
    if (image.data.every((v) => v === first)) {
      throw new MultiloraError(
        'ERR_CONVERT_FAILED',
        `The converted model generates a uniform image (every byte ${first}): the conversion went wrong`,
      );
    }
    return {
      width: image.width,
      height: image.height,
      steps,
      loadMs: Math.round(loadMs),
      generateMs: Math.round(generateMs),
    };
  } finally {
    await pipeline.dispose();
  }
}
