// The workarounds for OpenVINO GenAI 2026.3's bugs on the C++ side, each pointing at its section of
// docs/GENAI-BUGS.md (lib/core/genai-quirks.ts has the TypeScript side). Both the addon and the benchmark's C++ driver
// (native/bench/driver.cc) call them, so that both make the same GenAI calls, and a GenAI upgrade is this file and
// that one to revisit. No N-API here.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "genai.h"
#include "genai_build.h"

namespace multilora::quirks {

/// The spacer adapter of AdapterSwitch: GenAI reading a safetensors file without tensors. Call it off the JS thread,
/// like any adapter load.
ov::genai::Adapter Spacer();

/// The AdapterConfig of each call on a pipeline with registered adapters (docs/GENAI-BUGS.md#switching): the listed
/// adapters, always in registration order (the chosen ones at their alphas, the others listed at 0: the same bytes as
/// the chosen ones alone), then the spacer, whose alpha takes a new value whenever the list or an alpha changed, so
/// that GenAI always uploads them. The caller lists, beside the chosen adapters, enough others at 0 that every layer
/// some registered adapter patches keeps a rank above 0 (listFor in lib/core/genai-quirks.ts). Once a call of another
/// task than text-to-image has run, every call lists every registered adapter: the text-to-image, image-to-image and
/// inpainting pipelines of one model share its compiled models but each keep their own record of the last config,
/// and only a list that never changes keeps those records right. A new spacer value (not a flip between two) serves
/// those pipelines too.
class AdapterSwitch {
 public:
  AdapterSwitch() = default;
  /// `spacer` comes from Spacer(); it may be empty when no call will ask for a config (fused adapters).
  AdapterSwitch(std::vector<ov::genai::Adapter> adapters, ov::genai::Adapter spacer);

  const std::vector<ov::genai::Adapter>& adapters() const { return adapters_; }
  /// The config for a call that gives `alphas[i]` to `adapters()[i]` (missing ones: 0), listing `adapters()[i]` when
  /// `listed[i]` (an empty `listed`: all of them). `text_to_image`: whether the call is on the text-to-image pipeline.
  ov::genai::AdapterConfig ConfigFor(std::vector<float> alphas, std::vector<bool> listed = {},
                                     bool text_to_image = false);
  /// The next config uploads its alphas whatever the last one was: after a failed call, GenAI may have stopped
  /// half-way through applying it.
  void ResendAlphas() { resend_alphas_ = true; }
  /// Lets go of the adapters (at dispose).
  void Clear();

 private:
  std::vector<ov::genai::Adapter> adapters_;
  ov::genai::Adapter spacer_;
  std::vector<float> last_alphas_;  // what the last call sent to GenAI
  std::vector<bool> last_listed_;
  bool full_list_ = false;  // a call of another task has run: every call lists every adapter from now on
  bool resend_alphas_ = true;
  float spacer_alpha_ = 0.0f;
};

/// A copy of GenAI's output tensor that only the caller owns (docs/GENAI-BUGS.md#output-reused): GenAI writes every
/// result of a model into one tensor, which the next call overwrites or reallocates even while someone holds it.
ov::Tensor OwnCopy(const ov::Tensor& output);

/// The pipelines of one model (docs/GENAI-BUGS.md#inpainting-build-order): when it has a VAE encoder, the inpainting
/// pipeline first and the other two from it, so that one set of compiled models serves all three tasks; text-to-image
/// alone when it has none, or when GenAI cannot inpaint its family.
GenaiPipelines BuildModelPipelines(const std::filesystem::path& dir, const std::string& device,
                                   const ov::AnyMap& properties, const std::optional<StaticShape>& shape);

/// A model part held in memory: its IR and its weights (native/fuse.h changes them before GenAI reads them).
struct PartIR {
  std::string xml;
  ov::Tensor weights;
};

/// BuildModelPipelines for an SD 1.5, LCM or SDXL folder ("sd", "lcm", "sdxl"), with the parts named in `parts`
/// ("unet", "text_encoder", "text_encoder_2") read from memory instead of the folder: GenAI's models are built from
/// their IR and weights, and the pipelines assembled from them (its stable_diffusion / latent_consistency_model /
/// stable_diffusion_xl), then reshaped to `shape` if given and compiled.
GenaiPipelines AssembleModelPipelines(const std::filesystem::path& dir, const std::string& family,
                                      const std::map<std::string, PartIR>& parts, const std::string& device,
                                      const ov::AnyMap& properties, const std::optional<StaticShape>& shape);

}  // namespace multilora::quirks
