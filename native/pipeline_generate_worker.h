// One Text2ImagePipeline::generate call, off the JS thread. The JS Buffer of the result wraps the memory of a tensor
// that a finalizer keeps alive: no copy on the JS thread.
#pragma once

#include <memory>
#include <string>

#include <napi.h>

#include "genai/genai.h"
#include "promise_worker.h"

namespace multilora {

class Pipeline;

class PipelineGenerateWorker : public PromiseWorker {
 public:
  PipelineGenerateWorker(Napi::Env env, Napi::Object owner, Pipeline* pipeline,
                         std::shared_ptr<ov::genai::Text2ImagePipeline> genai, std::string prompt, ov::AnyMap properties);

 protected:
  void Run() override;
  Napi::Value Resolve(Napi::Env env) override;
  void Settled(Napi::Env env) override;

 private:
  Napi::ObjectReference owner_;  // keeps the JS Pipeline alive while the run lasts
  Pipeline* pipeline_;
  std::shared_ptr<ov::genai::Text2ImagePipeline> genai_;
  std::string prompt_;
  ov::AnyMap properties_;
  ov::Tensor images_;
};

}  // namespace multilora
