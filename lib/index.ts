export { Pipeline } from './pipeline';
export type { AdapterSelection, GenerateOptions, Image, LoadOptions, ModelDefaults } from './pipeline';
export type { AdapterSpec } from './adapter';
export type { ModelFamily, ModelInfo } from './model';
export { MultiloraError, DisposedError } from './errors';
export type { ErrorCode } from './errors';
export { encodePng, decodePng } from './png';
export { defaultModelDir } from './defaults';
