// Fuzzing the public API (issue 7 §2): 10,000 random option objects through generate / imageToImage / inpaint and
// 1,000 mutated safetensors files through the inspection API, pipeline.adapters.add and Pipeline.load, in a child
// process (scripts/fuzz.mjs), with 0 crashes and every failure a MultiloraError with a known code. Then one
// regression case, minimized, for each bug the fuzzer found.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { existsSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { Pipeline, MultiloraError } = require('..');
const { ROOT, families, useTempDir, underAsan, rejectsWith } = require('./helpers/fixtures');
const fuzz = require('./helpers/fuzz');

const SCRIPT = path.join(ROOT, 'scripts', 'fuzz.mjs');
/** Fixed, so that CI is repeatable; MULTILORA_FUZZ_SEED explores others. */
const SEED = process.env.MULTILORA_FUZZ_SEED === undefined ? 20261126 : Number(process.env.MULTILORA_FUZZ_SEED);

/** What a rejected option object may be: a bad argument, an aborted signal, a throwing onProgress. */
const OPTION_CODES = ['ERR_INVALID_ARGUMENT', 'ERR_ABORTED', 'ERR_CALLBACK'];
/** What a rejected file may be. */
const FILE_CODES = [
  'ERR_ADAPTER_INVALID',
  'ERR_ADAPTER_FORMAT',
  'ERR_ADAPTER_UNMATCHED',
  'ERR_ADAPTER_INCOMPATIBLE',
  'ERR_ADAPTER_NOT_FOUND',
];

function runScript(args, env = {}) {
  return spawnSync(process.execPath, [SCRIPT, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
}

function lastJson(stdout) {
  const line = stdout.trim().split('\n').pop();
  return JSON.parse(line);
}

describe('fuzz', function () {
  // Under ASan (npm run sanitize) everything runs several times slower.
  this.timeout(underAsan ? 4 * 3600_000 : 600_000);

  describe('the generators (model-free)', function () {
    it('make the same case from the same seed and index, whatever ran before', function () {
      const a = [5, 17, 900].map((i) => fuzz.optionsCase(SEED, i).description);
      fuzz.optionsCase(SEED, 3);
      const b = [5, 17, 900].map((i) => fuzz.optionsCase(SEED, i).description);
      assert.deepEqual(a, b);
      const f1 = fuzz.fileCase(SEED, 42);
      fuzz.fileCase(SEED, 41);
      const f2 = fuzz.fileCase(SEED, 42);
      assert.equal(f1.description, f2.description);
      assert.ok(f1.bytes.equals(f2.bytes));
      assert.notEqual(
        fuzz.optionsCase(SEED, 5).description === fuzz.optionsCase(SEED + 1, 5).description &&
          fuzz.fileCase(SEED, 5).bytes.equals(fuzz.fileCase(SEED + 1, 5).bytes),
        true,
        'another seed, other cases',
      );
    });

    it('mutate most calls and files, in many ways', function () {
      const kinds = new Set();
      let valid = 0;
      for (let i = 0; i < 2000; i += 1) {
        const d = fuzz.optionsCase(SEED, i).description;
        if (d === 'valid') valid += 1;
        kinds.add(d.split(/ = | is | \(|: /)[0]);
      }
      assert.ok(valid < 40, `${valid} calls of 2000 unmutated`);
      assert.ok(kinds.size > 40, `only ${kinds.size} kinds of mutation`);
      const sources = new Set();
      for (let i = 0; i < 300; i += 1) {
        const c = fuzz.fileCase(SEED, i);
        sources.add(c.source);
        const original = readFileSync(families[c.source.split('/')[0]].lora(c.source.split('/')[1]));
        assert.ok(
          !c.bytes.equals(original) || /as it is/.test(c.description),
          `case ${i} left the file as it was: ${c.description}`,
        );
      }
      assert.equal(sources.size, 7);
    });
  });

  describe('scripts/fuzz.mjs', function () {
    const out = useTempDir('multilora-fuzz-');

    it(`the full run (seed ${SEED}): 10,000 option objects and 1,000 files, 0 crashes, every failure typed`, function () {
      const dir = path.join(ROOT, 'test', 'output', 'fuzz');
      const r = runScript(['--seed', String(SEED), '--json', '--out', dir]);
      const report = lastJson(r.stdout);
      process.stdout.write(
        r.stderr
          .split('\n')
          .filter((l) => /^fuzz: (options|files):/.test(l))
          .map((l) => `      ${l}\n`)
          .join(''),
      );
      assert.equal(report.crash, undefined, `the fuzzer's child crashed: ${JSON.stringify(report.crash, null, 2)}`);
      const { options, files } = report;
      const failures = [...options.failures, ...files.failures];
      assert.deepEqual(failures, [], `see ${dir}/failures-${SEED}.json`);
      assert.equal(r.status, 0, r.stderr.slice(-3000));

      assert.equal(options.cases, 10_000);
      assert.ok(options.generated >= 150, `only ${options.generated} option objects generated an image`);
      assert.ok(options.rejected >= 8000, `only ${options.rejected} option objects were rejected`);
      assert.equal(options.generated + options.rejected, options.cases);
      for (const code of Object.keys(options.codes))
        assert.ok(OPTION_CODES.includes(code), `options rejected with ${code}`);
      assert.ok(options.codes.ERR_ABORTED > 0 && options.codes.ERR_CALLBACK > 0, JSON.stringify(options.codes));
      assert.equal(options.referenceSame, true);

      assert.equal(files.cases, 1000);
      assert.ok(files.accepted >= 5, `only ${files.accepted} mutated files loaded`);
      assert.ok(files.rejected >= 800, `only ${files.rejected} mutated files were rejected`);
      assert.equal(files.accepted + files.rejected, files.cases);
      for (const code of Object.keys(files.codes)) {
        const bare = code.replace(/^generate:/, '');
        assert.ok(
          FILE_CODES.includes(bare) || (code.startsWith('generate:') && OPTION_CODES.includes(bare)),
          `files: ${code}`,
        );
      }
      for (const code of Object.keys(files.inspected.codes))
        assert.ok(FILE_CODES.includes(code), `inspection: ${code}`);
      assert.ok(
        files.byMethod['adapters.add'] > 300 && files.byMethod['Pipeline.load'] > 300,
        JSON.stringify(files.byMethod),
      );
      assert.equal(files.referenceSame, true);
    });

    it('a crash in the child names the seed and the case, and saves its input', function () {
      const r = runScript(['--seed', '7', '--options', '0', '--files', '5', '--json', '--out', out()], {
        MULTILORA_FUZZ_CRASH_AT: 'files:3',
      });
      assert.equal(r.status, 1);
      const report = lastJson(r.stdout);
      assert.equal(report.crash.length, 1);
      const [crash] = report.crash;
      assert.match(crash.what, /SIGKILL/);
      assert.equal(crash.case.phase, 'files');
      assert.equal(crash.case.index, 3);
      assert.equal(crash.replay, 'node scripts/fuzz.mjs --seed 7 --only files:3');
      assert.ok(readFileSync(crash.saved).equals(fuzz.fileCase(7, 3).bytes), 'the saved input is the case');
      assert.ok(existsSync(path.join(out(), 'crash-7.json')));
      assert.match(r.stderr, /crash[\s\S]*--seed 7 --only files:3/);
    });

    it('replays one case with --only, and refuses bad usage', function () {
      const r = runScript(['--seed', String(SEED), '--only', 'files:12', '--json', '--out', out()]);
      assert.equal(r.status, 0, r.stderr);
      const report = lastJson(r.stdout);
      assert.equal(report.files.cases, 1);
      assert.equal(report.options, undefined);
      for (const args of [['--seed', 'x'], ['--options', '-1'], ['--only', 'nothing'], ['--bogus']]) {
        assert.equal(runScript(args).status, 2, args.join(' '));
      }
    });
  });

  describe('regressions: what the fuzzer found, minimized', function () {
    let pipeline;
    let reference;
    const cheap = { seed: 3, width: 16, height: 16, steps: 1, guidanceScale: 1, scheduler: 'euler' };
    const imageCheap = { seed: 3, guidanceScale: 1 };

    before(async function () {
      pipeline = await Pipeline.load(families.sd15.model, { adapters: fuzz.OPTION_ADAPTERS, onWarning: () => {} });
      reference = await pipeline.generate('a reference', fuzz.REFERENCE_CALL);
    });

    after(async function () {
      const again = await pipeline.generate('a reference', fuzz.REFERENCE_CALL);
      assert.ok(again.data.equals(reference.data), 'the pipeline still makes its reference bytes');
      await pipeline?.dispose();
    });

    it('an option whose getter throws: ERR_INVALID_ARGUMENT with the thrown error as cause (was the raw error)', async function () {
      const boom = new Error('boom');
      const options = Object.defineProperty({ ...cheap }, 'width', {
        enumerable: true,
        get: () => {
          throw boom;
        },
      });
      await assert.rejects(pipeline.generate('a cat', options), (err) => {
        assert.ok(err instanceof MultiloraError);
        assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
        assert.equal(err.cause, boom);
        assert.match(err.message, /options threw: boom/);
        return true;
      });
    });

    it('options that are a Proxy whose ownKeys trap throws: ERR_INVALID_ARGUMENT (was the raw error)', async function () {
      const options = new Proxy(
        { ...cheap },
        {
          ownKeys: () => {
            throw new Error('no keys');
          },
        },
      );
      await rejectsWith(pipeline.generate('a cat', options), 'ERR_INVALID_ARGUMENT', /no keys/);
    });

    it('a revoked Proxy as the prompt: ERR_INVALID_ARGUMENT (was a TypeError from the error message itself)', async function () {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      await rejectsWith(
        pipeline.generate(proxy, cheap),
        'ERR_INVALID_ARGUMENT',
        /for prompt but received an object that cannot be inspected/,
      );
      await rejectsWith(pipeline.generate('a cat', { ...cheap, adapters: proxy }), 'ERR_INVALID_ARGUMENT');
    });

    it('an adapters map that is a Proxy whose getPrototypeOf trap throws: ERR_INVALID_ARGUMENT', async function () {
      const adapters = new Proxy(
        { a: 1 },
        {
          getPrototypeOf: () => {
            throw new Error('no prototype');
          },
        },
      );
      await rejectsWith(
        pipeline.generate('a cat', { ...cheap, adapters }),
        'ERR_INVALID_ARGUMENT',
        /options\.adapters/,
      );
    });

    it('a sparse adapters list ([, "a"]): ERR_INVALID_ARGUMENT (the hole reached the addon: ERR_GENAI)', async function () {
      await rejectsWith(
        // eslint-disable-next-line no-sparse-arrays -- the hole is the case
        pipeline.generate('a cat', { ...cheap, adapters: [, 'a'] }),
        'ERR_INVALID_ARGUMENT',
        /options\.adapters\[0\]/,
      );
      await rejectsWith(pipeline.generate('a cat', { ...cheap, adapters: new Array(2) }), 'ERR_INVALID_ARGUMENT');
    });

    it('a signal getter that answers undefined, then something else: read once, the call generates (was a TypeError)', async function () {
      let reads = 0;
      const options = Object.defineProperty({ ...cheap }, 'signal', {
        enumerable: true,
        get: () => (reads++ === 0 ? undefined : 'not a signal'),
      });
      const image = await pipeline.generate('a cat', options);
      assert.equal(image.data.length, 16 * 16 * 3);
      assert.equal(reads, 1);
    });

    it('prompt2, prompt3 and their negatives on SD 1.5: ERR_INVALID_ARGUMENT (was ERR_GENAI)', async function () {
      for (const key of ['prompt2', 'prompt3', 'negativePrompt2', 'negativePrompt3']) {
        await rejectsWith(
          pipeline.generate('a cat', { ...cheap, guidanceScale: 7.5, [key]: 'x' }),
          'ERR_INVALID_ARGUMENT',
          /one text encoder/,
        );
      }
    });

    it('a negative prompt without guidance (scale <= 1): ERR_INVALID_ARGUMENT (was ERR_GENAI)', async function () {
      await rejectsWith(
        pipeline.generate('a cat', { ...cheap, negativePrompt: '' }),
        'ERR_INVALID_ARGUMENT',
        /guidance scale above 1/,
      );
    });

    it("applyTemplate without guidance: the adapter's negative prompt is left out, as it has no effect (was ERR_GENAI)", async function () {
      const templated = await pipeline.generate('a cat', { ...cheap, adapters: { a: 0.5 }, applyTemplate: true });
      const byHand = await pipeline.generate('xray a cat', { ...cheap, adapters: { a: 0.5 } });
      assert.ok(templated.data.equals(byHand.data));
    });

    it('scheduler "ddim" on a model whose scheduler config leaves clip_sample on: ERR_INVALID_ARGUMENT (was ERR_GENAI)', async function () {
      await rejectsWith(
        pipeline.generate('a cat', { ...cheap, scheduler: 'ddim' }),
        'ERR_INVALID_ARGUMENT',
        /clip_sample/,
      );
    });

    it('scheduler "flow-match-euler" on an SD 1.5 UNet: ERR_INVALID_ARGUMENT (was ERR_GENAI "doesn\'t support int timesteps")', async function () {
      await rejectsWith(
        pipeline.generate('a cat', { ...cheap, scheduler: 'flow-match-euler' }),
        'ERR_INVALID_ARGUMENT',
        /flow-matching/,
      );
    });

    it('an adapters list of length 2^32-1 or a Proxy claiming 1e9: ERR_INVALID_ARGUMENT at once (was walked for minutes)', async function () {
      const long = [];
      long.length = 2 ** 32 - 1;
      const started = Date.now();
      await rejectsWith(
        pipeline.generate('a cat', { ...cheap, adapters: long }),
        'ERR_INVALID_ARGUMENT',
        /at most 2 adapter names/,
      );
      const fake = new Proxy(['a'], { get: (t, k) => (k === 'length' ? 1e9 : t[k]) });
      await rejectsWith(
        pipeline.generate('a cat', { ...cheap, adapters: fake }),
        'ERR_INVALID_ARGUMENT',
        /at most 2 adapter names/,
      );
      assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
    });

    it('image-to-image where int(steps x strength) is 0: ERR_INVALID_ARGUMENT (was ERR_GENAI)', async function () {
      const image = { data: Buffer.alloc(16 * 16 * 3, 128), width: 16, height: 16 };
      await rejectsWith(
        pipeline.imageToImage('a cat', image, { ...imageCheap, steps: 1, strength: 0.5 }),
        'ERR_INVALID_ARGUMENT',
        /steps x strength/,
      );
      await rejectsWith(
        pipeline.imageToImage('a cat', image, { ...imageCheap, steps: 1 }),
        'ERR_INVALID_ARGUMENT',
        /1 x 0\.8/,
      ); // the default strength
      const out = await pipeline.imageToImage('a cat', image, { ...imageCheap, steps: 2, strength: 0.5 });
      assert.deepEqual([out.width, out.height], [16, 16]);
    });

    it("inpaint: an image of its own size back (was the model's 64x64), and numImages 2 is ERR_INVALID_ARGUMENT (was ERR_GENAI)", async function () {
      const image = { data: Buffer.alloc(16 * 16 * 3, 128), width: 16, height: 16 };
      const mask = { data: Buffer.alloc(16 * 16, 255), width: 16, height: 16, channels: 1 };
      const out = await pipeline.inpaint('a cat', image, mask, { ...imageCheap, steps: 2, strength: 1 });
      assert.deepEqual([out.width, out.height, out.data.length], [16, 16, 16 * 16 * 3]);
      await rejectsWith(
        pipeline.inpaint('a cat', image, mask, { ...imageCheap, steps: 2, numImages: 2 }),
        'ERR_INVALID_ARGUMENT',
        /numImages 1 for inpaint/,
      );
    });

    it('a PEFT file whose alpha_pattern is "(.*)*x": ERR_ADAPTER_INVALID at once (the regex took 388 s on one module name)', async function () {
      const st = require('../dist/internal').safetensors;
      const bytes = readFileSync(families.sd15.lora('style-a-peft'));
      const header = st.parseSafetensors(bytes);
      const tensors = header.tensors.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        data: bytes.subarray(t.offset, t.offset + t.byteLength),
      }));
      const config = { ...JSON.parse(header.metadata.lora_adapter_metadata), 'unet.alpha_pattern': { '(.*)*x': 3 } };
      const data = st.writeSafetensors(tensors, { ...header.metadata, lora_adapter_metadata: JSON.stringify(config) });
      const started = Date.now();
      await rejectsWith(
        pipeline.adapters.add('redos', { data, scale: 'diffusers' }),
        'ERR_ADAPTER_INVALID',
        /does not run: it repeats a group/,
      );
      assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
      assert.equal(pipeline.adapters.has('redos'), false);
      // A plain module name, and a simple expression, still work as PEFT means them.
      const plain = { ...config, 'unet.alpha_pattern': { 'attn1.to_q': 8, '.*attn2\\.to_k': 1 } };
      const analysis = await require('../dist/internal').loraFormat.inspectLora(
        st.writeSafetensors(tensors, { ...header.metadata, lora_adapter_metadata: JSON.stringify(plain) }),
      );
      const alphaOf = (suffix) => analysis.layers.find((l) => l.part === 'unet' && l.module.endsWith(suffix)).alpha;
      assert.deepEqual([alphaOf('attn1.to_q'), alphaOf('attn2.to_k'), alphaOf('attn1.to_k')], [8, 1, 2]);
    });
  });
});
