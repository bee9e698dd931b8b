export { Pipeline } from './pipeline';
export type { LoadOptions, MultiloraWarning } from './pipeline';
export { PipelinePool, PoolAdapterSet } from './pool';
export type { PipelinePoolOptions } from './pool';
export { GENERATORS, SCHEDULERS } from './options';
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
} from './options';
export { AdapterSet } from './adapter-set';
export type { AdapterInfo } from './adapter-set';
export type { AdapterReport } from './diagnose';
export type { LoraFormat, LoraPart, LoraScale } from './lora-format';
export type { AdapterSpec } from './adapter';
export type { ModelFamily, ModelInfo } from './model';
export type { StaticShape } from './static-shape';
export { MultiloraError, DisposedError, AbortError, ERROR_CODES } from './errors';
export type { ErrorCode } from './errors';
export { encodePng, decodePng } from './png';
export { defaultModelDir } from './defaults';
export { convert, CONVERT_SCHEDULERS, WEIGHT_FORMATS } from './convert';
export type { ConvertOptions, ConvertPhase, ConvertScheduler, ConvertProgress, ConvertResult, FuseLora, FusedReport, WeightFormat } from './convert';
export { RemoteQueue, RemoteJob } from './remote';
export type { EnqueueOptions, RemoteGenerateOptions, RemoteJobDetails, RemoteQueueOptions, WorkerInfo, WorkerLimits } from './remote';
export { startWorker } from './worker';
export type { RunningWorker, WorkerClosed, WorkerEvent, WorkerOptions } from './worker';
export { startServer } from './serve';
export type { RunningServer, ServeOptions } from './serve';
