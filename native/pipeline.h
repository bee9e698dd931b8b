// A GenAI Text2ImagePipeline with the LoRA adapters registered when it was built. Mirrors lib/pipeline.ts.
// One generate at a time: lib/pipeline.ts queues calls, and a busy flag here refuses a second one outright.
#pragma once

#include <memory>
#include <vector>

#include <napi.h>

#include "genai/genai.h"

namespace multilora {

/// What PipelineLoadWorker hands to the constructor.
struct LoadedPipeline {
  std::shared_ptr<ov::genai::Text2ImagePipeline> pipeline;
  std::vector<ov::genai::Adapter> adapters;
  int64_t default_width = -1;
  int64_t default_height = -1;
  size_t default_steps = 0;
  float default_guidance_scale = 0.0f;
};

class Pipeline : public Napi::ObjectWrap<Pipeline> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object NewInstance(Napi::Env env, LoadedPipeline loaded);

  explicit Pipeline(const Napi::CallbackInfo& info);

  /// Called by PipelineGenerateWorker on the JS thread when its run is over.
  void GenerateFinished() { busy_ = false; }

 private:
  /// Pipeline.load(modelDir, device, adapters: Adapter[], properties: {[key]: string}) -> Promise<Pipeline>
  static Napi::Value Load(const Napi::CallbackInfo& info);
  /// pipeline.generate(prompt, options) -> Promise<{ data, count, width, height }>; see PipelineGenerateWorker.
  Napi::Value Generate(const Napi::CallbackInfo& info);
  /// pipeline.dispose() -> Promise<void>: frees the GenAI pipeline off the JS thread. Idempotent.
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  /// pipeline.defaults -> { width, height, steps, guidanceScale }, as GenAI derived them from the model.
  Napi::Value Defaults(const Napi::CallbackInfo& info);

  std::shared_ptr<ov::genai::Text2ImagePipeline> pipeline_;
  std::vector<ov::genai::Adapter> adapters_;
  LoadedPipeline defaults_;
  bool busy_ = false;
};

}  // namespace multilora
