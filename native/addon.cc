// Registers the addon's exports. Nothing else lives here.
#include <cstdlib>

#include <napi.h>

#include "adapter.h"
#include "model.h"
#include "addon_data.h"
#include "internals.h"
#include "pipeline.h"
#include "thread_promise_worker.h"

namespace multilora {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  // At worker_threads termination and environment shutdown: stop every generation, join every thread. Registered
  // before any thread-safe function of this environment, so it runs after theirs have closed (hooks run last in,
  // first out) and before they are freed.
  napi_add_env_cleanup_hook(env, &ThreadPromiseWorker::TearDown, static_cast<napi_env>(env));
  Napi::Function adapter = Adapter::Init(env);
  Napi::Function pipeline = Pipeline::Init(env);
  data->adapter_constructor = Napi::Persistent(adapter);
  data->pipeline_constructor = Napi::Persistent(pipeline);
  exports.Set("Adapter", adapter);
  exports.Set("Pipeline", pipeline);
  exports.Set("Model", Model::Init(env));
  exports.Set("genaiRelease", Napi::String::New(env, MULTILORA_GENAI_RELEASE));
  exports.Set("internals", Internals(env));
  // shutdown(): on process 'exit' (lib/core/pipeline.ts), where no cleanup hook runs on the main thread.
  exports.Set("shutdown", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { ThreadPromiseWorker::StopAll(info.Env()); }, "shutdown"));
  // useTokenizers(path): sets OPENVINO_TOKENIZERS_PATH_GENAI in the process environment unless it is set. In a
  // worker_thread, process.env is a copy that GenAI never sees (lib/core/binding.ts).
  exports.Set("useTokenizers", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    setenv("OPENVINO_TOKENIZERS_PATH_GENAI", path.c_str(), 0);
  }, "useTokenizers"));
  return exports;
}

}  // namespace multilora

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return multilora::Init(env, exports); }

NODE_API_MODULE(multilora, InitAddon)
