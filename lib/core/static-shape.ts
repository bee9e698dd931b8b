// Static shapes: the models are reshaped to one size (and batch) before they are compiled, which lets OpenVINO
// plan memory and pick kernels once. Calls must then keep to that shape; this file checks both sides.
import type { NativeGenerateOptions } from './binding';
import { MultiloraError } from './errors';
import type { ModelInfo } from './model';
import { checkSide, MAX_IMAGES } from './options';
import { finite, integer, knownKeys, object } from './validate';

/** The one shape that a pipeline loaded with `staticShape` serves. */
export interface StaticShape {
  /** Width and height of the images, multiples of the model's VAE scale factor. */
  width: number;
  height: number;
  /** Images per call (`numImages`); default 1. */
  numImages?: number;
  /**
   * The guidance scale the calls will use (default: the model's). It fixes the denoiser's batch: with classifier-free
   * guidance (a scale above 1 on SD, SDXL and SD3), the denoiser runs on two latents at once. Calls may use another
   * scale on the same side of 1.
   */
  guidanceScale?: number;
}

const KEYS = ['width', 'height', 'numImages', 'guidanceScale'] as const;

/** Families whose denoiser doubles its batch for classifier-free guidance when the scale is above 1. */
const CFG_FAMILIES = new Set(['sd', 'sdxl', 'sd3', 'other']);

export function checkStaticShape(value: unknown, model: ModelInfo): Required<StaticShape> | undefined {
  if (value === undefined) return undefined;
  const o = object(value, 'options.staticShape');
  knownKeys(o, KEYS, 'options.staticShape');
  return {
    width: checkSide(o.width, 'options.staticShape.width', model.vaeScaleFactor),
    height: checkSide(o.height, 'options.staticShape.height', model.vaeScaleFactor),
    numImages: o.numImages === undefined ? 1 : integer(o.numImages, 'options.staticShape.numImages', 1, MAX_IMAGES),
    // NaN: the model's default, which GenAI reads (calls then leave guidanceScale to the model as well).
    guidanceScale:
      o.guidanceScale === undefined ? Number.NaN : finite(o.guidanceScale, 'options.staticShape.guidanceScale', 0, 100),
  };
}

/** [numImages, height, width, guidanceScale] as the addon takes it (NaN: the model's guidance scale). */
export function nativeShape(shape: Required<StaticShape>): [number, number, number, number] {
  return [shape.numImages, shape.height, shape.width, shape.guidanceScale];
}

/**
 * Fits a checked call to the pipeline's static shape: fills in the size, and refuses another size, batch or side of
 * classifier-free guidance with a message that says what to do. imageSize: the input image's, for image tasks.
 */
export function fitStaticShape(
  options: Omit<NativeGenerateOptions, 'adapters'>,
  shape: Required<StaticShape>,
  model: ModelInfo,
  imageSize?: { width: number; height: number },
): void {
  const guidance = shape.guidanceScale;
  const fixed = `this pipeline was loaded with staticShape ${shape.width}x${shape.height}, ${shape.numImages} image(s) per call`;
  const width = imageSize?.width ?? options.width ?? shape.width;
  const height = imageSize?.height ?? options.height ?? shape.height;
  if (width !== shape.width || height !== shape.height) {
    const what = imageSize ? 'an input image' : 'a size';
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected ${what} of ${shape.width}x${shape.height} but received ${width}x${height}: ${fixed}; load another pipeline for other sizes`,
    );
  }
  const numImages = options.numImages ?? 1;
  if (numImages !== shape.numImages) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected numImages ${shape.numImages} but received ${numImages}: ${fixed}`,
    );
  }
  if (!imageSize) {
    options.width = width;
    options.height = height;
  }
  const scale = options.guidanceScale ?? guidance;
  if (CFG_FAMILIES.has(model.family) && scale > 1 !== guidance > 1) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected a guidanceScale ${guidance > 1 ? 'above' : 'of at most'} 1 but received ${scale}: ${fixed} and a guidance scale of ${guidance}, which fixes the denoiser's batch`,
    );
  }
  if (options.guidanceScale === undefined) options.guidanceScale = guidance;
}
