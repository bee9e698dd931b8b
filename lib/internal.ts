// The package's one internal entry: what the tests and the benchmark scripts reach below the public API. It is not
// in package.json's "exports", so an app cannot import it by name; nothing here is covered by semver.
export * as safetensors from './lora/safetensors';
export * as loraFormat from './lora/format';
export * as loraFactorized from './lora/factorized';
export * as loraApproximate from './lora/approximate';
export * as errors from './core/errors';
export * as diagnose from './lora/diagnose';
export * as loraFuse from './lora/fuse';
export * as genaiQuirks from './core/genai-quirks';
export * as model from './core/model';
export * as binding from './core/binding';
export * as pool from './core/pool';
export * as pipeline from './core/pipeline';
export * as taskQueue from './core/task-queue';
export * as schema from './core/schema';
export * as options from './core/options';
export * as remoteQueue from './remote/queue';
export * as remoteWorker from './remote/worker';
export * as serverRequest from './server/request';
export * as cliGenerate from './cli/generate';
export * as cliArgs from './cli/args';
export * as server from './server/index';
