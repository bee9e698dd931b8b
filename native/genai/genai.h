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
#include "openvino/core/shape.hpp"
#include "openvino/runtime/tensor.hpp"

#define MULTILORA_GENAI_API __attribute__((visibility("default")))
#define MULTILORA_GENAI_RELEASE "2026.3.0.0"

namespace ov {
namespace genai {

class AdapterImpl;
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
