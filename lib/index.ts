export { Pipeline, SCHEDULERS } from './pipeline';
export type {
  AdapterSelection,
  BatchOptions,
  GenerateOptions,
  Image,
  LoadOptions,
  Metrics,
  ModelDefaults,
  ProgressEvent,
  SchedulerName,
} from './pipeline';
export type { AdapterSpec } from './adapter';
export type { ModelFamily, ModelInfo } from './model';
export { MultiloraError, DisposedError, AbortError, ERROR_CODES } from './errors';
export type { ErrorCode } from './errors';
export { encodePng, decodePng } from './png';
export { defaultModelDir } from './defaults';
