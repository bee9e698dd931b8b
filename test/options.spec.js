// The rest of GenAI's ImageGenerationConfig, and what a result carries.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline } = require('..');
const { families, meanAbsDiff } = require('./helpers/fixtures');

const BASE = { seed: 11, steps: 3 };

describe('generation options (sdxl fixture)', function () {
  let pipeline;
  let plain;
  before(async function () {
    pipeline = await Pipeline.load(families.sdxl.model);
    plain = await pipeline.generate('a red kite', BASE);
  });
  after(async function () {
    await pipeline?.dispose();
  });

  it("carries GenAI's metrics, in ms", function () {
    const m = plain.metrics;
    assert.ok(m.loadMs > 0 && m.totalMs > 0 && m.stepMs.mean > 0 && m.denoiserMs > 0 && m.vaeDecoderMs >= 0);
    assert.deepEqual(Object.keys(m.textEncodersMs).sort(), ['text_encoder', 'text_encoder_2']);
    assert.ok(m.totalMs >= m.stepMs.mean * BASE.steps * 0.5);
  });

  it('prompt2 and negativePrompt2 reach the second text encoder', async function () {
    const withPrompt2 = await pipeline.generate('a red kite', { ...BASE, prompt2: 'a blue whale' });
    assert.ok(meanAbsDiff(withPrompt2.data, plain.data) > 0.1);
    const neg = await pipeline.generate('a red kite', { ...BASE, negativePrompt: 'grey' });
    const neg2 = await pipeline.generate('a red kite', { ...BASE, negativePrompt: 'grey', negativePrompt2: 'green' });
    assert.ok(!neg.data.equals(neg2.data));
  });

  it('numImages makes a typed batch of distinct images that reproduces with the same seed', async function () {
    const batch = await pipeline.generate('a red kite', { ...BASE, numImages: 3 });
    assert.equal(batch.length, 3);
    for (const image of batch) {
      assert.equal(image.data.length, 64 * 64 * 3);
      assert.equal(image.seed, BASE.seed);
    }
    assert.ok(!batch[0].data.equals(batch[1].data) && !batch[1].data.equals(batch[2].data));
    const again = await pipeline.generate('a red kite', { ...BASE, numImages: 3 });
    batch.forEach((image, i) => assert.ok(image.data.equals(again[i].data)));
    assert.ok(batch[0].data.equals(plain.data), 'the first of a batch is the single image of that seed');
  });

  it("a scheduler chosen by name changes the image, and the model's own comes back when left out", async function () {
    const ancestral = await pipeline.generate('a red kite', { ...BASE, scheduler: 'euler-ancestral' });
    assert.ok(!ancestral.data.equals(plain.data));
    const back = await pipeline.generate('a red kite', BASE);
    assert.ok(back.data.equals(plain.data));
    const named = await pipeline.generate('a red kite', { ...BASE, scheduler: 'euler' }); // what this model ships
    assert.ok(named.data.equals(plain.data));
  });

  it('a scheduler that does not fit the model gives ERR_INVALID_ARGUMENT, and the pipeline lives on', async function () {
    await assert.rejects(pipeline.generate('a red kite', { ...BASE, scheduler: 'ddim' }), {
      code: 'ERR_INVALID_ARGUMENT',
    });
    const back = await pipeline.generate('a red kite', BASE);
    assert.ok(back.data.equals(plain.data));
  });

  it('rejects bad values of the new options with ERR_INVALID_ARGUMENT', async function () {
    const bad = [
      { scheduler: 'karras' },
      { numImages: 0 },
      { numImages: 17 },
      { maxSequenceLength: -1 },
      { prompt2: 5 },
      { onProgress: 'yes' },
      { preview: 1 },
      { signal: {} },
    ];
    for (const options of bad) {
      await assert.rejects(pipeline.generate('x', options), { code: 'ERR_INVALID_ARGUMENT' }, JSON.stringify(options));
    }
  });
});
