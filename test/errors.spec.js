// Bad input gets a MultiloraError with a code, the process lives on, and the pipeline still gives its reference bytes.
'use strict';
const assert = require('node:assert/strict');
const { mkdirSync, writeFileSync, copyFileSync } = require('node:fs');
const path = require('node:path');
const { Pipeline, DisposedError } = require('..');
const { families, useTempDir, rejectsWith } = require('./helpers/fixtures');

const fx = families.sd15;
const CALL = { seed: 7, steps: 2, width: 64, height: 64, adapters: { a: 0.9 } };

describe('errors', function () {
  const tmpDir = useTempDir('multilora-errors-');

  describe('loading', function () {
    it('a missing model folder: ERR_MODEL_NOT_FOUND', async function () {
      await rejectsWith(Pipeline.load(path.join(tmpDir(), 'nowhere')), 'ERR_MODEL_NOT_FOUND', /No model folder/);
    });

    it('a file instead of a folder: ERR_MODEL_NOT_FOUND', async function () {
      const file = path.join(tmpDir(), 'file');
      writeFileSync(file, 'x');
      await rejectsWith(Pipeline.load(file), 'ERR_MODEL_NOT_FOUND', /is a file/);
    });

    it('a folder without model_index.json: ERR_MODEL_NOT_FOUND', async function () {
      const empty = path.join(tmpDir(), 'empty');
      mkdirSync(empty);
      await rejectsWith(Pipeline.load(empty), 'ERR_MODEL_NOT_FOUND', /model_index\.json/);
    });

    it('a broken model_index.json: ERR_MODEL_INVALID', async function () {
      const broken = path.join(tmpDir(), 'broken');
      mkdirSync(broken);
      writeFileSync(path.join(broken, 'model_index.json'), '{ "_class_name": ');
      await rejectsWith(Pipeline.load(broken), 'ERR_MODEL_INVALID', /not valid JSON/);
    });

    it('a model folder with only model_index.json: ERR_MODEL_INVALID naming the first missing file', async function () {
      const partial = path.join(tmpDir(), 'partial');
      mkdirSync(partial);
      copyFileSync(path.join(fx.model, 'model_index.json'), path.join(partial, 'model_index.json'));
      await rejectsWith(
        Pipeline.load(partial),
        'ERR_MODEL_INVALID',
        /is incomplete: text_encoder\/config\.json is missing/,
      );
    });

    it('a missing adapter file: ERR_ADAPTER_NOT_FOUND', async function () {
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { x: { path: path.join(tmpDir(), 'none.safetensors') } } }),
        'ERR_ADAPTER_NOT_FOUND',
        /No adapter file/,
      );
    });

    it('an adapter that is not .safetensors: ERR_ADAPTER_INVALID', async function () {
      const file = path.join(tmpDir(), 'lora.bin');
      writeFileSync(file, 'x');
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { x: { path: file } } }),
        'ERR_ADAPTER_INVALID',
        /safetensors/,
      );
    });

    it('an adapter file that is not safetensors inside: ERR_ADAPTER_INVALID saying why', async function () {
      const file = path.join(tmpDir(), 'garbage.safetensors');
      writeFileSync(file, Buffer.alloc(1000, 0x7b));
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { x: { path: file } } }),
        'ERR_ADAPTER_INVALID',
        /header length is \d+ bytes, but only 992 bytes follow/,
      );
    });

    it('a LoRA made for a bigger base model: ERR_ADAPTER_INCOMPATIBLE naming a layer and both shapes', async function () {
      await rejectsWith(
        Pipeline.load(fx.model, {
          adapters: { a: { path: fx.lora('style-a') }, big: { path: fx.lora('wrong-base') } },
        }),
        'ERR_ADAPTER_INCOMPATIBLE',
        /Adapter "big" does not fit this model .*layer "lora_\w+" has A \[4, 64\] and B \[64, 4\], but the model's layer ".+" has weights \[32, 32\]/,
      );
    });

    it('a LoRA that matches no layer: ERR_ADAPTER_UNMATCHED', async function () {
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { none: { path: fx.lora('unmatched') } } }),
        'ERR_ADAPTER_UNMATCHED',
        /Adapter "none" patches no layer of this sd model/,
      );
    });

    it('bad load options: ERR_INVALID_ARGUMENT', async function () {
      await rejectsWith(Pipeline.load(42), 'ERR_INVALID_ARGUMENT', /Expected a non-empty string for modelDir/);
      await rejectsWith(Pipeline.load(fx.model, { adapter: {} }), 'ERR_INVALID_ARGUMENT', /Unknown option "adapter"/);
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { x: { path: fx.lora('style-a'), alpha: NaN } } }),
        'ERR_INVALID_ARGUMENT',
        /Expected a finite number from -100 to 100 for adapters\["x"\]\.alpha but received NaN/,
      );
    });
  });

  describe('generating', function () {
    let pipeline;
    let reference;
    before(async function () {
      pipeline = await Pipeline.load(fx.model, {
        adapters: { a: { path: fx.lora('style-a') }, b: { path: fx.lora('style-b') } },
      });
      reference = (await pipeline.generate('a boat', CALL)).data;
    });
    after(async function () {
      await pipeline?.dispose();
    });
    afterEach(async function () {
      if (!pipeline.disposed) {
        const again = await pipeline.generate('a boat', CALL);
        assert.ok(again.data.equals(reference), 'the pipeline no longer gives its reference bytes');
      }
    });

    const bad = [
      ['a prompt that is not a string', [42, {}], /Expected a string .*for prompt but received 42/],
      ['an unknown option', ['x', { sed: 1 }], /Unknown option "sed"/],
      ['a negative seed', ['x', { seed: -1 }], /options\.seed but received -1/],
      ['a seed above 2^32-1', ['x', { seed: 2 ** 32 }], /options\.seed/],
      ['a fractional seed', ['x', { seed: 1.5 }], /options\.seed/],
      ['a width that is not a multiple of the VAE scale', ['x', { width: 65 }], /a multiple of 2/],
      ['a zero height', ['x', { height: 0 }], /options\.height but received 0/],
      ['zero steps', ['x', { steps: 0 }], /options\.steps/],
      ['a NaN guidance scale', ['x', { guidanceScale: NaN }], /options\.guidanceScale but received NaN/],
      ['an Infinity alpha', ['x', { adapters: { a: Infinity } }], /adapters\["a"\] but received Infinity/],
      ['an unknown adapter', ['x', { adapters: { nope: 1 } }], /Unknown adapter "nope"; this pipeline has "a", "b"/],
      ['an adapter named twice', ['x', { adapters: ['a', 'a'] }], /named twice/],
      ['adapters of the wrong type', ['x', { adapters: 5 }], /Expected an adapter name/],
    ];
    for (const [what, args, pattern] of bad) {
      it(`${what}: ERR_INVALID_ARGUMENT`, async function () {
        await rejectsWith(pipeline.generate(...args), 'ERR_INVALID_ARGUMENT', pattern);
      });
    }

    it('adding a LoRA made for another base model: ERR_ADAPTER_INCOMPATIBLE, and the set is unchanged', async function () {
      await rejectsWith(pipeline.adapters.add('big', { path: fx.lora('wrong-base') }), 'ERR_ADAPTER_INCOMPATIBLE');
      assert.deepEqual(pipeline.adapters.names, ['a', 'b']);
    });

    it("a failure inside GenAI: ERR_GENAI keeping GenAI's message", async function () {
      // (A scheduler GenAI refuses for the model was the example; multilora now checks that itself: test/fuzz.spec.js.)
      await rejectsWith(
        Pipeline.load(fx.model, { device: 'NOPE' }),
        'ERR_GENAI',
        /Text2ImagePipeline\(.*\) failed: [\s\S]*"NOPE"/,
      );
    });

    it('adapters given to a pipeline loaded without any: ERR_INVALID_ARGUMENT', async function () {
      const plain = await Pipeline.load(fx.model);
      try {
        await rejectsWith(plain.generate('x', { adapters: 'a' }), 'ERR_INVALID_ARGUMENT', /has no adapters/);
      } finally {
        await plain.dispose();
      }
    });

    it('calls after dispose: ERR_DISPOSED; dispose is idempotent and waits for queued calls', async function () {
      const own = await Pipeline.load(fx.model);
      const running = own.generate('x', { seed: 1, steps: 2 });
      const disposed = own.dispose();
      assert.equal(own.disposed, true);
      await rejectsWith(own.generate('x'), 'ERR_DISPOSED');
      const image = await running;
      assert.equal(image.data.length, 64 * 64 * 3);
      await disposed;
      await own.dispose();
      await assert.rejects(own.generate('x'), DisposedError);
    });
  });
});
