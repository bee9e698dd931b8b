// How a GenAI pipeline is made, shared by the addon and the benchmark's C++ driver (native/bench/driver.cc) through
// quirks::BuildModelPipelines (native/genai/quirks.h), so that both make exactly the same GenAI calls. No N-API here.
#pragma once

#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "genai/genai.h"

namespace multilora {

/// Fixed sizes to compile for (GenAI's reshape before compile): static shapes instead of dynamic ones.
struct StaticShape {
  int num_images = 1;
  int height = 0;
  int width = 0;
  float guidance_scale = 0;  // NaN: the model's own
};

/// The GenAI pipelines of one model, sharing its compiled models: text-to-image always; image-to-image and
/// inpainting when the model has a VAE encoder (then the other two are built from the inpainting one).
struct GenaiPipelines {
  std::shared_ptr<ov::genai::Text2ImagePipeline> text2image;
  std::shared_ptr<ov::genai::Image2ImagePipeline> image2image;
  std::shared_ptr<ov::genai::InpaintingPipeline> inpainting;

  explicit operator bool() const { return static_cast<bool>(text2image); }
};

/// Reshapes a pipeline that is read but not compiled to the static shape.
template <typename T>
void ReshapeTo(T& pipeline, const StaticShape& shape) {
  // NaN: the model's own guidance scale, which decides whether the denoiser's batch is doubled.
  const float guidance = std::isnan(shape.guidance_scale) ? pipeline.get_generation_config().guidance_scale
                                                          : shape.guidance_scale;
  pipeline.reshape(shape.num_images, shape.height, shape.width, guidance);
}

/// A pipeline of GenAI: compiled at once (dynamic shapes), or read, reshaped to the static shape, then compiled.
template <typename T>
std::shared_ptr<T> BuildPipeline(const std::filesystem::path& dir, const std::string& device,
                                 const ov::AnyMap& properties, const std::optional<StaticShape>& shape) {
  if (!shape) return std::make_shared<T>(dir, device, properties);
  auto pipeline = std::make_shared<T>(dir);
  ReshapeTo(*pipeline, *shape);
  pipeline->compile(device, properties);
  return pipeline;
}

}  // namespace multilora
