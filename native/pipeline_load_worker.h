// Reads and compiles a model folder into a Text2ImagePipeline off the JS thread, registering its adapters. On a
// thread of its own (thread_promise_worker.h): compiling a real model takes as long as a generation. GenAI cannot
// stop a load half-way, so process exit and worker_threads teardown wait for it to end.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <napi.h>

#include "genai_build.h"
#include "pipeline.h"
#include "thread_promise_worker.h"

namespace multilora {

class PipelineLoadWorker : public ThreadPromiseWorker {
 public:
  PipelineLoadWorker(Napi::Env env, std::string model_dir, std::string device, std::vector<ov::genai::Adapter> adapters,
                     ov::AnyMap properties, std::optional<std::vector<float>> fused_alphas,
                     std::optional<StaticShape> static_shape);

 protected:
  void Run() override;
  Napi::Value Resolve(Napi::Env env) override;

 private:
  std::string model_dir_;
  std::string device_;
  ov::AnyMap properties_;
  std::optional<StaticShape> static_shape_;
  LoadedPipeline loaded_;
};

}  // namespace multilora
