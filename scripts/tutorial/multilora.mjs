// The multilora side of `npm run bench:tutorial`: the tutorial's job through the package's public API.
//
// Usage: node multilora.mjs <job.json>. The job (written by scripts/bench-tutorial.mjs) names the model, the
// catalogue, the images, and the load and call options of the mode being measured; this prints one JSON line per
// event on stdout (load, image, done) and writes each image's RGB bytes to the job's outDir, like recipe.py.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Pipeline } from '../../dist/index.js';

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let t = performance.now();
const pipeline = await Pipeline.load(job.model, { adapters: job.catalog, ...job.load });
emit({ type: 'load', ms: performance.now() - t });
for (const [i, image] of job.images.entries()) {
  const style = image.style;
  t = performance.now();
  const cpu = process.cpuUsage();
  const result = await pipeline.generate(image.subject, {
    adapters: style === null ? {} : { [style]: job.catalog[style].alpha },
    applyTemplate: true,
    steps: job.steps,
    guidanceScale: job.guidance,
    width: image.size,
    height: image.size,
    seed: image.seed,
    ...job.generate,
  });
  const ms = performance.now() - t;
  const { user, system } = process.cpuUsage(cpu);
  writeFileSync(path.join(job.outDir, `${i}.rgb`), result.data);
  emit({
    type: 'image',
    index: i,
    ms,
    md5: createHash('md5').update(result.data).digest('hex'),
    stepMs: result.metrics.stepMs.mean,
    vaeMs: result.metrics.vaeDecoderMs,
    cpuMs: (user + system) / 1000,
    textMs: Object.values(result.metrics.textEncodersMs).reduce((a, b) => a + b, 0),
  });
}
await pipeline.dispose();
emit({ type: 'done', peakRssMb: process.resourceUsage().maxRSS / 1024 });
