// What multilora reads of a model folder (an optimum-intel export of a diffusers pipeline) before GenAI does:
// enough to give a clear error for a folder that is not a model, and the facts that argument checks need.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { MultiloraError } from './errors';

export type ModelFamily = 'sd' | 'sdxl' | 'lcm' | 'sd3' | 'flux' | 'other';

export interface ModelInfo {
  /** Absolute path of the model folder. */
  dir: string;
  /** `_class_name` of model_index.json, e.g. "StableDiffusionXLPipeline". */
  pipelineClass: string;
  family: ModelFamily;
  /** Image size / latent size: width and height must be multiples of it. */
  vaeScaleFactor: number;
}

const FAMILIES: Array<[RegExp, ModelFamily]> = [
  [/^LatentConsistencyModel/, 'lcm'],
  [/^StableDiffusionXL/, 'sdxl'],
  [/^StableDiffusion3/, 'sd3'],
  [/^Flux/, 'flux'],
  [/^StableDiffusion/, 'sd'],
];

function readJson(file: string, code: 'ERR_MODEL_NOT_FOUND' | 'ERR_MODEL_INVALID'): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new MultiloraError(code, `Cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch (err) {
    throw new MultiloraError('ERR_MODEL_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  throw new MultiloraError('ERR_MODEL_INVALID', `${file} does not hold a JSON object`);
}

/** Reads model_index.json and the VAE config; throws ERR_MODEL_NOT_FOUND or ERR_MODEL_INVALID. */
export function inspectModel(modelDir: string): ModelInfo {
  const dir = path.resolve(modelDir);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new MultiloraError('ERR_MODEL_NOT_FOUND', `No model folder at ${dir}`);
  }
  if (!isDir) throw new MultiloraError('ERR_MODEL_NOT_FOUND', `${dir} is a file, not a model folder`);
  const index = readJson(path.join(dir, 'model_index.json'), 'ERR_MODEL_NOT_FOUND');
  const pipelineClass = index._class_name;
  if (typeof pipelineClass !== 'string') {
    throw new MultiloraError('ERR_MODEL_INVALID', `${path.join(dir, 'model_index.json')} names no pipeline class`);
  }
  const family = FAMILIES.find(([re]) => re.test(pipelineClass))?.[1] ?? 'other';
  let vaeScaleFactor = 8;
  for (const part of ['vae_decoder', 'vae_encoder']) {
    let config: Record<string, unknown>;
    try {
      config = readJson(path.join(dir, part, 'config.json'), 'ERR_MODEL_INVALID');
    } catch {
      continue;
    }
    const blocks = config.block_out_channels;
    if (Array.isArray(blocks) && blocks.length > 0) vaeScaleFactor = 2 ** (blocks.length - 1);
    break;
  }
  return { dir, pipelineClass, family, vaeScaleFactor };
}
