// The table of docs/LORA-FORMATS.md that bench-results/fuse-load.json makes (`npm run bench:fuse-load`): what fuse
// mode costs at load on the tutorial's SDXL, through GenAI's fuse and through multilora's own.
import { provenanceLine, replaceBlock } from './doc.mjs';

export const FUSE_LOAD_RESULTS = 'bench-results/fuse-load.json';
export const FUSE_LOAD_BLOCK = ['<!-- fuse-load:results:begin -->', '<!-- fuse-load:results:end -->'];

const s = (ms) => (ms / 1000).toFixed(1);
const gb = (mb) => (mb / 1024).toFixed(1);

function lines(r) {
  if (!r) return ['Not measured yet: run `npm run bench:fuse-load`.'];
  const m = r.machine;
  const out = [
    `Run of ${r.date.slice(0, 10)} (\`${r.command}\`, ${r.durationS} s): ${m.cpu} (${m.cores} cores), ${m.memoryGb} GB, ${m.os}; Node ${m.node}, OpenVINO GenAI ${m.openvinoGenai}, default inference precision. Model \`${r.model}\`; each load in a process of its own, ${r.rounds} rounds in a rotated order, then one image at ${r.size}×${r.size}, ${r.steps} steps at guidance ${r.guidance}. Peak memory is the process's maximum resident set. ${provenanceLine(r)}`,
    '',
    '| pipeline | layers fused | load s, median (min–max) | peak memory after load, GB | peak memory after an image, GB | image vs GenAI fusing the same LoRA, mean abs /255 |',
    '|---|---|---|---|---|---|',
  ];
  for (const v of r.variants) {
    out.push(
      `| ${v.label} | ${v.layers} | ${s(v.loadMs.median)} (${s(v.loadMs.min)}–${s(v.loadMs.max)}) | ${gb(v.rssAfterLoadMb.median)} | ${gb(v.rssMb.median)} | ${v.versusGenai === undefined ? '–' : v.versusGenai.toFixed(3)} |`,
    );
  }
  return out;
}

/** docs/LORA-FORMATS.md with its fuse-load block written from the results. */
export function renderFuseLoadDoc(doc, results, name = 'docs/LORA-FORMATS.md') {
  return replaceBlock(doc, FUSE_LOAD_BLOCK, lines(results), name);
}
