#include "internals.h"

#include <cstring>

#include "torch_generator.h"

namespace multilora {

namespace {

Napi::Value TorchRandn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TorchGenerator generator(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
  Napi::Array shapes = info[1].As<Napi::Array>();
  Napi::Array out = Napi::Array::New(env, shapes.Length());
  for (uint32_t i = 0; i < shapes.Length(); ++i) {
    Napi::Array dims = shapes.Get(i).As<Napi::Array>();
    ov::Shape shape;
    for (uint32_t d = 0; d < dims.Length(); ++d) shape.push_back(dims.Get(d).As<Napi::Number>().Uint32Value());
    ov::Tensor tensor = generator.randn_tensor(shape);
    Napi::Float32Array values = Napi::Float32Array::New(env, tensor.get_size());
    std::memcpy(values.Data(), tensor.data(), tensor.get_byte_size());
    out.Set(i, values);
  }
  return out;
}

Napi::Value BufferAddress(const Napi::CallbackInfo& info) {
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  auto* base = static_cast<uint8_t*>(view.ArrayBuffer().Data());
  const auto address = base ? reinterpret_cast<uintptr_t>(base + view.ByteOffset()) : uintptr_t{0};
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(address));
}

}  // namespace

Napi::Object Internals(Napi::Env env) {
  Napi::Object internals = Napi::Object::New(env);
  internals.Set("torchRandn", Napi::Function::New<TorchRandn>(env, "torchRandn"));
  internals.Set("bufferAddress", Napi::Function::New<BufferAddress>(env, "bufferAddress"));
  return internals;
}

}  // namespace multilora
