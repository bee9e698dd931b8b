#include "pipeline_dispose_worker.h"

namespace multilora {

PipelineDisposeWorker::PipelineDisposeWorker(Napi::Env env, GenaiPipelines pipelines)
    : PromiseWorker(env, "multilora.PipelineDispose"), pipelines_(std::move(pipelines)) {}

void PipelineDisposeWorker::Run() {
  // The derived pipelines first, the one they were built from last.
  pipelines_.text2image.reset();
  pipelines_.image2image.reset();
  pipelines_.inpainting.reset();
}

Napi::Value PipelineDisposeWorker::Resolve(Napi::Env env) { return env.Undefined(); }

}  // namespace multilora
