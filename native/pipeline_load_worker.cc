#include "pipeline_load_worker.h"

namespace multilora {

PipelineLoadWorker::PipelineLoadWorker(Napi::Env env, std::string model_dir, std::string device,
                                       std::vector<ov::genai::Adapter> adapters, ov::AnyMap properties,
                                       std::optional<std::vector<float>> fused_alphas,
                                       std::optional<StaticShape> static_shape)
    : ThreadPromiseWorker(env, "multilora.PipelineLoad"),
      model_dir_(std::move(model_dir)),
      device_(std::move(device)),
      properties_(std::move(properties)),
      static_shape_(static_shape) {
  loaded_.adapters = std::move(adapters);
  loaded_.model_dir = model_dir_;
  loaded_.fused_alphas = std::move(fused_alphas);
}

void PipelineLoadWorker::Run() {
  try {
    if (!loaded_.adapters.empty() && !loaded_.fused_alphas) loaded_.spacer = quirks::Spacer();  // GENAI-BUGS.md#switching
    if (loaded_.fused_alphas) {
      // Fused into the weights at compile time: the fastest, but calls cannot choose or change them.
      std::vector<std::pair<ov::genai::Adapter, float>> pairs;
      for (size_t i = 0; i < loaded_.adapters.size(); ++i) pairs.emplace_back(loaded_.adapters[i], (*loaded_.fused_alphas)[i]);
      properties_["adapters"] = ov::genai::AdapterConfig(pairs, ov::genai::AdapterConfig::MODE_FUSE);
    } else if (!loaded_.adapters.empty()) {
      // Registration fixes the set of adapters; each generate call then picks any subset with any alphas.
      properties_["adapters"] = ov::genai::AdapterConfig(loaded_.adapters);
    }
    loaded_.pipelines = quirks::BuildModelPipelines(model_dir_, device_, properties_, static_shape_);
    loaded_.ReadDefaults();
  } catch (...) {
    loaded_.pipelines = GenaiPipelines();
    Fail(DescribeCurrentException(kErrGenai, "ov::genai::Text2ImagePipeline(\"" + model_dir_ + "\", \"" + device_ + "\")"));
  }
}

Napi::Value PipelineLoadWorker::Resolve(Napi::Env env) { return Pipeline::NewInstance(env, std::move(loaded_)); }

}  // namespace multilora
