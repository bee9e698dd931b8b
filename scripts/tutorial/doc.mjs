// The tutorial block of docs/BENCHMARKS.md, from bench-results/tutorial.json (written by npm run bench:tutorial):
// like scripts/bench/doc.mjs, a pure function of the results. Every figure it prints comes from them.
import { provenanceLine, replaceBlock } from '../bench/doc.mjs';

const f = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? '–' : x.toFixed(d));

export const TUTORIAL_BLOCK = ['<!-- tutorial:results:begin -->', '<!-- tutorial:results:end -->'];
export const TUTORIAL_RESULTS = 'bench-results/tutorial.json';
/**
 * The scripts that measure it, for its commit and scripts hash (scripts/bench/provenance.mjs). This file is not one
 * of them: it only renders the results, so that a change of wording here leaves the measured numbers current.
 */
export const TUTORIAL_SCRIPTS = [
  'scripts/bench-tutorial.mjs',
  'scripts/tutorial/multilora.mjs',
  'scripts/tutorial/recipe.py',
  'scripts/bench/provenance.mjs',
  'scripts/stats.mjs',
];

const ratioCell = (s) => `${f(s.median, 3)} (${f(s.p25, 3)}–${f(s.p75, 3)})`;
const seconds = (ms) => f(ms / 1000, 2);

function tutorialLines(r) {
  if (!r) return ['Not run yet: `npm run bench:tutorial` writes `bench-results/tutorial.json`.'];
  const t = r.tutorial;
  const m = r.machine;
  const w = t.workload;
  const lines = [
    `Run of ${r.date.slice(0, 10)} (\`${r.command}\`, ${r.elapsedS} s): ${m.cpu}, ${m.memoryGb} GB, ${m.os}, Node ${m.node}; the CPU plugin's default inference precision here: ${m.cpuInferencePrecision ?? 'not recorded'}. ${provenanceLine(r)}`,
    '',
    `Model \`${w.model}\`${t.unetParams ? ` (UNet ${t.unetParams.toLocaleString('en-US')} parameters)` : ''}; ${w.steps} steps, guidance ${w.guidance}; per size a warm-up image, then ${w.imagesPerSize} images over the styles and none; ${w.rounds} round${w.rounds === 1 ? '' : 's'}.`,
    '',
    '| size | side | per image, s | × recipe, paired (p25–p75) | cold start, s | × recipe | step, s | VAE, s | text encoders, s | switch cost, s | peak RSS, GB | bytes |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const size of t.sizes)
    for (const [side, s] of Object.entries(t.bySize[size])) {
      const vs = side === 'recipe';
      const bytes = vs
        ? '–'
        : s.speedOnly
          ? 'its own (random tiny decoder: speed only)'
          : s.identical
            ? 'the recipe’s'
            : `mean abs diff ≤ ${f(s.meanAbsDiff.max, 2)}/255`;
      lines.push(
        `| ${size}² | ${side} | ${seconds(s.imageMs.median)} | ${vs ? '1' : ratioCell(s.speedup)} | ${seconds(s.coldStartMs.median)} | ${vs ? '1' : f(s.coldStartSpeedup.median, 3)} | ${seconds(s.stepMs.median)} | ${seconds(s.vaeMs.median)} | ${seconds(s.textMs?.median)} | ${seconds(s.switchCostMs)} | ${f(s.peakRssMb / 1024, 1)} | ${bytes} |`,
      );
    }
  lines.push('');
  if (t.exact)
    lines.push(
      `Exact mode: ×${f(t.exact.speedup, 3)} per image (p25–p75 ${f(t.exact.speedupRange[0], 3)}–${f(t.exact.speedupRange[1], 3)}), cold start ×${f(t.exact.coldStartSpeedup, 3)}, ${t.exact.identical ? 'every image byte for byte the recipe’s' : '**not** every image the recipe’s bytes'}.`,
    );
  lines.push(
    t.fast
      ? `Fast mode, with ${t.fast.levers.join(' and ')}: ×${f(t.fast.speedup, 3)} per image (p25–p75 ${f(t.fast.speedupRange[0], 3)}–${f(t.fast.speedupRange[1], 3)}), cold start ×${f(t.fast.coldStartSpeedup, 3)}; mean absolute difference to the recipe’s image at most ${f(t.fast.meanAbsDiff, 2)}/255 (${f(t.fast.meanAbsDiffMean, 2)} on average), ${t.fast.withinBound ? 'within' : '**outside**'} its bound of ${t.fast.bound}/255.`
      : 'Fast mode: not measured in this run.',
  );
  if (t.draft)
    lines.push(
      `Draft mode, with ${t.draft.lever} on exact mode's model: ×${f(t.draft.speedup, 3)} per image (p25–p75 ${f(t.draft.speedupRange[0], 3)}–${f(t.draft.speedupRange[1], 3)})${t.draft.overExact ? `, ×${f(t.draft.overExact.speedup, 3)} over exact mode (p25–p75 ${f(t.draft.overExact.speedupRange[0], 3)}–${f(t.draft.overExact.speedupRange[1], 3)})` : ''}, cold start ×${f(t.draft.coldStartSpeedup, 3)}. Speed only: its decoder's weights are random, so its images say nothing of a trained tiny decoder's quality.`,
    );
  const recipeOf = (size) => t.bySize[size].recipe;
  const lora = t.sizes.filter((size) => recipeOf(size).noneStepMs?.n > 0);
  if (lora.length) {
    const cost = (size) => {
      const { styledStepMs: styled, noneStepMs: none } = recipeOf(size);
      const more = f((styled.median / none.median - 1) * 100, 1);
      return `${seconds(styled.median)} s with a style against ${seconds(none.median)} s without at ${size}² (+${more}%)`;
    };
    lines.push(
      `GenAI's LoRA products, per UNet step of the recipe (whose images without a style list no adapter): ${lora.map(cost).join(', ')}.`,
    );
  }
  const exactOf = (size) => t.bySize[size].exact;
  const reuse = t.sizes.filter((size) => exactOf(size)?.repeatedTextShare != null);
  if (reuse.length)
    lines.push(
      `Reusing the text encoders' outputs for a repeated prompt, as on the second image of each pair, could save at most their time on those images: ${reuse.map((size) => `${f(exactOf(size).repeatedTextShare * 100, 1)}% of exact mode's time at ${size}²`).join(', ')}.`,
    );
  const busy = t.sizes.filter((size) => exactOf(size)?.coresBusy?.median > 0);
  if (busy.length) {
    const cores = r.machine.cores;
    const used = (size) => exactOf(size).coresBusy.median;
    lines.push(
      `Cores busy while exact mode makes an image (its CPU time over its time, median): ${busy.map((size) => `${f(used(size), 2)} of ${cores} at ${size}²`).join(', ')}. Running one image's VAE decode beside the next one's denoising could only fill the rest: at most ${busy.map((size) => `${f((1 - used(size) / cores) * 100, 1)}%`).join(' and ')} of the time.`,
    );
  }
  const levers = Object.entries(t.levers ?? {});
  if (levers.length) {
    lines.push('', '| lever | size | × recipe per image | mean abs diff, /255 |', '|---|---|---|---|');
    for (const [name, bySize] of levers)
      for (const [size, l] of Object.entries(bySize))
        lines.push(`| ${name} | ${size}² | ${f(l.speedup, 3)} | ${f(l.meanAbsDiff, 2)} |`);
  }
  return lines;
}

/** docs/BENCHMARKS.md with its tutorial block made from bench-results/tutorial.json (undefined: not run yet). */
export function renderTutorialDoc(doc, results, name = 'docs/BENCHMARKS.md') {
  return replaceBlock(doc, TUTORIAL_BLOCK, tutorialLines(results), name);
}
