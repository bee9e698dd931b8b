// What the OpenVINO IR of a model holds, read through the OpenVINO core API: the layers a LoRA can patch.
// Mirrors lib/core/model.ts. Nothing is compiled: the IR is read, listed and let go.
#pragma once

#include <napi.h>

namespace multilora {

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Model(const Napi::CallbackInfo& info);

 private:
  /// Model.layers(xmlPath) -> Promise<Array<{ name, type, shape, transposeB }>>: every MatMul and Convolution whose
  /// weights have a static shape, by friendly name, as GenAI's LoRA matching sees them.
  static Napi::Value Layers(const Napi::CallbackInfo& info);
  /// Model.fusedChanges(modelDir, layers) -> Promise<Float32Array[]>: W' - W of each layer fused alone (native/fuse.h).
  static Napi::Value FusedChanges(const Napi::CallbackInfo& info);
};

}  // namespace multilora
