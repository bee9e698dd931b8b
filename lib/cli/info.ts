// `multilora info`: what a model is, its defaults, and how each adapter matches it.
import type { AdapterInfo } from '../core/adapter-set';
import { Pipeline } from '../core/pipeline';
import { modelDir, planAdapters, printWarning, type ModelFlags } from './common';

export interface InfoFlags extends ModelFlags {
  json?: boolean;
}

function size(bytes: number): string {
  return bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}

function describeAdapter(a: AdapterInfo): string[] {
  const r = a.info;
  const lines = [
    `  ${a.name}: alpha ${a.alpha}, ${a.path ?? '(bytes)'} (${size(a.byteLength)})`,
    `    format ${r.format}${r.converted ? ' (rewritten for GenAI)' : ''}, rank${r.ranks.length > 1 ? 's' : ''} ${r.ranks.join(', ')}, ` +
      `targets ${r.targets.join(', ')}`,
    `    tensors: ${r.matched} matched, ${r.unmatched} unmatched`,
  ];
  for (const t of r.unmatchedTensors.slice(0, 5)) lines.push(`      unmatched: ${t}`);
  if (r.unmatched > 5) lines.push(`      ... and ${r.unmatched - 5} more`);
  if (a.template !== undefined) lines.push(`    template ${JSON.stringify(a.template)}`);
  if (a.negativePrompt !== undefined) lines.push(`    negative prompt ${JSON.stringify(a.negativePrompt)}`);
  return lines;
}

/** Runs the command; resolves with the exit status. A LoRA that fails its check rejects with the library's error. */
export async function infoCommand(flags: InfoFlags): Promise<number> {
  const plan = planAdapters(flags, false);
  const pipeline = await Pipeline.load(modelDir(flags), { adapters: plan.specs, onWarning: printWarning });
  try {
    const { model, defaults } = pipeline;
    const adapters = pipeline.adapters.list();
    if (flags.json) {
      const summary = {
        model: {
          dir: model.dir,
          pipelineClass: model.pipelineClass,
          family: model.family,
          vaeScaleFactor: model.vaeScaleFactor,
        },
        defaults: {
          width: Number.isNaN(defaults.width) ? null : defaults.width,
          height: Number.isNaN(defaults.height) ? null : defaults.height,
          steps: defaults.steps,
          guidanceScale: defaults.guidanceScale,
        },
        imageInputs: defaults.imageInputs,
        adapters,
      };
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return 0;
    }
    const sizeText = Number.isNaN(defaults.width)
      ? 'set by the model at run time'
      : `${defaults.width}x${defaults.height}`;
    const lines = [
      `model         ${model.dir}`,
      `pipeline      ${model.pipelineClass} (family ${model.family})`,
      `defaults      ${sizeText}, ${defaults.steps} steps, guidance ${defaults.guidanceScale}`,
      `sizes         multiples of ${model.vaeScaleFactor} (the VAE scale factor)`,
      `image inputs  ${defaults.imageInputs ? 'yes (image to image, inpainting)' : 'no'}`,
      `adapters      ${adapters.length === 0 ? 'none' : adapters.length}`,
      ...adapters.flatMap(describeAdapter),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await pipeline.dispose();
  }
}
