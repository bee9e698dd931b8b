// The layouts of published LoRA files (test/fixtures/loras/layouts/, made by scripts/make-fixtures.py at the
// sdxl-tiny model's sizes: kohya with Stability's block names, LCM-LoRA, PEFT, diffusers' script and legacy names,
// ComfyUI, the LyCORIS wrapper, alpha encodings): each is named, every layer found, no tensor left over, and its
// rewrite for GenAI is its canonical kohya twin, tensor for tensor. Model-free (the unit tier); their images through
// the real pipeline are test/lora-layouts-pipeline.spec.js.
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const st = require('../dist/internal').safetensors;
const lf = require('../dist/internal').loraFormat;
const { writeFileSync } = require('node:fs');
const { rejectsWith, useTempDir } = require('./helpers/fixtures');

const DIR = path.join(__dirname, 'fixtures', 'loras', 'layouts');
const file = (name) => path.join(DIR, `${name}.safetensors`);

// name: [format, layers, parts, alpha of every layer (undefined: none in the file or its metadata)]
const LAYOUTS = {
  'kohya-sgm': ['sgm', 12, ['unet', 'text_encoder', 'text_encoder_2'], 2],
  lcm: ['locon', 12, ['unet'], 0.5],
  peft: ['peft', 12, ['unet', 'text_encoder', 'text_encoder_2'], 2],
  'diffusers-script': ['diffusers', 9, ['unet', 'text_encoder', 'text_encoder_2'], 4],
  'diffusers-0.19': ['diffusers', 9, ['unet', 'text_encoder', 'text_encoder_2'], undefined],
  'attn-procs': ['diffusers', 5, ['unet'], undefined],
  comfyui: ['comfyui', 12, ['unet', 'text_encoder', 'text_encoder_2'], undefined],
  lycoris: ['lycoris', 8, ['unet'], 2],
  'alpha-shape1': ['kohya', 8, ['unet'], 2],
  'alpha-int64': ['kohya', 12, ['unet', 'text_encoder', 'text_encoder_2'], 4],
};
// Stability's (sgm) block names go to GenAI as they are (it maps them); the others are rewritten to the twin's names.
const SGM = new Set(['kohya-sgm', 'comfyui']);

async function tensors(source) {
  const reader = await st.openSafetensors(source);
  try {
    const out = new Map();
    for (const info of reader.header.tensors) out.set(info.name, { info, data: await reader.read(info) });
    return out;
  } finally {
    await reader.close();
  }
}

describe('LoRA layouts of published files (test/fixtures/loras/layouts)', function () {
  for (const [name, [format, layers, parts, alpha]] of Object.entries(LAYOUTS)) {
    it(`${name}: format "${format}", ${layers} layers in ${parts.join(', ')}, every tensor in one of them`, async function () {
      const analysis = await lf.inspectLora(file(name));
      const header = await st.readSafetensorsHeader(file(name));
      assert.equal(analysis.format, format);
      assert.equal(analysis.layers.length, layers);
      assert.deepEqual(analysis.parts, parts);
      assert.deepEqual(analysis.unrecognized, []);
      const used = analysis.layers.flatMap((layer) => lf.layerTensors(layer).map((t) => t.name));
      assert.deepEqual(used.sort(), header.tensors.map((t) => t.name).sort());
      for (const layer of analysis.layers) assert.equal(layer.alpha, alpha, layer.key);
    });
  }

  for (const name of Object.keys(LAYOUTS).filter((n) => n !== 'lcm')) {
    const what = SGM.has(name)
      ? "kohya's names in Stability's blocks"
      : "its twin's tensors, bytes and dtypes included";
    it(`${name}: rewritten for GenAI (or given as it is), it is ${what}`, async function () {
      const analysis = await lf.inspectLora(file(name));
      const converted = await lf.toGenaiLora(file(name), analysis, { family: 'sdxl' });
      const mine = await tensors(converted ?? file(name));
      const twin = await tensors(file(`${name}-twin`));
      const weights = (m) => [...m.keys()].filter((k) => !k.endsWith('.alpha')).sort();
      if (SGM.has(name)) {
        // kohya's own names go as they are; ComfyUI's become them (both files have the same layers)
        if (name === 'kohya-sgm') assert.equal(converted, null);
        assert.deepEqual(weights(mine), weights(await tensors(file('kohya-sgm'))));
        return;
      }
      assert.deepEqual(weights(mine), weights(twin));
      for (const key of weights(twin)) {
        assert.equal(mine.get(key).info.dtype, twin.get(key).info.dtype, key);
        assert.deepEqual(mine.get(key).info.shape, twin.get(key).info.shape, key);
        assert.ok(mine.get(key).data.equals(twin.get(key).data), key);
      }
    });
  }

  it('lcm: its 3x3 convolutions are refused for GenAI, naming one, and kept for a fuse', async function () {
    const analysis = await lf.inspectLora(file('lcm'));
    const convs = analysis.layers.filter((l) => l.down.shape.length === 4 && l.down.shape[2] === 3).map((l) => l.key);
    assert.deepEqual(convs, [
      'lora_unet_down_blocks_0_downsamplers_0_conv',
      'lora_unet_down_blocks_0_resnets_0_conv1',
      'lora_unet_down_blocks_0_resnets_0_conv2',
      'lora_unet_up_blocks_0_upsamplers_0_conv',
      'lora_unet_up_blocks_1_resnets_1_conv1',
    ]);
    await rejectsWith(
      lf.toGenaiLora(file('lcm'), analysis, { family: 'sdxl' }),
      'ERR_ADAPTER_FORMAT',
      /"lora_unet_down_blocks_0_downsamplers_0_conv" is a convolution with a 3x3 kernel/,
    );
    // for a fuse, kept as they are; the time_emb_proj and conv_shortcut layers, whose kohya names GenAI drops, go
    // under their module paths, the same bytes
    const fused = await tensors(await lf.toGenaiLora(file('lcm'), analysis, { family: 'sdxl', kernels: true }));
    const original = await tensors(file('lcm'));
    const downs = [...fused.keys()].filter((k) => k.endsWith('.lora_down.weight'));
    assert.equal(downs.length, 12);
    assert.deepEqual(fused.get('lora_unet_up_blocks_1_resnets_1_conv1.lora_down.weight').info.shape, [4, 64, 3, 3]);
    assert.deepEqual(downs.filter((k) => !k.startsWith('lora_unet_')).sort(), [
      'down_blocks.0.resnets.0.time_emb_proj.lora_down.weight',
      'down_blocks.1.resnets.0.conv_shortcut.lora_down.weight',
    ]);
    assert.ok(
      fused
        .get('down_blocks.1.resnets.0.conv_shortcut.lora_down.weight')
        .data.equals(original.get('lora_unet_down_blocks_1_resnets_0_conv_shortcut.lora_down.weight').data),
    );
  });

  it("alpha-int64 (diffusers' convert_state_dict_to_kohya): its alphas rewritten as float32, which GenAI reads", async function () {
    // GenAI 2026.3 refuses the whole file as it is ("Not supported safetensors dtype: 4")
    const header = await st.readSafetensorsHeader(file('alpha-int64'));
    assert.ok(header.tensors.some((t) => t.name.endsWith('.alpha') && t.dtype === 'I64'));
    const analysis = await lf.inspectLora(file('alpha-int64'));
    const converted = await lf.toGenaiLora(file('alpha-int64'), analysis, { family: 'sdxl' });
    assert.notEqual(converted, null, 'an int64 alpha went to GenAI as it is');
    const alphas = [...(await tensors(converted)).values()].filter(({ info }) => info.name.endsWith('.alpha'));
    assert.equal(alphas.length, 12);
    for (const { info, data } of alphas) assert.deepEqual([info.dtype, st.scalarValue(info, data)], ['F32', 4]);
  });

  it('an integer tensor other than a one-element alpha: refused up front, naming it', async function () {
    const data = st.writeSafetensors([
      { name: 'lora_unet_x.lora_down.weight', dtype: 'F32', shape: [2, 2], data: Buffer.alloc(16) },
    ]);
    // the writer takes floats only: turn the tensor's dtype into I32 in the header (same byte size)
    const bytes = Buffer.from(data.toString('latin1').replace('"F32"', '"I32"'), 'latin1');
    await rejectsWith(lf.inspectLora(bytes), 'ERR_ADAPTER_INVALID', /"lora_unet_x\.lora_down\.weight" has dtype "I32"/);
  });

  // Layouts made here by renaming the tensors of committed fixtures: PEFT's own save of a model it wrapped
  // (PeftModel.save_pretrained: the module path under `base_model.model.`, the part told by the module names) and
  // ai-toolkit's files for ComfyUI (ComfyUI's prefix, PEFT's suffixes). Each must give the rewrite of the file it was
  // renamed from, tensor for tensor (the alphas aside: PEFT keeps them in adapter_config.json, not in the file).
  describe("other writers' layouts, renamed from the fixtures", function () {
    const SD15 = path.join(__dirname, 'fixtures', 'loras', 'sd15');
    const tmp = useTempDir('multilora-peft-model-');

    /** The tensors of `source` that `rename` names (null: left out), in a new file. */
    async function renamed(source, rename, name) {
      const out = [];
      for (const [key, { info, data }] of await tensors(source)) {
        const to = rename(key);
        if (to) out.push({ name: to, dtype: info.dtype, shape: info.shape, data });
      }
      const target = path.join(tmp(), `${name}.safetensors`);
      writeFileSync(target, st.writeSafetensors(out));
      return target;
    }

    /** A rewrite's A and B (no alphas), by name. */
    async function weights(file, family, options = {}) {
      const converted = await lf.toGenaiLora(file, await lf.inspectLora(file), { family, ...options });
      const all = await tensors(converted ?? file);
      return new Map([...all].filter(([key]) => !key.endsWith('.alpha')).map(([key, { data }]) => [key, data]));
    }

    function sameWeights(mine, theirs) {
      assert.deepEqual([...mine.keys()].sort(), [...theirs.keys()].sort());
      for (const [key, data] of theirs) assert.ok(mine.get(key).equals(data), key);
    }

    /** sd15's UNet module paths by their kohya spelling ('.' -> '_'). */
    async function unetModules() {
      const header = await st.readSafetensorsHeader(
        path.join(__dirname, 'fixtures', 'diffusers', 'sd15-tiny', 'unet', 'diffusion_pytorch_model.safetensors'),
      );
      const modules = header.tensors.map((t) => t.name.replace(/\.(weight|bias)$/, ''));
      return new Map(modules.map((m) => [m.replaceAll('.', '_'), m]));
    }

    it("PEFT's own save (base_model.model.), LoRA: the UNet of the peft layout, as under unet.", async function () {
      const toModel = (key) => (key.startsWith('unet.') ? `base_model.model.${key.slice(5)}` : null);
      const model = await renamed(file('peft'), toModel, 'lora');
      const unetOnly = await renamed(file('peft'), (key) => (key.startsWith('unet.') ? key : null), 'lora-unet');
      const analysis = await lf.inspectLora(model);
      assert.deepEqual([analysis.format, analysis.parts, analysis.layers.length], ['peft', ['unet'], 8]);
      sameWeights(await weights(model, 'sdxl'), await weights(unetOnly, 'sdxl'));
    });

    it("PEFT's own save, LoHa and LoKr (peft writes the factors under LyCORIS's names)", async function () {
      const modules = await unetModules();
      for (const kind of ['loha', 'lokr']) {
        const source = path.join(SD15, `${kind}.safetensors`);
        const toModel = (key) => {
          const m = /^lora_unet_(.+)\.((?:hada|lokr)_.+)$/.exec(key);
          return m && modules.has(m[1]) ? `base_model.model.${modules.get(m[1])}.${m[2]}` : null;
        };
        const model = await renamed(source, toModel, kind);
        const unetOnly = await renamed(source, (key) => (key.startsWith('lora_unet_') ? key : null), `${kind}-unet`);
        const analysis = await lf.inspectLora(model);
        assert.equal(analysis.format, 'peft', kind);
        assert.deepEqual(analysis.parts, ['unet'], kind);
        assert.ok(analysis.layers.length > 0 && analysis.layers.every((l) => l.factorized?.kind === kind), kind);
        assert.equal(analysis.layers.length, (await lf.inspectLora(unetOnly)).layers.length, kind);
        sameWeights(await weights(model, 'sd'), await weights(unetOnly, 'sd'));
      }
    });

    it("ai-toolkit's files for ComfyUI: its prefix with PEFT's lora_A / lora_B, as the comfyui layout", async function () {
      const toPeftSuffix = (key) =>
        key.replace('.lora_down.weight', '.lora_A.weight').replace('.lora_up.weight', '.lora_B.weight');
      const aiToolkit = await renamed(file('comfyui'), toPeftSuffix, 'ai-toolkit');
      const analysis = await lf.inspectLora(aiToolkit);
      assert.deepEqual([analysis.format, analysis.layers.length, analysis.unrecognized], ['comfyui', 12, []]);
      sameWeights(await weights(aiToolkit, 'sdxl'), await weights(file('comfyui'), 'sdxl'));
      // a DiT's (ai-toolkit's Flux and Qwen-Image files): the transformer
      const dit = await renamed(
        aiToolkit,
        (key) =>
          key.includes('input_blocks_4_1') || key.includes('input_blocks.4.1')
            ? key.replace(/input_blocks.4.1./, 'transformer_blocks.0.')
            : null,
        'ai-toolkit-dit',
      );
      assert.deepEqual((await lf.inspectLora(dit)).parts, ['transformer']);
    });

    it("PEFT's own save, DoRA's lora_magnitude_vector, and a text encoder's file (text_model.)", async function () {
      const source = path.join(SD15, 'dora-peft.safetensors');
      for (const [part, prefix] of [
        ['unet', 'unet.'],
        ['text_encoder', 'text_encoder.'],
      ]) {
        const toModel = (key) => (key.startsWith(prefix) ? `base_model.model.${key.slice(prefix.length)}` : null);
        const model = await renamed(source, toModel, `dora-${part}`);
        const partOnly = await renamed(source, (key) => (key.startsWith(prefix) ? key : null), `dora-${part}-only`);
        const analysis = await lf.inspectLora(model);
        assert.deepEqual(analysis.parts, [part]);
        assert.ok(
          analysis.layers.every((l) => l.dora?.axis === 'out'),
          part,
        );
        // the fuse's rewrite: A, B and the magnitudes under their axis
        sameWeights(await weights(model, 'sd', { kernels: true }), await weights(partOnly, 'sd', { kernels: true }));
      }
    });
  });
});
