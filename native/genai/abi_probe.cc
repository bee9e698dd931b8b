// Not part of the addon. test/abi.spec.js compiles this file and checks that every GenAI symbol it references is
// defined in libopenvino_genai: it takes the address of every out-of-line function that genai.h declares, so a
// declaration that the library does not export (a wrong name, namespace or parameter type) shows up as a missing
// symbol. Keep it in step with genai.h.
#include "genai.h"

namespace probe {

using namespace ov::genai;

template <typename T>
void use(T value) {
  static volatile const void* sink;
  sink = reinterpret_cast<const void*>(&value);
}

void references() {
  // Adapter
  { Adapter a(std::filesystem::path("x")); Adapter b(ov::Tensor{}); use(a == b); }

  // AdapterConfig
  {
    AdapterConfig c1(AdapterConfig::MODE_AUTO);
    AdapterConfig c2(std::vector<Adapter>{}, AdapterConfig::MODE_DYNAMIC);
    AdapterConfig c3(std::vector<std::pair<Adapter, float>>{}, AdapterConfig::MODE_FUSE);
    AdapterConfig c4(c1);
  }
  use(static_cast<AdapterConfig& (AdapterConfig::*)(const Adapter&, float)>(&AdapterConfig::add));
  use(static_cast<AdapterConfig& (AdapterConfig::*)(const Adapter&)>(&AdapterConfig::add));
  use(&AdapterConfig::set_alpha);
  use(&AdapterConfig::get_alpha);
  use(&AdapterConfig::remove);
  use(&AdapterConfig::get_adapters_and_alphas);
  use(&AdapterConfig::set_adapters_and_alphas);
  use(&AdapterConfig::set_mode);
  use(&AdapterConfig::update);

  // Generators
  use(&Generator::randn_tensor);
  { CppStdGenerator g(42u); use(&CppStdGenerator::next); use(&CppStdGenerator::seed); }

  // Scheduler
  use(&Scheduler::from_config);

  // ImageGenerationConfig
  use(&ImageGenerationConfig::validate);
  use(&ImageGenerationConfig::update_generation_config);

  // ImageGenerationPerfMetrics
  use(&ImageGenerationPerfMetrics::evaluate_statistics);
  use(&ImageGenerationPerfMetrics::get_load_time);
  use(&ImageGenerationPerfMetrics::get_generate_duration);
  use(&ImageGenerationPerfMetrics::get_iteration_duration);
  use(&ImageGenerationPerfMetrics::get_unet_infer_duration);
  use(&ImageGenerationPerfMetrics::get_transformer_infer_duration);
  use(&ImageGenerationPerfMetrics::get_vae_encoder_infer_duration);
  use(&ImageGenerationPerfMetrics::get_vae_decoder_infer_duration);
  use(&ImageGenerationPerfMetrics::get_text_encoder_infer_duration);

  // Text2ImagePipeline
  {
    Text2ImagePipeline p1(std::filesystem::path("x"));
    Text2ImagePipeline p2(std::filesystem::path("x"), std::string("CPU"), ov::AnyMap{});
    Text2ImagePipeline p3 = p1.clone();
    ImageGenerationConfig config = p1.get_generation_config();
    ImageGenerationConfig copy(config);
    ImageGenerationPerfMetrics metrics = p1.get_performance_metrics();
    ImageGenerationPerfMetrics metrics_copy(metrics);
  }
  { const Image2ImagePipeline* i2i = nullptr; const InpaintingPipeline* inp = nullptr;
    Text2ImagePipeline a(*i2i); Text2ImagePipeline b(*inp); }
  use(&Text2ImagePipeline::set_generation_config);
  use(&Text2ImagePipeline::set_scheduler);
  use(&Text2ImagePipeline::reshape);
  use(static_cast<void (Text2ImagePipeline::*)(const std::string&, const ov::AnyMap&)>(&Text2ImagePipeline::compile));
  use(static_cast<void (Text2ImagePipeline::*)(const std::string&, const std::string&, const std::string&,
                                               const ov::AnyMap&)>(&Text2ImagePipeline::compile));
  use(&Text2ImagePipeline::generate);
  use(&Text2ImagePipeline::decode);
  use(&Text2ImagePipeline::export_model);

  // Image2ImagePipeline and InpaintingPipeline
  {
    InpaintingPipeline inpaint(std::filesystem::path("x"), std::string("CPU"), ov::AnyMap{});
    InpaintingPipeline uncompiled(std::filesystem::path("x"));
    Image2ImagePipeline i2i(inpaint);
    ImageGenerationConfig a = inpaint.get_generation_config();
    ImageGenerationConfig b = i2i.get_generation_config();
    ImageGenerationPerfMetrics m1 = inpaint.get_performance_metrics();
    ImageGenerationPerfMetrics m2 = i2i.get_performance_metrics();
  }
  use(&Image2ImagePipeline::set_scheduler);
  use(&Image2ImagePipeline::generate);
  use(&InpaintingPipeline::set_scheduler);
  use(&InpaintingPipeline::reshape);
  use(&InpaintingPipeline::compile);
  use(&InpaintingPipeline::generate);

  // Models built from folders or from IR in memory, and pipelines assembled from them
  {
    Tokenizer tokenizer(std::filesystem::path("x"));
    CLIPTextModel::Config clip_config(std::filesystem::path("x"));
    CLIPTextModel clip(std::filesystem::path("x"));
    CLIPTextModel clip_memory(std::string("x"), ov::Tensor{}, clip_config, tokenizer);
    CLIPTextModel clip_copy(clip);
    CLIPTextModelWithProjection clip_2(std::filesystem::path("x"));
    UNet2DConditionModel::Config unet_config(std::filesystem::path("x"));
    UNet2DConditionModel unet(std::filesystem::path("x"));
    UNet2DConditionModel unet_memory(std::string("x"), ov::Tensor{}, unet_config, 8);
    UNet2DConditionModel unet_copy(unet);
    AutoencoderKL::Config vae_config(std::filesystem::path("x"));
    AutoencoderKL vae(std::filesystem::path("x"));
    AutoencoderKL vae_both(std::filesystem::path("x"), std::filesystem::path("y"));
    AutoencoderKL vae_copy(vae);
    use(vae.get_vae_scale_factor());
    std::shared_ptr<Scheduler> scheduler = Scheduler::from_config("x");
    Text2ImagePipeline t1 = Text2ImagePipeline::stable_diffusion(scheduler, clip, unet, vae);
    Text2ImagePipeline t2 = Text2ImagePipeline::latent_consistency_model(scheduler, clip, unet, vae);
    Text2ImagePipeline t3 = Text2ImagePipeline::stable_diffusion_xl(scheduler, clip, clip_2, unet, vae);
    InpaintingPipeline i1 = InpaintingPipeline::stable_diffusion(scheduler, clip, unet, vae);
    InpaintingPipeline i2 = InpaintingPipeline::latent_consistency_model(scheduler, clip, unet, vae);
    InpaintingPipeline i3 = InpaintingPipeline::stable_diffusion_xl(scheduler, clip, clip_2, unet, vae);
  }
}

}  // namespace probe
