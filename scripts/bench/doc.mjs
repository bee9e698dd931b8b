// The generated parts of docs/BENCHMARKS.md (from bench-results/bench.json and bench-quick.json) and of
// docs/SCALING.md (from bench-results/scaling.json): the benchmarks write them after a run, and
// `npm run bench:docs -- --check` (test/bench-docs.spec.js) regenerates them in memory and compares.
// Pure functions of the results: no clock, no machine, no file. Every figure they print comes from the results; the
// words around them say what was measured, never how much.

export const BLOCKS = {
  commands: ['<!-- bench:commands:begin -->', '<!-- bench:commands:end -->'],
  results: ['<!-- bench:results:begin -->', '<!-- bench:results:end -->'],
  quick: ['<!-- bench:quick:begin -->', '<!-- bench:quick:end -->'],
  pool: ['<!-- bench:pool:begin -->', '<!-- bench:pool:end -->'],
};

const f = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? '–' : x.toFixed(d));

/** Where the numbers come from: the commit and scripts hash (or a note that the file predates them), the load. */
export function provenanceLine(run) {
  const load = run.loadAverage?.start
    ? ` Load average (1 min): ${f(run.loadAverage.start[0], 2)} at the start, ${f(run.loadAverage.end?.[0], 2)} at the end.`
    : '';
  const made = run.scriptsHash
    ? `Commit ${run.commit}, scripts \`${run.scriptsHash}\`.`
    : 'Written by an earlier version of the scripts, before results recorded their commit and scripts hash: rerun to refresh.';
  return `${made}${load}`;
}

function resultsLines(results) {
  const lines = [];
  const m = results.machine;
  lines.push(
    `Run of ${results.date.slice(0, 10)} (\`npm run bench${results.quick ? ' -- --quick' : ''}\`, ${results.durationS} s): ${m.cpu}, ${m.memoryGb} GB, ${m.os}; Node ${m.node}, ${m.python}, OpenVINO ${m.openvino}, GenAI ${m.openvinoGenai}, multilora ${m.multilora}. ${provenanceLine(results)}`,
    '',
  );
  for (const [phase, p] of Object.entries(results.phaseRuns ?? {}))
    lines.push(
      `Phase \`${phase}\` measured again on ${p.date.slice(0, 10)} (\`npm run bench -- --phases ${phase}${p.quick ? ' --quick' : ''}\`): ${provenanceLine(p)}`,
      '',
    );
  lines.push('| target | value | target | met |', '|---|---|---|---|');
  for (const [k, t] of Object.entries(results.targets))
    lines.push(`| \`${k}\` | ${t.value} | ${t.target} | ${t.met ? 'yes' : '**no**'} |`);
  for (const r of Object.values(results.models)) {
    lines.push('', `### ${r.title}: ${r.steps} steps, guidance ${r.guidance}`, '');
    lines.push('Time of one generate call, ms: median (p25–p75) over the rounds after the warm-up.', '');
    lines.push('| call | Node | Python | C++ |', '|---|---|---|---|');
    for (const c of r.runners.cases) {
      const cell = (s) => `${f(s.median)} (${f(s.p25)}–${f(s.p75)})`;
      lines.push(`| ${c.name} | ${cell(c.ms.node)} | ${cell(c.ms.python)} | ${cell(c.ms.cpp)} |`);
    }
    const ratio = (s) => `${f(s.median, 4)} (${f(s.p25, 4)}–${f(s.p75, 4)})`;
    lines.push(
      '',
      `Paired ratios (${r.runners.ratios.nodeOverCpp.n} pairs): Node ÷ C++ ${ratio(r.runners.ratios.nodeOverCpp)}; Node ÷ Python ${ratio(r.runners.ratios.nodeOverPython)}; Python ÷ C++ ${ratio(r.runners.ratios.pythonOverCpp)}. ${sameBytesLine(r.runners)}`,
    );
    const o = r.runners.outsideStepsMs;
    if (o)
      lines.push(
        `Time outside GenAI's denoising steps (a call minus steps × GenAI's step time: text encoders, VAE, binding), median ms: Node ${f(o.node.median)}, Python ${f(o.python.median)}, C++ ${f(o.cpp.median)}.`,
      );
    lines.push(
      `Loads (one each, cold, ms): Node ${f(r.runners.loadsMs.node, 0)}, Python ${f(r.runners.loadsMs.python, 0)}, C++ ${f(r.runners.loadsMs.cpp, 0)}.`,
      '',
    );
    if (r.eventLoop)
      lines.push(
        `- Event loop during ${r.eventLoop.calls} generate calls: p99 ${f(r.eventLoop.p99Ms, 2)} ms, max ${f(r.eventLoop.maxMs, 2)} ms.`,
      );
    lines.push(
      `- Switching adapters or alphas between calls: ${f(r.switching.switchCostMs.median, 2)} ms (p25–p75 ${f(r.switching.switchCostMs.p25, 2)}–${f(r.switching.switchCostMs.p75, 2)}) = ${f(100 * r.switching.overStep, 2)}% of a ${f(r.switching.stepMs, 1)} ms step.`,
    );
    if (r.zeroCopy) {
      const z = r.zeroCopy;
      lines.push(
        `- Zero-copy output (\`output: 'borrow'\`), ${z.pairs} pairs of calls: ${z.borrowedAtGenai}/${z.pairs} borrowed Buffers start at GenAI's output tensor (no copy), ${z.copiesElsewhere}/${z.pairs} default results are copies elsewhere, ${z.sameBytes}/${z.pairs} with the same bytes; ${f(z.borrowMs)} ms borrowed against ${f(z.copyMs)} ms copied (medians of whole calls; why the default copies: docs/GENAI-BUGS.md §2).`,
      );
    }
    if (r.rss)
      lines.push(
        `- RSS over ${r.rss.calls} calls after ${r.rss.warmup} warm-up calls: ${f(r.rss.startMb)} → ${f(r.rss.endMb)} MB (max ${f(r.rss.maxMb)}): ${f(100 * r.rss.growth, 2)}%.`,
      );
    if (r.idleAdapters) {
      const i = r.idleAdapters;
      const t = i.firstStepMs;
      // Paired ratios (per round) when the file has them; older files compared medians.
      const pct = (ratio, unpaired) =>
        ratio
          ? `${f(100 * (ratio.median - 1), 2)}% (paired, p25–p75 ${f(100 * (ratio.p25 - 1), 2)}–${f(100 * (ratio.p75 - 1), 2)}%)`
          : `${f(100 * unpaired, 2)}% (ratio of medians, unpaired)`;
      lines.push(
        `- ${i.adapters} registered adapters, none used (time to the end of the first step): ${f(t.idle.median)} ms against ${f(t.none.median)} ms with none registered: ${pct(i.ratios?.idleOverNone, i.overhead)}. GenAI's own empty AdapterConfig, from C++ (multilora cannot use it, docs/GENAI-BUGS.md §1): ${f(t.genaiEmpty.median)} ms, ${pct(i.ratios?.genaiEmptyOverNone, i.genaiEmptyOverhead)}.`,
      );
      lines.push(
        `- ${i.adapters} registered adapters, one used at 0.8: ${f(t.idleOne.median)} ms against ${f(t.one.median)} ms with only that one registered: ${pct(i.ratios?.idleOneOverOne, i.overheadWithOneUsed)}.`,
      );
    }
    const s = r.staticShape;
    const speedup = s.dynamicOverStatic
      ? `×${f(s.dynamicOverStatic.median, 3)} (paired, p25–p75 ${f(s.dynamicOverStatic.p25, 3)}–${f(s.dynamicOverStatic.p75, 3)})`
      : `×${f(s.speedup, 3)} (ratio of medians, unpaired)`;
    lines.push(
      `- Static shapes (\`staticShape\`): ${f(s.ms.static.median)} ms against ${f(s.ms.dynamic.median)} ms dynamic: ${speedup}; load ${f(s.loadsMs.static, 0)} against ${f(s.loadsMs.dynamic, 0)} ms.`,
    );
    for (const [label, c] of Object.entries(r.coldStart ?? {})) {
      const what = label === 'noAdapters' ? 'no adapters' : 'two adapters';
      lines.push(
        `- Cold start in a new process, ${what}: ${f(c.noCache, 0)} ms without \`cacheDir\`, ${f(c.emptyCache, 0)} ms filling an empty one, ${f(c.warmCache, 0)} ms with a warm one (×${f(c.speedup, 2)}).`,
      );
    }
  }
  return lines;
}

/** Whether the three runners made the same images: md5 of every byte (newer files), or the first byte (older). */
function sameBytesLine(runners) {
  if (runners.runnersSameBytes !== undefined)
    return `The same images, every byte (md5 of each image, each call, each round), from all three: ${runners.runnersSameBytes ? 'yes' : '**no**'}.`;
  if (runners.sameImages === undefined) return 'Images not compared in this run.';
  return `Only the first byte of each image was compared in this run (same: ${runners.sameImages ? 'yes' : '**no**'}).`;
}

/** The PipelinePool section of docs/BENCHMARKS.md, between its own markers. */
function poolLines(results) {
  const lines = [];
  for (const r of Object.values(results.models)) {
    const p = r.pool;
    if (!p) continue;
    const title = r.title.replace(/, \d+×\d+$/, '');
    lines.push('', `### ${title}, ${p.size}×${p.size}: ${p.steps} steps, guidance ${p.guidance}`, '');
    lines.push(
      `Run of ${p.date.slice(0, 10)} (\`npm run bench -- --phases pool${p.quick ? ' --quick' : ''}\`), ${p.cores} cores. ${provenanceLine(p)} ${p.calls} calls made at once per round (no LoRA, one adapter, a blend in turn; ${p.adapters} adapters registered), ${p.imagesPerSecond.pool1.n} rounds after a warm-up. The machine's 1-minute load average (other work on it) was ${(p.loadAverage ?? []).map((x) => f(x)).join(' at the start, ')}${p.loadAverage ? ' at the end' : '–'}.`,
      '',
    );
    lines.push(
      '| pipelines | OpenVINO threads each | images/s, median (p25–p75) | ÷ one pipeline, paired median (p25–p75) | load, ms |',
      '|---|---|---|---|---|',
    );
    for (const [name, s] of Object.entries(p.imagesPerSecond)) {
      const k = Number(name.replace(/\D/g, ''));
      const threads = name.startsWith('threads')
        ? `${Math.max(1, Math.floor(p.cores / k))} (INFERENCE_NUM_THREADS)`
        : `all (OpenVINO's default)`;
      const ratio = p.ratios[`${name}OverPool1`];
      const what = name.startsWith('threads') ? `${k} native, no queue` : `PipelinePool of ${k}`;
      lines.push(
        `| ${what} | ${threads} | ${f(s.median, 2)} (${f(s.p25, 2)}–${f(s.p75, 2)}) | ${ratio ? `×${f(ratio.median, 3)} (${f(ratio.p25, 3)}–${f(ratio.p75, 3)})` : '1'} | ${f(p.loadsMs[name], 0)} |`,
      );
    }
    lines.push(
      '',
      'Loading K pipelines (each with the adapters) in a new process: one after the other, or all at once; median (min–max).',
      '',
    );
    lines.push('| K | how | time, ms | peak RSS, MB |', '|---|---|---|---|');
    for (const [name, l] of Object.entries(p.loading)) {
      lines.push(
        `| ${name.replace(/\D/g, '')} | ${name.replace(/\d/g, '')} | ${f(l.ms.median, 0)} (${f(l.ms.min, 0)}–${f(l.ms.max, 0)}) | ${f(l.maxRssMb.median, 0)} (${f(l.maxRssMb.min, 0)}–${f(l.maxRssMb.max, 0)}) |`,
      );
    }
  }
  return lines;
}

/** Replaces what lies between a block's markers; throws when the doc lacks them. */
export function replaceBlock(doc, [begin, end], lines, name = 'the doc') {
  const b = doc.indexOf(begin);
  const e = doc.indexOf(end);
  if (b < 0 || e < b) throw new Error(`${name} lacks the ${begin} … ${end} markers`);
  return `${doc.slice(0, b + begin.length)}\n${lines.join('\n').trim()}\n${doc.slice(e)}`;
}

/** The results files behind docs/BENCHMARKS.md: the full run, and the quick one (`--quick` writes its own). */
export const RESULTS = { full: 'bench-results/bench.json', quick: 'bench-results/bench-quick.json' };

/** The two commands, what they measure, and how long their last run took, from their results files. */
function commandLines({ full, quick }) {
  const lines = ['| command | what it measures | last run | took | results |', '|---|---|---|---|---|'];
  const row = (command, what, r, file) =>
    lines.push(
      `| \`${command}\` | ${what} | ${r ? r.date.slice(0, 10) : 'not run yet'} | ${r?.durationS !== undefined ? `${r.durationS} s` : '–'} | \`${file}\` |`,
    );
  row('npm run bench -- --quick', 'the tiny fixture, small counts', quick, RESULTS.quick);
  row('npm run bench', 'the tiny fixture and the realistic model, full counts', full, RESULTS.full);
  return lines;
}

/**
 * docs/BENCHMARKS.md with its generated blocks made from the results: `full` (bench-results/bench.json) and, when
 * there is one, `quick` (bench-results/bench-quick.json).
 */
export function renderBenchDoc(doc, { full, quick }, name = 'docs/BENCHMARKS.md') {
  let out = replaceBlock(doc, BLOCKS.commands, commandLines({ full, quick }), name);
  out = replaceBlock(out, BLOCKS.results, resultsLines(full), name);
  out = replaceBlock(out, BLOCKS.quick, quick ? resultsLines(quick) : ['No quick run recorded yet.'], name);
  out = replaceBlock(out, BLOCKS.pool, poolLines(full), name);
  return out;
}

// ------------------------------------------------------------------------------------------------- docs/SCALING.md
export const SCALING_BLOCK = ['<!-- scaling:results:begin -->', '<!-- scaling:results:end -->'];

/** A set's name in bench-results/scaling.json, as the doc says it. */
function setTitle(name) {
  if (name === 'local') return 'local baseline: one `Pipeline`, in process';
  const [, k, split] = name.match(/^workers(\d+)(-threads\d+)?$/) ?? [];
  if (!k) return name;
  return `${k} worker${k === '1' ? '' : 's'}${split ? ', split' : ''}`;
}

/** The results block of docs/SCALING.md, from bench-results/scaling.json (`npm run bench:scaling`). */
function scalingLines(r) {
  const m = r.machine;
  const lines = [
    `Run of ${r.date.slice(0, 10)} (\`${r.command}\`, ${r.durationS} s): ${m.cpu} (${m.cores} cores), ${m.memoryGb} GB, ${m.os}; Node ${m.node}, OpenVINO ${m.openvino}, GenAI ${m.openvinoGenai}, multilora ${m.multilora}, BullMQ ${m.bullmq}, redis-server ${m.redis} on loopback. Model \`${r.model}\` at ${r.size}×${r.size}, ${r.steps} steps, its default guidance; ${r.jobs} jobs per run, ${r.rounds} rounds after a warm-up. ${provenanceLine(r)}`,
    '',
    '| run | workers | OpenVINO threads each | jobs/s, median (p25–p75) | ÷ 1 worker, paired median (p25–p75) | same bytes as local | jobs per worker | RSS per worker, MB: after warm-up / end (peak; own + mapped files at the end) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const mem = (m) => `(${m.peakMb}; ${m.anonMb} + ${m.fileMb})`;
  for (const [name, s] of Object.entries(r.jobsPerS)) {
    const set = r.sets.find((x) => x.name === name);
    const ratio = r.ratiosToOneWorker[name];
    const memory = set
      ? r.memory.atEnd[name].map((m, i) => `${r.memory.afterWarmup[name][i].rssMb} / ${m.rssMb} ${mem(m)}`).join(', ')
      : `${r.memory.localProcess.rssMb} ${mem(r.memory.localProcess)}, the whole bench process`;
    const threads = set
      ? set.threads === null
        ? 'default (all)'
        : `${set.threads} (\`--threads ${set.threads}\`)`
      : 'default (all)';
    lines.push(
      `| ${setTitle(name)} | ${set ? set.workers : '–'} | ${threads} | ${f(s.median, 2)} (${f(s.p25, 2)}–${f(s.p75, 2)}) | ${ratio ? `×${f(ratio.median, 3)} (${f(ratio.p25, 3)}–${f(ratio.p75, 3)})` : '1'} | ${r.sameBytesAsLocal[name] ?? '–'} | ${set ? r.jobsPerWorker[name].join(', ') : '–'} | ${memory} |`,
    );
  }
  lines.push(
    '',
    `Redis at the end: \`used_memory\` ${f(r.redis.usedMemoryMb, 1)} MB (peak ${f(r.redis.usedMemoryPeakMb, 1)} MB), holding ${r.redis.resultKeys} results within their hour of TTL, and BullMQ's records and event streams of those jobs.`,
  );
  return lines;
}

/** docs/SCALING.md with its results block made from `results` (the contents of bench-results/scaling.json). */
export function renderScalingDoc(doc, results, name = 'docs/SCALING.md') {
  return replaceBlock(doc, SCALING_BLOCK, scalingLines(results), name);
}
