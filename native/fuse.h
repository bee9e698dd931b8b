// Fuse mode for what GenAI's own fuse cannot take (DoRA, full differences, 3x3 and Tucker LoCon, dense LoHa/LoKr,
// Diag-OFT): the weights of a model part are read into memory, changed there layer by layer, and handed to GenAI's
// model classes as an IR string and a weights tensor (their constructors from memory); the pipeline is assembled
// from those parts by quirks::AssembleModelPipelines (native/genai/, where every GenAI call is). Nothing is written
// to disk. The math is python/convert.py's fuse (fuse_one), on the IR's
// weights: each layer's weights in the layout torch gives them ([out, in, kernel...]), changed in float32 (OFT in
// float64), and written back in the IR's own element type (f32, f16 or bf16). No N-API here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "genai_build.h"

namespace multilora {

/// One layer's change, prepared in JS (lib/lora/fuse.ts) from multilora's rewrite of the LoRA file.
struct FuseLayer {
  std::string part;   // "unet", "text_encoder", "text_encoder_2"
  std::string node;   // the MatMul or Convolution's friendly name in the part's IR
  std::string label;  // for messages: which adapter and which LoRA layer
  float alpha = 1;
  // alpha · up·down added to the weights: up [out, rank], down [rank, in · kernel] (empty for OFT)
  std::vector<float> up, down;
  size_t rank = 0;
  std::vector<float> bias;       // alpha · bias difference (LyCORIS "full" diff_b)
  std::vector<float> magnitude;  // DoRA: the new norms, per output row (dora_axis 0) or per input column (1)
  int dora_axis = -1;
  std::vector<double> mix;  // Diag-OFT: per block of output rows, alpha · R + (1 - alpha) · I, [blocks, b, b]
  size_t blocks = 0;
  std::vector<float> rescale;  // Diag-OFT's per-row rescale
};

/// A failure of the fuse with its error code (lib/core/errors.ts).
class FuseError : public std::runtime_error {
 public:
  FuseError(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const { return code_; }

 private:
  const char* code_;
};

/// What fusing each of `layers` alone would change in the model's weights, W' - W, in torch's layout ([out, in ·
/// kernel], row-major), the base weights read from `dir` without a copy of the parts. For `approximate` of what
/// depends on the weights (DoRA, OFT): the change is then fitted by a LoRA of lower rank.
std::vector<std::vector<float>> FusedChanges(const std::filesystem::path& dir, const std::vector<FuseLayer>& layers);

/// Fuses `layers` into the parts they name (read from `dir`), then assembles and compiles the pipelines of that
/// model from the changed parts and the untouched ones. `family`: "sd", "lcm" or "sdxl".
GenaiPipelines BuildFusedPipelines(const std::filesystem::path& dir, const std::string& family,
                                   const std::vector<FuseLayer>& layers, const std::string& device,
                                   const ov::AnyMap& properties, const std::optional<StaticShape>& shape);

}  // namespace multilora
