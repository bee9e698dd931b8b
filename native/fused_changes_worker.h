// What fusing each given layer alone would change in a model's weights (native/fuse.h, FusedChanges), off the JS
// thread: for `approximate` of DoRA and OFT layers, whose change depends on the model's own weights.
#pragma once

#include <string>
#include <vector>

#include <napi.h>

#include "fuse.h"
#include "promise_worker.h"

namespace multilora {

class FusedChangesWorker : public PromiseWorker {
 public:
  /// info: (model dir, layers as lib/lora/fuse.ts gives them).
  explicit FusedChangesWorker(const Napi::CallbackInfo& info);

 protected:
  void Run() override;
  Napi::Value Resolve(Napi::Env env) override;

 private:
  std::string model_dir_;
  std::vector<FuseLayer> layers_;
  std::vector<std::vector<float>> changes_;
};

}  // namespace multilora
