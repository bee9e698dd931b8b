// What the server accepts: sizes derived from the model, and the bounds of every other field.
import type { ModelDefaults } from '../core/options';
import { SERVICE_LIMITS } from '../core/schema';

/** The sizes the page offers and the API accepts, for one model. */
export interface SizeLimits {
  min: number;
  max: number;
  /** The page's step; the API takes any multiple of the VAE scale factor in [min, max]. */
  step: number;
  /** The model's VAE scale factor: width and height must be multiples of it. */
  multipleOf: number;
  defaultWidth: number;
  defaultHeight: number;
}

// The bounds of the request's fields: a service's own limits, from the one option schema (lib/core/schema.ts).
export const MAX_STEPS = SERVICE_LIMITS.steps;
export const MAX_IMAGES = SERVICE_LIMITS.numImages;
export const MAX_PROMPT = SERVICE_LIMITS.prompt;
export const MAX_GUIDANCE = SERVICE_LIMITS.guidanceScale;
/** An adapter's alpha in a request, both ways. */
export const MAX_ALPHA = SERVICE_LIMITS.alpha;
export const DEFAULT_MAX_QUEUE = 8;
/** How long `serve --redis` waits at start for a live worker. */
export const DEFAULT_WAIT_FOR_WORKERS_MS = 30_000;
export const DEFAULT_MAX_BODY = 1024 * 1024;
/** Node's default, made explicit: a request whose headers are larger gets 431. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** How long a client may take to send a request's headers, its whole request, and how long an idle connection stays. */
export const DEFAULT_TIMEOUTS = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000 } as const;

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/**
 * The tutorial's range, 256 to 2048 in steps of 32, for a real model (a default side of 256 or more). A small model,
 * such as the tiny test fixture (64x64, VAE scale 2), gets 32 (or the VAE scale) to twice its default, in steps of
 * 8: the tiny fixture's attention grows with the square of the latent's pixels, and 512x512 takes minutes on it.
 */
export function sizeLimits(defaults: ModelDefaults, vaeScaleFactor: number): SizeLimits {
  const vae = Math.max(1, vaeScaleFactor);
  const dw = Number.isFinite(defaults.width) ? defaults.width : 512;
  const dh = Number.isFinite(defaults.height) ? defaults.height : 512;
  const side = Math.max(dw, dh);
  if (side >= 256) {
    const step = roundUp(32, vae);
    return {
      min: roundUp(256, vae),
      max: Math.floor(2048 / step) * step,
      step,
      multipleOf: vae,
      defaultWidth: dw,
      defaultHeight: dh,
    };
  }
  const step = roundUp(8, vae);
  const min = Math.min(roundUp(32, vae), Math.min(dw, dh));
  return { min, max: Math.max(side * 2, min), step, multipleOf: vae, defaultWidth: dw, defaultHeight: dh };
}
