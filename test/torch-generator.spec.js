// generator: 'torch': the initial noise is torch.randn's, bit for bit. Checked against the reference values that
// scripts/make-fixtures.py stored from torch 2.13 (CI has no torch), then end to end: GenAI denoises exactly that
// noise (Python openvino_genai handed the same arrays gives the same bytes), through the library, the CLI and the
// server.
'use strict';
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { Pipeline, decodePng } = require('..');
const { native } = require('../dist/internal').binding;
const { startServer } = require('../dist/internal').server;
const { FIXTURES, ROOT, families, pythonImages, meanAbsDiff } = require('./helpers/fixtures');

const REFERENCE = JSON.parse(readFileSync(path.join(FIXTURES, 'torch-randn.json'), 'utf8'));
const fx = families.sd15;

function referenceBytes(base64) {
  return Buffer.from(base64, 'base64');
}

function bytesOf(values) {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/** The first float that differs, as a message, or '' when all bytes are equal. */
function firstDifference(actual, expected) {
  if (actual.length !== expected.length) return `${actual.length / 4} floats instead of ${expected.length / 4}`;
  for (let i = 0; i < actual.length; i += 4) {
    if (actual.readUInt32LE(i) !== expected.readUInt32LE(i)) {
      return `float ${i / 4} is ${actual.readFloatLE(i)} instead of ${expected.readFloatLE(i)}`;
    }
  }
  return '';
}

/** The reference case for (seed, shape); fails the test when the fixture lacks it. */
function referenceCase(seed, shape) {
  const c = REFERENCE.cases.find((k) => k.seed === seed && k.shape.join() === shape.join());
  assert.ok(c, `test/fixtures/torch-randn.json has no case for seed ${seed}, shape [${shape}]`);
  return c;
}

describe('torch generator: the noise, against torch.randn', function () {
  const torchRandn = (seed, shapes) => native().internals.torchRandn(seed, shapes);

  it('the reference file covers every path of torch: 16 and more elements (a multiple of 16 or not), fewer than 16, batches', function () {
    const sizes = REFERENCE.cases.map((c) => c.shape.reduce((a, b) => a * b, 1));
    assert.ok(sizes.some((n) => n >= 16 && n % 16 === 0));
    assert.ok(sizes.some((n) => n > 16 && n % 16 !== 0));
    assert.ok(
      sizes.some((n) => n < 16 && n % 2 === 1),
      'an odd count below 16 (the kept sine half)',
    );
    assert.ok(REFERENCE.cases.some((c) => c.shape[0] === 2));
    assert.ok(REFERENCE.cases.some((c) => c.seed === 2 ** 32 - 1));
    assert.ok(REFERENCE.sequences.length >= 2);
    assert.match(REFERENCE.torch_version, /^2\./);
  });

  for (const c of REFERENCE.cases) {
    it(`seed ${c.seed}, shape [${c.shape}]: equal bit for bit`, function () {
      const [values] = torchRandn(c.seed, [c.shape]);
      const diff = firstDifference(bytesOf(values), referenceBytes(c.data_base64_f32le));
      assert.equal(diff, '', diff);
      assert.deepEqual(Array.from(values.subarray(0, 8)), c.first8);
    });
  }

  for (const s of REFERENCE.sequences) {
    it(`successive calls on one generator, seed ${s.seed}, shapes ${JSON.stringify(s.shapes)}: equal bit for bit`, function () {
      const values = torchRandn(s.seed, s.shapes);
      s.shapes.forEach((shape, i) => {
        const diff = firstDifference(bytesOf(values[i]), referenceBytes(s.data_base64_f32le[i]));
        assert.equal(diff, '', `call ${i} (shape [${shape}]): ${diff}`);
      });
    });
  }

  it('other seeds give other noise; a seed gives the same noise every time', function () {
    const shape = [1, 4, 9, 9];
    const [a] = torchRandn(1, [shape]);
    const [b] = torchRandn(2, [shape]);
    const [again] = torchRandn(1, [shape]);
    assert.ok(!bytesOf(a).equals(bytesOf(b)));
    assert.ok(bytesOf(a).equals(bytesOf(again)));
  });
});

describe('torch generator: generate on the sd15 fixture', function () {
  let pipeline;
  before(async function () {
    pipeline = await Pipeline.load(fx.model);
  });
  after(async function () {
    await pipeline?.dispose();
  });

  /** The latent shape GenAI asks its generator for: [numImages, 4, height / scale, width / scale]. */
  function latentShape(width, height, numImages = 1) {
    const scale = pipeline.model.vaeScaleFactor;
    return [numImages, 4, height / scale, width / scale];
  }

  /** Python openvino_genai's image when its generator hands GenAI torch.randn(latent shape) for the seed. */
  function pythonWithTorchNoise(call) {
    const noise = referenceCase(call.seed, latentShape(call.width, call.height, call.num_images ?? 1));
    const [image] = pythonImages({
      model: fx.model,
      calls: [{ ...call, noise: [{ shape: noise.shape, data_base64_f32le: noise.data_base64_f32le }] }],
    });
    return image;
  }

  for (const seed of [42, 2 ** 32 - 1]) {
    it(`seed ${seed}: the bytes of Python openvino_genai handed torch.randn's noise for that seed`, async function () {
      const call = { prompt: 'a lighthouse', seed, width: 64, height: 64, steps: 3, guidance_scale: fx.guidanceScale };
      const expected = pythonWithTorchNoise(call);
      const image = await pipeline.generate(call.prompt, {
        seed,
        width: 64,
        height: 64,
        steps: 3,
        guidanceScale: fx.guidanceScale,
        generator: 'torch',
      });
      assert.ok(
        image.data.equals(expected),
        `differs by ${meanAbsDiff(image.data, expected).toFixed(4)}/255 on average`,
      );
    });
  }

  it('numImages 2: the noise of one torch.randn call of the batch shape, as diffusers draws it', async function () {
    const call = {
      prompt: 'two lighthouses',
      seed: 42,
      width: 16,
      height: 16,
      steps: 2,
      guidance_scale: fx.guidanceScale,
      num_images: 2,
    };
    const expected = pythonWithTorchNoise(call);
    const images = await pipeline.generate(call.prompt, {
      seed: 42,
      width: 16,
      height: 16,
      steps: 2,
      guidanceScale: fx.guidanceScale,
      generator: 'torch',
      numImages: 2,
    });
    assert.equal(images.length, 2);
    const both = Buffer.concat(images.map((i) => i.data));
    assert.ok(both.equals(expected), `differs by ${meanAbsDiff(both, expected).toFixed(4)}/255 on average`);
    assert.ok(!images[0].data.equals(images[1].data));
  });

  it("repeats for the same seed whatever ran before, differs for another seed and from GenAI's generator", async function () {
    const options = { seed: 7, width: 64, height: 64, steps: 2, generator: 'torch' };
    const first = await pipeline.generate('x', options);
    const other = await pipeline.generate('x', { ...options, seed: 8 });
    const genai = await pipeline.generate('x', { ...options, generator: 'genai' });
    const genaiDefault = await pipeline.generate('x', { seed: 7, width: 64, height: 64, steps: 2 });
    const again = await pipeline.generate('x', options);
    assert.ok(again.data.equals(first.data));
    assert.ok(!other.data.equals(first.data));
    assert.ok(!genai.data.equals(first.data));
    assert.ok(genaiDefault.data.equals(genai.data), "'genai' is the default");
    assert.equal(first.seed, 7);
  });

  it('takes seeds from 0 to 2^32-1, and refuses 2^32', async function () {
    await pipeline.generate('x', { seed: 0, width: 16, height: 16, steps: 2, generator: 'torch' });
    await pipeline.generate('x', { seed: 2 ** 32 - 1, width: 16, height: 16, steps: 2, generator: 'torch' });
    await assert.rejects(pipeline.generate('x', { seed: 2 ** 32, generator: 'torch' }), {
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('refuses a generator it does not know, with ERR_INVALID_ARGUMENT, and stays usable', async function () {
    for (const generator of ['numpy', 'Torch', 1, null]) {
      await assert.rejects(pipeline.generate('x', { seed: 1, generator }), (err) => {
        assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
        assert.match(err.message, /^Expected "genai" or "torch" for options\.generator but received /);
        return true;
      });
    }
    const image = await pipeline.generate('x', { seed: 1, width: 16, height: 16, steps: 2, generator: 'torch' });
    assert.equal(image.data.length, 16 * 16 * 3);
  });

  it("draws image-to-image and inpainting noise too: reproducible, and not GenAI's", async function () {
    const source = await pipeline.generate('a source', { seed: 3, width: 64, height: 64, steps: 2 });
    const mask = { data: Buffer.alloc(64 * 64, 255), width: 64, height: 64, channels: 1 };
    const options = { seed: 11, steps: 4, strength: 0.8, generator: 'torch' };
    const a = await pipeline.imageToImage('x', source, options);
    const b = await pipeline.imageToImage('x', source, options);
    const c = await pipeline.imageToImage('x', source, { ...options, generator: 'genai' });
    assert.ok(a.data.equals(b.data));
    assert.ok(!a.data.equals(c.data));
    const p = await pipeline.inpaint('x', source, mask, options);
    const q = await pipeline.inpaint('x', source, mask, options);
    assert.ok(p.data.equals(q.data));
  });
});

describe('torch generator: the CLI and the server', function () {
  const OPTIONS = { seed: 42, width: 64, height: 64, steps: 2 };
  let expected;
  before(async function () {
    const pipeline = await Pipeline.load(fx.model);
    try {
      expected = (await pipeline.generate('a lighthouse', { ...OPTIONS, generator: 'torch' })).data;
    } finally {
      await pipeline.dispose();
    }
  });

  it('multilora generate --generator torch writes those bytes, and says so', async function () {
    const args = ['generate', 'a lighthouse', '--model', fx.model, '--seed', '42', '--width', '64', '--height', '64'];
    const out = await new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [path.join(ROOT, 'dist', 'cli', 'main.js'), ...args, '--steps', '2', '--generator', 'torch', '--out', '-'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const chunks = [];
      let stderr = '';
      child.stdout.on('data', (c) => chunks.push(c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout: Buffer.concat(chunks), stderr }));
    });
    assert.equal(out.status, 0, out.stderr);
    assert.ok(decodePng(out.stdout).data.equals(expected));
    assert.match(out.stderr, /seed 42 \(torch generator\)/);
  });

  it('the server takes "generator" in the request body, and refuses an unknown one', async function () {
    const server = await startServer({ model: fx.model, host: '127.0.0.1', port: 0 });
    try {
      const post = (body) =>
        fetch(`${server.url}/v1/images/generations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: 'a lighthouse', size: '64x64', steps: 2, seed: 42, ...body }),
        });
      const res = await post({ generator: 'torch' });
      const json = await res.json();
      assert.equal(res.status, 200, JSON.stringify(json));
      assert.ok(decodePng(Buffer.from(json.data[0].b64_json, 'base64')).data.equals(expected));
      const bad = await post({ generator: 'numpy' });
      assert.equal(bad.status, 400);
      const error = await bad.json();
      assert.equal(error.error.code, 'ERR_INVALID_ARGUMENT');
      assert.match(error.error.message, /generator/);
    } finally {
      await server.close();
    }
  });
});
