#include "model.h"

#include "errors.h"
#include "fused_changes_worker.h"
#include "model_layers_worker.h"

namespace multilora {

Napi::Function Model::Init(Napi::Env env) {
  return DefineClass(env, "Model", {StaticMethod<&Model::Layers>("layers"),
                                    StaticMethod<&Model::FusedChanges>("fusedChanges")});
}

Model::Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
  throw MakeError(info.Env(), kErrInvalidArgument, "Model has only static methods");
}

Napi::Value Model::Layers(const Napi::CallbackInfo& info) {
  return (new ModelLayersWorker(info.Env(), info[0].As<Napi::String>().Utf8Value()))->Start();
}

Napi::Value Model::FusedChanges(const Napi::CallbackInfo& info) {
  return (new FusedChangesWorker(info))->Start();
}

}  // namespace multilora
