// What a LoRA file is, and its rewrite into names GenAI matches: the PEFT fixtures become the kohya ones tensor for
// tensor, and the diffusers scale multiplies B by alpha/rank. Model-free and addon-free (the unit tier): that the
// converted PEFT file gives the kohya file's image through the real pipeline is test/lora-format-pipeline.spec.js.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const st = require('../dist/internal').safetensors;
const lf = require('../dist/internal').loraFormat;
const { MultiloraError } = require('../dist/internal').errors;
const { families } = require('./helpers/fixtures');

const FAMILY = { sd15: 'sd', sdxl: 'sdxl' };

function f32(...values) {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return b;
}

function f16(...values) {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeUInt16LE(st.f32ToF16(v), i * 2));
  return b;
}

function bf16(...values) {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeUInt16LE(st.f32ToBf16(v), i * 2));
  return b;
}

/** A LoRA file in memory: `tensors` maps names to [dtype, shape, data]. */
function lora(tensors, metadata) {
  return st.writeSafetensors(
    Object.entries(tensors).map(([name, [dtype, shape, data]]) => ({ name, dtype, shape, data })),
    metadata,
  );
}

/** A down/up pair of rank 2 for a 3 -> 3 linear layer, in F32. */
function pair(down, up, extra = {}) {
  return {
    [down]: ['F32', [2, 3], f32(1, 2, 3, 4, 5, 6)],
    [up]: ['F32', [3, 2], f32(1, -1, 0.5, 2, 4, -8)],
    ...extra,
  };
}

async function analyze(source) {
  return lf.inspectLora(source);
}

/** name -> bytes of every tensor of a safetensors file. */
async function contents(source) {
  const reader = await st.openSafetensors(source);
  try {
    const out = new Map();
    for (const t of reader.header.tensors) out.set(t.name, Buffer.from(await reader.read(t)));
    return out;
  } finally {
    await reader.close();
  }
}

function rejectsCode(code, pattern) {
  return (err) => {
    assert.ok(err instanceof MultiloraError, `expected a MultiloraError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('LoRA formats', function () {
  let tmp;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'multilora-lora-format-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('analysis of the fixtures', function () {
    for (const [family, fx] of Object.entries(families)) {
      const parts = family === 'sdxl' ? ['unet', 'text_encoder', 'text_encoder_2'] : ['unet', 'text_encoder'];

      it(`${family} style-a: kohya, rank 4, alpha 2 (scale 0.5), every tensor placed`, async function () {
        const a = await analyze(fx.lora('style-a'));
        assert.equal(a.format, 'kohya');
        assert.deepEqual(a.ranks, [4]);
        assert.deepEqual(a.parts, parts);
        assert.deepEqual(a.unrecognized, []);
        const header = await st.readSafetensorsHeader(fx.lora('style-a'));
        assert.equal(a.layers.length * 3, header.tensors.length);
        for (const layer of a.layers) {
          assert.equal(layer.naming, 'kohya');
          assert.equal(layer.alpha, 2);
          assert.equal(layer.scale, 0.5);
          assert.equal(layer.down.name, `${layer.key}.lora_down.weight`);
          assert.equal(layer.up.name, `${layer.key}.lora_up.weight`);
          assert.equal(layer.alphaTensor.name, `${layer.key}.alpha`);
        }
        const te = family === 'sdxl' ? 'lora_te1_' : 'lora_te_';
        assert.ok(a.layers.filter((l) => l.part === 'text_encoder').every((l) => l.key.startsWith(te)));
        assert.ok(a.layers.filter((l) => l.part === 'unet').every((l) => l.key.startsWith('lora_unet_')));
      });

      it(`${family} style-a-peft: PEFT, rank 4, alpha 2 from the metadata`, async function () {
        const a = await analyze(fx.lora('style-a-peft'));
        assert.equal(a.format, 'peft');
        assert.deepEqual(a.ranks, [4]);
        assert.deepEqual(a.parts, parts);
        assert.deepEqual(a.unrecognized, []);
        const kohya = await analyze(fx.lora('style-a'));
        assert.equal(a.layers.length, kohya.layers.length);
        for (const layer of a.layers) {
          assert.equal(layer.naming, 'peft');
          assert.equal(layer.alphaTensor, undefined);
          assert.equal(layer.alpha, 2);
          assert.equal(layer.scale, 0.5);
          assert.equal(layer.down.name, `${layer.key}.lora_A.weight`);
          assert.ok(layer.key.startsWith(`${layer.part}.`), layer.key);
        }
      });

      it(`${family} unmatched: kohya layers of modules no model has`, async function () {
        const a = await analyze(fx.lora('unmatched'));
        assert.equal(a.format, 'kohya');
        assert.deepEqual(a.ranks, [4]);
        assert.ok(a.layers.length > 0);
        assert.ok(
          a.layers.every((l) => l.key.includes('nonexistent')),
          a.layers.map((l) => l.key).join(),
        );
        assert.deepEqual(a.parts, parts);
      });

      it(`${family} wrong-base: the same layers with doubled shapes`, async function () {
        const a = await analyze(fx.lora('wrong-base'));
        const b = await analyze(fx.lora('style-a'));
        assert.deepEqual(
          a.layers.map((l) => l.key),
          b.layers.map((l) => l.key),
        );
        assert.deepEqual(a.ranks, [4]);
        const layer = a.layers.find((l) => l.part === 'text_encoder');
        assert.deepEqual(layer.down.shape, [4, 64]);
      });
    }
  });

  describe('conversion of the fixtures', function () {
    for (const [family, fx] of Object.entries(families)) {
      it(`${family}: the PEFT file becomes the kohya file, tensor for tensor and byte for byte`, async function () {
        const peft = fx.lora('style-a-peft');
        const out = await lf.toGenaiLora(peft, await analyze(peft), { family: FAMILY[family], scale: 'genai' });
        assert.ok(Buffer.isBuffer(out));
        const converted = await contents(out);
        const kohya = await contents(fx.lora('style-a'));
        assert.deepEqual([...converted.keys()].sort(), [...kohya.keys()].sort());
        for (const [name, bytes] of kohya) assert.ok(converted.get(name).equals(bytes), name);
        // The same after a round trip through a file on disk, and from the bytes of the PEFT file.
        const fromBuffer = await lf.toGenaiLora(fs.readFileSync(peft), await analyze(fs.readFileSync(peft)), {
          family: FAMILY[family],
        });
        assert.ok(fromBuffer.equals(out));
        assert.deepEqual(st.parseSafetensors(out).metadata, {
          multilora_family: FAMILY[family],
          multilora_scale: 'genai',
          multilora_source_format: 'peft',
        });
      });

      it(`${family}: the kohya file is given to GenAI as it is`, async function () {
        const file = fx.lora('style-a');
        assert.equal(await lf.toGenaiLora(file, await analyze(file), { family: FAMILY[family], scale: 'genai' }), null);
      });

      it(`${family}: the diffusers scale multiplies every up (B) tensor by alpha/rank = 0.5, and sets alpha to the rank`, async function () {
        const file = fx.lora('style-a');
        const out = await lf.toGenaiLora(file, await analyze(file), { family: FAMILY[family], scale: 'diffusers' });
        const converted = await contents(out);
        const original = await contents(file);
        assert.deepEqual([...converted.keys()].sort(), [...original.keys()].sort());
        let ups = 0;
        for (const [name, bytes] of original) {
          const got = converted.get(name);
          if (name.endsWith('.lora_up.weight')) {
            ups += 1;
            const before = st.toFloat32Array(bytes, 'F32');
            const after = st.toFloat32Array(got, 'F32');
            assert.ok(before.some((v) => v !== 0));
            before.forEach((v, i) => assert.equal(after[i], v * 0.5, `${name}[${i}]`));
          } else if (name.endsWith('.alpha')) {
            assert.deepEqual(got, f32(4), name);
          } else {
            assert.ok(got.equals(bytes), name);
          }
        }
        assert.equal(ups, original.size / 3);
        // The PEFT file at the diffusers scale gives the very same file (its alpha comes from the metadata).
        const peft = fx.lora('style-a-peft');
        const fromPeft = await lf.toGenaiLora(peft, await analyze(peft), {
          family: FAMILY[family],
          scale: 'diffusers',
        });
        const a = await contents(fromPeft);
        for (const [name, bytes] of converted) assert.ok(a.get(name).equals(bytes), name);
      });
    }

    it('renames kohya text-encoder prefixes to the ones of the family', async function () {
      const sd = families.sd15.lora('style-a');
      const out = await lf.toGenaiLora(sd, await analyze(sd), { family: 'sdxl' });
      const names = [...(await contents(out)).keys()];
      assert.ok(names.some((n) => n.startsWith('lora_te1_text_model')));
      assert.ok(!names.some((n) => n.startsWith('lora_te_')));
      const xl = families.sdxl.lora('style-a');
      const back = await lf.toGenaiLora(xl, await analyze(xl), { family: 'lcm' });
      const kept = [...(await contents(back)).keys()];
      assert.ok(kept.some((n) => n.startsWith('lora_te_text_model')));
      assert.ok(!kept.some((n) => n.startsWith('lora_te2_')), 'an SD/LCM pipeline has no second text encoder');
    });

    it('leaves out the parts GenAI does not apply for the family, and says which', async function () {
      const peft = families.sdxl.lora('style-a-peft');
      const a = await analyze(peft);
      const plan = lf.planGenaiLora(a, 'sd');
      assert.ok(plan.dropped.length > 0);
      assert.ok(plan.dropped.every((l) => l.part === 'text_encoder_2'));
      assert.equal(plan.layers.length + plan.dropped.length, a.layers.length);
      assert.deepEqual(lf.genaiParts('sd3'), ['transformer']);
      assert.deepEqual(lf.genaiParts('flux'), ['transformer', 'text_encoder']);
      await assert.rejects(
        lf.toGenaiLora(peft, a, { family: 'sd3' }),
        rejectsCode(
          'ERR_ADAPTER_FORMAT',
          /None of the LoRA's layers \(parts: unet, text_encoder, text_encoder_2\) is in a part that OpenVINO GenAI 2026.3 applies LoRA to on a sd3 model \(transformer\)/,
        ),
      );
    });

    it('checks its options', async function () {
      const file = families.sd15.lora('style-a');
      const a = await analyze(file);
      await assert.rejects(
        lf.toGenaiLora(file, a, { family: 'sd2' }),
        rejectsCode(
          'ERR_INVALID_ARGUMENT',
          /^Expected one of "sd", "sdxl", "lcm", "sd3", "flux", "other" for options.family but received "sd2"$/,
        ),
      );
      await assert.rejects(
        lf.toGenaiLora(file, a, { family: 'sd', scale: 'a1111' }),
        rejectsCode('ERR_INVALID_ARGUMENT', /Expected "genai" or "diffusers" for options.scale/),
      );
      await assert.rejects(
        lf.toGenaiLora(file, a, { family: 'sd', alpha: 1 }),
        rejectsCode('ERR_INVALID_ARGUMENT', /Unknown option "alpha"/),
      );
      await assert.rejects(
        lf.toGenaiLora(families.sd15.lora('unmatched'), a, { family: 'sdxl' }),
        rejectsCode('ERR_INVALID_ARGUMENT', /Expected the file that the analysis was made of/),
      );
    });
  });

  describe('other formats GenAI knows', function () {
    it("diffusers' older names (attention processors, lora_linear_layer, .lora.down) become kohya names", async function () {
      const file = lora({
        ...pair(
          'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight',
          'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight',
        ),
        ...pair(
          'unet.mid_block.attentions.0.proj_in.lora.down.weight',
          'unet.mid_block.attentions.0.proj_in.lora.up.weight',
        ),
        ...pair(
          'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight',
          'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.up.weight',
        ),
      });
      const a = await analyze(file);
      assert.equal(a.format, 'diffusers');
      assert.deepEqual(a.parts, ['unet', 'text_encoder']);
      assert.deepEqual(a.layers.map((l) => l.module).sort(), [
        'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0',
        'mid_block.attentions.0.proj_in',
        'text_model.encoder.layers.0.self_attn.q_proj',
      ]);
      const out = await contents(await lf.toGenaiLora(file, a, { family: 'sdxl' }));
      assert.deepEqual([...out.keys()].sort(), [
        'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight',
        'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight',
        'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_down.weight',
        'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_up.weight',
        'lora_unet_mid_block_attentions_0_proj_in.lora_down.weight',
        'lora_unet_mid_block_attentions_0_proj_in.lora_up.weight',
      ]);
    });

    it('PEFT transformer keys of SD3 and Flux become transformer.<module> names; CLIP ones lora_te_ on Flux', async function () {
      const file = lora({
        ...pair(
          'transformer.transformer_blocks.0.attn.to_q.lora_A.weight',
          'transformer.transformer_blocks.0.attn.to_q.lora_B.weight',
        ),
        ...pair(
          'text_encoder.text_model.encoder.layers.1.mlp.fc1.lora_A.weight',
          'text_encoder.text_model.encoder.layers.1.mlp.fc1.lora_B.weight',
        ),
        ...pair(
          'text_encoder_2.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight',
          'text_encoder_2.encoder.block.0.layer.0.SelfAttention.q.lora_B.weight',
        ),
      });
      const a = await analyze(file);
      assert.deepEqual(a.parts, ['transformer', 'text_encoder', 'text_encoder_2']);
      const flux = [...(await contents(await lf.toGenaiLora(file, a, { family: 'flux' }))).keys()].sort();
      assert.deepEqual(flux, [
        'lora_te_text_model_encoder_layers_1_mlp_fc1.lora_down.weight',
        'lora_te_text_model_encoder_layers_1_mlp_fc1.lora_up.weight',
        'transformer.transformer_blocks.0.attn.to_q.lora_down.weight',
        'transformer.transformer_blocks.0.attn.to_q.lora_up.weight',
      ]);
      const sd3 = [...(await contents(await lf.toGenaiLora(file, a, { family: 'sd3' }))).keys()].sort();
      assert.deepEqual(sd3, [
        'transformer.transformer_blocks.0.attn.to_q.lora_down.weight',
        'transformer.transformer_blocks.0.attn.to_q.lora_up.weight',
      ]);
    });

    it('Stability "input_blocks" names (sgm) and kohya Flux names pass unchanged; XLabs Flux names are placed', async function () {
      const sgm = lora(
        pair(
          'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight',
          'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight',
        ),
      );
      const a = await analyze(sgm);
      assert.equal(a.format, 'sgm');
      assert.deepEqual(a.parts, ['unet']);
      assert.equal(await lf.toGenaiLora(sgm, a, { family: 'sdxl' }), null);

      const bfl = lora(
        pair(
          'lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight',
          'lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight',
        ),
      );
      const b = await analyze(bfl);
      assert.deepEqual(b.parts, ['transformer']);
      assert.equal(await lf.toGenaiLora(bfl, b, { family: 'flux' }), null);

      const xlabs = lora(
        pair('double_blocks.0.processor.qkv_lora1.down.weight', 'double_blocks.0.processor.qkv_lora1.up.weight'),
      );
      const x = await analyze(xlabs);
      assert.equal(x.format, 'xlabs');
      assert.deepEqual(x.parts, ['transformer']);
      assert.equal(await lf.toGenaiLora(xlabs, x, { family: 'flux', scale: 'diffusers' }), null);
    });

    it('reads alpha and rank per module from PEFT metadata patterns, and rsLoRA scaling', async function () {
      const config = { 'unet.r': 2, 'unet.lora_alpha': 8, 'unet.alpha_pattern': { 'attn1.to_q': 1 } };
      const file = lora(
        {
          ...pair('unet.a.attn1.to_q.lora_A.weight', 'unet.a.attn1.to_q.lora_B.weight'),
          ...pair('unet.a.attn1.to_k.lora_A.weight', 'unet.a.attn1.to_k.lora_B.weight'),
        },
        { lora_adapter_metadata: JSON.stringify(config) },
      );
      const a = await analyze(file);
      assert.deepEqual(
        a.layers.map((l) => [l.module, l.alpha, l.scale]),
        [
          ['a.attn1.to_k', 8, 4],
          ['a.attn1.to_q', 1, 0.5],
        ],
      );
      const rs = lora(pair('unet.x.lora_A.weight', 'unet.x.lora_B.weight'), {
        lora_adapter_metadata: JSON.stringify({ 'unet.r': 2, 'unet.lora_alpha': 4, 'unet.use_rslora': true }),
      });
      assert.equal((await analyze(rs)).layers[0].scale, 4 / Math.SQRT2);
      const wrong = lora(pair('unet.x.lora_A.weight', 'unet.x.lora_B.weight'), {
        lora_adapter_metadata: '{"unet.r": 8}',
      });
      await assert.rejects(
        analyze(wrong),
        rejectsCode('ERR_ADAPTER_INVALID', /metadata gives r = 8 for layer "unet.x", but its tensors have rank 2/),
      );
    });
  });

  describe('scaling in half precision', function () {
    it('F16: B × 0.75 in float32, rounded to the nearest float16', async function () {
      const file = lora({
        'lora_unet_x.lora_down.weight': ['F16', [4, 1], f16(1, 1, 1, 1)],
        'lora_unet_x.lora_up.weight': ['F16', [1, 4], f16(1, 65504, -2, 2 ** -24)],
        'lora_unet_x.alpha': ['F16', [], f16(3)],
      });
      const a = await analyze(file);
      assert.equal(a.layers[0].scale, 0.75);
      const out = await contents(await lf.toGenaiLora(file, a, { family: 'sd', scale: 'diffusers' }));
      assert.deepEqual(
        [...st.toFloat32Array(out.get('lora_unet_x.lora_up.weight'), 'F16')],
        [0.75, 49120, -1.5, 2 ** -24],
      );
      assert.deepEqual(out.get('lora_unet_x.lora_down.weight'), f16(1, 1, 1, 1));
    });

    it('BF16: B × 0.75 in float32, rounded to the nearest bfloat16', async function () {
      const file = lora({
        'lora_unet_x.lora_down.weight': ['BF16', [2, 1], bf16(1, 1)],
        'lora_unet_x.lora_up.weight': ['BF16', [1, 2], bf16(1, 3.140625)],
        'lora_unet_x.alpha': ['BF16', [], bf16(1.5)],
      });
      const out = await contents(await lf.toGenaiLora(file, await analyze(file), { family: 'sd', scale: 'diffusers' }));
      assert.deepEqual([...st.toFloat32Array(out.get('lora_unet_x.lora_up.weight'), 'BF16')], [0.75, 2.359375]);
    });
  });

  describe("LyCORIS's LoHa and LoKr, rewritten exactly as LoRA", function () {
    /** Row-major [rows, cols] product, worked here the plain way. */
    const product = (a, [n, k], b, m) => {
      const out = new Float64Array(n * m);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < m; j++) for (let t = 0; t < k; t++) out[i * m + j] += a[i * k + t] * b[t * m + j];
      return out;
    };
    const values = (buf, dtype = 'F32') => [...st.toFloat32Array(buf, dtype)];
    const close = (actual, expected, what) => {
      assert.equal(actual.length, expected.length, what);
      for (let i = 0; i < actual.length; i++)
        assert.ok(
          Math.abs(actual[i] - expected[i]) <= 1e-5 * (1 + Math.abs(expected[i])),
          `${what}[${i}]: ${actual[i]} vs ${expected[i]}`,
        );
    };

    it('LoHa: rank r1·r2, LyCORIS scale alpha / r1, and B·A equal to (w1_a·w1_b) ⊙ (w2_a·w2_b)', async function () {
      // out 3, in 4, r1 = r2 = 2, in F16 as LyCORIS often saves
      const w1a = [1, 0.5, -1, 2, 0, 1];
      const w1b = [1, 2, 0, -1, 0.5, 0.25, 1, 3];
      const w2a = [2, 1, 0.5, -0.5, 1, 1];
      const w2b = [-1, 1, 2, 0.5, 1, 0, -2, 1];
      const file = lora({
        'lora_unet_x.hada_w1_a': ['F16', [3, 2], f16(...w1a)],
        'lora_unet_x.hada_w1_b': ['F16', [2, 4], f16(...w1b)],
        'lora_unet_x.hada_w2_a': ['F16', [3, 2], f16(...w2a)],
        'lora_unet_x.hada_w2_b': ['F16', [2, 4], f16(...w2b)],
        'lora_unet_x.alpha': ['F16', [], f16(1)],
      });
      const a = await analyze(file);
      const [layer] = a.layers;
      assert.deepEqual([a.format, layer.rank, layer.scale, layer.factorized.kind], ['kohya', 4, 0.5, 'loha']);
      assert.deepEqual(a.ranks, [4]);
      assert.deepEqual(
        lf.layerTensors(layer).map((t) => t.name),
        [
          'lora_unet_x.hada_w1_a',
          'lora_unet_x.hada_w1_b',
          'lora_unet_x.hada_w2_a',
          'lora_unet_x.hada_w2_b',
          'lora_unet_x.alpha',
        ],
      );
      const out = await contents(await lf.toGenaiLora(file, a, { family: 'sd' }));
      const down = values(out.get('lora_unet_x.lora_down.weight'));
      const up = values(out.get('lora_unet_x.lora_up.weight'));
      const p1 = product(w1a, [3, 2], w1b, 4);
      const p2 = product(w2a, [3, 2], w2b, 4);
      close(
        [...product(up, [3, 4], down, 4)],
        [...p1].map((v, i) => v * p2[i]),
        'B·A',
      );
      assert.deepEqual(values(out.get('lora_unet_x.alpha')), [2]); // alpha / rank = the layer's scale
      // diffusers' scale bakes alpha / r1 into B
      const baked = await contents(await lf.toGenaiLora(file, a, { family: 'sd', scale: 'diffusers' }));
      close(
        values(baked.get('lora_unet_x.lora_up.weight')),
        up.map((v) => v * 0.5),
        'scaled B',
      );
      assert.deepEqual(values(baked.get('lora_unet_x.alpha')), [4]);
    });

    it('LoKr: w1 full, w2 = w2_a·w2_b: rank (smaller side of w1)·r, scale alpha / r, B·A = w1 ⊗ (w2_a·w2_b)', async function () {
      const w1 = [1, 2, 3, 4]; // 2 × 2
      const w2a = [1, -1, 2]; // 3 × 1
      const w2b = [0.5, 2]; // 1 × 2
      const file = lora({
        'lora_te_x.lokr_w1': ['F32', [2, 2], f32(...w1)],
        'lora_te_x.lokr_w2_a': ['F32', [3, 1], f32(...w2a)],
        'lora_te_x.lokr_w2_b': ['F32', [1, 2], f32(...w2b)],
        'lora_te_x.alpha': ['F32', [], f32(2)],
      });
      const a = await analyze(file);
      const [layer] = a.layers;
      assert.deepEqual([layer.rank, layer.scale, layer.down.shape, layer.up.shape], [2, 2, [2, 4], [6, 2]]);
      const out = await contents(await lf.toGenaiLora(file, a, { family: 'sd' }));
      const down = values(out.get('lora_te_x.lora_down.weight'));
      const up = values(out.get('lora_te_x.lora_up.weight'));
      const w2 = product(w2a, [3, 1], w2b, 2);
      const kron = [];
      for (let i = 0; i < 2; i++)
        for (let k = 0; k < 3; k++)
          for (let j = 0; j < 2; j++) for (let l = 0; l < 2; l++) kron.push(w1[i * 2 + j] * w2[k * 2 + l]);
      close([...product(up, [6, 2], down, 4)], kron, 'B·A');
    });

    it('LoKr of two full factors: scale 1 whatever its alpha says (as LyCORIS)', async function () {
      const file = lora({
        'lora_unet_x.lokr_w1': ['F32', [1, 2], f32(1, 2)],
        'lora_unet_x.lokr_w2': ['F32', [2, 1], f32(3, 4)],
        'lora_unet_x.alpha': ['F32', [], f32(8)],
      });
      const [layer] = (await analyze(file)).layers;
      assert.deepEqual([layer.rank, layer.scale, layer.alpha], [1, 1, 8]);
    });
  });

  describe('full weight differences (LyCORIS "full")', function () {
    const values = (buf) => [...st.toFloat32Array(buf, 'F32')];
    // a 3x3 convolution 2 -> 2 with a bias, and a linear 3 -> 2 without
    const conv = Array.from({ length: 2 * 2 * 3 * 3 }, (_, i) => (i % 7) - 3.5);
    const linear = [1, -2, 0.25, 4, 0.5, -8];
    const file = () =>
      lora({
        'lora_unet_c.diff': ['F16', [2, 2, 3, 3], f16(...conv)],
        'lora_unet_c.diff_b': ['F16', [2], f16(0.5, -1)],
        'lora_te_l.diff': ['F32', [2, 3], f32(...linear)],
      });

    it('are layers of rank out, which only fusing takes: A the difference, B the identity, the bias kept', async function () {
      const f = file();
      const a = await analyze(f);
      const byKey = Object.fromEntries(a.layers.map((l) => [l.key, l]));
      assert.deepEqual(
        [byKey.lora_unet_c.factorized.kind, byKey.lora_unet_c.rank, byKey.lora_unet_c.scale],
        ['full', 2, 1],
      );
      assert.deepEqual(
        [byKey.lora_unet_c.down.shape, byKey.lora_unet_c.up.shape],
        [
          [2, 2, 3, 3],
          [2, 2, 1, 1],
        ],
      );
      assert.deepEqual(
        [byKey.lora_te_l.down.shape, byKey.lora_te_l.up.shape],
        [
          [2, 3],
          [2, 2],
        ],
      );
      assert.deepEqual(
        lf.layerTensors(byKey.lora_unet_c).map((t) => t.name),
        ['lora_unet_c.diff', 'lora_unet_c.diff_b'],
      );
      const out = await contents(await lf.toGenaiLora(f, a, { family: 'sd', kernels: true }));
      assert.deepEqual(values(out.get('lora_unet_c.lora_down.weight')), conv);
      assert.deepEqual(values(out.get('lora_unet_c.lora_up.weight')), [1, 0, 0, 1]);
      assert.deepEqual(values(out.get('lora_unet_c.diff_b')), [0.5, -1]);
      assert.deepEqual(values(out.get('lora_te_l.lora_down.weight')), linear);
      assert.deepEqual(values(out.get('lora_te_l.lora_up.weight')), [1, 0, 0, 1]);
      assert.ok(!out.has('lora_te_l.diff_b'));
    });

    it('are refused at generate, naming the tensor and the way to fuse them', async function () {
      const f = file();
      await assert.rejects(
        lf.toGenaiLora(f, await analyze(f), { family: 'sd' }),
        rejectsCode(
          'ERR_ADAPTER_FORMAT',
          /LoRA layer "lora_te_l" is a full weight difference \(LyCORIS "full", tensor "lora_te_l\.diff"\): as a LoRA it would run at rank 2, .*--fuse-lora/,
        ),
      );
    });

    it('need a diff, alone, and a bias of its rows', async function () {
      for (const [tensors, pattern] of [
        [{ 'lora_unet_c.diff_b': ['F32', [2], f32(1, 2)] }, /a full weight difference is a "diff" tensor/],
        [
          {
            ...pair('lora_unet_c.lora_down.weight', 'lora_unet_c.lora_up.weight'),
            'lora_unet_c.diff': ['F32', [3, 3], f32(...linear, 1, 2, 3)],
          },
          /and LoRA or DoRA tensors: a full weight difference/,
        ],
        [
          { 'lora_unet_c.diff': ['F32', [2, 3], f32(...linear)], 'lora_unet_c.diff_b': ['F32', [3], f32(1, 2, 3)] },
          /the bias difference of "lora_unet_c\.diff" is \[2\] in F32/,
        ],
      ]) {
        await assert.rejects(analyze(lora(tensors)), rejectsCode('ERR_ADAPTER_INVALID', pattern));
      }
    });
  });

  describe('LoCon with a Tucker core (LyCORIS "lora_mid")', function () {
    // a 3x3 convolution 3 -> 4 at rank 2: down [2, 3, 1, 1], mid [2, 2, 3, 3], up [4, 2, 1, 1], alpha 1 (scale 0.5)
    const down = [1, -2, 0.5, 3, 0.25, -1];
    const mid = Array.from({ length: 36 }, (_, i) => ((i * 7) % 11) - 5);
    const up = [1, 2, -1, 0.5, 3, -2, 0.25, 4];
    const file = () =>
      lora({
        'lora_unet_c.lora_down.weight': ['F16', [2, 3, 1, 1], f16(...down)],
        'lora_unet_c.lora_mid.weight': ['F16', [2, 2, 3, 3], f16(...mid)],
        'lora_unet_c.lora_up.weight': ['F16', [4, 2, 1, 1], f16(...up)],
        'lora_unet_c.alpha': ['F16', [], f16(1)],
      });

    it("is fused exactly as a LoRA of A's kernel: up · A is LyCORIS's Σ up · mid · down, at the diffusers scale", async function () {
      const f = file();
      const a = await analyze(f);
      const [layer] = a.layers;
      assert.deepEqual([a.format, layer.rank, layer.scale, layer.down.shape], ['locon', 2, 0.5, [2, 3, 3, 3]]);
      assert.deepEqual(
        lf.layerTensors(layer).map((t) => t.name),
        [
          'lora_unet_c.lora_down.weight',
          'lora_unet_c.lora_mid.weight',
          'lora_unet_c.lora_up.weight',
          'lora_unet_c.alpha',
        ],
      );
      const out = await contents(await lf.toGenaiLora(f, a, { family: 'sd', scale: 'diffusers', kernels: true }));
      const A = [...st.toFloat32Array(out.get('lora_unet_c.lora_down.weight'), 'F32')];
      const B = [...st.toFloat32Array(out.get('lora_unet_c.lora_up.weight'), 'F32')];
      for (let p = 0; p < 4; p += 1) {
        for (let q = 0; q < 3; q += 1) {
          for (let t = 0; t < 9; t += 1) {
            let want = 0;
            for (let i = 0; i < 2; i += 1)
              for (let j = 0; j < 2; j += 1) want += up[p * 2 + i] * mid[(i * 2 + j) * 9 + t] * down[j * 3 + q];
            const got = B[p * 2] * A[(0 * 3 + q) * 9 + t] + B[p * 2 + 1] * A[(1 * 3 + q) * 9 + t];
            assert.ok(
              Math.abs(got - 0.5 * want) <= 1e-5 * Math.max(1, Math.abs(want)),
              `[${p}, ${q}, ${t}]: ${got} vs ${0.5 * want}`,
            );
          }
        }
      }
    });

    it('is refused at generate as a 3x3 LoCon, and a core of the wrong shape is refused', async function () {
      const f = file();
      await assert.rejects(
        lf.toGenaiLora(f, await analyze(f), { family: 'sd' }),
        rejectsCode('ERR_ADAPTER_FORMAT', /"lora_unet_c" is a convolution with a 3x3 kernel/),
      );
      const bad = lora({
        'lora_unet_c.lora_down.weight': ['F32', [2, 3, 1, 1], f32(...down)],
        'lora_unet_c.lora_mid.weight': ['F32', [2, 3, 3, 3], f32(...Array(54).fill(1))],
        'lora_unet_c.lora_up.weight': ['F32', [4, 2, 1, 1], f32(...up)],
      });
      await assert.rejects(analyze(bad), rejectsCode('ERR_ADAPTER_INVALID', /LyCORIS's core is \[2, 2, kh, kw\]/));
    });
  });

  describe('LoHa and LoKr with a Tucker core or 4-D factors (lib/lora/dense.ts)', function () {
    const ones = (n) => f32(...Array(n).fill(0.5));
    const tucker = () =>
      lora({
        'lora_unet_c.hada_t1': ['F32', [2, 2, 3, 3], ones(36)],
        'lora_unet_c.hada_w1_a': ['F32', [2, 6], ones(12)],
        'lora_unet_c.hada_w1_b': ['F32', [2, 4], ones(8)],
        'lora_unet_c.hada_t2': ['F32', [2, 2, 3, 3], ones(36)],
        'lora_unet_c.hada_w2_a': ['F32', [2, 6], ones(12)],
        'lora_unet_c.hada_w2_b': ['F32', [2, 4], ones(8)],
        'lora_unet_c.alpha': ['F32', [], f32(1)],
      });

    it('are layers of rank out with the whole change as A, at LyCORIS scale alpha / rank', async function () {
      const a = await analyze(tucker());
      const [layer] = a.layers;
      assert.deepEqual(
        [layer.factorized.kind, layer.factorized.dense, layer.rank, layer.scale, layer.down.shape, layer.up.shape],
        ['loha', true, 6, 0.5, [6, 4, 3, 3], [6, 6, 1, 1]],
      );
      const out = await contents(await lf.toGenaiLora(tucker(), a, { family: 'sd', kernels: true }));
      // every entry of each half is Σ_ij 0.5 · 0.5 · 0.5 over 2 × 2 = 0.5; their product 0.25
      assert.deepEqual(new Set(st.toFloat32Array(out.get('lora_unet_c.lora_down.weight'), 'F32')), new Set([0.25]));
      await assert.rejects(
        lf.toGenaiLora(tucker(), a, { family: 'sd' }),
        rejectsCode('ERR_ADAPTER_FORMAT', /"lora_unet_c" is a convolution with a 3x3 kernel/),
      );
    });

    it('refuse factors whose ranks or shapes disagree, naming them', async function () {
      const bad = lora({
        'lora_unet_c.lokr_w1': ['F32', [2, 2], ones(4)],
        'lora_unet_c.lokr_t2': ['F32', [2, 2, 3, 3], ones(36)],
        'lora_unet_c.lokr_w2_a': ['F32', [3, 3], ones(9)],
        'lora_unet_c.lokr_w2_b': ['F32', [2, 2], ones(4)],
      });
      await assert.rejects(
        analyze(bad),
        rejectsCode('ERR_ADAPTER_INVALID', /"lora_unet_c" has a Tucker LoKr whose ranks disagree/),
      );
      const missing = lora({
        'lora_unet_c.hada_t1': ['F32', [2, 2, 3, 3], ones(36)],
        'lora_unet_c.hada_w1_a': ['F32', [2, 6], ones(12)],
        'lora_unet_c.hada_w1_b': ['F32', [2, 4], ones(8)],
      });
      await assert.rejects(analyze(missing), rejectsCode('ERR_ADAPTER_INVALID', /needs hada_t2 of 4 dimensions/));
    });
  });

  describe('DoRA', function () {
    const sd15 = families.sd15;

    it("reads the magnitude's axis from its shape: PEFT's [out] and LyCORIS's [out, 1] per output, [1, in] per input", async function () {
      for (const [name, format, axis, shape] of [
        ['dora-peft', 'peft', 'out', (l) => [l.up.shape[0]]],
        ['dora', 'kohya', 'out', (l) => [l.up.shape[0], 1]],
        ['dora-in', 'kohya', 'in', (l) => [1, l.down.shape[1]]],
      ]) {
        const a = await analyze(sd15.lora(name));
        assert.equal(a.format, format, name);
        assert.equal(a.layers.length, 40, name);
        for (const layer of a.layers) {
          assert.equal(layer.dora.axis, axis, `${name} ${layer.key}`);
          assert.deepEqual(layer.dora.magnitude.shape, shape(layer), `${name} ${layer.key}`);
          assert.ok(lf.layerTensors(layer).includes(layer.dora.magnitude));
        }
      }
    });

    it('is handed to the fuse with its magnitudes named by axis, at the diffusers scale only', async function () {
      const file = sd15.lora('dora-in');
      const a = await analyze(file);
      const out = await contents(await lf.toGenaiLora(file, a, { family: 'sd', scale: 'diffusers', kernels: true }));
      const [layer] = a.layers;
      const magnitudes = [...out.keys()].filter((k) => k.endsWith('.dora_scale_in'));
      assert.equal(magnitudes.length, 40);
      assert.deepEqual(
        [...st.toFloat32Array(out.get(`${layer.key}.dora_scale_in`), 'F32')],
        [...st.toFloat32Array(await st.readTensor(file, layer.dora.magnitude), layer.dora.magnitude.dtype)],
      );
      await assert.rejects(
        lf.toGenaiLora(file, a, { family: 'sd', kernels: true }),
        rejectsCode('ERR_ADAPTER_FORMAT', /is DoRA: its magnitudes were trained with the layer's alpha\/rank \(0\.5\)/),
      );
      await assert.rejects(
        lf.toGenaiLora(file, a, { family: 'sd', scale: 'diffusers' }),
        rejectsCode(
          'ERR_ADAPTER_FORMAT',
          /is DoRA \(tensor ".+\.dora_scale"\): .*mode: 'fuse'.*--fuse-lora <file>`.*--fuse-scale diffusers/,
        ),
      );
    });

    it('refuses a magnitude that fits neither axis, and PEFT metadata that asks for DoRA without one', async function () {
      await assert.rejects(
        analyze(
          lora(
            pair('lora_unet_x.lora_down.weight', 'lora_unet_x.lora_up.weight', {
              'lora_unet_x.dora_scale': ['F32', [3, 3], f32(...Array(9).fill(1))],
            }),
          ),
        ),
        rejectsCode(
          'ERR_ADAPTER_INVALID',
          /must be \[3\] or \[3, 1\] \(one per output\) or \[1, 3\] \(one per input\)/,
        ),
      );
      // PEFT's is per output whatever its shape looks like: [1, in] is no PEFT magnitude
      await assert.rejects(
        analyze(
          lora(
            pair('unet.x.lora_A.weight', 'unet.x.lora_B.weight', {
              'unet.x.lora_magnitude_vector': ['F32', [1, 3], f32(1, 2, 3)],
            }),
          ),
        ),
        rejectsCode(
          'ERR_ADAPTER_INVALID',
          /PEFT's lora_magnitude_vector for its 3 outputs is \[3\] \(or \[1, 3, 1, 1\] for a convolution\)/,
        ),
      );
      const conv = await analyze(
        lora({
          'unet.x.lora_A.weight': ['F32', [2, 3, 1, 1], f32(1, 2, 3, 4, 5, 6)],
          'unet.x.lora_B.weight': ['F32', [3, 2, 1, 1], f32(1, -1, 0.5, 2, 4, -8)],
          'unet.x.lora_magnitude_vector': ['F32', [1, 3, 1, 1], f32(1, 2, 3)],
        }),
      );
      assert.equal(conv.layers[0].dora.axis, 'out');
      const peft = lora(pair('unet.x.lora_A.weight', 'unet.x.lora_B.weight'), {
        lora_adapter_metadata: JSON.stringify({ r: 2, lora_alpha: 2, use_dora: true }),
      });
      await assert.rejects(
        analyze(peft),
        rejectsCode(
          'ERR_ADAPTER_INVALID',
          /asks for DoRA \(use_dora\) on unet, but its layer "unet\.x" has no lora_magnitude_vector/,
        ),
      );
    });
  });

  describe('refuses what it cannot read or GenAI cannot apply', function () {
    const cases = [
      [
        'LoHa without its second product',
        pair('lora_unet_x.hada_w1_a', 'lora_unet_x.hada_w1_b'),
        'ERR_ADAPTER_INVALID',
        /LoHa layer "lora_unet_x" needs hada_w1_a, hada_w1_b, hada_w2_a and hada_w2_b; it has only "lora_unet_x.hada_w1_a", "lora_unet_x.hada_w1_b"/,
      ],
      [
        'LoKr with a Tucker core of the wrong shape',
        pair('lora_unet_x.lokr_w1', 'lora_unet_x.lokr_w2_a', { 'lora_unet_x.lokr_t2': ['F32', [1], f32(1)] }),
        'ERR_ADAPTER_INVALID',
        /LoRA layer "lora_unet_x" needs lokr_t2 of 4 dimensions; it has "lora_unet_x.lokr_t2" of shape \[1\]/,
      ],
      [
        'LoKr with a factor given twice',
        pair('lora_unet_x.lokr_w1', 'lora_unet_x.lokr_w2', { 'lora_unet_x.lokr_w1_a': ['F32', [2, 1], f32(1, 2)] }),
        'ERR_ADAPTER_INVALID',
        /LoKr layer "lora_unet_x" needs either lokr_w1 or both lokr_w1_a and lokr_w1_b/,
      ],
      [
        'LoHa and LoRA tensors in one layer',
        pair('lora_unet_x.lora_down.weight', 'lora_unet_x.lora_up.weight', {
          'lora_unet_x.hada_w1_a': ['F32', [1], f32(1)],
        }),
        'ERR_ADAPTER_INVALID',
        /has LoRA matrices and LyCORIS factors/,
      ],
      [
        'an unknown naming',
        pair('model.diffusion_model.x.weight', 'model.diffusion_model.y.weight'),
        'ERR_ADAPTER_FORMAT',
        /None of the 2 tensors of the LoRA file is named as a LoRA format that multilora knows .* for example "model.diffusion_model.x.weight"/,
      ],
      ['no tensors', {}, 'ERR_ADAPTER_FORMAT', /holds no tensors/],
      [
        'a down without its up',
        { 'lora_unet_x.lora_down.weight': ['F32', [2, 3], f32(1, 2, 3, 4, 5, 6)] },
        'ERR_ADAPTER_INVALID',
        /LoRA layer "lora_unet_x" has "lora_unet_x.lora_down.weight" but no up \(B\) matrix/,
      ],
      [
        'an alpha alone',
        { 'lora_unet_x.alpha': ['F32', [], f32(1)] },
        'ERR_ADAPTER_INVALID',
        /has "lora_unet_x.alpha" but no down \(A\) or up \(B\) matrix/,
      ],
      [
        'ranks that disagree',
        {
          'lora_unet_x.lora_down.weight': ['F32', [2, 3], f32(1, 2, 3, 4, 5, 6)],
          'lora_unet_x.lora_up.weight': ['F32', [2, 3], f32(1, 2, 3, 4, 5, 6)],
        },
        'ERR_ADAPTER_INVALID',
        /down \(A\) of shape \[2,3\] and up \(B\) of shape \[2,3\], which make no LoRA pair/,
      ],
      [
        'A and B of different dtypes',
        {
          'lora_unet_x.lora_down.weight': ['F32', [1, 1], f32(1)],
          'lora_unet_x.lora_up.weight': ['F16', [1, 1], f16(1)],
        },
        'ERR_ADAPTER_INVALID',
        /down \(A\) in F32 but up \(B\) in F16/,
      ],
      [
        'an alpha of two numbers',
        pair('lora_unet_x.lora_down.weight', 'lora_unet_x.lora_up.weight', {
          'lora_unet_x.alpha': ['F32', [2], f32(1, 2)],
        }),
        'ERR_ADAPTER_INVALID',
        /Tensor "lora_unet_x.alpha" should hold one number/,
      ],
      [
        'two tensors for one role',
        {
          ...pair('unet.x.lora_A.weight', 'unet.x.lora_B.weight'),
          'unet.x.lora.down.weight': ['F32', [2, 3], f32(1, 2, 3, 4, 5, 6)],
        },
        'ERR_ADAPTER_INVALID',
        /both give the down of LoRA layer "unet.x"/,
      ],
    ];
    for (const [what, tensors, code, pattern] of cases) {
      it(`${what}: ${code}`, async function () {
        const bytes = lora(tensors);
        await assert.rejects(analyze(bytes), rejectsCode(code, pattern));
        const file = path.join(tmp, `${what.replace(/\W+/g, '-')}.safetensors`);
        fs.writeFileSync(file, bytes);
        await assert.rejects(analyze(file), (err) => {
          rejectsCode(code, pattern)(err);
          assert.ok(err.message.startsWith(file), err.message);
          return true;
        });
      });
    }

    it('a 3x3 convolution LoRA (LoCon): recognized, but GenAI applies only 1x1 ones', async function () {
      const file = lora({
        'lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight': ['F32', [1, 1, 3, 3], f32(...Array(9).fill(1))],
        'lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight': ['F32', [1, 1, 1, 1], f32(1)],
      });
      const a = await analyze(file);
      assert.equal(a.format, 'locon');
      await assert.rejects(
        lf.toGenaiLora(file, a, { family: 'sd' }),
        rejectsCode(
          'ERR_ADAPTER_FORMAT',
          /"lora_unet_down_blocks_0_resnets_0_conv1" is a convolution with a 3x3 kernel \(LyCORIS LoCon\); OpenVINO GenAI 2026.3 applies only 1x1 ones/,
        ),
      );
      // for fusing (convert), where LCM-LoRA's 3x3 convolutions go into the weights: kept as they are
      assert.equal(await lf.toGenaiLora(file, a, { family: 'sd', kernels: true }), null);
      const withAlpha = lora({
        'lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight': ['F32', [1, 1, 3, 3], f32(...Array(9).fill(1))],
        'lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight': ['F32', [1, 1, 1, 1], f32(1)],
        'lora_unet_down_blocks_0_resnets_0_conv1.alpha': ['F32', [], f32(0.5)],
      });
      const scaled = await lf.toGenaiLora(withAlpha, await analyze(withAlpha), {
        family: 'sd',
        kernels: true,
        scale: 'diffusers',
      });
      assert.deepEqual(
        st.parseSafetensors(scaled).tensors.map((t) => [t.name, t.shape]),
        [
          ['lora_unet_down_blocks_0_resnets_0_conv1.alpha', []],
          ['lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight', [1, 1, 3, 3]],
          ['lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight', [1, 1, 1, 1]],
        ],
      );
      await assert.rejects(
        lf.toGenaiLora(file, a, { family: 'sd', kernels: 1 }),
        rejectsCode('ERR_INVALID_ARGUMENT', /Expected a boolean for options.kernels but received 1/),
      );
      const pointwise = lora({
        'lora_unet_mid_block_attentions_0_proj_in.lora_down.weight': ['F32', [1, 2, 1, 1], f32(1, 2)],
        'lora_unet_mid_block_attentions_0_proj_in.lora_up.weight': ['F32', [2, 1, 1, 1], f32(1, 2)],
      });
      const p = await analyze(pointwise);
      assert.equal(p.format, 'kohya');
      assert.equal(await lf.toGenaiLora(pointwise, p, { family: 'sd' }), null);
    });

    it('lists tensors it cannot place, and keeps them out of a converted file', async function () {
      const file = lora({
        ...pair('unet.x.lora_A.weight', 'unet.x.lora_B.weight'),
        'bundle_emb.token.string_to_param.*': ['F32', [1], f32(1)],
      });
      const a = await analyze(file);
      assert.deepEqual(a.unrecognized, ['bundle_emb.token.string_to_param.*']);
      const out = await contents(await lf.toGenaiLora(file, a, { family: 'sd' }));
      assert.deepEqual([...out.keys()].sort(), ['lora_unet_x.lora_down.weight', 'lora_unet_x.lora_up.weight']);
    });
  });
});
