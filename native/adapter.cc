#include "adapter.h"

#include "addon_data.h"
#include "adapter_load_worker.h"
#include "errors.h"
#include "finite_scan_worker.h"

namespace multilora {

Napi::Function Adapter::Init(Napi::Env env) {
  return DefineClass(env, "Adapter",
                     {
                         StaticMethod<&Adapter::Load>("load"),
                         StaticMethod<&Adapter::NonFinite>("nonFinite"),
                         InstanceMethod<&Adapter::Release>("release"),
                     });
}

Adapter::Adapter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Adapter>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw MakeError(info.Env(), kErrInvalidArgument, "Adapter objects come from Adapter.load()");
  }
  adapter_ = *info[0].As<Napi::External<ov::genai::Adapter>>().Data();
}

Napi::Object Adapter::NewInstance(Napi::Env env, const ov::genai::Adapter& adapter) {
  ov::genai::Adapter copy = adapter;
  Napi::External<ov::genai::Adapter> handle = Napi::External<ov::genai::Adapter>::New(env, &copy);
  return GetAddonData(env).adapter_constructor.New({handle});
}

Adapter* Adapter::Unwrap(Napi::Value value) {
  Napi::Env env = value.Env();
  if (value.IsObject()) {
    Napi::Object object = value.As<Napi::Object>();
    if (object.InstanceOf(GetAddonData(env).adapter_constructor.Value())) {
      return Napi::ObjectWrap<Adapter>::Unwrap(object);
    }
  }
  throw MakeError(env, kErrInvalidArgument, "Expected a native Adapter");
}

Napi::Value Adapter::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() == 1 && info[0].IsString()) {
    return (new AdapterLoadWorker(env, info[0].As<Napi::String>().Utf8Value()))->Start();
  }
  if (info.Length() == 1 && info[0].IsBuffer()) {
    Napi::Buffer<uint8_t> buffer = info[0].As<Napi::Buffer<uint8_t>>();
    return (new AdapterLoadWorker(env, buffer.Data(), buffer.Length()))->Start();
  }
  throw MakeError(env, kErrInvalidArgument, "Expected a path or a Buffer for Adapter.load");
}

Napi::Value Adapter::NonFinite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsArray()) {
    throw MakeError(env, kErrInvalidArgument, "Expected a path and an array of [offset, byteLength, dtype] for Adapter.nonFinite");
  }
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<FloatSpan> spans;
  spans.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value item = list.Get(i);
    Napi::Array triple = item.IsArray() ? item.As<Napi::Array>() : Napi::Array::New(env);
    Napi::Value offset = triple.Get(0u);
    Napi::Value length = triple.Get(1u);
    Napi::Value dtype = triple.Get(2u);
    if (triple.Length() != 3 || !offset.IsNumber() || !length.IsNumber() || !dtype.IsString()) {
      throw MakeError(env, kErrInvalidArgument, "Adapter.nonFinite: span " + std::to_string(i) + " is not [offset, byteLength, dtype]");
    }
    const double at = offset.As<Napi::Number>().DoubleValue();
    const double bytes = length.As<Napi::Number>().DoubleValue();
    const std::string kind = dtype.As<Napi::String>().Utf8Value();
    if (!(at >= 0 && bytes >= 0 && at + bytes <= 9007199254740991.0) || (kind != "F32" && kind != "F16" && kind != "BF16")) {
      throw MakeError(env, kErrInvalidArgument, "Adapter.nonFinite: span " + std::to_string(i) + " is out of range or not F32, F16 or BF16");
    }
    FloatSpan span;
    span.offset = static_cast<uint64_t>(at);
    span.byte_length = static_cast<uint64_t>(bytes);
    span.kind = kind == "F32" ? FloatSpan::Kind::kF32 : kind == "F16" ? FloatSpan::Kind::kF16 : FloatSpan::Kind::kBF16;
    spans.push_back(span);
  }
  return (new FiniteScanWorker(env, info[0].As<Napi::String>().Utf8Value(), std::move(spans)))->Start();
}

Napi::Value Adapter::Release(const Napi::CallbackInfo& info) {
  adapter_ = ov::genai::Adapter();
  return info.Env().Undefined();
}

}  // namespace multilora
