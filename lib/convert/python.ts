// One job of python/convert.py in the converter's venv: its progress and warnings as JSON lines, then "done".
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import { MultiloraError } from '../core/errors';
import { noSpace } from './disk';
import { CONVERTER_SCRIPT, lastLines } from './env';
import type { ConvertPhase } from './options';

export interface PythonRun {
  child: ChildProcess;
  done: Promise<Record<string, unknown>>;
}

/** Runs one job of python/convert.py: progress and warnings as they come, then its "done" event. */
export function runPython(
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
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-65536);
  });
  const done = new Promise<Record<string, unknown>>((resolve, reject) => {
    let result: Record<string, unknown> | undefined;
    let failure: MultiloraError | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        stderr = (stderr + line + '\n').slice(-65536);
        return;
      }
      if (event.event === 'progress') on.progress(event.phase as ConvertPhase, String(event.message));
      else if (event.event === 'warning') on.warning(String(event.message));
      else if (event.event === 'error')
        failure = new MultiloraError(event.code as 'ERR_CONVERT_FAILED', String(event.message));
      else if (event.event === 'done') result = event;
    });
    child.on('error', reject);
    child.on('close', (status, sig) => {
      if (failure) return reject(failure);
      if (status === 0 && result) return resolve(result);
      if (/No space left on device|\[Errno 28\]/.test(stderr)) return reject(noSpace('the output folder'));
      reject(
        new MultiloraError(
          'ERR_CONVERT_FAILED',
          `The converter stopped (${sig ?? `status ${status}`}): ${lastLines(stderr, 5)}`,
        ),
      );
    });
  });
  return { child, done };
}

export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}
