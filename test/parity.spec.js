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
  { name: 'imageToImage, A at 0.8, strength 0.6', adapters: { a: 0.8 }, task: 'image2image', strength: 0.6 },
  { name: 'inpaint, blend A 0.5 + B 0.7', adapters: { a: 0.5, b: 0.7 }, task: 'inpainting' },
];

/** A 64x64 RGB input of gradients, the same for every run. */
const SOURCE = (() => {
  const data = Buffer.alloc(64 * 64 * 3);
  for (let y = 0; y < 64; y += 1) {
    for (let x = 0; x < 64; x += 1) data.set([x * 4, y * 4, (x + y) * 2], (y * 64 + x) * 3);
  }
  return { data, width: 64, height: 64, channels: 3 };
})();
/** White (repaint) in the middle 32x32 square, black elsewhere. */
const MASK = (() => {
  const data = Buffer.alloc(64 * 64 * 3);
  for (let y = 16; y < 48; y += 1) data.fill(255, (y * 64 + 16) * 3, (y * 64 + 48) * 3);
  return { data, width: 64, height: 64, channels: 3 };
})();
const asOracleInput = (image) => ({
  width: image.width,
  height: image.height,
  data_base64: image.data.toString('base64'),
});

/** Standard deviation of the bytes: 0 for a black (or any one-colour) image. */
function spread(bytes) {
  let sum = 0;
  let squares = 0;
  for (const b of bytes) {
    sum += b;
    squares += b * b;
  }
  const mean = sum / bytes.length;
  return Math.sqrt(squares / bytes.length - mean * mean);
}

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
      ...(c.task ? { task: c.task, image: asOracleInput(SOURCE) } : {}),
      ...(c.task === 'inpainting' ? { mask: asOracleInput(MASK) } : {}),
      ...(c.strength ? { strength: c.strength } : {}),
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
        const options = {
          seed: call.seed,
          steps: call.steps,
          guidanceScale: call.guidance_scale,
          adapters: call.adapters,
          ...(call.negative_prompt ? { negativePrompt: call.negative_prompt } : {}),
          ...(call.strength ? { strength: call.strength } : {}),
        };
        let image;
        if (c.task === 'image2image') image = await pipeline.imageToImage(call.prompt, SOURCE, options);
        else if (c.task === 'inpainting') image = await pipeline.inpaint(call.prompt, SOURCE, MASK, options);
        else image = await pipeline.generate(call.prompt, { ...options, width: call.width, height: call.height });
        assert.equal(image.data.length, expected[i].length);
        assert.ok(
          image.data.equals(expected[i]),
          `differs from Python by ${meanAbsDiff(image.data, expected[i]).toFixed(4)}/255 on average`,
        );
      });
    });

    it('the cases are not trivially equal: no two images alike, none of one colour', function () {
      for (const [i, image] of expected.entries()) {
        for (let j = 0; j < i; j += 1) assert.ok(!image.equals(expected[j]), `case ${i} equals case ${j}`);
        // The tiny fixtures' images spread by 37 to 46 (measured); a black or flat image by 0.
        assert.ok(spread(image) > 10, `case ${i} is nearly one colour (spread ${spread(image).toFixed(2)})`);
      }
    });
  });
}
