#include "pipeline.h"

#include "adapter.h"
#include "addon_data.h"
#include "errors.h"
#include "pipeline_dispose_worker.h"
#include "pipeline_generate_worker.h"
#include "pipeline_load_worker.h"
#include "pipeline_fuse_worker.h"

namespace multilora {

Napi::Function Pipeline::Init(Napi::Env env) {
  return DefineClass(env, "Pipeline",
                     {
                         StaticMethod<&Pipeline::Load>("load"),
                         StaticMethod<&Pipeline::LoadFused>("loadFused"),
                         InstanceMethod<&Pipeline::Generate>("generate"),
                         InstanceMethod<&Pipeline::Abort>("abort"),
                         InstanceMethod<&Pipeline::Dispose>("dispose"),
                         InstanceAccessor<&Pipeline::Defaults>("defaults"),
                         InstanceMethod<&Pipeline::OutputAddress>("outputAddress"),
                     });
}

Pipeline::Pipeline(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Pipeline>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw MakeError(info.Env(), kErrInvalidArgument, "Pipeline objects come from Pipeline.load()");
  }
  LoadedPipeline& loaded = *info[0].As<Napi::External<LoadedPipeline>>().Data();
  pipelines_ = std::move(loaded.pipelines);
  adapters_ = quirks::AdapterSwitch(std::move(loaded.adapters), std::move(loaded.spacer));
  loaded_ = std::move(loaded);
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
  ov::AnyMap properties = PropertiesOf(info[3].As<Napi::Object>());
  std::optional<std::vector<float>> fused;
  if (info.Length() > 4 && info[4].IsArray()) {
    Napi::Array alphas = info[4].As<Napi::Array>();
    fused.emplace();
    for (uint32_t i = 0; i < alphas.Length(); ++i) fused->push_back(alphas.Get(i).As<Napi::Number>().FloatValue());
  }
  std::optional<StaticShape> static_shape = StaticShapeOf(info[5]);
  return (new PipelineLoadWorker(env, std::move(model_dir), std::move(device), std::move(adapters),
                                 std::move(properties), std::move(fused), static_shape))
      ->Start();
}

ov::AnyMap PropertiesOf(const Napi::Object& props) {
  ov::AnyMap properties;
  Napi::Array keys = props.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    properties[key] = props.Get(key).ToString().Utf8Value();
  }
  return properties;
}

std::optional<StaticShape> StaticShapeOf(const Napi::Value& value) {
  if (!value.IsArray()) return std::nullopt;
  Napi::Array shape = value.As<Napi::Array>();
  return StaticShape{shape.Get(0u).As<Napi::Number>().Int32Value(), shape.Get(1u).As<Napi::Number>().Int32Value(),
                     shape.Get(2u).As<Napi::Number>().Int32Value(), shape.Get(3u).As<Napi::Number>().FloatValue()};
}

Napi::Value Pipeline::LoadFused(const Napi::CallbackInfo& info) {
  return (new PipelineFuseWorker(info))->Start();
}

Napi::Value Pipeline::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!pipelines_) throw MakeError(env, kErrDisposed, "The pipeline was disposed");
  if (running_) throw MakeError(env, kErrBusy, "The pipeline is already generating: calls must wait for each other");
  auto* worker = new PipelineGenerateWorker(info, this);
  RevokeLent();
  Napi::Promise promise = worker->Start();  // deletes the worker if it throws
  running_ = worker;  // settles on this thread, so not before this returns
  return promise;
}

void Pipeline::GenerateFinished(PipelineGenerateWorker* worker, bool failed, ov::Tensor output) {
  if (running_ == worker) running_ = nullptr;
  if (failed) adapters_.ResendAlphas();
  if (output && pipelines_) output_ = std::move(output);
}

void Pipeline::Lend(Napi::Buffer<uint8_t> buffer) { lent_ = Napi::Weak(buffer.ArrayBuffer()); }

void Pipeline::RevokeLent() {
  if (lent_.IsEmpty()) return;
  Napi::ArrayBuffer lent = lent_.Value();
  if (!lent.IsEmpty() && !lent.IsDetached()) lent.Detach();
  lent_.Reset();
}

Napi::Value Pipeline::OutputAddress(const Napi::CallbackInfo& info) {
  const auto address = output_ ? reinterpret_cast<uintptr_t>(output_.data()) : uintptr_t{0};
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(address));
}

ov::genai::AdapterConfig Pipeline::AdapterConfigFor(const std::vector<AdapterChoice>& listed, bool text_to_image) {
  std::vector<float> alphas(adapters_.adapters().size(), 0.0f);
  std::vector<bool> in_list(adapters_.adapters().size(), false);
  for (const auto& [index, alpha] : listed) {
    alphas[index] = alpha;
    in_list[index] = true;
  }
  return adapters_.ConfigFor(std::move(alphas), std::move(in_list), text_to_image);
}

Napi::Value Pipeline::Abort(const Napi::CallbackInfo& info) {
  if (running_) running_->Abort();
  return info.Env().Undefined();
}

Napi::Value Pipeline::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!pipelines_) {
    Napi::Promise::Deferred done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  RevokeLent();
  output_ = ov::Tensor();
  adapters_.Clear();
  GenaiPipelines pipelines = std::move(pipelines_);
  pipelines_ = GenaiPipelines();
  return (new PipelineDisposeWorker(env, std::move(pipelines)))->Start();
}

Napi::Value Pipeline::Defaults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object defaults = Napi::Object::New(env);
  defaults.Set("width", Napi::Number::New(env, static_cast<double>(loaded_.default_width)));
  defaults.Set("height", Napi::Number::New(env, static_cast<double>(loaded_.default_height)));
  defaults.Set("steps", Napi::Number::New(env, static_cast<double>(loaded_.default_steps)));
  defaults.Set("guidanceScale", Napi::Number::New(env, loaded_.default_guidance_scale));
  defaults.Set("imageInputs", Napi::Boolean::New(env, static_cast<bool>(loaded_.image_inputs)));
  return defaults;
}

}  // namespace multilora
