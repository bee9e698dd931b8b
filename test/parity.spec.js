// Byte parity with Python's openvino_genai, from the same SDK venv: the binding adds nothing and loses nothing.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline } = require('..');
const { families, pythonImages, meanAbsDiff } = require('./helpers/fixtures');

const CASES = [
  { name: 'no adapter', adapters: {} },
  { name: 'adapter A at 1.0', adapters: { a: 1 } },
  { name: 'adapter B at 1.0', adapters: { b: 1 } },
  { name: 'blend A 0.5 + B 0.7', adapters: { a: 0.5, b: 0.7 } },
  { name: 'A at -0.6, 96x64, negative prompt', adapters: { a: -0.6 }, width: 96, negative_prompt: 'blurry' },
];

for (const [family, fx] of Object.entries(families)) {
  describe(`parity with Python openvino_genai on the ${family} fixture`, function () {
    const calls = CASES.map((c, i) => ({
      prompt: `a lighthouse at dusk, case ${i}`,
      seed: 1000 + i,
      width: c.width ?? 64,
      height: 64,
      steps: 4,
      guidance_scale: fx.guidanceScale,
      adapters: c.adapters,
      ...(c.negative_prompt ? { negative_prompt: c.negative_prompt } : {}),
    }));
    let expected;
    let pipeline;
    before(async function () {
      const adapters = { a: fx.lora('style-a'), b: fx.lora('style-b') };
      expected = pythonImages({ model: fx.model, adapters, calls });
      pipeline = await Pipeline.load(fx.model, {
        adapters: { a: { path: adapters.a }, b: { path: adapters.b } },
      });
    });
    after(async function () {
      await pipeline?.dispose();
    });

    CASES.forEach((c, i) => {
      it(`${c.name}: identical bytes`, async function () {
        const call = calls[i];
        const image = await pipeline.generate(call.prompt, {
          seed: call.seed,
          width: call.width,
          height: call.height,
          steps: call.steps,
          guidanceScale: call.guidance_scale,
          adapters: call.adapters,
          ...(call.negative_prompt ? { negativePrompt: call.negative_prompt } : {}),
        });
        assert.equal(image.data.length, expected[i].length);
        assert.ok(
          image.data.equals(expected[i]),
          `differs from Python by ${meanAbsDiff(image.data, expected[i]).toFixed(4)}/255 on average`,
        );
      });
    });

    it('the cases are not trivially equal to each other', function () {
      for (let i = 1; i < 4; i += 1) assert.ok(!expected[0].equals(expected[i]), `case ${i} equals case 0`);
    });
  });
}
