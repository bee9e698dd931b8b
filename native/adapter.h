// A LoRA adapter read by GenAI (ov::genai::Adapter). Mirrors lib/core/adapter.ts.
#pragma once

#include <napi.h>

#include "genai/genai.h"

namespace multilora {

class Adapter : public Napi::ObjectWrap<Adapter> {
 public:
  static Napi::Function Init(Napi::Env env);
  /// Wraps an adapter that a worker has read.
  static Napi::Object NewInstance(Napi::Env env, const ov::genai::Adapter& adapter);
  /// Unwraps a JS value that must be an Adapter; throws a coded TypeError otherwise.
  static Adapter* Unwrap(Napi::Value value);

  explicit Adapter(const Napi::CallbackInfo& info);

  const ov::genai::Adapter& genai() const { return adapter_; }

 private:
  /// Adapter.load(path: string | Buffer) -> Promise<Adapter>: reads a .safetensors file (or its bytes) off the JS thread.
  static Napi::Value Load(const Napi::CallbackInfo& info);
  /// Adapter.nonFinite(path, [[offset, byteLength, "F32" | "F16" | "BF16"], ...]) -> Promise<null | [span, element]>:
  /// the first NaN or infinite value among those tensors of a .safetensors file, read once off the JS thread.
  static Napi::Value NonFinite(const Napi::CallbackInfo& info);
  /// adapter.release(): drops this object's hold on the weights; pipelines built with it keep their own.
  Napi::Value Release(const Napi::CallbackInfo& info);

  ov::genai::Adapter adapter_;
};

}  // namespace multilora
