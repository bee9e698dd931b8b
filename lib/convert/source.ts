// The model to convert: a diffusers folder here (inspectDiffusers), or a Hugging Face Hub id, asked about before
// anything slow (checkHub).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { AbortError, MultiloraError } from '../core/errors';
import { GENAI_CLASSES, familyOf, type ModelFamily } from '../core/model';

/** `org/name` as the Hub spells repositories. */
export const HUB_ID = /^[A-Za-z0-9][\w.-]{0,95}\/[\w.-]{1,96}$/;

export function sourceError(message: string): MultiloraError {
  return new MultiloraError('ERR_CONVERT_SOURCE', message);
}

export interface DiffusersModel {
  dir: string;
  pipelineClass: string;
  family: ModelFamily;
  /** The components model_index.json names (unet, text_encoder, vae...). */
  components: string[];
}

/** Checks that `dir` is a diffusers model GenAI can run once exported. */
export function inspectDiffusers(dir: string, given: string): DiffusersModel {
  const index = path.join(dir, 'model_index.json');
  if (!existsSync(index)) {
    const names = readdirSync(dir);
    const single = names.find((n) => /\.(safetensors|ckpt)$/i.test(n));
    throw sourceError(
      single
        ? `${given} holds ${single} but no model_index.json: it is a single-file checkpoint, not a diffusers model folder. ` +
            "Load it with diffusers' from_single_file and save_pretrained it to a folder, then convert that folder"
        : `${given} is not a diffusers model folder (it has no model_index.json): give the folder that diffusers' ` +
            'save_pretrained wrote, or a Hugging Face Hub id (org/name)',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(index, 'utf8'));
  } catch (err) {
    throw sourceError(`${index} is not valid JSON (${(err as Error).message}): the model folder is damaged`);
  }
  const pipelineClass = (parsed as { _class_name?: unknown })?._class_name;
  if (typeof pipelineClass !== 'string')
    throw sourceError(`${index} names no pipeline class ("_class_name"): the model folder is damaged`);
  const components = Object.entries(parsed as Record<string, unknown>)
    .filter(([key, value]) => !key.startsWith('_') && Array.isArray(value) && value[0] !== null && value[1] !== null)
    .map(([key]) => key);
  if (components.some((c) => existsSync(path.join(dir, c, 'openvino_model.xml')))) {
    throw sourceError(
      `${given} is already an OpenVINO model (it has openvino_model.xml files): load it with Pipeline.load, no conversion needed`,
    );
  }
  if (!GENAI_CLASSES.includes(pipelineClass)) {
    throw sourceError(
      `${given} is a ${pipelineClass}, which OpenVINO GenAI 2026.3 cannot run as text-to-image. It runs ${GENAI_CLASSES.join(', ')}`,
    );
  }
  if (/Inpaint|Fill/.test(pipelineClass)) {
    throw sourceError(
      `${given} is an inpainting model (${pipelineClass}); multilora convert exports text-to-image models`,
    );
  }
  const missing = components.filter((c) => !existsSync(path.join(dir, c)));
  if (missing.length)
    throw sourceError(
      `${given} is incomplete: model_index.json names ${missing.join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} missing`,
    );
  return { dir, pipelineClass, family: familyOf(pipelineClass), components };
}

/**
 * Checks `dir` for convert's tiny VAE (options.tinyVae): a diffusers AutoencoderTiny folder (its config.json and
 * weights), and, once the model is known, latents of as many channels as the model's VAE has, decoded to an image
 * as many times larger. ERR_CONVERT_SOURCE.
 */
export function checkTinyVae(dir: string, model?: DiffusersModel): void {
  const label = `options.tinyVae (${dir})`;
  const config = readJson(path.join(dir, 'config.json'), `${label} is not a diffusers AutoencoderTiny folder`);
  if (config._class_name !== 'AutoencoderTiny') {
    throw sourceError(
      `${label} holds ${JSON.stringify(config._class_name ?? 'a model of no class')}, not an AutoencoderTiny (such as TAESD or TAESDXL)`,
    );
  }
  if (
    !['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.bin'].some((f) => existsSync(path.join(dir, f)))
  )
    throw sourceError(`${label} has no weights (diffusion_pytorch_model.safetensors)`);
  if (!model) return;
  const vae = readJson(path.join(model.dir, 'vae', 'config.json'), `The model ${model.dir} has no VAE config`);
  const own = vae.latent_channels ?? 4;
  const tiny = config.latent_channels ?? 4;
  if (own !== tiny) {
    throw sourceError(
      `${label} decodes latents of ${JSON.stringify(tiny)} channels, the model's VAE makes ${JSON.stringify(own)}: take the tiny VAE made for this family`,
    );
  }
  // GenAI sizes the latents by 2^(blocks - 1) of the decoder's config; AutoencoderTiny upsamples by its factor
  const scale = (blocks: unknown, factor: unknown = 2): number =>
    Array.isArray(blocks) ? Number(factor) ** (blocks.length - 1) : NaN;
  const ownScale = scale(vae.block_out_channels);
  const tinyScale = scale(config.decoder_block_out_channels, config.upsampling_scaling_factor ?? 2);
  if (ownScale !== tinyScale) {
    throw sourceError(
      `${label} makes images ${String(tinyScale)} times its latents, the model's VAE ${String(ownScale)} times: take the tiny VAE made for this model`,
    );
  }
}

/** A JSON object from `file`, or ERR_CONVERT_SOURCE saying `missing` (and why). */
function readJson(file: string, missing: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw sourceError(`${missing}: ${file}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw sourceError(`${missing}: ${file} is not a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Asks the Hub about `id` before anything is set up: unreachable, unknown and non-diffusers ids fail here, fast. */
export async function checkHub(
  id: string,
  signal: AbortSignal | undefined,
  revision: string | undefined,
): Promise<void> {
  const offline =
    'a local diffusers model folder converts offline: download the model elsewhere and copy its folder here';
  if (/^(1|true|yes|on)$/i.test(process.env.HF_HUB_OFFLINE ?? '')) {
    throw new MultiloraError(
      'ERR_HUB_UNREACHABLE',
      `${id} is not a folder here, and HF_HUB_OFFLINE is set, so the Hugging Face Hub is not asked: ${offline}`,
    );
  }
  const endpoint = (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  const url = `${endpoint}/api/models/${id}${revision ? `/revision/${encodeURIComponent(revision)}` : ''}`;
  const token = process.env.HF_TOKEN;
  const signals = [AbortSignal.timeout(15_000), ...(signal ? [signal] : [])];
  let response: Response;
  try {
    response = await fetch(url, {
      signal: AbortSignal.any(signals),
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  } catch (err) {
    if (signal?.aborted) throw new AbortError(signal.reason);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why =
      (err as Error).name === 'TimeoutError'
        ? 'no answer in 15 s'
        : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw new MultiloraError(
      'ERR_HUB_UNREACHABLE',
      `${id} is not a folder here, and the Hugging Face Hub (${endpoint}) could not be reached to download it (${why}): ${offline}`,
    );
  }
  if (response.status === 401 || response.status === 403) {
    throw sourceError(
      `The Hugging Face Hub refuses ${id} (HTTP ${response.status}): a gated or private model needs an access token in HF_TOKEN`,
    );
  }
  if (response.status === 404) {
    throw sourceError(
      `${id} is neither a folder here nor a model on the Hugging Face Hub${revision ? ` (at revision ${revision})` : ''}`,
    );
  }
  if (!response.ok) {
    throw new MultiloraError(
      'ERR_HUB_UNREACHABLE',
      `The Hugging Face Hub answered HTTP ${response.status} for ${id}: try again later, or ${offline}`,
    );
  }
  const info = (await response.json().catch(() => null)) as { siblings?: Array<{ rfilename?: string }> } | null;
  const files = info?.siblings?.map((s) => s.rfilename) ?? [];
  if (files.length && !files.includes('model_index.json')) {
    throw sourceError(`${id} on the Hugging Face Hub is not a diffusers model (it has no model_index.json)`);
  }
}
