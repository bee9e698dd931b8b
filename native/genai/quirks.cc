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

namespace {

/// A pipeline assembled from read models: reshaped to the static shape if there is one, then compiled.
template <typename T>
std::shared_ptr<T> Assemble(T pipeline, const std::string& device, const ov::AnyMap& properties,
                            const std::optional<StaticShape>& shape) {
  auto assembled = std::make_shared<T>(std::move(pipeline));
  if (shape) ReshapeTo(*assembled, *shape);
  assembled->compile(device, properties);
  return assembled;
}

}  // namespace

GenaiPipelines AssembleModelPipelines(const std::filesystem::path& dir, const std::string& family,
                                      const std::map<std::string, PartIR>& parts, const std::string& device,
                                      const ov::AnyMap& properties, const std::optional<StaticShape>& shape) {
  using namespace ov::genai;
  auto clip = [&](const std::string& part, const std::string& tokenizer) {
    auto found = parts.find(part);
    if (found == parts.end()) return CLIPTextModel(dir / part);
    return CLIPTextModel(found->second.xml, found->second.weights, CLIPTextModel::Config(dir / part / "config.json"),
                         Tokenizer(dir / tokenizer));
  };
  const bool encoder = std::filesystem::exists(dir / "vae_encoder" / "openvino_model.xml");
  const AutoencoderKL vae = encoder ? AutoencoderKL(dir / "vae_encoder", dir / "vae_decoder")
                                    : AutoencoderKL(dir / "vae_decoder");
  auto unet_part = parts.find("unet");
  const UNet2DConditionModel unet =
      unet_part == parts.end()
          ? UNet2DConditionModel(dir / "unet")
          : UNet2DConditionModel(unet_part->second.xml, unet_part->second.weights,
                                 UNet2DConditionModel::Config(dir / "unet" / "config.json"),
                                 vae.get_vae_scale_factor());
  const CLIPTextModel text_encoder = clip("text_encoder", "tokenizer");
  std::optional<CLIPTextModelWithProjection> text_encoder_2;
  if (family == "sdxl") {
    auto found = parts.find("text_encoder_2");
    text_encoder_2.emplace(found == parts.end()
                               ? CLIPTextModelWithProjection(dir / "text_encoder_2")
                               : CLIPTextModelWithProjection(found->second.xml, found->second.weights,
                                                             CLIPTextModel::Config(dir / "text_encoder_2" / "config.json"),
                                                             Tokenizer(dir / "tokenizer_2")));
  }

  auto scheduler = [&] { return Scheduler::from_config(dir / "scheduler" / "scheduler_config.json"); };
  GenaiPipelines p;
  if (encoder) {
    try {
      InpaintingPipeline inpainting =
          family == "sdxl" ? InpaintingPipeline::stable_diffusion_xl(scheduler(), text_encoder, *text_encoder_2, unet, vae)
          : family == "lcm" ? InpaintingPipeline::latent_consistency_model(scheduler(), text_encoder, unet, vae)
                            : InpaintingPipeline::stable_diffusion(scheduler(), text_encoder, unet, vae);
      p.inpainting = Assemble(std::move(inpainting), device, properties, shape);
      p.image2image = std::make_shared<Image2ImagePipeline>(*p.inpainting);
      p.text2image = std::make_shared<Text2ImagePipeline>(*p.inpainting);
      return p;
    } catch (...) {
      p = GenaiPipelines();  // as BuildModelPipelines: text-to-image only
    }
  }
  Text2ImagePipeline text2image =
      family == "sdxl" ? Text2ImagePipeline::stable_diffusion_xl(scheduler(), text_encoder, *text_encoder_2, unet, vae)
      : family == "lcm" ? Text2ImagePipeline::latent_consistency_model(scheduler(), text_encoder, unet, vae)
                        : Text2ImagePipeline::stable_diffusion(scheduler(), text_encoder, unet, vae);
  p.text2image = Assemble(std::move(text2image), device, properties, shape);
  return p;
}

ov::Tensor OwnCopy(const ov::Tensor& output) {
  ov::Tensor copy(output.get_element_type(), output.get_shape());
  output.copy_to(copy);
  return copy;
}

}  // namespace multilora::quirks
