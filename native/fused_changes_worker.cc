#include "fused_changes_worker.h"

#include <cstring>

#include "pipeline_fuse_worker.h"

namespace multilora {

FusedChangesWorker::FusedChangesWorker(const Napi::CallbackInfo& info)
    : PromiseWorker(info.Env(), "multilora.FusedChanges"), model_dir_(info[0].As<Napi::String>().Utf8Value()) {
  Napi::Array layers = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < layers.Length(); ++i) layers_.push_back(FuseLayerOf(layers.Get(i).As<Napi::Object>()));
}

void FusedChangesWorker::Run() {
  try {
    changes_ = FusedChanges(model_dir_, layers_);
  } catch (const FuseError& e) {
    Fail(Failure{e.code(), e.what()});
  } catch (...) {
    Fail(DescribeCurrentException(kErrGenai, "reading the weights of \"" + model_dir_ + "\""));
  }
}

Napi::Value FusedChangesWorker::Resolve(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env, changes_.size());
  for (uint32_t i = 0; i < changes_.size(); ++i) {
    Napi::Float32Array change = Napi::Float32Array::New(env, changes_[i].size());
    std::memcpy(change.Data(), changes_[i].data(), changes_[i].size() * sizeof(float));
    out.Set(i, change);
  }
  return out;
}

}  // namespace multilora
