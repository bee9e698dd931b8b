// Per-environment state of the addon (the main thread and each worker_thread get their own): the constructors of
// the wrapper classes. Stored with Napi::Env::SetInstanceData, so the addon is context-aware.
#pragma once

#include <napi.h>

namespace multilora {

struct AddonData {
  Napi::FunctionReference adapter_constructor;
  Napi::FunctionReference pipeline_constructor;
};

inline AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace multilora
