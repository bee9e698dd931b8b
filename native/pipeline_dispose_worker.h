// Frees a Text2ImagePipeline off the JS thread: releasing compiled models can take a while.
#pragma once

#include <memory>

#include <napi.h>

#include "genai/genai.h"
#include "pipeline.h"
#include "promise_worker.h"

namespace multilora {

class PipelineDisposeWorker : public PromiseWorker {
 public:
  PipelineDisposeWorker(Napi::Env env, GenaiPipelines pipelines);

 protected:
  void Run() override;
  Napi::Value Resolve(Napi::Env env) override;

 private:
  GenaiPipelines pipelines_;
};

}  // namespace multilora
