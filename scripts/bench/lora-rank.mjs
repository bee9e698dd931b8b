// The table of docs/LORA-FORMATS.md that bench-results/lora-rank.json makes (`npm run bench:lora-rank`): what the rank
// of a LoRA costs per denoising step at generate, and what `approximate` takes to fit one.
import { provenanceLine, replaceBlock } from './doc.mjs';

export const LORA_RANK_RESULTS = 'bench-results/lora-rank.json';
export const LORA_RANK_BLOCK = ['<!-- lora-rank:results:begin -->', '<!-- lora-rank:results:end -->'];

const ms = (x) => (x === undefined ? '–' : x.toFixed(0));
const spread = (s) => `${ms(s.median)} (${ms(s.p25)}–${ms(s.p75)})`;

function lines(r) {
  if (!r) return ['Not measured yet: run `npm run bench:lora-rank`.'];
  const m = r.machine;
  const out = [
    `Run of ${r.date.slice(0, 10)} (\`${r.command}\`, ${r.durationS} s): ${m.cpu} (${m.cores} cores), ${m.memoryGb} GB, ${m.os}; Node ${m.node}, OpenVINO GenAI ${m.openvinoGenai}, ${r.precision ?? 'default'} inference precision. Model \`${r.model}\` at ${r.size}×${r.size}, ${r.steps} steps at guidance ${r.guidance}; ${r.layers} UNet layers (those of \`${r.layersFrom}\`), every LoRA registered in one dynamic pipeline, one image per LoRA in each of ${r.rounds} rounds, in a rotated order. A step is the median interval between progress events after the first (the adapter switch and the text encoders are outside it); "added" is paired with the image without a LoRA of the same round. ${provenanceLine(r)}`,
    '',
    '| LoRA | rank GenAI runs | ms per step, median (p25–p75) | added ms per step, paired median (p25–p75) | × the step without a LoRA |',
    '|---|---|---|---|---|',
  ];
  for (const v of r.variants) {
    out.push(
      `| ${v.label} | ${v.rank || '–'} | ${spread(v.stepMs)} | ${v.addedMs ? spread(v.addedMs) : '–'} | ${v.ratio === undefined ? '–' : v.ratio.toFixed(3)} |`,
    );
  }
  if (r.fit) {
    out.push(
      '',
      `Fitting the LoHa at rank ${r.fit.rank} (\`approximate: { rank: ${r.fit.rank} }\`, reading and converting the file in JavaScript, median of ${r.fit.runs} runs): ${(r.fit.ms.median / 1000).toFixed(1)} s for its ${r.fit.layers} layers, a total relative error of ${r.fit.error.toFixed(3)} on this random file (a random change spreads its energy over every singular value; a trained one is no such worst case).`,
    );
  }
  return out;
}

/** docs/LORA-FORMATS.md with its generated block written from the results. */
export function renderLoraRankDoc(doc, results, name = 'docs/LORA-FORMATS.md') {
  return replaceBlock(doc, LORA_RANK_BLOCK, lines(results), name);
}
