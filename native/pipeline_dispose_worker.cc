#include "pipeline_dispose_worker.h"

namespace multilora {

PipelineDisposeWorker::PipelineDisposeWorker(Napi::Env env, std::shared_ptr<ov::genai::Text2ImagePipeline> pipeline)
    : PromiseWorker(env, "multilora.PipelineDispose"), pipeline_(std::move(pipeline)) {}

void PipelineDisposeWorker::Run() { pipeline_.reset(); }

Napi::Value PipelineDisposeWorker::Resolve(Napi::Env env) { return env.Undefined(); }

}  // namespace multilora
