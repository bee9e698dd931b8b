// multilora convert: the tiny diffusers fixtures through optimum-intel (the converter's own venv, made by the first
// conversion), LoRAs fused before the export, and every error it promises, each leaving nothing behind.
'use strict';
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  copyFileSync,
  rmSync,
} = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const { convert, Pipeline } = require('..');
const {
  FIXTURES,
  ROOT,
  families,
  fullDifferences,
  meanAbsDiff,
  useTempDir,
  freePort,
  rejectsWith,
} = require('./helpers/fixtures');

const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const diffusers = (family) => path.join(FIXTURES, 'diffusers', `${family}-tiny`);
const CALL = { seed: 42, width: 64, height: 64, steps: 4 };

/** The folder's entries that a conversion may have left: scratch folders, or the output. */
function leftovers(dir) {
  return readdirSync(dir).filter((n) => n.includes('multilora-convert'));
}

async function image(modelDir, options = {}, load = {}) {
  const pipeline = await Pipeline.load(modelDir, load);
  try {
    return await pipeline.generate('a photo of a cat', { ...CALL, ...options });
  } finally {
    await pipeline.dispose();
  }
}

function converterRunning() {
  try {
    return execFileSync('pgrep', ['-f', 'python/convert.py'], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false; // pgrep exits 1 when nothing matches
  }
}

async function noConverterLeft() {
  for (let i = 0; i < 50 && converterRunning(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(converterRunning(), false, 'a converter process is still running');
}

function runCli(args, { onStderr } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

async function withEnv(vars, body) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await body();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('convert', function () {
  // The first conversion sets up the converter's venv (about 2 minutes from this machine's disk); each tiny
  // conversion takes 20-40 s on 2 cores.
  this.timeout(20 * 60 * 1000);
  const tmp = useTempDir('multilora-convert-');

  describe('the tiny diffusers fixtures', function () {
    it("SD 1.5-like at fp32: progress through every phase, and the IR gives the committed model's very bytes", async function () {
      const out = path.join(tmp(), 'sd15');
      const events = [];
      const result = await convert(diffusers('sd15'), out, { weightFormat: 'fp32', onProgress: (e) => events.push(e) });
      assert.equal(result.outDir, out);
      assert.equal(result.pipelineClass, 'StableDiffusionPipeline');
      assert.equal(result.family, 'sd');
      assert.equal(result.weightFormat, 'fp32');
      assert.deepEqual(result.fused, []);
      assert.ok(result.bytes > 4e6 && result.bytes < 12e6, `${result.bytes} bytes`);
      assert.deepEqual(result.verified && [result.verified.width, result.verified.steps], [16, 2]);
      for (const file of [
        'model_index.json',
        'unet/openvino_model.xml',
        'tokenizer/openvino_tokenizer.xml',
        'vae_decoder/openvino_model.bin',
      ]) {
        assert.ok(existsSync(path.join(out, file)), file);
      }
      const phases = [...new Set(events.map((e) => e.phase))];
      assert.deepEqual(
        phases.filter((p) => p !== 'setup'),
        ['check', 'export', 'verify', 'done'],
      );
      const fractions = events.filter((e) => e.phase === 'export' && e.fraction !== undefined).map((e) => e.fraction);
      assert.deepEqual(
        fractions,
        [...fractions].sort((a, b) => a - b),
        'the export progress only grows',
      );
      assert.equal(fractions.at(-1), 1);
      assert.ok(events.every((e, i) => i === 0 || e.elapsedMs >= events[i - 1].elapsedMs));
      assert.deepEqual(leftovers(tmp()), []);

      const converted = await image(out);
      const committed = await image(families.sd15.model);
      assert.ok(
        converted.data.equals(committed.data),
        `mean difference ${meanAbsDiff(converted.data, committed.data)}`,
      );
    });

    it("SDXL-like at fp32 from the command line (--json): the committed model's very bytes", async function () {
      const out = path.join(tmp(), 'sdxl');
      const r = await runCli(['convert', diffusers('sdxl'), out, '--weight-format', 'fp32', '--json']);
      assert.equal(r.status, 0, r.stderr);
      const result = JSON.parse(r.stdout);
      assert.equal(result.pipelineClass, 'StableDiffusionXLPipeline');
      assert.equal(result.family, 'sdxl');
      assert.match(r.stderr, /^\[check\] /m);
      assert.match(r.stderr, /^\[export\] .*\n(.*\n)*\s+7 of 7 parts written \(100%\)$/m);
      const converted = await image(out);
      const committed = await image(families.sdxl.model);
      assert.ok(
        converted.data.equals(committed.data),
        `mean difference ${meanAbsDiff(converted.data, committed.data)}`,
      );
    });

    it('fp16 and int8 (the default is fp16): smaller weights that load and generate; a new default scheduler', async function () {
      const fp16 = path.join(tmp(), 'sd15-fp16');
      const int8 = path.join(tmp(), 'sdxl-int8');
      const r16 = await convert(diffusers('sd15'), fp16);
      const r8 = await convert(diffusers('sdxl'), int8, { weightFormat: 'int8', scheduler: 'lcm' });
      assert.equal(r16.weightFormat, 'fp16');
      assert.equal(r8.weightFormat, 'int8');
      const unet = (dir) => statSync(path.join(dir, 'unet', 'openvino_model.bin')).size;
      const fp32Unet = { sd15: unet(families.sd15.model), sdxl: unet(families.sdxl.model) };
      assert.ok(unet(fp16) < 0.6 * fp32Unet.sd15, `fp16 UNet ${unet(fp16)} vs fp32 ${fp32Unet.sd15}`);
      assert.ok(unet(int8) < 0.4 * fp32Unet.sdxl, `int8 UNet ${unet(int8)} vs fp32 ${fp32Unet.sdxl}`);
      // fp16 keeps every value of these fixtures (they were rounded to fp16 before the committed export)
      const a = await image(fp16);
      const b = await image(families.sd15.model);
      assert.ok(meanAbsDiff(a.data, b.data) < 1, `fp16 vs fp32: ${meanAbsDiff(a.data, b.data)}`);
      const c = await image(int8);
      assert.equal(c.width, 64);
      assert.ok(new Set(c.data).size > 16, 'the int8 model gives a real (not uniform) image');
      // its default scheduler is now LCM: the same bytes as asking for it, others than Euler's (its old default)
      const config = JSON.parse(readFileSync(path.join(int8, 'scheduler', 'scheduler_config.json'), 'utf8'));
      assert.equal(config._class_name, 'LCMScheduler');
      assert.ok(c.data.equals((await image(int8, { scheduler: 'lcm' })).data));
      assert.ok(!c.data.equals((await image(int8, { scheduler: 'euler' })).data));
    });
  });

  describe('a tiny VAE decoder (tinyVae)', function () {
    /**
     * A random AutoencoderTiny (test/helpers/make_tiny_vae.py) with `channels` latent channels and `blocks` blocks (2:
     * ×2, as the fixtures' VAEs), in the temp folder.
     */
    async function tinyVae(channels = 4, blocks = 2) {
      const { ensureConverter } = require('../dist/convert/env');
      const env = await ensureConverter({});
      const dir = path.join(tmp(), `tiny-vae-${channels}-${blocks}`);
      const script = path.join(__dirname, 'helpers', 'make_tiny_vae.py');
      execFileSync(env.python, [script, dir, String(channels), String(blocks)]);
      return dir;
    }

    it('replaces the VAE decoder: the draft model generates at the size asked, its own image; the encoder stays', async function () {
      const vae = await tinyVae();
      const out = path.join(tmp(), 'sdxl-draft');
      // with a LoRA fused too: the export of the tiny decoder after a fuse once hung (a fork of the converter)
      const fuseLora = [{ path: families.sdxl.lora('style-a'), alpha: 0.5 }];
      const r = await convert(diffusers('sdxl'), out, { tinyVae: vae, fuseLora });
      assert.equal(r.verified.width > 0, true);
      const config = JSON.parse(readFileSync(path.join(out, 'vae_decoder', 'config.json'), 'utf8'));
      assert.equal(config._class_name, 'AutoencoderTiny');
      const decoder = (dir) => statSync(path.join(dir, 'vae_decoder', 'openvino_model.bin')).size;
      assert.ok(decoder(out) < decoder(families.sdxl.model) / 2, `${decoder(out)} bytes of tiny decoder`);
      // the encoder is the full VAE's: the same files as a conversion without the tiny VAE
      const full = path.join(tmp(), 'sdxl-full');
      await convert(diffusers('sdxl'), full);
      const encoder = (dir) => readFileSync(path.join(dir, 'vae_encoder', 'openvino_model.bin'));
      assert.ok(encoder(out).equals(encoder(full)), 'the VAE encoder changed');
      const draft = await image(out, { width: 128, height: 96 });
      assert.deepEqual([draft.width, draft.height], [128, 96]);
      assert.ok(new Set(draft.data).size > 16, 'the draft image is not uniform');
      const reference = await image(full, { width: 128, height: 96 });
      assert.ok(meanAbsDiff(draft.data, reference.data) > 5, 'the tiny decoder gave the full VAE image');
      assert.ok(draft.data.equals((await image(out, { width: 128, height: 96 })).data), 'not reproducible');
      // imageToImage goes through the full encoder, then the tiny decoder
      const pipeline = await Pipeline.load(out);
      try {
        const edited = await pipeline.imageToImage('a cat', reference, { seed: 3, steps: 4, strength: 0.5 });
        assert.deepEqual([edited.width, edited.height], [128, 96]);
      } finally {
        await pipeline.dispose();
      }
    });

    it('a folder that is not an AutoencoderTiny, or one of other latents: ERR_CONVERT_SOURCE', async function () {
      const out = path.join(tmp(), 'never');
      const notTiny = path.join(diffusers('sdxl'), 'vae');
      const t = Date.now();
      await rejectsWith(
        convert(diffusers('sdxl'), out, { tinyVae: notTiny }),
        'ERR_CONVERT_SOURCE',
        /not an AutoencoderTiny/,
      );
      await rejectsWith(
        convert(diffusers('sdxl'), out, { tinyVae: path.join(tmp(), 'no-such') }),
        'ERR_CONVERT_SOURCE',
        /not a diffusers AutoencoderTiny folder/,
      );
      assert.ok(Date.now() - t < 2000, `took ${Date.now() - t} ms: checked after something slow`);
      await rejectsWith(
        convert(diffusers('sdxl'), out, { tinyVae: await tinyVae(16) }),
        'ERR_CONVERT_SOURCE',
        /16 channels, the model's VAE makes 4/,
      );
      await rejectsWith(
        convert(diffusers('sdxl'), out, { tinyVae: await tinyVae(4, 4) }),
        'ERR_CONVERT_SOURCE',
        /8 times its latents, the model's VAE 2 times/,
      );
      await rejectsWith(convert(diffusers('sdxl'), out, { tinyVae: 7 }), 'ERR_INVALID_ARGUMENT', /tinyVae/);
      // the command line's --tiny-vae is the same option
      const cli = await runCli(['convert', diffusers('sdxl'), out, '--tiny-vae', notTiny]);
      assert.equal(cli.status, 1, cli.stderr);
      assert.match(cli.stderr, /ERR_CONVERT_SOURCE.*not an AutoencoderTiny/);
      assert.equal(existsSync(out), false);
      assert.deepEqual(leftovers(tmp()), []);
    });
  });

  describe('fused LoRAs', function () {
    // A fused LoRA against the same LoRA applied by GenAI at generate, at the same alphas. Measured on these
    // fixtures: 0.54-0.60 / 255 mean (max 4), while the LoRA itself moves the image by 9.5 (SD) and 18 (SDXL).
    // Part of the gap is GenAI's own: registering adapters alone moves a no-LoRA image by 0.29 (SDK.md).
    const BOUND = 1.5;

    it('SD 1.5: style-a at 0.5 and style-b at 0.7 fused are within 1.5/255 of the same blend at generate', async function () {
      const out = path.join(tmp(), 'sd15-fused');
      const fx = families.sd15;
      const result = await convert(diffusers('sd15'), out, {
        weightFormat: 'fp32',
        fuseLora: [
          { path: fx.lora('style-a'), alpha: 0.5 },
          { path: fx.lora('style-b'), alpha: 0.7 },
        ],
      });
      assert.deepEqual(
        result.fused.map((f) => [path.basename(f.path), f.alpha, f.fusedLayers, f.unmatched]),
        [
          ['style-a.safetensors', 0.5, 40, 0],
          ['style-b.safetensors', 0.7, 40, 0],
        ],
      );
      const fused = await image(out);
      const none = await image(fx.model);
      const dynamic = await image(
        fx.model,
        { adapters: { a: 0.5, b: 0.7 } },
        { adapters: { a: { path: fx.lora('style-a') }, b: { path: fx.lora('style-b') } } },
      );
      const gap = meanAbsDiff(fused.data, dynamic.data);
      const effect = meanAbsDiff(fused.data, none.data);
      assert.ok(effect > 5, `the fused LoRAs change the image: ${effect}`);
      assert.ok(gap < BOUND, `fused vs dynamic: ${gap}`);
    });

    it('SDXL: the PEFT copy of style-a fused at 0.8 is within 1.5/255 of the kohya file at 0.8 at generate', async function () {
      const out = path.join(tmp(), 'sdxl-fused');
      const fx = families.sdxl;
      const result = await convert(diffusers('sdxl'), out, {
        weightFormat: 'fp32',
        fuseLora: [{ path: fx.lora('style-a-peft'), alpha: 0.8 }],
      });
      assert.equal(result.fused[0].fusedLayers, 80);
      const fused = await image(out);
      const none = await image(fx.model);
      const dynamic = await image(
        fx.model,
        { adapters: { a: 0.8 } },
        { adapters: { a: { path: fx.lora('style-a') } } },
      );
      const gap = meanAbsDiff(fused.data, dynamic.data);
      const effect = meanAbsDiff(fused.data, none.data);
      assert.ok(effect > 5, `the fused LoRA changes the image: ${effect}`);
      assert.ok(gap < BOUND, `fused vs dynamic: ${gap}`);
    });
  });

  // python/convert.py's fuse run by a helper of test/helpers in the converter's venv, on a toy UNet or the sd15
  // fixture's weights, after multilora's rewrite: each helper computes what the fused layers should be by the
  // formulas of the format's own authors (LyCORIS's, peft's) and prints the largest errors.
  const st = require('../dist/internal').safetensors;
  const lf = require('../dist/internal').loraFormat;

  /** Runs test/helpers/<script> with python/convert.py and `args`: the JSON of its last line. */
  async function fuseHelper(script, ...args) {
    const { ensureConverter } = require('../dist/convert/env');
    const env = await ensureConverter({});
    const helper = path.join(__dirname, 'helpers', script);
    const out = execFileSync(env.python, [helper, path.join(ROOT, 'python', 'convert.py'), ...args], {
      encoding: 'utf8',
    });
    return JSON.parse(out.trim().split('\n').pop());
  }

  /** A LoRA file rewritten for the fuse as convert rewrites it (kernels kept), beside it in the temp folder. */
  async function forFuse(file, scale = 'diffusers') {
    const out = path.join(tmp(), `${path.basename(file, '.safetensors')}-${scale}-fuse.safetensors`);
    const analysis = await lf.inspectLora(file);
    writeFileSync(out, await lf.toGenaiLora(file, analysis, { family: 'sd', scale, kernels: true }));
    return out;
  }

  /** A LyCORIS file in the temp folder: [name, dtype, shape, values?] each, seeded values in [-1, 1) by default. */
  function lycorisFile(name, seed, tensors) {
    const file = path.join(tmp(), `${name}.safetensors`);
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 30 - 1;
    };
    const data = tensors.map(([tensor, dtype, shape, values]) => {
      const floats = values ?? Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, next);
      return { name: tensor, dtype, shape, data: st.fromFloat32Array(floats, dtype) };
    });
    writeFileSync(file, st.writeSafetensors(data));
    return file;
  }

  const TOY = 'lora_unet_down_blocks_0_resnets_0_';

  describe('fused LoRA layers of 3x3 convolutions (LCM-LoRA has them)', function () {
    it('python/convert.py adds alpha · up·down on the kernel: the layer plus alpha times its LoRA path', async function () {
      const { report, errors } = await fuseHelper('fuse_kernel.py', tmp());
      assert.deepEqual(report, { label: 'kernel', alpha: 0.7, layers: 3, fused_layers: 3, unmatched: 0 });
      for (const layer of ['conv1', 'conv_shortcut', 'lin']) assert.ok(errors[layer] < 1e-4, JSON.stringify(errors));
      assert.ok(errors.conv1_change > 0.1, JSON.stringify(errors));
    });
  });

  describe('fused full weight differences (LyCORIS "full")', function () {
    it('the rewrite and python/convert.py give the layer plus alpha · diff, and its bias plus alpha · diff_b', async function () {
      const file = lycorisFile('full', 7, [
        [`${TOY}conv1.diff`, 'F16', [6, 4, 3, 3]],
        [`${TOY}conv1.diff_b`, 'F16', [6]],
        [`${TOY}conv_shortcut.diff`, 'F32', [6, 4, 1, 1]],
        [`${TOY}lin.diff`, 'BF16', [6, 4]],
        [`${TOY}lin.diff_b`, 'BF16', [6]],
      ]);
      const { report, errors } = await fuseHelper('fuse_full.py', file, await forFuse(file, 'genai'));
      assert.deepEqual(report, { label: 'full', alpha: 0.7, layers: 3, fused_layers: 3, unmatched: 0 });
      for (const [layer, error] of Object.entries(errors)) {
        if (layer !== 'conv1_change') assert.ok(error < 1e-6, `${layer}: ${JSON.stringify(errors)}`);
      }
      assert.ok(errors.conv1_change > 0.1, JSON.stringify(errors));
    });
  });

  describe('fused Tucker LoCon (LyCORIS "lora_mid")', function () {
    it("the rewrite and python/convert.py give the layer plus alpha times LyCORIS's rebuild of the core", async function () {
      const file = lycorisFile('tucker', 11, [
        [`${TOY}conv1.lora_down.weight`, 'F32', [2, 4, 1, 1]],
        [`${TOY}conv1.lora_mid.weight`, 'F32', [2, 2, 3, 3]],
        [`${TOY}conv1.lora_up.weight`, 'F32', [6, 2, 1, 1]],
        [`${TOY}conv1.alpha`, 'F32', [], [1]],
      ]);
      const { report, errors } = await fuseHelper('fuse_tucker.py', file, await forFuse(file));
      assert.deepEqual(report, { label: 'tucker', alpha: 0.7, layers: 1, fused_layers: 1, unmatched: 0 });
      assert.ok(errors.conv1 < 1e-6, JSON.stringify(errors));
      assert.ok(errors.conv1_change > 0.1, JSON.stringify(errors));
    });
  });

  describe('fused OFT (LyCORIS Diag-OFT)', function () {
    it("the rewrite and python/convert.py give LyCORIS's merge: each block of rows rotated, rescaled", async function () {
      // conv1: 2 blocks of 3 with a rescale and a loose constraint; conv_shortcut: 3 blocks of 2 whose norm the
      // constraint (alpha 0.01 × 6 outputs) clips; lin: no constraint (alpha 0), in BF16
      const file = lycorisFile('oft', 31, [
        [`${TOY}conv1.oft_blocks`, 'F32', [2, 3, 3]],
        [`${TOY}conv1.rescale`, 'F32', [6, 1, 1, 1]],
        [`${TOY}conv1.alpha`, 'F32', [], [10]],
        [`${TOY}conv_shortcut.oft_blocks`, 'F16', [3, 2, 2]],
        [`${TOY}conv_shortcut.alpha`, 'F16', [], [0.01]],
        [`${TOY}lin.oft_blocks`, 'BF16', [2, 3, 3]],
        [`${TOY}lin.alpha`, 'BF16', [], [0]],
      ]);
      const { report, errors } = await fuseHelper('fuse_oft.py', file, await forFuse(file, 'genai'));
      assert.deepEqual(report, { label: 'oft', alpha: 0.7, layers: 3, fused_layers: 3, unmatched: 0 });
      for (const layer of ['conv1', 'conv_shortcut', 'lin']) {
        assert.ok(errors[layer] < 1e-5, `${layer}: ${JSON.stringify(errors)}`);
        assert.ok(errors[`${layer}_change`] > 0.01, `${layer} unchanged: ${JSON.stringify(errors)}`);
        assert.equal(errors[`${layer}.bias`], 0, `${layer}'s bias moved`);
      }
    });

    it('at generate: ERR_ADAPTER_FORMAT naming the fuse; BOFT (4-D blocks): refused everywhere', async function () {
      const oft = lycorisFile('oft-gen', 3, [[`${TOY}lin.oft_blocks`, 'F32', [2, 3, 3]]]);
      const analysis = await lf.inspectLora(oft);
      await rejectsWith(
        lf.toGenaiLora(oft, analysis, { family: 'sd' }),
        'ERR_ADAPTER_FORMAT',
        /is OFT \(LyCORIS Diag-OFT, tensor ".+\.oft_blocks"\).*--fuse-lora <file>/,
      );
      const boft = lycorisFile('boft', 3, [[`${TOY}lin.oft_blocks`, 'F32', [2, 3, 2, 2]]]);
      await rejectsWith(lf.inspectLora(boft), 'ERR_ADAPTER_FORMAT', /is BOFT .*only Diag-OFT/);
    });
  });

  describe('fused LoHa and LoKr of a 3x3 convolution (factors flattened over the kernel)', function () {
    it("the rewrite and python/convert.py give the layer plus alpha times LyCORIS's change", async function () {
      const file = lycorisFile('factors', 23, [
        [`${TOY}conv1.hada_w1_a`, 'F32', [6, 2]],
        [`${TOY}conv1.hada_w1_b`, 'F32', [2, 36]], // in 4 × a 3x3 kernel
        [`${TOY}conv1.hada_w2_a`, 'F32', [6, 2]],
        [`${TOY}conv1.hada_w2_b`, 'F32', [2, 36]],
        [`${TOY}conv1.alpha`, 'F32', [], [1]],
        [`${TOY}lin.lokr_w1`, 'F32', [2, 2]],
        [`${TOY}lin.lokr_w2_a`, 'F32', [3, 1]],
        [`${TOY}lin.lokr_w2_b`, 'F32', [1, 2]],
        [`${TOY}lin.alpha`, 'F32', [], [1]],
      ]);
      const { report, errors } = await fuseHelper('fuse_factorized.py', file, await forFuse(file));
      assert.deepEqual(report, { label: 'factors', alpha: 0.7, layers: 2, fused_layers: 2, unmatched: 0 });
      assert.ok(errors.conv1 < 1e-6 && errors.lin < 1e-6, JSON.stringify(errors));
      assert.ok(errors.conv1_change > 0.1 && errors.lin_change > 0.1, JSON.stringify(errors));
    });
  });

  describe('fused LoHa and LoKr with a Tucker core or 4-D factors', function () {
    const cases = {
      'LoHa, Tucker': [
        ['hada_t1', [2, 2, 3, 3]],
        ['hada_w1_a', [2, 6]],
        ['hada_w1_b', [2, 4]],
        ['hada_t2', [2, 2, 3, 3]],
        ['hada_w2_a', [2, 6]],
        ['hada_w2_b', [2, 4]],
      ],
      'LoKr, Tucker': [
        ['lokr_w1', [2, 2]],
        ['lokr_t2', [2, 2, 3, 3]],
        ['lokr_w2_a', [2, 3]],
        ['lokr_w2_b', [2, 2]],
      ],
      'LoKr, 4-D w2_b': [
        ['lokr_w1', [2, 2]],
        ['lokr_w2_a', [3, 2]],
        ['lokr_w2_b', [2, 2, 3, 3]],
      ],
    };
    for (const [name, factors] of Object.entries(cases)) {
      it(`${name}: the layer plus alpha times LyCORIS's change, at alpha / rank`, async function () {
        const file = lycorisFile(name.replace(/\W+/g, '-'), 31, [
          ...factors.map(([role, shape]) => [`${TOY}conv1.${role}`, 'F32', shape]),
          [`${TOY}conv1.alpha`, 'F32', [], [1]],
        ]);
        const { report, errors } = await fuseHelper('fuse_dense.py', file, await forFuse(file));
        assert.deepEqual(report, { label: 'dense', alpha: 0.7, layers: 1, fused_layers: 1, unmatched: 0 });
        assert.ok(errors.conv1 < 1e-5 * errors.conv1_change, JSON.stringify(errors));
        assert.ok(errors.conv1_change > 0.01, JSON.stringify(errors));
      });
    }
  });

  describe('fused DoRA, against peft and LyCORIS', function () {
    const fx = families.sd15;

    it("every layer: the fused weight is W + the oracle's change (relative error ≤ 1e-5), in each layout", async function () {
      for (const [name, oracle] of [
        ['dora-peft', 'dora-full'], // PEFT's names, norms per output row; oracle: peft's merge
        ['dora', 'dora-full'], // LyCORIS's dora_scale [out, 1]
        ['dora-in', 'dora-in-full'], // LyCORIS's dora_scale [1, in]; oracle: LyCORIS's formula
      ]) {
        const rewritten = await forFuse(fx.lora(name));
        const { report, worst, layers } = await fuseHelper(
          'fuse_oracle.py',
          diffusers('sd15'),
          rewritten,
          fx.lora(oracle),
        );
        assert.deepEqual([report.fused_layers, report.unmatched, layers], [40, 0, 40], name);
        assert.ok(worst <= 1e-5, `${name}: relative error ${worst}`);
      }
    });

    it('images: a fused DoRA gives the image of its fused oracle (≤ 0.5/255) and changes the image (≥ 5/255)', async function () {
      const converted = async (name, scale) => {
        const out = path.join(tmp(), `sd15-${name}`);
        await convert(diffusers('sd15'), out, { weightFormat: 'fp32', fuseLora: [{ path: fx.lora(name), scale }] });
        return (await image(out, {}, { precision: 'f32' })).data;
      };
      const none = (await image(fx.model, {}, { precision: 'f32' })).data;
      for (const [name, oracle] of [
        ['dora', 'dora-full'],
        ['dora-in', 'dora-in-full'],
      ]) {
        const fused = await converted(name, 'diffusers');
        const twin = meanAbsDiff(fused, await converted(oracle, 'genai'));
        const effect = meanAbsDiff(fused, none);
        assert.ok(twin <= 0.5, `${name}: ${twin}/255 from its oracle`);
        assert.ok(effect >= 5, `${name}: an effect of ${effect}/255`);
      }
    });

    it("at generate, or at GenAI's scale: ERR_ADAPTER_FORMAT, with the way to fuse it", async function () {
      await assert.rejects(
        Pipeline.load(fx.model, { adapters: { d: { path: fx.lora('dora') } } }),
        (e) => e.code === 'ERR_ADAPTER_FORMAT' && /is DoRA \(tensor ".+\.dora_scale"\).*--fuse-lora/.test(e.message),
      );
      await assert.rejects(
        convert(diffusers('sd15'), path.join(tmp(), 'genai-scale'), { fuseLora: [{ path: fx.lora('dora') }] }),
        (e) => e.code === 'ERR_ADAPTER_FORMAT' && /fused at the 'diffusers' scale only/.test(e.message),
      );
    });
  });

  // LCM-LoRA's layout (test/fixtures/loras/layouts/lcm: kohya names of diffusers' modules, fp16, 3x3 convolutions of
  // the resnets, downsamplers and upsamplers beside linear layers), which GenAI refuses at generate
  // (test/lora-layouts-pipeline.spec.js): the fuse takes every layer of it.
  describe("fused LCM-LoRA's layout (3x3 convolutions, fp16)", function () {
    const lcm = path.join(FIXTURES, 'loras', 'layouts', 'lcm.safetensors');

    it('python/convert.py fuses its 12 layers into the sdxl fixture as each layer plus up·down, kernels included', async function () {
      // the oracle: up·down of every layer, [out, r] · [r, in, kh, kw], as a LyCORIS "full" file
      const diffs = (await fullDifferences(lcm)).map(({ name, shape, values }) => ({
        name,
        dtype: 'F32',
        shape,
        data: st.fromFloat32Array(values, 'F32'),
      }));
      const oracle = path.join(tmp(), 'lcm-oracle.safetensors');
      writeFileSync(oracle, st.writeSafetensors(diffs));
      // the file as it is (kohya names at GenAI's scale); convert's own rewrite, with module paths for the two layers
      // whose kohya names GenAI drops, is the next test's
      const { report, worst, layers } = await fuseHelper('fuse_oracle.py', diffusers('sdxl'), lcm, oracle);
      assert.deepEqual([report.fused_layers, report.unmatched, layers], [12, 0, 12]);
      assert.ok(worst <= 1e-5, `relative error ${worst}`);
    });

    it('convert --fuse-lora fuses all 12 layers, and the image moves (≥ 5/255)', async function () {
      const out = path.join(tmp(), 'sdxl-lcm');
      const result = await convert(diffusers('sdxl'), out, { weightFormat: 'fp32', fuseLora: [{ path: lcm }] });
      assert.deepEqual([result.fused[0].fusedLayers, result.fused[0].unmatched], [12, 0]);
      const effect = meanAbsDiff((await image(out)).data, (await image(families.sdxl.model)).data);
      assert.ok(effect >= 5, `an effect of only ${effect}/255`);
    });
  });

  describe('errors: typed, and nothing left behind', function () {
    const outOf = (name) => path.join(tmp(), name);
    afterEach(async function () {
      assert.deepEqual(leftovers(tmp()), [], 'no scratch folder is left');
      await noConverterLeft();
    });

    it('a source that is neither a diffusers folder nor a Hub id: ERR_CONVERT_SOURCE, before anything slow', async function () {
      const empty = path.join(tmp(), 'empty');
      mkdirSync(empty);
      const single = path.join(tmp(), 'single');
      mkdirSync(single);
      copyFileSync(families.sd15.lora('style-a'), path.join(single, 'model.safetensors'));
      const cases = [
        ['./no/such/folder', /neither a folder here nor a Hugging Face Hub id/],
        [empty, /not a diffusers model folder \(it has no model_index\.json\)/],
        [single, /single-file checkpoint/],
        [families.sd15.lora('style-a'), /is a file/],
        [families.sd15.model, /already an OpenVINO model.*Pipeline\.load/],
      ];
      for (const [source, pattern] of cases) {
        const t = Date.now();
        await rejectsWith(convert(source, outOf('x')), 'ERR_CONVERT_SOURCE', pattern);
        assert.ok(Date.now() - t < 2000, `${source} took ${Date.now() - t} ms`);
        assert.equal(existsSync(outOf('x')), false);
      }
    });

    it('a Hub id when the Hub cannot be reached: ERR_HUB_UNREACHABLE, which says that a local folder works offline', async function () {
      const port = await freePort();
      await withEnv({ HF_ENDPOINT: `http://127.0.0.1:${port}` }, async () => {
        await rejectsWith(
          convert('someone/some-model', outOf('x')),
          'ERR_HUB_UNREACHABLE',
          /could not be reached.*ECONNREFUSED.*local diffusers model folder converts offline/,
        );
      });
      await withEnv({ HF_HUB_OFFLINE: '1' }, async () => {
        await rejectsWith(convert('someone/some-model', outOf('x')), 'ERR_HUB_UNREACHABLE', /HF_HUB_OFFLINE/);
      });
      assert.equal(existsSync(outOf('x')), false);
    });

    it('a Hub id the Hub does not know, or that is not a diffusers model: ERR_CONVERT_SOURCE', async function () {
      const server = http.createServer((req, res) => {
        if (req.url === '/api/models/someone/text-model') {
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              id: 'someone/text-model',
              siblings: [{ rfilename: 'config.json' }, { rfilename: 'model.safetensors' }],
            }),
          );
        } else {
          res.statusCode = 404;
          res.end('{"error":"Repository not found"}');
        }
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      try {
        await withEnv({ HF_ENDPOINT: `http://127.0.0.1:${server.address().port}` }, async () => {
          await rejectsWith(
            convert('someone/nothing', outOf('x')),
            'ERR_CONVERT_SOURCE',
            /neither a folder here nor a model on the Hugging Face Hub/,
          );
          await rejectsWith(convert('someone/text-model', outOf('x')), 'ERR_CONVERT_SOURCE', /not a diffusers model/);
        });
      } finally {
        server.close();
      }
    });

    it('a LoRA to fuse that does not fit the model: ERR_ADAPTER_INCOMPATIBLE, ERR_ADAPTER_UNMATCHED, ERR_ADAPTER_NOT_FOUND', async function () {
      const fx = families.sd15;
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { fuseLora: [{ path: fx.lora('wrong-base') }] }),
        'ERR_ADAPTER_INCOMPATIBLE',
        /wrong-base\.safetensors: LoRA layer lora_\w+ has A \[4, \d+\] and B \[\d+, 4\], which do not fit .*another base model/,
      );
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { fuseLora: [{ path: fx.lora('unmatched') }] }),
        'ERR_ADAPTER_UNMATCHED',
        /unmatched\.safetensors: none of its \d+ LoRA layers matches a layer of the model/,
      );
      await rejectsWith(
        convert(diffusers('sdxl'), outOf('x'), { fuseLora: [{ path: fx.lora('style-a') }] }),
        'ERR_ADAPTER_INCOMPATIBLE',
        /sd15\/style-a\.safetensors: LoRA layer/,
      );
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { fuseLora: [{ path: path.join(tmp(), 'none.safetensors') }] }),
        'ERR_ADAPTER_NOT_FOUND',
      );
      assert.equal(existsSync(outOf('x')), false);
    });

    it('an output folder that is not empty: ERR_OUTPUT_NOT_EMPTY, unless force, which replaces it only once the new model works', async function () {
      const out = outOf('taken');
      mkdirSync(out);
      writeFileSync(path.join(out, 'keep.txt'), 'mine');
      await rejectsWith(convert(diffusers('sd15'), out), 'ERR_OUTPUT_NOT_EMPTY', /exists and is not empty.*--force/);
      const file = outOf('a-file');
      writeFileSync(file, 'x');
      await rejectsWith(convert(diffusers('sd15'), file), 'ERR_OUTPUT_NOT_EMPTY', /is a file/);
      await rejectsWith(
        convert(diffusers('sd15'), ROOT, { force: true }),
        'ERR_OUTPUT_NOT_EMPTY',
        /force never replaces it/,
      );
      // a forced conversion that fails keeps the old folder whole
      await rejectsWith(
        convert(diffusers('sd15'), out, { force: true, fuseLora: [{ path: families.sd15.lora('unmatched') }] }),
        'ERR_ADAPTER_UNMATCHED',
      );
      assert.deepEqual(readdirSync(out), ['keep.txt']);
      const result = await convert(diffusers('sd15'), out, { force: true, weightFormat: 'fp32', verify: false });
      assert.equal(result.verified, undefined);
      assert.equal(existsSync(path.join(out, 'keep.txt')), false);
      assert.ok((await image(out)).data.equals((await image(families.sd15.model)).data));
      const r = await runCli(['convert', diffusers('sd15'), out]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^multilora: ERR_OUTPUT_NOT_EMPTY: .*--force/m);
    });

    it('options it does not take: ERR_INVALID_ARGUMENT (the command line exits 2)', async function () {
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { weightFormat: 'fp8' }),
        'ERR_INVALID_ARGUMENT',
        /"fp32", "fp16" or "int8" for options\.weightFormat but received "fp8"/,
      );
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { task: 'inpainting' }),
        'ERR_INVALID_ARGUMENT',
        /options\.task/,
      );
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { fuseLora: 'a.safetensors' }),
        'ERR_INVALID_ARGUMENT',
        /options\.fuseLora/,
      );
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { fuseLora: [{ path: 'a', alpha: NaN }] }),
        'ERR_INVALID_ARGUMENT',
        /fuseLora\[0\]\.alpha/,
      );
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { weightformat: 'fp32' }),
        'ERR_INVALID_ARGUMENT',
        /did you mean "weightFormat"/,
      );
      await rejectsWith(
        convert(diffusers('sd15'), diffusers('sd15') + '/out', { force: true }),
        'ERR_INVALID_ARGUMENT',
        /outside the source model/,
      );
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { scheduler: 'dpm' }),
        'ERR_INVALID_ARGUMENT',
        /one of lcm, ddim, .* for options\.scheduler/,
      );
      await rejectsWith(
        convert(diffusers('sd15'), outOf('x'), { scheduler: 'flow-match-euler' }),
        'ERR_INVALID_ARGUMENT',
        /does not go with a StableDiffusionPipeline/,
      );
      const r = await runCli(['convert', diffusers('sd15'), outOf('x'), '--weight-format', 'fp8']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /fp8.*(choices|Allowed)/i);
    });

    it('no disk space: ERR_NO_SPACE before the export when the space is short, and when the disk fills during it', async function () {
      if (process.getuid() !== 0) this.skip(); // mounting a small tmpfs needs root (CI runs as root)
      const mnt = path.join(tmp(), 'small-disk');
      mkdirSync(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
      try {
        await rejectsWith(
          convert(diffusers('sd15'), path.join(mnt, 'out'), { weightFormat: 'fp32' }),
          'ERR_NO_SPACE',
          /needs about .* MiB in .*small-disk, which has .* free/,
        );
        assert.deepEqual(readdirSync(mnt), []);
      } finally {
        execFileSync('umount', [mnt]);
      }
      // Room enough for the check, then another program fills the disk once the export has begun.
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mnt]);
      try {
        const filler = path.join(mnt, 'filler');
        let filled = false;
        const pending = convert(diffusers('sd15'), path.join(mnt, 'out'), {
          weightFormat: 'fp32',
          onProgress: (e) => {
            if (e.phase !== 'export' || filled) return;
            filled = true;
            try {
              execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=64'], { stdio: 'ignore' });
            } catch {
              // dd stops at the full disk with status 1: the disk is full, as meant
            }
          },
        });
        await rejectsWith(pending, 'ERR_NO_SPACE', /[Nn]o space left on the device/);
        assert.ok(filled);
        assert.deepEqual(readdirSync(mnt), ['filler']);
      } finally {
        execFileSync('umount', [mnt]);
      }
    });

    it('aborted during the export: ERR_ABORTED, no output, no scratch folder, no converter process', async function () {
      const controller = new AbortController();
      const out = outOf('aborted');
      const pending = convert(diffusers('sdxl'), out, {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.phase === 'export' && e.fraction !== undefined && e.fraction > 0) controller.abort();
        },
      });
      await rejectsWith(pending, 'ERR_ABORTED');
      assert.equal(existsSync(out), false);
    });

    it('an onProgress that throws: ERR_CALLBACK, and nothing left', async function () {
      const out = outOf('callback');
      await rejectsWith(
        convert(diffusers('sd15'), out, {
          onProgress: (e) => {
            if (e.phase === 'export') throw new Error('boom');
          },
        }),
        'ERR_CALLBACK',
        /onProgress threw: boom/,
      );
      assert.equal(existsSync(out), false);
    });

    it('Ctrl-C on the command line: exit 130, and nothing left', async function () {
      const out = outOf('interrupted');
      let sent = false;
      const r = await runCli(['convert', diffusers('sd15'), out], {
        onStderr: (text, child) => {
          if (!sent && /[1-9] of \d+ parts written/.test(text)) {
            sent = true;
            child.kill('SIGINT');
          }
        },
      });
      assert.ok(sent);
      assert.equal(r.status, 130, r.stderr);
      assert.match(r.stderr, /ERR_ABORTED/);
      assert.equal(existsSync(out), false);
    });

    it('a command line killed with SIGKILL: its converter stops, and the next conversion there removes its scratch folder', async function () {
      const out = outOf('killed');
      let killed = false;
      await runCli(['convert', diffusers('sd15'), out], {
        onStderr: (text, child) => {
          if (!killed && /[1-9] of \d+ parts written/.test(text)) {
            killed = true;
            child.kill('SIGKILL');
          }
        },
      });
      assert.ok(killed);
      await noConverterLeft(); // it saw its stdin close, and stopped its exporter with it
      assert.equal(leftovers(tmp()).length, 1, 'the killed run could not clean up: its scratch folder is there');
      await rejectsWith(
        convert(diffusers('sd15'), outOf('next'), { fuseLora: [{ path: path.join(tmp(), 'none.safetensors') }] }),
        'ERR_ADAPTER_NOT_FOUND',
      );
      assert.equal(existsSync(out), false);
    });

    it('a converter venv that cannot be made: ERR_CONVERT_SETUP, and no half-made venv', async function () {
      const venv = path.join(tmp(), 'venv');
      await withEnv({ MULTILORA_CONVERTER_DIR: venv, MULTILORA_PYTHON: path.join(tmp(), 'no-python') }, async () => {
        await rejectsWith(
          convert(diffusers('sd15'), outOf('x')),
          'ERR_CONVERT_SETUP',
          /needs Python 3\.10 to 3\.13.*MULTILORA_PYTHON/,
        );
      });
      assert.equal(existsSync(venv), false);
      assert.equal(existsSync(`${venv}.lock`), false);
    });
  });

  after(function () {
    rmSync(path.join(tmp(), 'small-disk'), { recursive: true, force: true });
  });
});
