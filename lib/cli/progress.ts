// Step progress on stderr: a bar with the step and ETA on a terminal (cli-progress), a few plain lines otherwise.
import { SingleBar } from 'cli-progress';

import type { ProgressEvent } from '../core/options';

export interface Progress {
  /** Takes the library's progress events. */
  update(event: ProgressEvent): void;
  /** Ends the bar (idempotent). */
  stop(): void;
}

/** Each tenth of the run gets one line on a non-terminal: at most 11 lines, however many steps. */
const LINES_PER_RUN = 10;

/**
 * A bar on a TTY, else a `step i/n` line (with the ETA, from the mean step so far) for the first step, the first
 * step of each tenth of the run and the last step: a log gets about a dozen lines, not one per step.
 */
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
  // The tenth of the run of the last line written; events can skip steps (the addon drops them when JS is busy).
  let lastTenth = -1;
  return {
    update({ step, total, elapsedMs }) {
      const tenth = Math.floor((step * LINES_PER_RUN) / total);
      if (tenth === lastTenth && step !== total) return;
      lastTenth = tenth;
      const eta = ((elapsedMs / step) * (total - step)) / 1000;
      stream.write(`step ${step}/${total} (${(elapsedMs / 1000).toFixed(1)} s, ETA ${eta.toFixed(1)} s)\n`);
    },
    stop() {},
  };
}
