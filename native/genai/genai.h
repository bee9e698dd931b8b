// Declarations of the part of the OpenVINO GenAI C++ API that multilora calls.
//
// Matches the ABI of libopenvino_genai.so.2630, shipped in the PyPI wheel openvino-genai==2026.3.0.0. No registry
// carries GenAI's own headers, so this is the one place in the project that declares GenAI types: class layouts
// (data members in order), virtual order and signatures must match that release exactly. Only functions the library
// exports are declared out of line; what the release defines inline is defined inline here. The OpenVINO core types
// (ov::Tensor, ov::Any, ov::AnyMap, ov::Shape) come from the real headers of the openvino==2026.3.0 wheel.
//
// test/abi.spec.js checks that every out-of-line function used through this header is defined in the library.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "openvino/core/any.hpp"
#include "openvino/core/model.hpp"
#include "openvino/core/shape.hpp"
#include "openvino/runtime/infer_request.hpp"
#include "openvino/runtime/tensor.hpp"

#define MULTILORA_GENAI_API __attribute__((visibility("default")))
#define MULTILORA_GENAI_RELEASE "2026.3.0.0"

namespace ov {
namespace genai {

class AdapterImpl;
struct AdapterControllerImpl;
class DiffusionPipeline;
class Image2ImagePipeline;
class InpaintingPipeline;

// ---------------------------------------------------------------------------------------------------------------
// LoRA adapters
// ---------------------------------------------------------------------------------------------------------------

/// An immutable LoRA adapter read from a .safetensors file; copies share the same weights and compare equal
/// (operator== is identity).
class MULTILORA_GENAI_API Adapter {
 public:
  explicit Adapter(const std::filesystem::path& path);
  /// From the bytes of a whole .safetensors file held in a u8 tensor.
  explicit Adapter(const ov::Tensor& safetensors);
  Adapter() = default;

  explicit operator bool() const { return static_cast<bool>(impl_); }

 private:
  std::shared_ptr<AdapterImpl> impl_;
};

MULTILORA_GENAI_API bool operator==(const Adapter& a, const Adapter& b);

/// Which adapters a pipeline or a generate call uses, each with its alpha.
struct MULTILORA_GENAI_API AdapterConfig {
  enum Mode { MODE_AUTO = 0, MODE_DYNAMIC, MODE_STATIC_RANK, MODE_STATIC, MODE_FUSE };

  AdapterConfig(Mode mode = MODE_AUTO);
  AdapterConfig(const std::vector<Adapter>& adapters, Mode mode = MODE_AUTO);
  AdapterConfig(const std::vector<std::pair<Adapter, float>>& adapters, Mode mode = MODE_AUTO);
  AdapterConfig(const AdapterConfig& other);
  ~AdapterConfig();

  AdapterConfig& add(const Adapter& adapter, float alpha);
  AdapterConfig& add(const Adapter& adapter);
  AdapterConfig& set_alpha(const Adapter& adapter, float alpha);
  /// Throws for an adapter this config does not hold.
  float get_alpha(const Adapter& adapter) const;
  AdapterConfig& remove(const Adapter& adapter);
  std::vector<std::pair<Adapter, float>> get_adapters_and_alphas() const;
  void set_adapters_and_alphas(const std::vector<std::pair<Adapter, float>>& adapters);
  void set_mode(Mode mode);
  void update(const AdapterConfig& other);

  Mode get_mode() const { return mode_; }
  const std::vector<Adapter>& get_adapters() const { return adapters_; }
  const std::optional<std::string>& get_tensor_name_prefix() const { return tensor_name_prefix_; }
  void set_tensor_name_prefix(const std::optional<std::string>& prefix) { tensor_name_prefix_ = prefix; }
  /// True when the config holds at least one adapter.
  explicit operator bool() const { return !adapters_.empty(); }

 private:
  Mode mode_;
  std::vector<Adapter> adapters_;
  std::vector<float> alphas_;
  std::optional<std::string> tensor_name_prefix_;
};

// ---------------------------------------------------------------------------------------------------------------
// Random generators
// ---------------------------------------------------------------------------------------------------------------

/// The source of the initial latent noise. Virtual order: next, randn_tensor, seed, destructor.
class MULTILORA_GENAI_API Generator {
 public:
  virtual float next() = 0;
  virtual ov::Tensor randn_tensor(const ov::Shape& shape);
  virtual void seed(size_t new_seed) = 0;
  virtual ~Generator();
};

/// GenAI's default generator: std::mt19937 with std::normal_distribution<float>; keeps 32 bits of a seed.
class MULTILORA_GENAI_API CppStdGenerator : public Generator {
 public:
  explicit CppStdGenerator(uint32_t seed);
  float next() override;
  void seed(size_t new_seed) override;
  ~CppStdGenerator() override;

 private:
  std::mt19937 gen_;
  std::normal_distribution<float> normal_;
};

// ---------------------------------------------------------------------------------------------------------------
// Schedulers
// ---------------------------------------------------------------------------------------------------------------

class MULTILORA_GENAI_API Scheduler {
 public:
  enum Type {
    AUTO = 0,
    LCM = 1,
    DDIM = 2,
    EULER_DISCRETE = 3,
    FLOW_MATCH_EULER_DISCRETE = 4,
    PNDM = 5,
    EULER_ANCESTRAL_DISCRETE = 6,
  };

  static std::shared_ptr<Scheduler> from_config(const std::filesystem::path& scheduler_config_path,
                                                Type scheduler_type = AUTO);
  virtual ~Scheduler();
};

// ---------------------------------------------------------------------------------------------------------------
// Generation config and metrics
// ---------------------------------------------------------------------------------------------------------------

struct TaylorSeerCacheConfig {
  size_t cache_interval;
  size_t disable_cache_before_step;
  int disable_cache_after_step;
};

/// The defaults a pipeline derives from its model, and the fields a generate call may override.
struct MULTILORA_GENAI_API ImageGenerationConfig {
  std::optional<std::string> prompt_2;
  std::optional<std::string> prompt_3;
  std::optional<std::string> negative_prompt;
  std::optional<std::string> negative_prompt_2;
  std::optional<std::string> negative_prompt_3;
  size_t num_images_per_prompt;
  std::shared_ptr<Generator> generator;
  size_t rng_seed;
  float guidance_scale;
  int64_t height;
  int64_t width;
  size_t num_inference_steps;
  int max_sequence_length;
  float strength;
  std::optional<AdapterConfig> adapters;
  std::optional<TaylorSeerCacheConfig> taylorseer_config;

  ImageGenerationConfig(const ImageGenerationConfig& other);
  ~ImageGenerationConfig();
  void validate() const;
  void update_generation_config(const ov::AnyMap& properties);
};

struct MeanStdPair {
  float mean;
  float std;
};

struct RawImageGenerationPerfMetrics {
  using MicroSeconds = std::chrono::duration<float, std::ratio<1, 1000000>>;
  std::vector<MicroSeconds> unet_inference_durations;
  std::vector<MicroSeconds> transformer_inference_durations;
  std::vector<MicroSeconds> iteration_durations;
};

/// Timings of the last generate call, in milliseconds.
struct MULTILORA_GENAI_API ImageGenerationPerfMetrics {
  float load_time;
  float generate_duration;
  MeanStdPair iteration_duration;
  std::map<std::string, float> encoder_inference_duration;
  MeanStdPair unet_inference_duration;
  MeanStdPair transformer_inference_duration;
  float vae_encoder_inference_duration;
  float vae_decoder_inference_duration;
  bool m_evaluated;
  RawImageGenerationPerfMetrics raw_metrics;

  ImageGenerationPerfMetrics(const ImageGenerationPerfMetrics& other);
  void evaluate_statistics();
  float get_load_time() const;
  float get_generate_duration();
  MeanStdPair get_iteration_duration();
  MeanStdPair get_unet_infer_duration();
  MeanStdPair get_transformer_infer_duration();
  float get_vae_encoder_infer_duration() const;
  float get_vae_decoder_infer_duration() const;
  std::map<std::string, float> get_text_encoder_infer_duration() const;
};

/// The step callback: (step, number of steps, current latent); returning true stops the run.
using StepCallback = std::function<bool(size_t step, size_t num_steps, ov::Tensor& latent)>;

// ---------------------------------------------------------------------------------------------------------------
// Models: a pipeline's parts, each read from its folder or from an IR string and a weights tensor in memory
// (multilora hands GenAI weights it fused itself this way). Only layouts and the calls multilora makes.
// ---------------------------------------------------------------------------------------------------------------

/// Applies adapters to one compiled model. Held by value by the models below: its layout only.
class MULTILORA_GENAI_API AdapterController {
 public:
  AdapterController() = default;

 private:
  std::shared_ptr<AdapterControllerImpl> impl_;
};

/// A tokenizer read from an openvino_tokenizer.xml / openvino_detokenizer.xml folder.
class MULTILORA_GENAI_API Tokenizer {
 public:
  explicit Tokenizer(const std::filesystem::path& tokenizer_path, const ov::AnyMap& properties = {});
  Tokenizer() = default;
  ~Tokenizer();
  class TokenizerImpl;

 private:
  std::shared_ptr<TokenizerImpl> impl_;
};

/// A CLIP text encoder. Layout: config, adapter controller, tokenizer, a flag, then the request and model.
class MULTILORA_GENAI_API CLIPTextModel {
 public:
  struct MULTILORA_GENAI_API Config {
    size_t max_position_embeddings = 77;
    size_t num_hidden_layers = 12;
    explicit Config(const std::filesystem::path& config_path);
  };

  /// Reads <root_dir>/openvino_model.xml and the tokenizer beside it, without compiling.
  explicit CLIPTextModel(const std::filesystem::path& root_dir);
  /// From an IR held in memory (read, not compiled).
  CLIPTextModel(const std::string& model, const ov::Tensor& weights, const Config& config,
                const Tokenizer& clip_tokenizer);
  CLIPTextModel(const CLIPTextModel& other);

 private:
  Config config_;
  AdapterController adapter_controller_;
  Tokenizer clip_tokenizer_;
  bool slice_batch1_output_ = false;

 protected:
  ov::InferRequest request_;
  std::shared_ptr<ov::Model> model_;
};

/// SDXL's second text encoder: CLIPTextModel's constructors and layout, nothing of its own.
class CLIPTextModelWithProjection : public CLIPTextModel {
 public:
  using CLIPTextModel::CLIPTextModel;
};

class MULTILORA_GENAI_API UNet2DConditionModel {
 public:
  struct MULTILORA_GENAI_API Config {
    size_t in_channels = 4;
    size_t sample_size = 0;
    int time_cond_proj_dim = -1;
    explicit Config(const std::filesystem::path& config_path);
  };

  explicit UNet2DConditionModel(const std::filesystem::path& root_dir);
  /// From an IR held in memory (read, not compiled); vae_scale_factor: the VAE's, as AutoencoderKL reports it.
  UNet2DConditionModel(const std::string& model, const ov::Tensor& weights, const Config& config,
                       const size_t vae_scale_factor);
  UNet2DConditionModel(const UNet2DConditionModel& other);

 private:
  class UNetInference;
  std::shared_ptr<UNetInference> impl_;
  Config config_;
  AdapterController adapter_controller_;
  std::shared_ptr<ov::Model> model_;
  size_t vae_scale_factor_;
};

class MULTILORA_GENAI_API AutoencoderKL {
 public:
  struct MULTILORA_GENAI_API Config {
    size_t in_channels = 3;
    size_t latent_channels = 4;
    size_t out_channels = 3;
    float scaling_factor = 1.0f;
    float shift_factor = 0.0f;
    std::vector<size_t> block_out_channels = {64};
    explicit Config(const std::filesystem::path& config_path);
  };

  /// The decoder only (text to image), read without compiling.
  explicit AutoencoderKL(const std::filesystem::path& vae_decoder_path);
  /// Encoder and decoder (image to image, inpainting), read without compiling.
  AutoencoderKL(const std::filesystem::path& vae_encoder_path, const std::filesystem::path& vae_decoder_path);
  AutoencoderKL(const AutoencoderKL& other);
  size_t get_vae_scale_factor() const;

 private:
  Config config_;
  ov::InferRequest encoder_request_, decoder_request_;
  std::shared_ptr<ov::Model> encoder_model_ = nullptr, decoder_model_ = nullptr;
};

// ---------------------------------------------------------------------------------------------------------------
// Pipelines
// ---------------------------------------------------------------------------------------------------------------

/// Text to image for every diffusers family GenAI knows (SD 1.5, LCM, SDXL, SD3, Flux), read from an
/// optimum-intel export. One generate at a time per object: it is not safe to call concurrently.
class MULTILORA_GENAI_API Text2ImagePipeline {
 public:
  explicit Text2ImagePipeline(const std::filesystem::path& models_path);
  Text2ImagePipeline(const std::filesystem::path& models_path, const std::string& device,
                     const ov::AnyMap& properties = {});
  Text2ImagePipeline(const Image2ImagePipeline& pipe);
  Text2ImagePipeline(const InpaintingPipeline& pipe);

  /// Assemble a pipeline from models that are read but not compiled: compile() follows (reshape() may come first).
  static Text2ImagePipeline stable_diffusion(const std::shared_ptr<Scheduler>& scheduler,
                                             const CLIPTextModel& clip_text_model, const UNet2DConditionModel& unet,
                                             const AutoencoderKL& vae);
  static Text2ImagePipeline latent_consistency_model(const std::shared_ptr<Scheduler>& scheduler,
                                                     const CLIPTextModel& clip_text_model,
                                                     const UNet2DConditionModel& unet, const AutoencoderKL& vae);
  static Text2ImagePipeline stable_diffusion_xl(const std::shared_ptr<Scheduler>& scheduler,
                                                const CLIPTextModel& clip_text_model,
                                                const CLIPTextModelWithProjection& clip_text_model_with_projection,
                                                const UNet2DConditionModel& unet, const AutoencoderKL& vae);

  /// Wrong with LoRA adapters in this release (see ../shared/SDK.md): multilora never calls it.
  Text2ImagePipeline clone();
  ImageGenerationConfig get_generation_config() const;
  void set_generation_config(const ImageGenerationConfig& config);
  void set_scheduler(std::shared_ptr<Scheduler> scheduler);
  void reshape(int num_images_per_prompt, int height, int width, float guidance_scale);
  void compile(const std::string& device, const ov::AnyMap& properties = {});
  void compile(const std::string& text_encode_device, const std::string& denoise_device,
               const std::string& vae_device, const ov::AnyMap& properties = {});
  /// Returns a u8 tensor [num_images, height, width, 3].
  ov::Tensor generate(const std::string& positive_prompt, const ov::AnyMap& properties = {});
  ov::Tensor decode(ov::Tensor latent);
  ImageGenerationPerfMetrics get_performance_metrics();
  void export_model(const std::filesystem::path& export_path);

 private:
  std::shared_ptr<DiffusionPipeline> impl_;
};

/// Image to image: denoises from a noised initial image. Built from an InpaintingPipeline, it shares its models.
class MULTILORA_GENAI_API Image2ImagePipeline {
 public:
  Image2ImagePipeline(const InpaintingPipeline& pipe);
  ImageGenerationConfig get_generation_config() const;
  void set_scheduler(std::shared_ptr<Scheduler> scheduler);
  /// image: u8 [1, height, width, 3].
  ov::Tensor generate(const std::string& positive_prompt, ov::Tensor initial_image, const ov::AnyMap& properties = {});
  ImageGenerationPerfMetrics get_performance_metrics();

 private:
  std::shared_ptr<DiffusionPipeline> impl_;
};

/// Inpainting: repaints where the mask is white. Text2ImagePipeline and Image2ImagePipeline can be built from it,
/// sharing its models (the other way round, an InpaintingPipeline built from an Image2ImagePipeline crashes in
/// generate with this release).
class MULTILORA_GENAI_API InpaintingPipeline {
 public:
  /// Reads the models without compiling them: reshape() may follow, then compile().
  explicit InpaintingPipeline(const std::filesystem::path& models_path);
  InpaintingPipeline(const std::filesystem::path& models_path, const std::string& device,
                     const ov::AnyMap& properties = {});
  /// As Text2ImagePipeline's: from read models, compile() to follow.
  static InpaintingPipeline stable_diffusion(const std::shared_ptr<Scheduler>& scheduler,
                                             const CLIPTextModel& clip_text_model, const UNet2DConditionModel& unet,
                                             const AutoencoderKL& vae);
  static InpaintingPipeline latent_consistency_model(const std::shared_ptr<Scheduler>& scheduler,
                                                     const CLIPTextModel& clip_text_model,
                                                     const UNet2DConditionModel& unet, const AutoencoderKL& vae);
  static InpaintingPipeline stable_diffusion_xl(const std::shared_ptr<Scheduler>& scheduler,
                                                const CLIPTextModel& clip_text_model,
                                                const CLIPTextModelWithProjection& clip_text_model_with_projection,
                                                const UNet2DConditionModel& unet, const AutoencoderKL& vae);
  void reshape(int num_images_per_prompt, int height, int width, float guidance_scale);
  void compile(const std::string& device, const ov::AnyMap& properties = {});
  ImageGenerationConfig get_generation_config() const;
  void set_scheduler(std::shared_ptr<Scheduler> scheduler);
  /// image and mask: u8 [1, height, width, 3].
  ov::Tensor generate(const std::string& positive_prompt, ov::Tensor initial_image, ov::Tensor mask_image,
                      const ov::AnyMap& properties = {});
  ImageGenerationPerfMetrics get_performance_metrics();

 private:
  std::shared_ptr<DiffusionPipeline> impl_;
};

}  // namespace genai
}  // namespace ov
