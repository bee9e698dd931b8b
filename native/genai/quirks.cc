#include "quirks.h"

#include <cstring>

namespace multilora::quirks {

ov::genai::Adapter Spacer() {
  // A safetensors file without tensors: an 8-byte header length, then "{}" padded to 8 bytes.
  static const char kFile[] = "\x08\0\0\0\0\0\0\0{}      ";
  ov::Tensor file(ov::element::u8, ov::Shape{16});
  std::memcpy(file.data(), kFile, 16);
  return ov::genai::Adapter(file);
}

AdapterSwitch::AdapterSwitch(std::vector<ov::genai::Adapter> adapters, ov::genai::Adapter spacer)
    : adapters_(std::move(adapters)), spacer_(std::move(spacer)) {}

ov::genai::AdapterConfig AdapterSwitch::ConfigFor(std::vector<float> alphas, std::vector<bool> listed,
                                                  bool text_to_image) {
  alphas.resize(adapters_.size(), 0.0f);
  if (!text_to_image) full_list_ = true;
  if (full_list_ || listed.empty()) listed.assign(adapters_.size(), true);
  listed.resize(adapters_.size(), false);
  // Modulo 2^20: the float stays an exact integer, so it always differs from the last value.
  if (resend_alphas_ || alphas != last_alphas_ || listed != last_listed_) {
    spacer_alpha_ = static_cast<float>((static_cast<int>(spacer_alpha_) + 1) % (1 << 20));
  }
  resend_alphas_ = false;
  ov::genai::AdapterConfig config;
  for (size_t i = 0; i < adapters_.size(); ++i) {
    if (listed[i]) config.add(adapters_[i], alphas[i]);
  }
  config.add(spacer_, spacer_alpha_);
  last_alphas_ = std::move(alphas);
  last_listed_ = std::move(listed);
  return config;
}

void AdapterSwitch::Clear() {
  adapters_.clear();
  spacer_ = ov::genai::Adapter();
  last_alphas_.clear();
  last_listed_.clear();
  full_list_ = false;
  resend_alphas_ = true;
}

GenaiPipelines BuildModelPipelines(const std::filesystem::path& dir, const std::string& device,
                                   const ov::AnyMap& properties, const std::optional<StaticShape>& shape) {
  GenaiPipelines p;
  if (std::filesystem::exists(dir / "vae_encoder" / "openvino_model.xml")) {
    try {
      p.inpainting = BuildPipeline<ov::genai::InpaintingPipeline>(dir, device, properties, shape);
      p.image2image = std::make_shared<ov::genai::Image2ImagePipeline>(*p.inpainting);
      p.text2image = std::make_shared<ov::genai::Text2ImagePipeline>(*p.inpainting);
      return p;
    } catch (...) {
      p = GenaiPipelines();  // a family GenAI cannot inpaint: text-to-image only
    }
  }
  p.text2image = BuildPipeline<ov::genai::Text2ImagePipeline>(dir, device, properties, shape);
  return p;
}

ov::Tensor OwnCopy(const ov::Tensor& output) {
  ov::Tensor copy(output.get_element_type(), output.get_shape());
  output.copy_to(copy);
  return copy;
}

}  // namespace multilora::quirks
