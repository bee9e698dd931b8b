#include "adapter.h"

#include "addon_data.h"
#include "adapter_load_worker.h"
#include "errors.h"

namespace multilora {

Napi::Function Adapter::Init(Napi::Env env) {
  return DefineClass(env, "Adapter",
                     {
                         StaticMethod<&Adapter::Load>("load"),
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

Napi::Value Adapter::Release(const Napi::CallbackInfo& info) {
  adapter_ = ov::genai::Adapter();
  return info.Env().Undefined();
}

}  // namespace multilora
