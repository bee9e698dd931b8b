// Registers the addon's exports. Nothing else lives here.
#include <napi.h>

#include "adapter.h"
#include "model.h"
#include "addon_data.h"
#include "internals.h"
#include "pipeline.h"

namespace multilora {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function adapter = Adapter::Init(env);
  Napi::Function pipeline = Pipeline::Init(env);
  data->adapter_constructor = Napi::Persistent(adapter);
  data->pipeline_constructor = Napi::Persistent(pipeline);
  exports.Set("Adapter", adapter);
  exports.Set("Pipeline", pipeline);
  exports.Set("Model", Model::Init(env));
  exports.Set("genaiRelease", Napi::String::New(env, MULTILORA_GENAI_RELEASE));
  exports.Set("internals", Internals(env));
  return exports;
}

}  // namespace multilora

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return multilora::Init(env, exports); }

NODE_API_MODULE(multilora, InitAddon)
