#include "pipeline.h"

#include "adapter.h"
#include "addon_data.h"
#include "errors.h"
#include "pipeline_dispose_worker.h"
#include "pipeline_generate_worker.h"
#include "pipeline_load_worker.h"

namespace multilora {

Napi::Function Pipeline::Init(Napi::Env env) {
  return DefineClass(env, "Pipeline",
                     {
                         StaticMethod<&Pipeline::Load>("load"),
                         InstanceMethod<&Pipeline::Generate>("generate"),
                         InstanceMethod<&Pipeline::Dispose>("dispose"),
                         InstanceAccessor<&Pipeline::Defaults>("defaults"),
                     });
}

Pipeline::Pipeline(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Pipeline>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw MakeError(info.Env(), kErrInvalidArgument, "Pipeline objects come from Pipeline.load()");
  }
  LoadedPipeline& loaded = *info[0].As<Napi::External<LoadedPipeline>>().Data();
  pipeline_ = std::move(loaded.pipeline);
  adapters_ = std::move(loaded.adapters);
  defaults_ = std::move(loaded);
}

Napi::Object Pipeline::NewInstance(Napi::Env env, LoadedPipeline loaded) {
  Napi::External<LoadedPipeline> handle = Napi::External<LoadedPipeline>::New(env, &loaded);
  return GetAddonData(env).pipeline_constructor.New({handle});
}

Napi::Value Pipeline::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string model_dir = info[0].As<Napi::String>().Utf8Value();
  std::string device = info[1].As<Napi::String>().Utf8Value();
  std::vector<ov::genai::Adapter> adapters;
  Napi::Array list = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) adapters.push_back(Adapter::Unwrap(list.Get(i))->genai());
  ov::AnyMap properties;
  Napi::Object props = info[3].As<Napi::Object>();
  Napi::Array keys = props.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    // OpenVINO reads typed properties from their string form.
    properties[key] = props.Get(key).ToString().Utf8Value();
  }
  return (new PipelineLoadWorker(env, std::move(model_dir), std::move(device), std::move(adapters),
                                 std::move(properties)))
      ->Start();
}

Napi::Value Pipeline::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!pipeline_) throw MakeError(env, kErrDisposed, "The pipeline was disposed");
  if (busy_) throw MakeError(env, kErrBusy, "The pipeline is already generating: calls must wait for each other");

  std::string prompt = info[0].As<Napi::String>().Utf8Value();
  Napi::Object options = info[1].As<Napi::Object>();
  // Each value has the exact C++ type that GenAI reads it as (ov::Any::as<T>).
  ov::AnyMap properties;
  properties["rng_seed"] = static_cast<size_t>(options.Get("seed").As<Napi::Number>().Int64Value());
  if (options.Has("width")) properties["width"] = options.Get("width").As<Napi::Number>().Int64Value();
  if (options.Has("height")) properties["height"] = options.Get("height").As<Napi::Number>().Int64Value();
  if (options.Has("steps")) {
    properties["num_inference_steps"] = static_cast<size_t>(options.Get("steps").As<Napi::Number>().Int64Value());
  }
  if (options.Has("guidanceScale")) {
    properties["guidance_scale"] = options.Get("guidanceScale").As<Napi::Number>().FloatValue();
  }
  if (options.Has("negativePrompt")) {
    properties["negative_prompt"] = options.Get("negativePrompt").As<Napi::String>().Utf8Value();
  }
  if (!adapters_.empty()) {
    // Always explicit: without it, GenAI would apply the adapters as registered. Empty means no LoRA.
    ov::genai::AdapterConfig config;
    Napi::Array chosen = options.Get("adapters").As<Napi::Array>();
    for (uint32_t i = 0; i < chosen.Length(); ++i) {
      Napi::Array pair = chosen.Get(i).As<Napi::Array>();
      uint32_t index = pair.Get(uint32_t{0}).As<Napi::Number>().Uint32Value();
      if (index >= adapters_.size()) throw MakeError(env, kErrInvalidArgument, "Adapter index out of range");
      config.add(adapters_[index], pair.Get(uint32_t{1}).As<Napi::Number>().FloatValue());
    }
    properties["adapters"] = config;
  } else if (options.Has("adapters") && options.Get("adapters").As<Napi::Array>().Length() > 0) {
    throw MakeError(env, kErrInvalidArgument, "This pipeline was built without adapters");
  }

  busy_ = true;
  auto* worker = new PipelineGenerateWorker(env, Value(), this, pipeline_, std::move(prompt), std::move(properties));
  return worker->Start();
}

Napi::Value Pipeline::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!pipeline_) {
    Napi::Promise::Deferred done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  adapters_.clear();
  return (new PipelineDisposeWorker(env, std::move(pipeline_)))->Start();
}

Napi::Value Pipeline::Defaults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object defaults = Napi::Object::New(env);
  defaults.Set("width", Napi::Number::New(env, static_cast<double>(defaults_.default_width)));
  defaults.Set("height", Napi::Number::New(env, static_cast<double>(defaults_.default_height)));
  defaults.Set("steps", Napi::Number::New(env, static_cast<double>(defaults_.default_steps)));
  defaults.Set("guidanceScale", Napi::Number::New(env, defaults_.default_guidance_scale));
  return defaults;
}

}  // namespace multilora
