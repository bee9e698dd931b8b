// The adapter lifecycle: catalogues, sources, add/remove with background rebuilds, templates, scales, modes.
'use strict';
const assert = require('node:assert/strict');
const { copyFileSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { Pipeline } = require('..');
const { writeSafetensors, parseSafetensors } = require('../dist/internal').safetensors;
const { families, meanAbsDiff, useTempDir } = require('./helpers/fixtures');

const fx = families.sd15;
const CALL = { seed: 21, steps: 2 };

describe('adapters', function () {
  const tmpDir = useTempDir('multilora-adapters-');

  describe('a catalogue file', function () {
    it('registers its adapters, with paths relative to the file, alphas, templates and negative prompts', async function () {
      mkdirSync(path.join(tmpDir(), 'cat', 'loras'), { recursive: true });
      copyFileSync(fx.lora('style-a'), path.join(tmpDir(), 'cat', 'loras', 'a.safetensors'));
      copyFileSync(fx.lora('style-b'), path.join(tmpDir(), 'cat', 'loras', 'b.safetensors'));
      const file = path.join(tmpDir(), 'cat', 'catalog.json');
      writeFileSync(
        file,
        JSON.stringify({
          'X-ray': { path: 'loras/a.safetensors', alpha: 0.8, template: 'xray <subject>' },
          'Ukiyo-e Style': {
            path: 'loras/b.safetensors',
            alpha: 0.8,
            template: 'an illustration of <subject> in Ukiyo-e Art style',
            negativePrompt: 'realistic, portrait, 3d',
          },
        }),
      );
      const pipeline = await Pipeline.load(fx.model, {
        catalog: file,
        adapters: { extra: { path: fx.lora('style-a') } },
      });
      try {
        const list = pipeline.adapters.list();
        assert.deepEqual(
          list.map((a) => [a.name, a.alpha]),
          [
            ['X-ray', 0.8],
            ['Ukiyo-e Style', 0.8],
            ['extra', 1],
          ],
        );
        assert.equal(list[0].path, path.join(tmpDir(), 'cat', 'loras', 'a.safetensors'));
        assert.equal(list[1].negativePrompt, 'realistic, portrait, 3d');
        assert.deepEqual(
          {
            format: list[0].info.format,
            ranks: list[0].info.ranks,
            targets: list[0].info.targets,
            unmatched: list[0].info.unmatched,
          },
          { format: 'kohya', ranks: [4], targets: ['unet', 'text_encoder'], unmatched: 0 },
        );
        assert.equal(list[0].info.matched, 120);

        // applyTemplate: the tutorial's way, templates around the subject and the negatives added.
        const templated = await pipeline.generate('a cat', { ...CALL, adapters: 'Ukiyo-e Style', applyTemplate: true });
        const byHand = await pipeline.generate('an illustration of a cat in Ukiyo-e Art style', {
          ...CALL,
          adapters: { 'Ukiyo-e Style': 0.8 },
          negativePrompt: 'realistic, portrait, 3d',
        });
        assert.ok(templated.data.equals(byHand.data));
        const plain = await pipeline.generate('a cat', { ...CALL, adapters: 'Ukiyo-e Style' });
        assert.ok(!plain.data.equals(templated.data));
      } finally {
        await pipeline.dispose();
      }
    });

    it('a missing or broken catalogue, or a name given twice: ERR_INVALID_ARGUMENT', async function () {
      await assert.rejects(Pipeline.load(fx.model, { catalog: path.join(tmpDir(), 'none.json') }), {
        code: 'ERR_INVALID_ARGUMENT',
        message: /Cannot read the catalogue/,
      });
      const broken = path.join(tmpDir(), 'broken.json');
      writeFileSync(broken, '{"a": ');
      await assert.rejects(Pipeline.load(fx.model, { catalog: broken }), {
        code: 'ERR_INVALID_ARGUMENT',
        message: /not valid JSON/,
      });
      const twice = path.join(tmpDir(), 'twice.json');
      writeFileSync(twice, JSON.stringify({ a: { path: fx.lora('style-a') } }));
      await assert.rejects(Pipeline.load(fx.model, { catalog: twice, adapters: { a: { path: fx.lora('style-b') } } }), {
        code: 'ERR_INVALID_ARGUMENT',
        message: /in both the catalogue and options\.adapters/,
      });
      const badTemplate = path.join(tmpDir(), 'template.json');
      writeFileSync(badTemplate, JSON.stringify({ a: { path: fx.lora('style-a'), template: 'no subject here' } }));
      await assert.rejects(Pipeline.load(fx.model, { catalog: badTemplate }), {
        code: 'ERR_INVALID_ARGUMENT',
        message: /<subject>/,
      });
    });
  });

  describe('sources and scales', function () {
    let pipeline;
    before(async function () {
      pipeline = await Pipeline.load(fx.model, {
        adapters: {
          file: { path: fx.lora('style-a') },
          bytes: { data: readFileSync(fx.lora('style-a')) },
          peft: { path: fx.lora('style-a-peft') },
          trained: { path: fx.lora('style-a'), scale: 'diffusers' },
        },
      });
    });
    after(async function () {
      await pipeline?.dispose();
    });

    it('data (a Buffer) gives the same image as the file', async function () {
      const file = await pipeline.generate('x', { ...CALL, adapters: 'file' });
      const bytes = await pipeline.generate('x', { ...CALL, adapters: 'bytes' });
      assert.ok(file.data.equals(bytes.data));
      assert.equal(pipeline.adapters.get('bytes').path, undefined);
    });

    it('a PEFT/diffusers file takes effect, with the bytes of the same weights under kohya names', async function () {
      const none = await pipeline.generate('x', CALL);
      const peft = await pipeline.generate('x', { ...CALL, adapters: 'peft' });
      const kohya = await pipeline.generate('x', { ...CALL, adapters: 'file' });
      assert.ok(peft.data.equals(kohya.data));
      assert.ok(meanAbsDiff(peft.data, none.data) > 1);
      const info = pipeline.adapters.get('peft').info;
      assert.equal(info.format, 'peft');
      assert.equal(info.converted, true);
    });

    it("scale 'diffusers' applies alpha/rank per layer: alpha 1 there is alpha 0.5 in GenAI's meaning", async function () {
      const diffusers = await pipeline.generate('x', { ...CALL, adapters: { trained: 1 } });
      const genai = await pipeline.generate('x', { ...CALL, adapters: { file: 0.5 } });
      assert.ok(diffusers.data.equals(genai.data));
    });
  });

  describe('add and remove', function () {
    let pipeline;
    let reference;
    before(async function () {
      pipeline = await Pipeline.load(fx.model, { adapters: { a: { path: fx.lora('style-a') } } });
      reference = (await pipeline.generate('x', { ...CALL, adapters: 'a' })).data;
    });
    after(async function () {
      await pipeline?.dispose();
    });

    it('add registers an adapter; calls made before it resolves run on the old pipeline', async function () {
      const before = pipeline.generate('x', { ...CALL, adapters: 'a' });
      const adding = pipeline.adapters.add('b', { path: fx.lora('style-b'), alpha: 0.6 });
      assert.equal(pipeline.adapters.has('b'), false);
      await assert.rejects(pipeline.generate('x', { ...CALL, adapters: 'b' }), { code: 'ERR_INVALID_ARGUMENT' });
      await adding;
      assert.ok((await before).data.equals(reference));
      assert.deepEqual(pipeline.adapters.names, ['a', 'b']);
      assert.equal(pipeline.rebuilds, 1);
      const withB = await pipeline.generate('x', { ...CALL, adapters: 'b' });
      assert.ok(!withB.data.equals(reference));
    });

    it('changing only alpha, template or negative prompt rebuilds nothing', async function () {
      const rebuilds = pipeline.rebuilds;
      await pipeline.adapters.add('b', { path: fx.lora('style-b'), alpha: 0.3, template: 'b <subject>' });
      await pipeline.adapters.add('b', { path: fx.lora('style-b'), alpha: 0.3, template: 'b <subject>' });
      assert.equal(pipeline.rebuilds, rebuilds);
      assert.equal(pipeline.adapters.get('b').alpha, 0.3);
      const byDefault = await pipeline.generate('x', { ...CALL, adapters: 'b' });
      const explicit = await pipeline.generate('x', { ...CALL, adapters: { b: 0.3 } });
      assert.ok(byDefault.data.equals(explicit.data));
    });

    it('changing its scale rebuilds it: the new meaning of alpha takes effect', async function () {
      const rebuilds = pipeline.rebuilds;
      const genai = await pipeline.generate('x', { ...CALL, adapters: 'b' });
      await pipeline.adapters.add('b', { path: fx.lora('style-b'), alpha: 0.3, scale: 'diffusers' });
      assert.equal(pipeline.rebuilds, rebuilds + 1);
      assert.equal(pipeline.adapters.get('b').info.converted, true);
      const diffusers = await pipeline.generate('x', { ...CALL, adapters: 'b' });
      assert.ok(!diffusers.data.equals(genai.data), 'the scale did not change the image');
    });

    it('remove unregisters it, and add then remove gives back the original bytes', async function () {
      await pipeline.adapters.remove('b');
      assert.deepEqual(pipeline.adapters.names, ['a']);
      const again = await pipeline.generate('x', { ...CALL, adapters: 'a' });
      assert.ok(again.data.equals(reference));
      await assert.rejects(pipeline.adapters.remove('b'), {
        code: 'ERR_INVALID_ARGUMENT',
        message: /Unknown adapter "b"/,
      });
    });

    it('a failed add leaves the pipeline as it was', async function () {
      const rebuilds = pipeline.rebuilds;
      await assert.rejects(pipeline.adapters.add('bad', { path: fx.lora('unmatched') }), {
        code: 'ERR_ADAPTER_UNMATCHED',
      });
      await assert.rejects(pipeline.adapters.add('bad', { path: path.join(tmpDir(), 'nope.safetensors') }), {
        code: 'ERR_ADAPTER_NOT_FOUND',
      });
      assert.deepEqual(pipeline.adapters.names, ['a']);
      assert.equal(pipeline.rebuilds, rebuilds);
      assert.ok((await pipeline.generate('x', { ...CALL, adapters: 'a' })).data.equals(reference));
    });

    it('concurrent changes apply in order, each on the last', async function () {
      await Promise.all([
        pipeline.adapters.add('b', { path: fx.lora('style-b') }),
        pipeline.adapters.add('c', { path: fx.lora('style-a'), alpha: 0.2 }),
        pipeline.adapters.remove('b'),
      ]);
      assert.deepEqual(pipeline.adapters.names, ['a', 'c']);
      await pipeline.adapters.remove('c');
      assert.ok((await pipeline.generate('x', { ...CALL, adapters: 'a' })).data.equals(reference));
    });
  });

  describe('calls queued around a swap', function () {
    let pipeline;
    before(async function () {
      pipeline = await Pipeline.load(fx.model, {
        adapters: {
          a: { path: fx.lora('style-a') },
          b: { path: fx.lora('style-b') },
          c: { path: fx.lora('style-a'), alpha: 0.3 },
        },
      });
    });
    after(async function () {
      await pipeline?.dispose();
    });

    it('a call that starts after a swap finds its adapters by name in the new set; one removed meanwhile is refused', async function () {
      // A long call holds the queue until the swap that removes "a" (the first) is queued behind it.
      const hold = new AbortController();
      const long = pipeline.generate('x', { seed: 1, steps: 500, signal: hold.signal });
      const removed = pipeline.adapters.remove('a');
      while (pipeline.pending < 2) await new Promise((r) => setTimeout(r, 10));
      // Checked against a, b, c; they run on b, c, where b's old index names c and c's is out of range.
      const calls = [
        pipeline.generate('x', { ...CALL, adapters: 'b' }),
        pipeline.generate('x', { ...CALL, adapters: 'c' }),
        pipeline.generate('x', { ...CALL, adapters: { b: 0.5, c: 1 } }),
        pipeline.generate('x', { ...CALL, adapters: 'a' }),
      ];
      hold.abort();
      await assert.rejects(long, { code: 'ERR_ABORTED' });
      await removed;
      const [b, c, blend, a] = await Promise.allSettled(calls);
      assert.equal(a.status, 'rejected');
      assert.equal(a.reason.code, 'ERR_INVALID_ARGUMENT');
      assert.match(a.reason.message, /Adapter "a" was removed .* before this call ran; registered now: "b", "c"/);
      assert.deepEqual(pipeline.adapters.names, ['b', 'c']);
      assert.ok(
        b.value.data.equals((await pipeline.generate('x', { ...CALL, adapters: 'b' })).data),
        'b ran with another adapter',
      );
      assert.ok(
        c.value.data.equals((await pipeline.generate('x', { ...CALL, adapters: 'c' })).data),
        'c ran with another adapter',
      );
      const again = await pipeline.generate('x', { ...CALL, adapters: { b: 0.5, c: 1 } });
      assert.ok(blend.value.data.equals(again.data), 'the blend ran with other adapters');
      assert.ok(!b.value.data.equals(c.value.data));
    });

    it('replacing an adapter keeps its place; an alpha-only change of one that is not last rebuilds nothing', async function () {
      const rebuilds = pipeline.rebuilds;
      const before = await pipeline.generate('x', { ...CALL, adapters: { b: 0.5, c: 0.3 } });
      await pipeline.adapters.add('b', { path: fx.lora('style-b'), alpha: 0.5 });
      assert.deepEqual(pipeline.adapters.names, ['b', 'c']);
      assert.equal(pipeline.adapters.get('b').alpha, 0.5);
      assert.equal(pipeline.rebuilds, rebuilds);
      const after = await pipeline.generate('x', { ...CALL, adapters: ['b', 'c'] });
      assert.ok(after.data.equals(before.data), 'b and c at their default alphas (0.5, 0.3) are the call made before');
      await pipeline.adapters.add('b', { path: fx.lora('style-a') });
      assert.deepEqual(pipeline.adapters.names, ['b', 'c']);
      assert.equal(pipeline.rebuilds, rebuilds + 1);
    });
  });

  describe('warnings', function () {
    it('tensors that patch nothing are reported, with their names', async function () {
      // style-a with the layers of the "unmatched" fixture added to it
      const a = readFileSync(fx.lora('style-a'));
      const u = readFileSync(fx.lora('unmatched'));
      const tensors = [];
      for (const buf of [a, u]) {
        const header = parseSafetensors(buf);
        for (const t of header.tensors) {
          tensors.push({
            name: t.name,
            dtype: t.dtype,
            shape: t.shape,
            data: buf.subarray(t.offset, t.offset + t.byteLength),
          });
        }
      }
      const file = path.join(tmpDir(), 'mixed.safetensors');
      writeFileSync(file, writeSafetensors(tensors));
      const warnings = [];
      const pipeline = await Pipeline.load(fx.model, {
        adapters: { mixed: { path: file } },
        onWarning: (w) => warnings.push(w),
      });
      await pipeline.dispose();
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0].code, 'ADAPTER_UNMATCHED_TENSORS');
      assert.equal(warnings[0].adapter, 'mixed');
      assert.equal(warnings[0].tensors.length, 36);
      assert.ok(warnings[0].tensors.every((n) => n.includes('nonexistent')));
    });
  });

  describe("mode 'fuse'", function () {
    it('fuses the adapters at their alphas: close to dynamic, and calls cannot choose', async function () {
      const adapters = { a: { path: fx.lora('style-a'), alpha: 0.5 }, b: { path: fx.lora('style-b'), alpha: 0.7 } };
      const dynamic = await Pipeline.load(fx.model, { adapters });
      const fused = await Pipeline.load(fx.model, { adapters, mode: 'fuse' });
      try {
        const d = await dynamic.generate('x', { ...CALL, adapters: ['a', 'b'] });
        const none = await dynamic.generate('x', CALL);
        const f = await fused.generate('x', CALL);
        assert.ok(meanAbsDiff(f.data, d.data) < 2, `fused is ${meanAbsDiff(f.data, d.data)} from dynamic`);
        assert.ok(meanAbsDiff(f.data, none.data) > 2);
        await assert.rejects(fused.generate('x', { ...CALL, adapters: 'a' }), {
          code: 'ERR_INVALID_ARGUMENT',
          message: /mode "fuse"/,
        });
        await fused.adapters.add('a', { path: fx.lora('style-a'), alpha: 1 });
        assert.equal(fused.rebuilds, 1, 'an alpha change rebuilds a fused pipeline');
        assert.ok(!(await fused.generate('x', CALL)).data.equals(f.data));
      } finally {
        await Promise.all([dynamic.dispose(), fused.dispose()]);
      }
    });
  });
});
