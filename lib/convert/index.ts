// `convert()`: a diffusers model (a folder, or a Hugging Face Hub id) to the OpenVINO IR that Pipeline.load reads,
// through optimum-intel in the converter's own venv (lib/convert/env.ts, python/convert.py), with LoRAs fused
// into the weights first if asked. Everything is written into a scratch folder beside the output folder and moved
// into place only once the result has loaded and generated: a failed or interrupted conversion leaves nothing.
// This file runs the steps; options.ts, source.ts, disk.ts, python.ts and verify.ts hold what they use.
import { existsSync, readdirSync, statSync, type Stats } from 'node:fs';
import { rename, rm, rmdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { AbortError, MultiloraError } from '../core/errors';
import { inspectLora, toGenaiLora } from '../lora/format';
import { invalid, string } from '../core/validate';
import { dirBytes, estimateFromHeaders, freeBytes, isEnospc, makeScratch, mib, noSpace, protectedDir } from './disk';
import { ensureConverter } from './env';
import {
  CONVERT_SCHEDULERS,
  checkOptions,
  type Checked,
  type ConvertOptions,
  type ConvertPhase,
  type ConvertProgress,
  type ConvertResult,
  type ConvertScheduler,
  type FusedReport,
  type WeightFormat,
} from './options';
import { killGroup, runPython, type PythonRun } from './python';
import { HUB_ID, checkHub, checkTinyVae, inspectDiffusers, sourceError, type DiffusersModel } from './source';
import { verifyModel } from './verify';

export { CONVERT_SCHEDULERS, WEIGHT_FORMATS } from './options';
export type {
  ConvertOptions,
  ConvertPhase,
  ConvertProgress,
  ConvertResult,
  ConvertScheduler,
  FuseLora,
  FusedReport,
  WeightFormat,
} from './options';

/** The parts whose openvino_model.xml the exporter writes, for the export's progress fraction. */
function exportedParts(model: DiffusersModel): string[] {
  const parts: string[] = [];
  for (const c of model.components) {
    if (c === 'vae') parts.push('vae_decoder/openvino_model.xml', 'vae_encoder/openvino_model.xml');
    else if (/^(unet|transformer|text_encoder(_\d)?)$/.test(c)) parts.push(`${c}/openvino_model.xml`);
    else if (/^tokenizer(_\d)?$/.test(c)) parts.push(`${c}/openvino_tokenizer.xml`);
  }
  return parts;
}

/** One conversion under way: its progress events, its abort (the caller's signal, or an onProgress that threw),
 * its warnings, and the Python job it runs now. */
class Conversion {
  readonly started = performance.now();
  readonly warnings: string[] = [];
  readonly signal: AbortSignal;
  readonly #onProgress: Checked['onProgress'];
  readonly #stop = new AbortController();
  #callbackFailure: MultiloraError | undefined;
  #python: PythonRun | undefined;

  constructor(opts: Checked) {
    this.#onProgress = opts.onProgress;
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.#stop.signal]) : this.#stop.signal;
  }

  elapsedMs(): number {
    return Math.round(performance.now() - this.started);
  }

  /**
   * An onProgress that throws stops the conversion (it may be called from a timer or a stream's event, where a
   * throw would be uncaught): the conversion then rejects with ERR_CALLBACK.
   */
  tell(phase: ConvertPhase, message: string, fraction?: number): void {
    if (!this.#onProgress || this.#callbackFailure) return;
    const event: ConvertProgress = { phase, message, elapsedMs: this.elapsedMs() };
    if (fraction !== undefined) event.fraction = fraction;
    try {
      this.#onProgress(event);
    } catch (err) {
      this.#callbackFailure = new MultiloraError(
        'ERR_CALLBACK',
        `options.onProgress threw: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
      this.#stop.abort(this.#callbackFailure);
    }
  }

  checkAbort(): void {
    if (this.#callbackFailure) throw this.#callbackFailure;
    if (this.signal.aborted) throw new AbortError(this.signal.reason);
  }

  /** Runs one job of python/convert.py with the venv's `python`; kill() (the abort) stops it. */
  async runJob(python: string, job: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.#python = runPython(python, job, {
      progress: (phase, message) => this.tell(phase, message),
      warning: (message) => {
        this.warnings.push(message);
        this.tell('fuse', `warning: ${message}`);
      },
    });
    try {
      return await this.#python.done;
    } catch (err) {
      this.checkAbort();
      throw err;
    } finally {
      this.#python = undefined;
    }
  }

  /** Stops the Python job running now, with the exporter it started. */
  kill(): void {
    if (this.#python) killGroup(this.#python.child);
  }

  /** What convert() rejects with when `err` stopped it. */
  failure(err: unknown, out: string): unknown {
    this.kill();
    if (this.#callbackFailure) return this.#callbackFailure;
    if (this.signal.aborted && !(err instanceof AbortError)) return new AbortError(this.signal.reason);
    if (isEnospc(err)) return noSpace(out, err);
    return err;
  }
}

/** The output folder, and whether it exists already. */
interface Target {
  out: string;
  exists: boolean;
}

/** The output folder: refused now if it is in the way (a file, or a folder not empty without force), before anything slow. */
function checkOutput(outDir: string, force: boolean): Target {
  const out = path.resolve(outDir);
  let exists = false;
  try {
    const s = statSync(out);
    if (!s.isDirectory())
      throw new MultiloraError('ERR_OUTPUT_NOT_EMPTY', `${out} is a file, not a folder: give another output folder`);
    exists = true;
    if (readdirSync(out).length > 0 && !force) {
      throw new MultiloraError(
        'ERR_OUTPUT_NOT_EMPTY',
        `${out} exists and is not empty: give an empty or new folder, or force to replace it (--force)`,
      );
    }
  } catch (err) {
    if (err instanceof MultiloraError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return { out, exists };
}

/** A diffusers model in a folder here. */
interface Found {
  dir: string;
  model: DiffusersModel;
}

/**
 * The source: a folder here (inspected), else a Hub id (asked about; undefined, downloaded once the venv is ready).
 * Refuses an output folder that force must not replace, or one inside the source.
 */
async function checkSource(
  source: string,
  target: Target,
  outDir: string,
  opts: Checked,
  signal: AbortSignal,
): Promise<Found | undefined> {
  const local = path.resolve(source);
  let localStat: Stats | undefined;
  try {
    localStat = statSync(local);
  } catch {
    localStat = undefined;
  }
  let found: Found | undefined;
  if (localStat) {
    if (!localStat.isDirectory())
      throw sourceError(`${source} is a file; give a diffusers model folder or a Hugging Face Hub id (org/name)`);
    found = { dir: local, model: inspectDiffusers(local, source) };
  } else if (!HUB_ID.test(source) || source.includes('..')) {
    throw sourceError(`${source} is neither a folder here nor a Hugging Face Hub id (org/name)`);
  } else {
    await checkHub(source, signal, opts.revision);
  }
  const { out } = target;
  const reason = protectedDir(out, localStat ? local : path.join(os.tmpdir(), '.none'));
  if (reason && opts.force && target.exists)
    throw new MultiloraError(
      'ERR_OUTPUT_NOT_EMPTY',
      `${out} is ${reason}: force never replaces it; give another output folder`,
    );
  if (localStat && (out === local || out.startsWith(local + path.sep))) {
    throw invalid('a folder outside the source model', 'outDir', outDir);
  }
  return found;
}

/** Downloads a Hub model with the converter, and inspects it. */
async function download(run: Conversion, python: string, source: string, revision: string | undefined): Promise<Found> {
  const fetched = await run.runJob(python, { command: 'fetch', repo: source, revision: revision ?? null });
  const dir = String(fetched.folder);
  return { dir, model: inspectDiffusers(dir, `${source} (downloaded to ${dir})`) };
}

/** A flow-matching scheduler for SD3 and Flux, any other for UNet models. */
function checkScheduler(scheduler: ConvertScheduler | undefined, model: DiffusersModel): void {
  if (!scheduler) return;
  const flow = model.family === 'sd3' || model.family === 'flux';
  if (flow !== (scheduler === 'flow-match-euler')) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `options.scheduler ${JSON.stringify(scheduler)} does not go with a ${model.pipelineClass}: ` +
        (flow
          ? 'SD3 and Flux models take "flow-match-euler"'
          : 'UNet models take lcm, ddim, euler, euler-ancestral or pndm'),
    );
  }
}

/** A LoRA as python/convert.py fuses it. */
interface FuseJob {
  file: string;
  alpha: number;
  label: string;
}

/** The LoRAs, rewritten into the names GenAI matches (into `work`); the Python side matches them the way GenAI does. */
async function prepareFuse(
  run: Conversion,
  loras: Checked['fuseLora'],
  model: DiffusersModel,
  work: string,
  source: string,
): Promise<FuseJob[]> {
  if (loras.length && !['sd', 'sdxl', 'lcm'].includes(model.family)) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Fusing LoRAs is done for Stable Diffusion 1.x/2.x, SDXL and LCM models; ${source} is a ${model.pipelineClass}. ` +
        'Convert it without fuseLora and give the LoRAs as adapters (mode: "fuse" fuses them at load)',
    );
  }
  const fuse: FuseJob[] = [];
  for (const [i, lora] of loras.entries()) {
    run.tell('fuse', `reading ${lora.path}`);
    const analysis = await inspectLora(lora.path);
    // kernels: fusing takes the 3x3 convolutions that GenAI would not apply at generate (LCM-LoRA has them)
    const bytes = await toGenaiLora(lora.path, analysis, { family: model.family, scale: lora.scale, kernels: true });
    let file = lora.path;
    if (bytes) {
      file = path.join(work, `lora-${i}.safetensors`);
      await writeFile(file, bytes);
    }
    fuse.push({ file, alpha: lora.alpha, label: lora.path });
  }
  return fuse;
}

/** ERR_NO_SPACE when `parent` has less free space than the conversion is estimated to write. */
async function checkSpace(
  source: string,
  found: Found,
  weightFormat: WeightFormat,
  fusing: boolean,
  parent: string,
): Promise<void> {
  const need = await estimateFromHeaders(found.dir, found.model.components, weightFormat, fusing);
  const free = await freeBytes(parent);
  if (free < need) {
    throw new MultiloraError(
      'ERR_NO_SPACE',
      `Converting ${source} needs about ${mib(need)} in ${parent}, which has ${mib(free)} free: free some space, or convert into a folder on another disk`,
    );
  }
}

/** Exports the model into `work`/model, with the share of parts written as the export's progress. */
async function exportModel(
  run: Conversion,
  python: string,
  found: Found,
  work: string,
  fuse: FuseJob[],
  opts: Checked,
): Promise<{ output: string; fused: FusedReport[] }> {
  const output = path.join(work, 'model');
  const parts = exportedParts(found.model);
  let shown = -1;
  const timer = setInterval(() => {
    if (!existsSync(output)) return; // the exporter makes it when it starts
    const written = parts.filter((p) => existsSync(path.join(output, p))).length;
    if (written === shown || !parts.length) return;
    shown = written;
    run.tell('export', `${written} of ${parts.length} parts written`, written / parts.length);
  }, 500);
  let done: Record<string, unknown>;
  try {
    done = await run.runJob(python, {
      command: 'convert',
      source: found.dir,
      work,
      output,
      weight_format: opts.weightFormat,
      task: 'text-to-image',
      family: found.model.family,
      fuse,
      scheduler: opts.scheduler ? CONVERT_SCHEDULERS[opts.scheduler] : null,
      tiny_vae: opts.tinyVae ?? null,
    });
  } finally {
    clearInterval(timer);
  }
  run.checkAbort();
  const fused = ((done.fused as Array<Record<string, number>>) ?? []).map((r, i) => ({
    path: opts.fuseLora[i].path,
    alpha: opts.fuseLora[i].alpha,
    layers: r.layers,
    fusedLayers: r.fused_layers,
    unmatched: r.unmatched,
  }));
  return { output, fused };
}

/** Into place: an empty output folder makes way; a forced one is kept aside until the new one is in. */
async function moveIntoPlace(output: string, target: Target, work: string): Promise<void> {
  const previous = path.join(work, 'previous');
  if (target.exists) await rename(target.out, previous);
  try {
    await rename(output, target.out);
  } catch (err) {
    if (target.exists) await rename(previous, target.out);
    throw err;
  }
}

/** The folders above `dir` that do not exist yet, outermost first: removed again when no output comes to be. */
function missingFolders(dir: string): string[] {
  const made: string[] = [];
  for (let d = dir; !existsSync(d); d = path.dirname(d)) made.unshift(d);
  return made;
}

/** The conversion's slow part, in the scratch folder `work`: set-up, download, fuse, export, verify, move. */
async function convertIn(
  run: Conversion,
  opts: Checked,
  source: string,
  local: Found | undefined,
  target: Target,
  work: string,
): Promise<ConvertResult> {
  const env = await ensureConverter({ signal: run.signal, onLine: (line) => run.tell('setup', line) });
  run.checkAbort();
  const found = local ?? (await download(run, env.python, source, opts.revision));
  checkScheduler(opts.scheduler, found.model);
  if (opts.tinyVae) checkTinyVae(opts.tinyVae, found.model);
  const fuse = await prepareFuse(run, opts.fuseLora, found.model, work, source);
  await checkSpace(source, found, opts.weightFormat, fuse.length > 0, path.dirname(target.out));
  const { output, fused } = await exportModel(run, env.python, found, work, fuse, opts);
  await rm(path.join(work, 'fused'), { recursive: true, force: true });
  let verified: ConvertResult['verified'];
  if (opts.verify) {
    run.tell('verify', 'loading the result with Pipeline.load and generating one small image');
    verified = await verifyModel(output, run.signal);
    run.checkAbort();
  }
  await moveIntoPlace(output, target, work);
  const bytes = await dirBytes(target.out);
  run.tell('done', `converted into ${target.out} (${mib(bytes)})`, 1);
  return {
    outDir: target.out,
    sourceDir: found.dir,
    pipelineClass: found.model.pipelineClass,
    family: found.model.family,
    weightFormat: opts.weightFormat,
    fused,
    bytes,
    warnings: run.warnings,
    ...(verified ? { verified } : {}),
    elapsedMs: run.elapsedMs(),
  };
}

/**
 * Converts a diffusers model (a folder, or a Hugging Face Hub id) to OpenVINO IR in `outDir`, as optimum-intel's
 * `optimum-cli export openvino` does, after fusing `fuseLora` into its weights; checks that the result loads and
 * generates; and only then moves it into place. The first call sets up the converter's Python venv (minutes; see
 * docs/CONVERT.md). Rejects with a MultiloraError: ERR_CONVERT_SOURCE, ERR_HUB_UNREACHABLE, ERR_OUTPUT_NOT_EMPTY,
 * ERR_NO_SPACE, ERR_ADAPTER_* for a LoRA that does not fit, ERR_CONVERT_SETUP, ERR_CONVERT_FAILED, ERR_ABORTED.
 */
export async function convert(source: string, outDir: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  string(source, 'source', { nonEmpty: true });
  string(outDir, 'outDir', { nonEmpty: true });
  const opts = checkOptions(options);
  if (opts.tinyVae) checkTinyVae(opts.tinyVae);
  const run = new Conversion(opts);
  run.checkAbort();
  const target = checkOutput(outDir, opts.force);
  run.tell('check', `checking ${source}`);
  const local = await checkSource(source, target, outDir, opts, run.signal);
  const parent = path.dirname(target.out);
  const made = missingFolders(parent);
  let work: string | undefined;
  const onAbort = (): void => run.kill();
  run.signal.addEventListener('abort', onAbort, { once: true });
  try {
    work = await makeScratch(parent, target.out);
    return await convertIn(run, opts, source, local, target, work);
  } catch (err) {
    throw run.failure(err, target.out);
  } finally {
    run.signal.removeEventListener('abort', onAbort);
    if (work) await rm(work, { recursive: true, force: true });
    // folders made for the output, when it did not come to be
    if (!existsSync(target.out)) for (const dir of made.reverse()) await rmdir(dir).catch(() => undefined);
  }
}
