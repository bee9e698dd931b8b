#include "pipeline_fuse_worker.h"

namespace multilora {
namespace {

template <typename T, typename Array>
std::vector<T> Values(const Napi::Object& from, const char* key) {
  Napi::Value value = from.Get(key);
  if (!value.IsTypedArray()) return {};
  auto array = value.As<Array>();
  return std::vector<T>(array.Data(), array.Data() + array.ElementLength());
}

}  // namespace

FuseLayer FuseLayerOf(const Napi::Object& o) {
  FuseLayer layer;
  layer.part = o.Get("part").As<Napi::String>().Utf8Value();
  layer.node = o.Get("node").As<Napi::String>().Utf8Value();
  layer.label = o.Get("label").As<Napi::String>().Utf8Value();
  layer.alpha = o.Get("alpha").As<Napi::Number>().FloatValue();
  layer.up = Values<float, Napi::Float32Array>(o, "up");
  layer.down = Values<float, Napi::Float32Array>(o, "down");
  if (o.Get("rank").IsNumber()) layer.rank = o.Get("rank").As<Napi::Number>().Uint32Value();
  layer.bias = Values<float, Napi::Float32Array>(o, "bias");
  layer.magnitude = Values<float, Napi::Float32Array>(o, "magnitude");
  if (o.Get("axis").IsString()) layer.dora_axis = o.Get("axis").As<Napi::String>().Utf8Value() == "in" ? 1 : 0;
  layer.mix = Values<double, Napi::Float64Array>(o, "mix");
  if (o.Get("blocks").IsNumber()) layer.blocks = o.Get("blocks").As<Napi::Number>().Uint32Value();
  layer.rescale = Values<float, Napi::Float32Array>(o, "rescale");
  return layer;
}

PipelineFuseWorker::PipelineFuseWorker(const Napi::CallbackInfo& info)
    : ThreadPromiseWorker(info.Env(), "multilora.PipelineFuse") {
  loaded_.model_dir = info[0].As<Napi::String>().Utf8Value();
  device_ = info[1].As<Napi::String>().Utf8Value();
  family_ = info[2].As<Napi::String>().Utf8Value();
  properties_ = PropertiesOf(info[3].As<Napi::Object>());
  static_shape_ = StaticShapeOf(info[4]);
  Napi::Array layers = info[5].As<Napi::Array>();
  for (uint32_t i = 0; i < layers.Length(); ++i) layers_.push_back(FuseLayerOf(layers.Get(i).As<Napi::Object>()));
  loaded_.fused_alphas.emplace();  // fused: calls cannot choose adapters
}

void PipelineFuseWorker::Run() {
  try {
    loaded_.pipelines = BuildFusedPipelines(loaded_.model_dir, family_, layers_, device_, properties_, static_shape_);
    layers_.clear();
    loaded_.ReadDefaults();
  } catch (const FuseError& e) {
    loaded_.pipelines = GenaiPipelines();
    Fail(Failure{e.code(), e.what()});
  } catch (...) {
    loaded_.pipelines = GenaiPipelines();
    Fail(DescribeCurrentException(kErrGenai, "fusing LoRA into \"" + loaded_.model_dir + "\" and building its pipeline"));
  }
}

Napi::Value PipelineFuseWorker::Resolve(Napi::Env env) { return Pipeline::NewInstance(env, std::move(loaded_)); }

}  // namespace multilora
