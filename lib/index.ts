export { Pipeline } from './core/pipeline';
export type { LoadOptions, MultiloraWarning } from './core/pipeline';
export { PipelinePool, PoolAdapterSet } from './core/pool';
export type { PipelinePoolOptions } from './core/pool';
export { GENERATORS, SCHEDULERS } from './core/options';
export type {
  AdapterSelection,
  BatchOptions,
  GenerateOptions,
  GeneratorName,
  Image,
  ImageInput,
  ImageToImageOptions,
  Metrics,
  ModelDefaults,
  OutputMode,
  ProgressEvent,
  SchedulerName,
} from './core/options';
export { AdapterSet } from './core/adapter-set';
export type { AdapterInfo } from './core/adapter-set';
export type { AdapterReport } from './lora/diagnose';
export type { Approximate, ApproximatedLayer, Approximation, LoraFormat, LoraPart, LoraScale } from './lora/format';
export type { AdapterSpec } from './core/adapter';
export type { ModelFamily, ModelInfo } from './core/model';
export type { StaticShape } from './core/static-shape';
export { MultiloraError, DisposedError, AbortError, ERROR_CODES } from './core/errors';
export type { ErrorCode } from './core/errors';
export { encodePng, decodePng } from './core/png';
export { defaultModelDir } from './core/defaults';
export { convert, CONVERT_SCHEDULERS, WEIGHT_FORMATS } from './convert/index';
export type {
  ConvertOptions,
  ConvertPhase,
  ConvertScheduler,
  ConvertProgress,
  ConvertResult,
  FuseLora,
  FusedReport,
  WeightFormat,
} from './convert/index';
export { RemoteQueue, RemoteJob } from './remote/queue';
export type {
  EnqueueOptions,
  RemoteGenerateOptions,
  RemoteJobDetails,
  RemoteQueueOptions,
  WorkerInfo,
  WorkerLimits,
} from './remote/queue';
export { startWorker } from './remote';
export type { RunningWorker, WorkerClosed, WorkerEvent, WorkerOptions } from './remote';
export { startServer } from './serve';
export type { RunningServer, ServeOptions } from './serve';
