// What multilora reads of a model folder (an optimum-intel export of a diffusers pipeline) before GenAI does:
// enough to give a clear error for a folder that is not a model, or one that is incomplete or damaged, and the facts
// that argument checks need.
import { readFileSync, statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
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

/** The family of a pipeline class (model_index.json's `_class_name`). */
export function familyOf(pipelineClass: string): ModelFamily {
  return FAMILIES.find(([re]) => re.test(pipelineClass))?.[1] ?? 'other';
}

/**
 * The pipeline classes (model_index.json's `_class_name`) that OpenVINO GenAI 2026.3 builds a Text2ImagePipeline
 * from, directly or through an InpaintingPipeline (checked against the library: any other class is "Unsupported").
 */
export const GENAI_CLASSES: readonly string[] = [
  'StableDiffusionPipeline',
  'StableDiffusionXLPipeline',
  'LatentConsistencyModelPipeline',
  'StableDiffusion3Pipeline',
  'FluxPipeline',
  'Flux2KleinPipeline',
  'StableDiffusionInpaintPipeline',
  'StableDiffusionXLInpaintPipeline',
  'StableDiffusion3InpaintPipeline',
  'FluxFillPipeline',
  'FluxInpaintPipeline',
];

const EXPORT_HINT = 'optimum-cli export openvino --model <model id or diffusers folder> --task text-to-image <folder>';

/** One file GenAI reads: its path, and whether it is an IR (.xml whose weights are in the .bin beside it). */
interface ModelFile {
  file: string;
  ir: boolean;
}

/** The files of each ModelInfo that GenAI will read, for checkModelFiles. */
const filesOf = new WeakMap<ModelInfo, ModelFile[]>();

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
    throw new MultiloraError(
      'ERR_MODEL_INVALID',
      `${file} is not valid JSON (${(err as Error).message}): the model folder is damaged; export or download it again`,
      { cause: err },
    );
  }
  throw new MultiloraError('ERR_MODEL_INVALID', `${file} does not hold a JSON object: the model folder is damaged`);
}

function incomplete(dir: string, problem: string): MultiloraError {
  return new MultiloraError(
    'ERR_MODEL_INVALID',
    `The model folder ${dir} is incomplete: ${problem}. Copy or download the whole folder again, or export it again (${EXPORT_HINT})`,
  );
}

/**
 * What GenAI reads of a model folder, from the parts model_index.json lists (those with a class, not [null, null]):
 * each model part's config.json and IR, each tokenizer's IR, the scheduler's config, and the VAE encoder when there
 * is one (multilora builds image-to-image and inpainting from it).
 */
function modelFiles(dir: string, index: Record<string, unknown>): ModelFile[] {
  const listed = (key: string): boolean => {
    const value = index[key];
    return Array.isArray(value) && value.some((v) => v !== null);
  };
  const files: ModelFile[] = [];
  const model = (part: string): void => {
    files.push({ file: path.join(dir, part, 'config.json'), ir: false });
    files.push({ file: path.join(dir, part, 'openvino_model.xml'), ir: true });
  };
  for (const key of ['text_encoder', 'text_encoder_2', 'text_encoder_3', 'unet', 'transformer']) {
    if (listed(key)) model(key);
  }
  for (const key of ['tokenizer', 'tokenizer_2', 'tokenizer_3']) {
    if (listed(key)) files.push({ file: path.join(dir, key, 'openvino_tokenizer.xml'), ir: true });
  }
  if (listed('vae')) {
    model('vae_decoder');
    if (isFile(path.join(dir, 'vae_encoder', 'openvino_model.xml'))) model('vae_encoder');
  }
  if (listed('scheduler')) files.push({ file: path.join(dir, 'scheduler', 'scheduler_config.json'), ir: false });
  return files;
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Reads model_index.json and the VAE config, and checks that every file GenAI will read is there; throws
 * ERR_MODEL_NOT_FOUND or ERR_MODEL_INVALID. Reads no IR: checkModelFiles() does, off the hot path of a CLI.
 */
export function inspectModel(modelDir: string): ModelInfo {
  const dir = path.resolve(modelDir);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new MultiloraError('ERR_MODEL_NOT_FOUND', `No model folder at ${dir}`);
  }
  if (!isDir) throw new MultiloraError('ERR_MODEL_NOT_FOUND', `${dir} is a file, not a model folder`);
  const indexFile = path.join(dir, 'model_index.json');
  if (!isFile(indexFile)) {
    throw new MultiloraError(
      'ERR_MODEL_NOT_FOUND',
      `${dir} has no model_index.json, so it is not a model folder: give the folder that optimum-intel exported (${EXPORT_HINT})`,
    );
  }
  const index = readJson(indexFile, 'ERR_MODEL_NOT_FOUND');
  const pipelineClass = index._class_name;
  if (typeof pipelineClass !== 'string') {
    throw new MultiloraError(
      'ERR_MODEL_INVALID',
      `${indexFile} names no pipeline class (its "_class_name"): the model folder is damaged; export or download it again`,
    );
  }
  if (!GENAI_CLASSES.includes(pipelineClass)) {
    throw new MultiloraError(
      'ERR_MODEL_INVALID',
      `${indexFile} names the pipeline class ${JSON.stringify(pipelineClass.slice(0, 200))}, which OpenVINO GenAI 2026.3 ` +
        `cannot load as text-to-image. It loads ${GENAI_CLASSES.join(', ')}: export such a model (${EXPORT_HINT})`,
    );
  }
  const family = familyOf(pipelineClass);
  const files = modelFiles(dir, index);
  for (const { file, ir } of files) {
    if (!isFile(file)) throw incomplete(dir, `${path.relative(dir, file)} is missing`);
    const bin = file.replace(/\.xml$/, '.bin');
    if (ir && !isFile(bin))
      throw incomplete(dir, `${path.relative(dir, bin)} (the weights of ${path.relative(dir, file)}) is missing`);
    if (!ir) readJson(file, 'ERR_MODEL_INVALID'); // GenAI parses each config at load, and names no file when one is broken
  }
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
  const info: ModelInfo = { dir, pipelineClass, family, vaeScaleFactor };
  filesOf.set(info, files);
  return info;
}

/** The end of an OpenVINO IR: a file cut short lacks it. */
const IR_END = '</net>';
/** A constant's place in the .bin: <data ... offset="N" size="M" .../>. */
const WEIGHTS = /<data\b[^>]*?\boffset="(\d+)"[^>]*?\bsize="(\d+)"/g;

/**
 * Checks the IR files of a model from inspectModel() before GenAI compiles them: each .xml is whole (ends with
 * </net>), and each .bin holds every weight its .xml points at. GenAI would fail too, but later and with OpenVINO's
 * words ("Incorrect weights in bin file!"), or, for a damaged VAE encoder, silently load without image inputs.
 * Throws ERR_MODEL_INVALID naming the file. Reads the .xml files (megabytes), never the .bin files.
 */
export async function checkModelFiles(model: ModelInfo): Promise<void> {
  const files = filesOf.get(model) ?? [];
  for (const { file, ir } of files) {
    if (!ir) continue;
    const bin = file.replace(/\.xml$/, '.bin');
    const dir = model.dir;
    let xml: string;
    let binSize: number;
    try {
      const handle = await open(file, 'r');
      try {
        xml = await handle.readFile('latin1');
      } finally {
        await handle.close();
      }
      binSize = (await stat(bin)).size;
    } catch (err) {
      throw incomplete(dir, `${path.relative(dir, file)} cannot be read (${(err as Error).message})`);
    }
    if (!xml.trimEnd().endsWith(IR_END)) {
      throw incomplete(dir, `${path.relative(dir, file)} is cut short (it does not end with ${IR_END})`);
    }
    let need = 0;
    for (const m of xml.matchAll(WEIGHTS)) need = Math.max(need, Number(m[1]) + Number(m[2]));
    if (need > binSize) {
      throw incomplete(
        dir,
        `${path.relative(dir, bin)} holds ${binSize} bytes, but ${path.relative(dir, file)} reads weights up to byte ${need} (the file is cut short)`,
      );
    }
  }
}
