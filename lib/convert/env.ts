// The Python venv that `multilora convert` runs optimum-intel in: apart from the SDK's, made once from
// python/requirements.txt and reused while that file is unchanged. It lives in the user's cache
// ($XDG_CACHE_HOME/multilora, else ~/.cache/multilora), or where MULTILORA_CONVERTER_DIR says.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

import { AbortError, MultiloraError } from '../core/errors';
import { PACKAGE_ROOT } from '../core/sdk';

const CONVERTER_REQUIREMENTS = path.join(PACKAGE_ROOT, 'python', 'requirements.txt');
export const CONVERTER_SCRIPT = path.join(PACKAGE_ROOT, 'python', 'convert.py');
/** Bumped when the set-up steps below change, so that older venvs are made again. */
const SETUP_STEPS = 'converter-setup-v1';
const STAMP = '.multilora-converter-stamp';
/** What the converter imports: a venv where one of these fails is made again. */
const IMPORTS =
  'import torch, diffusers, transformers, optimum.intel, openvino_tokenizers, peft, safetensors, huggingface_hub';

/** The lines of pip's output worth showing: what it fetches, installs and fails at. */
const PIP_NEWS = /^\s*(Collecting |Installing collected packages|Successfully (installed|uninstalled)|ERROR)/;

export interface ConverterEnv {
  dir: string;
  python: string;
}

function stampValue(): string {
  return createHash('sha256').update(readFileSync(CONVERTER_REQUIREMENTS)).update(SETUP_STEPS).digest('hex');
}

/** Where the converter's venv is (or will be). */
function converterDir(): string {
  if (process.env.MULTILORA_CONVERTER_DIR) return path.resolve(process.env.MULTILORA_CONVERTER_DIR);
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'multilora', `converter-${stampValue().slice(0, 12)}`);
}

interface RunResult {
  status: number | null;
  output: string;
}

/** Runs a command, handing each line of its output to `onLine`; keeps the last 64 KiB for error messages. */
function run(cmd: string, args: string[], onLine: (line: string) => void, signal?: AbortSignal): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' },
    });
    let output = '';
    const take = (line: string): void => {
      output = (output + line + '\n').slice(-65536);
      onLine(line);
    };
    createInterface({ input: child.stdout }).on('line', take);
    createInterface({ input: child.stderr }).on('line', take);
    const abort = (): void => void child.kill('SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    child.on('error', (err) => {
      signal?.removeEventListener('abort', abort);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') resolve({ status: null, output: `${cmd}: not found` });
      else reject(err);
    });
    child.on('close', (status) => {
      signal?.removeEventListener('abort', abort);
      resolve({ status, output });
    });
  });
}

/** The last `count` lines of a program's output that have text, on one line (for error messages). */
export function lastLines(text: string, count = 3): string {
  return text.trim().split('\n').filter(Boolean).slice(-count).join(' | ') || 'no output';
}

function isComplete(dir: string, python: string): boolean {
  try {
    return existsSync(python) && readFileSync(path.join(dir, STAMP), 'utf8') === stampValue();
  } catch {
    return false;
  }
}

async function findPython(signal?: AbortSignal): Promise<string> {
  const candidates = process.env.MULTILORA_PYTHON ? [process.env.MULTILORA_PYTHON] : ['python3.11', 'python3'];
  const tried: string[] = [];
  for (const cmd of candidates) {
    const r = await run(cmd, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], () => undefined, signal);
    const version = r.output.trim().split('\n').pop() ?? '';
    const [major, minor] = version.split('.').map(Number);
    if (r.status === 0 && major === 3 && minor >= 10 && minor <= 13) return cmd;
    tried.push(`${cmd}: ${r.status === 0 ? `Python ${version}` : lastLines(r.output, 1)}`);
  }
  throw new MultiloraError(
    'ERR_CONVERT_SETUP',
    `multilora convert needs Python 3.10 to 3.13 (3.11 preferred) for optimum-intel, and found none (${tried.join('; ')}): ` +
      'install it (e.g. `apt-get install python3 python3-venv`) or set MULTILORA_PYTHON to its path',
  );
}

function noSpace(text: string): boolean {
  return /No space left on device|ENOSPC|\[Errno 28\]/.test(text);
}

function setupFailure(dir: string, what: string, output: string): MultiloraError {
  if (noSpace(output)) {
    return new MultiloraError(
      'ERR_NO_SPACE',
      `No space left on the device while ${what} in ${dir}: free some space there, or set MULTILORA_CONVERTER_DIR to a folder on another disk`,
    );
  }
  const network =
    /Max retries|NewConnectionError|Temporary failure in name resolution|Network is unreachable|Connection refused|timed out|No matching distribution/i;
  const hint = network.test(output)
    ? ': pip could not reach the package registry; check the network or your pip index settings (PIP_INDEX_URL)'
    : '';
  return new MultiloraError(
    'ERR_CONVERT_SETUP',
    `Setting up the converter's Python venv in ${dir} failed while ${what} (${lastLines(output)})${hint}`,
  );
}

/** Whether a process with this pid runs (on this machine). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Holds `<dir>.lock` while the venv is made, so that two conversions at once do not make it twice. */
async function withLock<T>(
  dir: string,
  signal: AbortSignal | undefined,
  onWait: () => void,
  body: () => Promise<T>,
): Promise<T> {
  const lock = `${dir}.lock`;
  mkdirSync(path.dirname(lock), { recursive: true });
  let told = false;
  for (;;) {
    if (signal?.aborted) throw new AbortError(signal.reason);
    try {
      mkdirSync(lock);
      writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = NaN;
      try {
        owner = Number(readFileSync(path.join(lock, 'pid'), 'utf8'));
      } catch {
        // being made, or left without a pid by a process killed at that moment: looked at again below
      }
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (!told) onWait();
      told = true;
      await sleep(1000);
    }
  }
  try {
    return await body();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface EnsureConverterOptions {
  signal?: AbortSignal;
  /** One line of what the set-up is doing (pip's output among it). */
  onLine?: (line: string) => void;
}

/** The converter's venv, made first when it is missing or was made from other requirements. */
export async function ensureConverter({
  signal,
  onLine = () => undefined,
}: EnsureConverterOptions = {}): Promise<ConverterEnv> {
  const dir = converterDir();
  const python = path.join(dir, 'bin', 'python');
  if (isComplete(dir, python)) return { dir, python };
  return withLock(
    dir,
    signal,
    () => onLine(`waiting for another process that is setting up ${dir}`),
    async () => {
      if (isComplete(dir, python)) return { dir, python };
      onLine(`setting up the converter's Python venv in ${dir} (once; optimum-intel, diffusers, peft, torch)`);
      const base = await findPython(signal);
      rmSync(dir, { recursive: true, force: true });
      try {
        const steps: Array<[string, string, string[]]> = [
          ['making the venv', base, ['-m', 'venv', dir]],
          [
            'installing its packages with pip',
            python,
            ['-m', 'pip', 'install', '--no-input', '-r', CONVERTER_REQUIREMENTS],
          ],
          ['removing torchvision', python, ['-m', 'pip', 'uninstall', '-y', 'torchvision', 'datasets']],
          ['checking its packages', python, ['-c', IMPORTS]],
        ];
        for (const [what, cmd, args] of steps) {
          onLine(what);
          const r = await run(cmd, args, (line) => PIP_NEWS.test(line) && onLine(line.trim()), signal);
          if (signal?.aborted) throw new AbortError(signal.reason);
          if (r.status !== 0 && what !== 'removing torchvision') throw setupFailure(dir, what, r.output);
        }
        writeFileSync(path.join(dir, STAMP), stampValue());
      } catch (err) {
        rmSync(dir, { recursive: true, force: true });
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw setupFailure(dir, 'writing it', 'ENOSPC');
        throw err;
      }
      onLine(`the converter's venv is ready in ${dir}`);
      return { dir, python };
    },
  );
}
