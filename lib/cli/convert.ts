// `multilora convert <source> <out-dir>`: a diffusers model (folder or Hub id) to OpenVINO IR, LoRAs fused first.
import {
  convert,
  WEIGHT_FORMATS,
  type ConvertOptions,
  type ConvertScheduler,
  type FuseLora,
  type WeightFormat,
} from '../convert/index';
import type { LoraScale } from '../lora/format';
import { splitAlpha, usage } from './args';
import { seconds } from './common';

export interface ConvertFlags {
  weightFormat: WeightFormat;
  fuseLora?: string[];
  fuseScale: LoraScale;
  task: 'text-to-image';
  scheduler?: ConvertScheduler;
  tinyVae?: string;
  force?: boolean;
  verify: boolean;
  revision?: string;
  json?: boolean;
}

/** `path` with an optional trailing `:alpha` (default 1): a colon followed by anything else stays in the path. */
function parseFuseLora(text: string, scale: LoraScale): FuseLora {
  const { head, alpha } = splitAlpha(text, '--fuse-lora');
  if (head === '') throw usage('path[:alpha]', '--fuse-lora', text);
  return { path: head, alpha: alpha ?? 1, scale };
}

/** Runs the conversion with its progress on stderr; the summary (or --json) on stdout. */
export async function convertCommand(source: string, outDir: string, flags: ConvertFlags): Promise<number> {
  if (!WEIGHT_FORMATS.includes(flags.weightFormat))
    throw usage(WEIGHT_FORMATS.join(', '), '--weight-format', flags.weightFormat);
  const controller = new AbortController();
  const options: ConvertOptions = {
    weightFormat: flags.weightFormat,
    task: flags.task,
    force: Boolean(flags.force),
    verify: flags.verify,
    fuseLora: (flags.fuseLora ?? []).map((text) => parseFuseLora(text, flags.fuseScale)),
    signal: controller.signal,
  };
  if (flags.revision !== undefined) options.revision = flags.revision;
  if (flags.scheduler !== undefined) options.scheduler = flags.scheduler;
  if (flags.tinyVae !== undefined) options.tinyVae = flags.tinyVae;
  // One line per change of phase or of the export's progress; pip's and the exporter's own output stay out of it.
  const err = process.stderr;
  let phase = '';
  options.onProgress = (event) => {
    if (event.phase === 'done') return; // the summary below says it
    const percent = event.fraction === undefined ? '' : ` (${Math.round(event.fraction * 100)}%)`;
    if (event.phase !== phase) err.write(`[${event.phase}] ${event.message}${percent}\n`);
    else if (event.phase !== 'setup' || !/^\s*Collecting /.test(event.message))
      err.write(`  ${event.message}${percent}\n`);
    phase = event.phase;
  };
  // Ctrl-C or SIGTERM: abort, which stops the converter and removes what it wrote; a second one leaves at once.
  let signals = 0;
  const onSignal = (): void => {
    signals += 1;
    if (signals === 1) controller.abort(new Error('interrupted'));
    else process.exit(130);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    const result = await convert(source, outDir, options);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      const fused = result.fused.map((f) => `${f.path}:${f.alpha} (${f.fusedLayers} layers)`).join(', ');
      process.stdout.write(
        `converted ${source} (${result.pipelineClass}) into ${result.outDir}: ${result.weightFormat}, ` +
          `${(result.bytes / 1024 ** 2).toFixed(1)} MiB, in ${seconds(result.elapsedMs)}${fused ? `; fused ${fused}` : ''}\n`,
      );
      if (result.verified) {
        const v = result.verified;
        process.stdout.write(
          `checked: loads in ${seconds(v.loadMs)}, generates ${v.width}x${v.height} at ${v.steps} steps in ${seconds(v.generateMs)}\n`,
        );
      }
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}
