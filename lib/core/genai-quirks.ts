// The workarounds for OpenVINO GenAI 2026.3's bugs on the TypeScript side, each pointing at its section of
// docs/GENAI-BUGS.md (native/genai/quirks.h has the C++ side). A GenAI upgrade is this file and that one to revisit:
// each section's test says when a workaround can go.
//
// Sections whose workaround lives elsewhere, and why:
// - docs/GENAI-BUGS.md#switching and docs/GENAI-BUGS.md#output-reused: the AdapterConfig of each call and the copy
//   of the output tensor are made in C++ (native/genai/quirks.h).
// - docs/GENAI-BUGS.md#peft-ignored: the rewrite of PEFT/diffusers names is the LoRA format module's work
//   (toGenaiLora in lib/lora/format.ts), as it is for every format GenAI does not read as it is.
// - docs/GENAI-BUGS.md#registered-bytes: nothing to work around, but removing a pipeline's last adapter changes its
//   images without LoRA slightly.
// - docs/GENAI-BUGS.md#clone: multilora never calls clone(): PipelinePool (lib/core/pool.ts) builds independent pipelines.
import type { NativeGenerateOptions, NativeRgb } from './binding';
import type { CheckContext } from './options';
import { MultiloraError } from './errors';
import type { ModelInfo } from './model';

/**
 * The adapters a call lists to GenAI, as [index, alpha] in registration order: the chosen ones, then, at alpha 0, the
 * fewest and cheapest others that leave no layer patched by a registered adapter without a listed one
 * (docs/GENAI-BUGS.md#switching: a layer whose rank drops to 0 and comes back computes garbage). An adapter at alpha
 * 0 adds nothing, so the bytes are those of the chosen adapters alone; listing fewer than all of them spares GenAI
 * their LoRA products at every step. The C++ side (quirks::AdapterSwitch) lists them all once another task than
 * text-to-image has run.
 */
export function listFor(
  registered: ReadonlyArray<{ layers: ReadonlySet<string>; report: { ranks: readonly number[] } }>,
  chosen: ReadonlyArray<[number, number]>,
): Array<[number, number]> {
  const listed = new Map<number, number>(chosen);
  const uncovered = new Set<string>();
  for (const a of registered) for (const layer of a.layers) uncovered.add(layer);
  for (const index of listed.keys()) for (const layer of registered[index].layers) uncovered.delete(layer);
  // Cheapest first: the smallest largest rank, then registration order.
  const others = registered
    .map((a, index) => ({ index, rank: Math.max(0, ...a.report.ranks), layers: a.layers }))
    .filter(({ index }) => !listed.has(index))
    .sort((x, y) => x.rank - y.rank || x.index - y.index);
  for (const other of others) {
    if (uncovered.size === 0) break;
    if (![...other.layers].some((layer) => uncovered.has(layer))) continue;
    listed.set(other.index, 0);
    for (const layer of other.layers) uncovered.delete(layer);
  }
  return [...listed.entries()].sort((x, y) => x[0] - y[0]);
}

/**
 * The OpenVINO properties of a build: without CACHE_DIR when adapters are applied at run time
 * (docs/GENAI-BUGS.md#cache-lora). OpenVINO 2026.3's CPU plugin turns each LoRA branch that GenAI adds into an
 * internal op that its model cache cannot read back, so every later load would compile those models again and write
 * their blobs anew (GBs for an SDXL): a slower start than no cache at all. Fused adapters are plain weights, and a
 * pipeline without adapters has no LoRA branch: both keep the cache.
 */
export function cacheProperties(
  properties: Readonly<Record<string, string>>,
  runtimeAdapters: boolean,
): Record<string, string> {
  const result = { ...properties };
  if (runtimeAdapters) delete result.CACHE_DIR;
  return result;
}

/**
 * Refuses adapters with text-encoder layers for a static shape on a model with more than one text encoder
 * (docs/GENAI-BUGS.md#static-text-encoder): GenAI would drop those layers, with only a warning on stderr.
 */
export function checkStaticAdapters(
  model: ModelInfo,
  adapters: ReadonlyArray<{ name: string; report: { targets: readonly string[] } }>,
): void {
  if (model.family === 'sd' || model.family === 'lcm') return;
  const withText = adapters.find((a) => a.report.targets.some((t) => t.startsWith('text_encoder')));
  if (withText) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Adapter ${JSON.stringify(withText.name)} has text-encoder layers, which GenAI 2026.3 drops from a ${model.pipelineClass} compiled for a static shape: load without staticShape to use it (see docs/GENAI-BUGS.md)`,
    );
  }
}

/**
 * The schedulers that GenAI gets wrong below some number of steps, for a model whose scheduler config is `config`
 * ('auto' when it is the model's own): PNDM at 1 step (docs/GENAI-BUGS.md#pndm-one-step).
 */
export function schedulerMinSteps(
  config: Record<string, unknown> | undefined,
): NonNullable<CheckContext['schedulerMinSteps']> {
  const pndm = {
    steps: 2,
    why: "GenAI 2026.3's PNDM scheduler reads past the end of its noise table at 1 step, and its images are then random or black",
  };
  return config?._class_name === 'PNDMScheduler' ? { pndm, auto: pndm } : { pndm };
}

/**
 * How many denoising steps GenAI runs on an input image: int(steps × strength), in float32. None is refused before
 * GenAI sees the call (docs/GENAI-BUGS.md#image-no-steps): GenAI would refuse it, fail in a scheduler, or crash.
 */
export function imageSteps(steps: number, strength: number): number {
  return Math.floor(Math.fround(steps * Math.fround(strength)));
}

/**
 * Fits a checked inpainting call to GenAI's InpaintingPipeline (docs/GENAI-BUGS.md#inpaint-size-batch): one image per
 * call, and the image's own size (GenAI would otherwise inpaint at the model's default size).
 */
export function fitInpaint(
  options: Pick<NativeGenerateOptions, 'numImages' | 'width' | 'height'>,
  image: NativeRgb,
): void {
  const count = options.numImages ?? 1;
  if (count > 1) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected numImages 1 for inpaint but received ${count}: GenAI 2026.3's InpaintingPipeline does not repeat the ` +
        'image\'s latents for a batch ("Shapes for current [N,...] and initial image latents [1,...] must match"); ' +
        'make one call per image',
    );
  }
  options.width = image.width;
  options.height = image.height;
}
