// Fuse mode for the adapters that GenAI's own fuse cannot take (native/fuse.h): reads the model parts they change,
// fuses them in memory, assembles and compiles the pipeline, on a thread of its own as PipelineLoadWorker does.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <napi.h>

#include "fuse.h"
#include "pipeline.h"
#include "thread_promise_worker.h"

namespace multilora {

/// A layer to fuse as lib/lora/fuse.ts gives it (NativeFuseLayer).
FuseLayer FuseLayerOf(const Napi::Object& o);

class PipelineFuseWorker : public ThreadPromiseWorker {
 public:
  /// info: (model dir, device, family, properties, static shape or null, layers); see lib/lora/fuse.ts.
  explicit PipelineFuseWorker(const Napi::CallbackInfo& info);

 protected:
  void Run() override;
  Napi::Value Resolve(Napi::Env env) override;

 private:
  std::string family_;
  std::string device_;
  ov::AnyMap properties_;
  std::optional<StaticShape> static_shape_;
  std::vector<FuseLayer> layers_;
  LoadedPipeline loaded_;
};

}  // namespace multilora
