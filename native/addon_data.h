// Per-environment state of the addon (the main thread and each worker_thread get their own): the constructors of
// the wrapper classes, and the operations running on threads of their own. Stored with Napi::Env::SetInstanceData,
// so the addon is context-aware.
#pragma once

#include <unordered_set>

#include <napi.h>

namespace multilora {

class ThreadPromiseWorker;

struct AddonData {
  Napi::FunctionReference adapter_constructor;
  Napi::FunctionReference pipeline_constructor;
  /// Started and not yet settled (see thread_promise_worker.h). Used on the JS thread only.
  std::unordered_set<ThreadPromiseWorker*> running;
};

inline AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace multilora
