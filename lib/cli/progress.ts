// Step progress on stderr: a bar with the step and ETA on a terminal (cli-progress), plain lines otherwise.
import { SingleBar } from 'cli-progress';

import type { ProgressEvent } from '../options';

export interface Progress {
  /** Takes the library's progress events. */
  update(event: ProgressEvent): void;
  /** Ends the bar (idempotent). */
  stop(): void;
}

/** A bar on a TTY, else one `step i/n` line per event (with the ETA, from the mean step so far). */
export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new SingleBar({
      stream,
      format: 'generating [{bar}] step {value}/{total} | ETA {eta_formatted} | {duration_formatted}',
      hideCursor: true,
      clearOnComplete: false,
    });
    let started = false;
    return {
      update({ step, total }) {
        if (!started) {
          bar.start(total, 0);
          started = true;
        }
        bar.update(step);
      },
      stop() {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  return {
    update({ step, total, elapsedMs }) {
      const eta = ((elapsedMs / step) * (total - step)) / 1000;
      stream.write(`step ${step}/${total} (${(elapsedMs / 1000).toFixed(1)} s, ETA ${eta.toFixed(1)} s)\n`);
    },
    stop() {},
  };
}
