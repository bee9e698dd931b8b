// The disk around a conversion: the space it needs, its scratch folders, and the folders --force never replaces.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { MultiloraError } from '../core/errors';
import { PACKAGE_ROOT } from '../core/sdk';
import { readSafetensorsHeader } from '../lora/safetensors';
import { alive } from './env';
import type { WeightFormat } from './options';

/** A scratch folder's name: `.<output>.multilora-convert-<pid>-<random>`. */
const SCRATCH = /^\.(.+)\.multilora-convert-(\d+)-[0-9a-f]+$/;
/** What the exporter writes besides the weights: tokenizer IRs, configs (an upper bound for the tiny models too). */
const FIXED_BYTES = 32 * 1024 ** 2;

/** Estimated bytes the conversion writes beside the output folder: the IR, and the fused copy when fusing. */
export async function estimateFromHeaders(
  sourceDir: string,
  components: string[],
  weightFormat: WeightFormat,
  fusing: boolean,
): Promise<number> {
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

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Number(s.bavail) * Number(s.bsize);
}

export function mib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

export function noSpace(where: string, cause?: unknown): MultiloraError {
  return new MultiloraError(
    'ERR_NO_SPACE',
    `No space left on the device of ${where}: free some space, or convert into a folder on another disk`,
    { cause },
  );
}

export function isEnospc(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOSPC';
}

export async function dirBytes(dir: string): Promise<number> {
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
export function protectedDir(out: string, source: string): string | undefined {
  const home = os.homedir();
  const cwd = process.cwd();
  const inside = (child: string, parent: string): boolean =>
    child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
  if (out === path.parse(out).root) return 'the root folder';
  if (out === home) return 'your home folder';
  if (inside(cwd, out)) return 'the working folder or one that holds it';
  if (inside(source, out)) return 'the model being converted, or a folder that holds it';
  if (inside(PACKAGE_ROOT, out)) return "multilora's own folder";
  return undefined;
}

/** The scratch folder, beside the output so that the result moves in with one rename. */
export async function makeScratch(parent: string, out: string): Promise<string> {
  await mkdir(parent, { recursive: true });
  await removeStaleScratch(parent);
  const work = path.join(
    parent,
    `.${path.basename(out)}.multilora-convert-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  await mkdir(work);
  return work;
}
