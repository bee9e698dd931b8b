// A GenAI Text2ImagePipeline with the LoRA adapters registered when it was built. Mirrors lib/core/pipeline.ts.
// One generate at a time: lib/core/pipeline.ts queues calls, and a busy flag here refuses a second one outright.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <napi.h>

#include "genai/genai.h"
#include "genai/quirks.h"
#include "genai_build.h"

namespace multilora {

class PipelineGenerateWorker;

/// What a generate call runs: the index of a GenaiPipelines member.
enum class Task { kText2Image = 0, kImage2Image = 1, kInpainting = 2 };

/// An adapter chosen by a call: index into the registered adapters, and alpha.
using AdapterChoice = std::pair<uint32_t, float>;

/// What PipelineLoadWorker hands to the constructor.
struct LoadedPipeline {
  std::string model_dir;
  GenaiPipelines pipelines;
  std::vector<ov::genai::Adapter> adapters;
  ov::genai::Adapter spacer;  // quirks::Spacer(), for quirks::AdapterSwitch (none when fused)
  /// MODE_FUSE: the adapters were fused into the weights at these alphas; calls cannot choose.
  std::optional<std::vector<float>> fused_alphas;
  int64_t default_width = -1;
  int64_t default_height = -1;
  size_t default_steps = 0;
  float default_guidance_scale = 0.0f;
  bool image_inputs = false;  // image-to-image and inpainting available

  /// Takes the defaults and the tasks from `pipelines`, just built.
  void ReadDefaults() {
    image_inputs = static_cast<bool>(pipelines.inpainting);
    ov::genai::ImageGenerationConfig config = pipelines.text2image->get_generation_config();
    default_width = config.width;
    default_height = config.height;
    default_steps = config.num_inference_steps;
    default_guidance_scale = config.guidance_scale;
  }
};

/// The load properties given from JS ({ key: value }), as the strings OpenVINO reads typed properties from.
ov::AnyMap PropertiesOf(const Napi::Object& props);
/// A static shape given from JS ([numImages, height, width, guidanceScale]), or none for anything else.
std::optional<StaticShape> StaticShapeOf(const Napi::Value& value);

class Pipeline : public Napi::ObjectWrap<Pipeline> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object NewInstance(Napi::Env env, LoadedPipeline loaded);

  explicit Pipeline(const Napi::CallbackInfo& info);

  const GenaiPipelines& genai() const { return pipelines_; }
  const std::vector<ov::genai::Adapter>& adapters() const { return adapters_.adapters(); }
  const std::string& model_dir() const { return loaded_.model_dir; }
  bool fused() const { return loaded_.fused_alphas.has_value(); }
  /// The Scheduler::Type that a task's pipeline uses (0, AUTO: the model's own).
  int scheduler(Task task) const { return schedulers_[static_cast<int>(task)].load(); }
  /// Called from the worker thread of the one running generate.
  void set_scheduler(Task task, int type) { schedulers_[static_cast<int>(task)].store(type); }
  /// The AdapterConfig for a call that lists these adapters (the chosen ones, and those at alpha 0 that keep every
  /// patched layer's rank above 0); `text_to_image`: the call's task. GenAI 2026.3 needs more than the chosen
  /// adapters: quirks::AdapterSwitch, docs/GENAI-BUGS.md#switching.
  ov::genai::AdapterConfig AdapterConfigFor(const std::vector<AdapterChoice>& listed, bool text_to_image);
  /// Called by PipelineGenerateWorker on the JS thread when its run is over; `output` is GenAI's output tensor.
  void GenerateFinished(PipelineGenerateWorker* worker, bool failed, ov::Tensor output);
  /// Records a Buffer that wraps GenAI's output memory (options.output 'borrow'): RevokeLent detaches it.
  void Lend(Napi::Buffer<uint8_t> buffer);

 private:
  /// Pipeline.load(modelDir, device, adapters: Adapter[], properties: {[key]: string}, fusedAlphas?: number[],
  ///   staticShape?: [numImages, height, width, guidanceScale]) -> Promise<Pipeline>. With fusedAlphas, the adapters
  ///   are fused into the weights (MODE_FUSE). With staticShape, the models are reshaped to it before they are
  ///   compiled (a NaN guidance scale: the model's own).
  static Napi::Value Load(const Napi::CallbackInfo& info);
  /// Fuses adapters GenAI cannot fuse itself into the model in memory, then builds the pipeline (native/fuse.h).
  static Napi::Value LoadFused(const Napi::CallbackInfo& info);
  /// pipeline.generate(prompt, options, onProgress?) -> Promise<{ data, count, width, height, metrics }>
  Napi::Value Generate(const Napi::CallbackInfo& info);
  /// pipeline.abort(): the running generate, if any, stops at its next step and rejects with ERR_ABORTED.
  Napi::Value Abort(const Napi::CallbackInfo& info);
  /// pipeline.dispose() -> Promise<void>: frees the GenAI pipeline off the JS thread. Idempotent.
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  /// pipeline.defaults -> { width, height, steps, guidanceScale, imageInputs }, as GenAI derived them from the model.
  Napi::Value Defaults(const Napi::CallbackInfo& info);
  /// pipeline.outputAddress() -> bigint: where GenAI's output tensor lies now (0 before the first generate). For
  /// tests and the benchmark: a borrowed result's data starts there, a copied one elsewhere.
  Napi::Value OutputAddress(const Napi::CallbackInfo& info);

  /// Detaches the Buffer lent last, if it is still alive: its length becomes 0. Runs before GenAI may write to or free
  /// that memory: when the next generate starts, and at dispose. All tasks of a model share one output tensor.
  void RevokeLent();

  GenaiPipelines pipelines_;
  quirks::AdapterSwitch adapters_;
  LoadedPipeline loaded_;  // the model dir and defaults (its pipeline and adapters are moved out)
  std::atomic<int> schedulers_[3] = {0, 0, 0};
  PipelineGenerateWorker* running_ = nullptr;
  ov::Tensor output_;                         // GenAI's output tensor, once a generate has run
  Napi::Reference<Napi::ArrayBuffer> lent_;  // weak: the memory of the last borrowed result
};

}  // namespace multilora
