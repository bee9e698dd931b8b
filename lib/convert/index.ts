// `convert()`: a diffusers model (a folder, or a Hugging Face Hub id) to the OpenVINO IR that Pipeline.load reads,
// through optimum-intel in the converter's own venv (lib/convert/env.ts, python/convert.py), with LoRAs fused
// into the weights first if asked. Everything is written into a scratch folder beside the output folder and moved
// into place only once the result has loaded and generated: a failed or interrupted conversion leaves nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { CONVERTER_SCRIPT, alive, ensureConverter, lastLines } from './env';
import { AbortError, MultiloraError } from '../core/errors';
import { inspectLora, toGenaiLora, type LoraScale } from '../lora/format';
import { GENAI_CLASSES, familyOf, type ModelFamily } from '../core/model';
import type { Image } from '../core/options';
import { Pipeline } from '../core/pipeline';
import { readSafetensorsHeader } from '../lora/safetensors';
import { PACKAGE_ROOT } from '../core/sdk';
import { finite, invalid, knownKeys, object, reading, string } from '../core/validate';

export type WeightFormat = 'fp32' | 'fp16' | 'int8';
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['fp32', 'fp16', 'int8'];

/** A LoRA to fuse into the weights before the export. */
export interface FuseLora {
  /** A .safetensors LoRA, in any format multilora reads (kohya, PEFT/diffusers, ...). */
  path: string;
  /** How strongly: the alpha a call would give it. Default 1. */
  alpha?: number;
  /** What alpha means, as for adapters (AdapterSpec.scale): 'genai' (the default) or 'diffusers'. */
  scale?: LoraScale;
}

/** The schedulers GenAI 2026.3 runs, by multilora's names (as in GenerateOptions.scheduler), and their diffusers classes. */
export const CONVERT_SCHEDULERS = {
  lcm: 'LCMScheduler',
  ddim: 'DDIMScheduler',
  euler: 'EulerDiscreteScheduler',
  'euler-ancestral': 'EulerAncestralDiscreteScheduler',
  pndm: 'PNDMScheduler',
  'flow-match-euler': 'FlowMatchEulerDiscreteScheduler',
} as const;

export type ConvertScheduler = keyof typeof CONVERT_SCHEDULERS;

export type ConvertPhase = 'check' | 'setup' | 'download' | 'load' | 'fuse' | 'export' | 'verify' | 'done';

export interface ConvertProgress {
  phase: ConvertPhase;
  message: string;
  /** For the export: the share of the model's parts written so far, 0 to 1. */
  fraction?: number;
  /** Since convert() was called. */
  elapsedMs: number;
}

export interface ConvertOptions {
  /** How the IR stores its weights: 'fp32', 'fp16' (the default: half the disk, same speed on CPU) or 'int8'. */
  weightFormat?: WeightFormat;
  /** LoRAs fused into the weights before the export, in order (as the tutorial fuses LCM-LoRA into SDXL). */
  fuseLora?: FuseLora[];
  /** optimum-intel's task. Only 'text-to-image' (the default); its IR serves imageToImage() and inpaint() too. */
  task?: 'text-to-image';
  /** Replace an output folder that exists and is not empty (only once the new model works). Default false. */
  force?: boolean;
  /** Load the result with Pipeline.load and generate one small image before moving it into place. Default true. */
  verify?: boolean;
  /**
   * The converted model's default scheduler, in place of the one it came with: e.g. 'lcm' for a model with LCM-LoRA
   * fused, as the tutorial sets LCMScheduler before its export. Default: the model's own.
   */
  scheduler?: ConvertScheduler;
  /** A branch, tag or commit, for a Hub id. */
  revision?: string;
  signal?: AbortSignal;
  onProgress?: (event: ConvertProgress) => void;
}

export interface FusedReport {
  path: string;
  alpha: number;
  /** The LoRA's layers, and how many of the model's layers they changed. */
  layers: number;
  fusedLayers: number;
  /** Layers that match nothing in the model (left out, as GenAI leaves them out at generate). */
  unmatched: number;
}

export interface ConvertResult {
  outDir: string;
  /** The diffusers folder converted: the source, or where the Hub's files were downloaded. */
  sourceDir: string;
  pipelineClass: string;
  family: ModelFamily;
  weightFormat: WeightFormat;
  fused: FusedReport[];
  /** The output's size on disk. */
  bytes: number;
  warnings: string[];
  /** The check image: its size and how long load and generate took. Absent with verify: false. */
  verified?: { width: number; height: number; steps: number; loadMs: number; generateMs: number };
  elapsedMs: number;
}

interface Checked {
  weightFormat: WeightFormat;
  fuseLora: Array<Required<FuseLora>>;
  force: boolean;
  verify: boolean;
  scheduler?: ConvertScheduler;
  revision?: string;
  signal?: AbortSignal;
  onProgress?: (event: ConvertProgress) => void;
}

const OPTION_KEYS = ['weightFormat', 'fuseLora', 'task', 'force', 'verify', 'scheduler', 'revision', 'signal', 'onProgress'];
/** `org/name` as the Hub spells repositories. */
const HUB_ID = /^[A-Za-z0-9][\w.-]{0,95}\/[\w.-]{1,96}$/;
const SCRATCH = /^\.(.+)\.multilora-convert-(\d+)-[0-9a-f]+$/;
/** What the exporter writes besides the weights: tokenizer IRs, configs (an upper bound for the tiny models too). */
const FIXED_BYTES = 32 * 1024 ** 2;

function checkOptions(options: unknown): Checked {
  const opts = object(options, 'options');
  knownKeys(opts, OPTION_KEYS, 'the convert options');
  const read = <T>(key: string): T => reading(`options.${key}`, () => opts[key] as T);
  const weightFormat = read<unknown>('weightFormat') ?? 'fp16';
  if (!WEIGHT_FORMATS.includes(weightFormat as WeightFormat)) {
    throw invalid(WEIGHT_FORMATS.map((f) => `"${f}"`).join(', ').replace(/, ([^,]*)$/, ' or $1'), 'options.weightFormat', weightFormat);
  }
  const task = read<unknown>('task') ?? 'text-to-image';
  if (task !== 'text-to-image') {
    throw invalid('"text-to-image" (its IR serves imageToImage() and inpaint() as well)', 'options.task', task);
  }
  const checked: Checked = { weightFormat: weightFormat as WeightFormat, fuseLora: [], force: false, verify: true };
  for (const key of ['force', 'verify'] as const) {
    const value = read<unknown>(key);
    if (value === undefined) continue;
    if (typeof value !== 'boolean') throw invalid('a boolean', `options.${key}`, value);
    checked[key] = value;
  }
  const fuse = read<unknown>('fuseLora');
  if (fuse !== undefined) {
    if (!Array.isArray(fuse)) throw invalid('an array of { path, alpha?, scale? }', 'options.fuseLora', fuse);
    if (fuse.length > 64) throw invalid('at most 64 LoRAs', 'options.fuseLora', fuse);
    for (let i = 0; i < fuse.length; i++) {
      const label = `options.fuseLora[${i}]`;
      const entry = object(fuse[i], label);
      knownKeys(entry, ['path', 'alpha', 'scale'], label);
      const file = string(entry.path, `${label}.path`, { nonEmpty: true });
      const alpha = entry.alpha === undefined ? 1 : finite(entry.alpha, `${label}.alpha`, -100, 100);
      const scale = entry.scale ?? 'genai';
      if (scale !== 'genai' && scale !== 'diffusers') throw invalid('"genai" or "diffusers"', `${label}.scale`, scale);
      checked.fuseLora.push({ path: path.resolve(file), alpha, scale });
    }
  }
  const scheduler = read<unknown>('scheduler');
  if (scheduler !== undefined) {
    if (typeof scheduler !== 'string' || !Object.hasOwn(CONVERT_SCHEDULERS, scheduler)) {
      throw invalid(`one of ${Object.keys(CONVERT_SCHEDULERS).join(', ')}`, 'options.scheduler', scheduler);
    }
    checked.scheduler = scheduler as ConvertScheduler;
  }
  const revision = read<unknown>('revision');
  if (revision !== undefined) checked.revision = string(revision, 'options.revision', { nonEmpty: true, maxLength: 256 });
  const signal = read<unknown>('signal');
  if (signal !== undefined) {
    if (!(signal instanceof AbortSignal)) throw invalid('an AbortSignal', 'options.signal', signal);
    checked.signal = signal;
  }
  const onProgress = read<unknown>('onProgress');
  if (onProgress !== undefined) {
    if (typeof onProgress !== 'function') throw invalid('a function', 'options.onProgress', onProgress);
    checked.onProgress = onProgress as Checked['onProgress'];
  }
  return checked;
}

function sourceError(message: string): MultiloraError {
  return new MultiloraError('ERR_CONVERT_SOURCE', message);
}

interface DiffusersModel {
  dir: string;
  pipelineClass: string;
  family: ModelFamily;
  /** The components model_index.json names (unet, text_encoder, vae...). */
  components: string[];
}

/** Checks that `dir` is a diffusers model GenAI can run once exported. */
function inspectDiffusers(dir: string, given: string): DiffusersModel {
  const index = path.join(dir, 'model_index.json');
  if (!existsSync(index)) {
    const names = readdirSync(dir);
    const single = names.find((n) => /\.(safetensors|ckpt)$/i.test(n));
    throw sourceError(
      single
        ? `${given} holds ${single} but no model_index.json: it is a single-file checkpoint, not a diffusers model folder. ` +
            "Load it with diffusers' from_single_file and save_pretrained it to a folder, then convert that folder"
        : `${given} is not a diffusers model folder (it has no model_index.json): give the folder that diffusers' ` +
            'save_pretrained wrote, or a Hugging Face Hub id (org/name)',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(index, 'utf8'));
  } catch (err) {
    throw sourceError(`${index} is not valid JSON (${(err as Error).message}): the model folder is damaged`);
  }
  const pipelineClass = (parsed as { _class_name?: unknown })?._class_name;
  if (typeof pipelineClass !== 'string') throw sourceError(`${index} names no pipeline class ("_class_name"): the model folder is damaged`);
  const components = Object.entries(parsed as Record<string, unknown>)
    .filter(([key, value]) => !key.startsWith('_') && Array.isArray(value) && value[0] !== null && value[1] !== null)
    .map(([key]) => key);
  if (components.some((c) => existsSync(path.join(dir, c, 'openvino_model.xml')))) {
    throw sourceError(`${given} is already an OpenVINO model (it has openvino_model.xml files): load it with Pipeline.load, no conversion needed`);
  }
  if (!GENAI_CLASSES.includes(pipelineClass)) {
    throw sourceError(
      `${given} is a ${pipelineClass}, which OpenVINO GenAI 2026.3 cannot run as text-to-image. It runs ${GENAI_CLASSES.join(', ')}`,
    );
  }
  if (/Inpaint|Fill/.test(pipelineClass)) {
    throw sourceError(`${given} is an inpainting model (${pipelineClass}); multilora convert exports text-to-image models`);
  }
  const missing = components.filter((c) => !existsSync(path.join(dir, c)));
  if (missing.length) throw sourceError(`${given} is incomplete: model_index.json names ${missing.join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} missing`);
  return { dir, pipelineClass, family: familyOf(pipelineClass), components };
}

/** Asks the Hub about `id` before anything is set up: unreachable, unknown and non-diffusers ids fail here, fast. */
async function checkHub(id: string, signal: AbortSignal | undefined, revision: string | undefined): Promise<void> {
  const offline = 'a local diffusers model folder converts offline: download the model elsewhere and copy its folder here';
  if (/^(1|true|yes|on)$/i.test(process.env.HF_HUB_OFFLINE ?? '')) {
    throw new MultiloraError('ERR_HUB_UNREACHABLE', `${id} is not a folder here, and HF_HUB_OFFLINE is set, so the Hugging Face Hub is not asked: ${offline}`);
  }
  const endpoint = (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  const url = `${endpoint}/api/models/${id}${revision ? `/revision/${encodeURIComponent(revision)}` : ''}`;
  const token = process.env.HF_TOKEN;
  const signals = [AbortSignal.timeout(15_000), ...(signal ? [signal] : [])];
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.any(signals), headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    if (signal?.aborted) throw new AbortError(signal.reason);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = (err as Error).name === 'TimeoutError' ? 'no answer in 15 s' : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw new MultiloraError(
      'ERR_HUB_UNREACHABLE',
      `${id} is not a folder here, and the Hugging Face Hub (${endpoint}) could not be reached to download it (${why}): ${offline}`,
    );
  }
  if (response.status === 401 || response.status === 403) {
    throw sourceError(`The Hugging Face Hub refuses ${id} (HTTP ${response.status}): a gated or private model needs an access token in HF_TOKEN`);
  }
  if (response.status === 404) {
    throw sourceError(`${id} is neither a folder here nor a model on the Hugging Face Hub${revision ? ` (at revision ${revision})` : ''}`);
  }
  if (!response.ok) {
    throw new MultiloraError('ERR_HUB_UNREACHABLE', `The Hugging Face Hub answered HTTP ${response.status} for ${id}: try again later, or ${offline}`);
  }
  const info = (await response.json().catch(() => null)) as { siblings?: Array<{ rfilename?: string }> } | null;
  const files = info?.siblings?.map((s) => s.rfilename) ?? [];
  if (files.length && !files.includes('model_index.json')) {
    throw sourceError(`${id} on the Hugging Face Hub is not a diffusers model (it has no model_index.json)`);
  }
}

/** Estimated bytes the conversion writes beside the output folder: the IR, and the fused copy when fusing. */
async function estimateFromHeaders(sourceDir: string, components: string[], weightFormat: WeightFormat, fusing: boolean): Promise<number> {
  let params = 0;
  for (const component of components) {
    const dir = path.join(sourceDir, component);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    const full = names.filter((n) => n.endsWith('.safetensors') && !/\.fp16\./.test(n));
    for (const n of full.length ? full : names.filter((x) => x.endsWith('.safetensors'))) {
      const header = await readSafetensorsHeader(path.join(dir, n)).catch(() => null);
      if (header) params += header.tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
    }
    for (const n of names.filter((x) => x.endsWith('.bin'))) params += (await stat(path.join(dir, n))).size / 4;
  }
  const perParam = { fp32: 4, fp16: 2, int8: 1.2 }[weightFormat];
  return Math.ceil(params * perParam + (fusing ? params * 4 : 0) + FIXED_BYTES);
}

async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Number(s.bavail) * Number(s.bsize);
}

function mib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

function noSpace(where: string, cause?: unknown): MultiloraError {
  return new MultiloraError('ERR_NO_SPACE', `No space left on the device of ${where}: free some space, or convert into a folder on another disk`, { cause });
}

function isEnospc(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOSPC';
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? await dirBytes(p) : (await stat(p)).size;
  }
  return total;
}

/** Removes the scratch folders of conversions whose process is gone (killed with SIGKILL, or the machine stopped). */
async function removeStaleScratch(parent: string): Promise<void> {
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const m = SCRATCH.exec(name);
    if (m && !alive(Number(m[2]))) await rm(path.join(parent, name), { recursive: true, force: true });
  }
}

/** The folders that a --force must never replace. */
function protectedDir(out: string, source: string): string | undefined {
  const home = os.homedir();
  const cwd = process.cwd();
  const inside = (child: string, parent: string): boolean => child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
  if (out === path.parse(out).root) return 'the root folder';
  if (out === home) return 'your home folder';
  if (inside(cwd, out)) return 'the working folder or one that holds it';
  if (inside(source, out)) return 'the model being converted, or a folder that holds it';
  if (inside(PACKAGE_ROOT, out)) return "multilora's own folder";
  return undefined;
}

interface PythonRun {
  child: ChildProcess;
  done: Promise<Record<string, unknown>>;
}

/** Runs one job of python/convert.py: progress and warnings as they come, then its "done" event. */
function runPython(
  python: string,
  job: Record<string, unknown>,
  on: { progress: (phase: ConvertPhase, message: string) => void; warning: (message: string) => void },
): PythonRun {
  // Its own process group, so that an abort stops the exporter it starts too; stdin stays open as a lifeline.
  const child = spawn(python, [CONVERTER_SCRIPT, JSON.stringify(job)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, PYTHONUNBUFFERED: '1', TOKENIZERS_PARALLELISM: 'false' },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-65536);
  });
  const done = new Promise<Record<string, unknown>>((resolve, reject) => {
    let result: Record<string, unknown> | undefined;
    let failure: MultiloraError | undefined;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        stderr = (stderr + line + '\n').slice(-65536);
        return;
      }
      if (event.event === 'progress') on.progress(event.phase as ConvertPhase, String(event.message));
      else if (event.event === 'warning') on.warning(String(event.message));
      else if (event.event === 'error') failure = new MultiloraError(event.code as 'ERR_CONVERT_FAILED', String(event.message));
      else if (event.event === 'done') result = event;
    });
    child.on('error', reject);
    child.on('close', (status, sig) => {
      if (failure) return reject(failure);
      if (status === 0 && result) return resolve(result);
      if (/No space left on device|\[Errno 28\]/.test(stderr)) return reject(noSpace('the output folder'));
      reject(new MultiloraError('ERR_CONVERT_FAILED', `The converter stopped (${sig ?? `status ${status}`}): ${lastLines(stderr, 5)}`));
    });
  });
  return { child, done };
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

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
      this.#callbackFailure = new MultiloraError('ERR_CALLBACK', `options.onProgress threw: ${(err as Error)?.message ?? String(err)}`, { cause: err });
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
    if (!s.isDirectory()) throw new MultiloraError('ERR_OUTPUT_NOT_EMPTY', `${out} is a file, not a folder: give another output folder`);
    exists = true;
    if (readdirSync(out).length > 0 && !force) {
      throw new MultiloraError('ERR_OUTPUT_NOT_EMPTY', `${out} exists and is not empty: give an empty or new folder, or force to replace it (--force)`);
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
async function checkSource(source: string, target: Target, outDir: string, opts: Checked, signal: AbortSignal): Promise<Found | undefined> {
  const local = path.resolve(source);
  let localStat: Stats | undefined;
  try {
    localStat = statSync(local);
  } catch {
    localStat = undefined;
  }
  let found: Found | undefined;
  if (localStat) {
    if (!localStat.isDirectory()) throw sourceError(`${source} is a file; give a diffusers model folder or a Hugging Face Hub id (org/name)`);
    found = { dir: local, model: inspectDiffusers(local, source) };
  } else if (!HUB_ID.test(source) || source.includes('..')) {
    throw sourceError(`${source} is neither a folder here nor a Hugging Face Hub id (org/name)`);
  } else {
    await checkHub(source, signal, opts.revision);
  }
  const { out } = target;
  const reason = protectedDir(out, localStat ? local : path.join(os.tmpdir(), '.none'));
  if (reason && opts.force && target.exists) throw new MultiloraError('ERR_OUTPUT_NOT_EMPTY', `${out} is ${reason}: force never replaces it; give another output folder`);
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
        (flow ? 'SD3 and Flux models take "flow-match-euler"' : 'UNet models take lcm, ddim, euler, euler-ancestral or pndm'),
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
async function prepareFuse(run: Conversion, loras: Checked['fuseLora'], model: DiffusersModel, work: string, source: string): Promise<FuseJob[]> {
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
    const bytes = await toGenaiLora(lora.path, analysis, { family: model.family, scale: lora.scale });
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
async function checkSpace(source: string, found: Found, weightFormat: WeightFormat, fusing: boolean, parent: string): Promise<void> {
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
    });
  } finally {
    clearInterval(timer);
  }
  run.checkAbort();
  const fused = ((done.fused as Array<Record<string, number>>) ?? []).map((r, i) => ({
    path: opts.fuseLora[i]!.path,
    alpha: opts.fuseLora[i]!.alpha,
    layers: r.layers!,
    fusedLayers: r.fused_layers!,
    unmatched: r.unmatched!,
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

/** The scratch folder, beside the output so that the result moves in with one rename. */
async function makeScratch(parent: string, out: string): Promise<string> {
  await mkdir(parent, { recursive: true });
  await removeStaleScratch(parent);
  const work = path.join(parent, `.${path.basename(out)}.multilora-convert-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(work);
  return work;
}

/** The conversion's slow part, in the scratch folder `work`: set-up, download, fuse, export, verify, move. */
async function convertIn(run: Conversion, opts: Checked, source: string, local: Found | undefined, target: Target, work: string): Promise<ConvertResult> {
  const env = await ensureConverter({ signal: run.signal, onLine: (line) => run.tell('setup', line) });
  run.checkAbort();
  const found = local ?? (await download(run, env.python, source, opts.revision));
  checkScheduler(opts.scheduler, found.model);
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

async function verifyModel(dir: string, signal?: AbortSignal): Promise<NonNullable<ConvertResult['verified']>> {
  let t = performance.now();
  let pipeline: Pipeline;
  try {
    pipeline = await Pipeline.load(dir, { onWarning: () => undefined });
  } catch (err) {
    throw new MultiloraError('ERR_CONVERT_FAILED', `The converted model does not load: ${(err as Error).message}`, { cause: err });
  }
  const loadMs = performance.now() - t;
  try {
    const size = 8 * pipeline.model.vaeScaleFactor;
    const steps = 2;
    t = performance.now();
    let image: Image;
    try {
      image = (await pipeline.generate('a photo of a cat', { width: size, height: size, steps, seed: 42, signal })) as Image;
    } catch (err) {
      if (signal?.aborted) throw new AbortError(signal.reason);
      throw new MultiloraError('ERR_CONVERT_FAILED', `The converted model loads but does not generate: ${(err as Error).message}`, { cause: err });
    }
    const generateMs = performance.now() - t;
    const first = image.data[0];
    if (image.data.every((v) => v === first)) {
      throw new MultiloraError('ERR_CONVERT_FAILED', `The converted model generates a uniform image (every byte ${first}): the conversion went wrong`);
    }
    return { width: image.width, height: image.height, steps, loadMs: Math.round(loadMs), generateMs: Math.round(generateMs) };
  } finally {
    await pipeline.dispose();
  }
}
