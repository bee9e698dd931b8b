#include "pipeline_generate_worker.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <future>
#include <thread>

#include "adapter.h"
#include "pipeline.h"
#include "torch_generator.h"

namespace multilora {

namespace {

/// Holds the tensor that a JS Buffer points into, for as long as the Buffer lives.
struct TensorHolder {
  ov::Tensor tensor;
};

bool Has(const Napi::Object& o, const char* key) { return o.Has(key) && !o.Get(key).IsUndefined(); }

std::string Str(const Napi::Object& o, const char* key) { return o.Get(key).As<Napi::String>().Utf8Value(); }

double Num(const Napi::Object& o, const char* key) { return o.Get(key).As<Napi::Number>().DoubleValue(); }

/// A small RGB picture of a 4-channel latent (SD, SDXL, LCM) by a fixed linear map; other latents: their first three
/// channels, each stretched to 0..255. Cheap: one pass over the latent, no model.
std::vector<uint8_t> LatentPreview(const ov::Tensor& latent, size_t& width, size_t& height) {
  const ov::Shape shape = latent.get_shape();
  if (shape.size() != 4 || latent.get_element_type() != ov::element::f32 || shape[1] < 3) return {};
  const size_t channels = shape[1];
  height = shape[2];
  width = shape[3];
  const size_t plane = width * height;
  const float* data = latent.data<const float>();  // first image of the batch
  std::vector<float> rgb(plane * 3);
  if (channels == 4) {
    static const float kFactors[4][3] = {
        {0.298f, 0.207f, 0.208f}, {0.187f, 0.286f, 0.173f}, {-0.158f, 0.189f, 0.264f}, {-0.184f, -0.271f, -0.473f}};
    for (size_t i = 0; i < plane; ++i) {
      for (size_t c = 0; c < 3; ++c) {
        float v = 0;
        for (size_t k = 0; k < 4; ++k) v += data[k * plane + i] * kFactors[k][c];
        rgb[i * 3 + c] = (v + 1.0f) * 127.5f;
      }
    }
  } else {
    for (size_t c = 0; c < 3; ++c) {
      const float* ch = data + c * plane;
      auto [lo, hi] = std::minmax_element(ch, ch + plane);
      const float range = std::max(*hi - *lo, 1e-6f);
      for (size_t i = 0; i < plane; ++i) rgb[i * 3 + c] = (ch[i] - *lo) / range * 255.0f;
    }
  }
  std::vector<uint8_t> out(rgb.size());
  for (size_t i = 0; i < rgb.size(); ++i) out[i] = static_cast<uint8_t>(std::clamp(std::lround(rgb[i]), 0L, 255L));
  return out;
}

/// A copy of { data: RGB Buffer, width, height } as a u8 tensor [1, height, width, 3].
ov::Tensor ImageTensor(const Napi::Object& image) {
  Napi::Buffer<uint8_t> data = image.Get("data").As<Napi::Buffer<uint8_t>>();
  const size_t width = static_cast<size_t>(Num(image, "width"));
  const size_t height = static_cast<size_t>(Num(image, "height"));
  ov::Tensor tensor(ov::element::u8, ov::Shape{1, height, width, 3});
  std::memcpy(tensor.data(), data.Data(), std::min(data.Length(), tensor.get_byte_size()));
  return tensor;
}

}  // namespace

struct PipelineGenerateWorker::Progress {
  size_t step;
  size_t total;
  double elapsed_ms;
  std::vector<uint8_t> preview;
  size_t preview_width = 0;
  size_t preview_height = 0;
};

PipelineGenerateWorker::PipelineGenerateWorker(const Napi::CallbackInfo& info, Pipeline* pipeline)
    : ThreadPromiseWorker(info.Env(), "multilora.PipelineGenerate"),
      owner_(Napi::Persistent(info.This().As<Napi::Object>())),
      pipeline_(pipeline),
      genai_(pipeline->genai()),
      prompt_(info[0].As<Napi::String>().Utf8Value()) {
  Napi::Env env = info.Env();
  Napi::Object o = info[1].As<Napi::Object>();
  // Each value has the exact C++ type that GenAI reads it as (ov::Any::as<T>).
  const double seed = Num(o, "seed");
  if (Has(o, "generator") && Str(o, "generator") == "torch") {
    // A fresh one per call: the same seed gives the same noise whatever ran before.
    properties_["generator"] =
        std::shared_ptr<ov::genai::Generator>(std::make_shared<TorchGenerator>(static_cast<uint64_t>(seed)));
  } else {
    properties_["rng_seed"] = static_cast<size_t>(seed);
  }
  borrow_ = Has(o, "output") && Str(o, "output") == "borrow";
  if (Has(o, "width")) properties_["width"] = static_cast<int64_t>(Num(o, "width"));
  if (Has(o, "height")) properties_["height"] = static_cast<int64_t>(Num(o, "height"));
  if (Has(o, "steps")) properties_["num_inference_steps"] = static_cast<size_t>(Num(o, "steps"));
  if (Has(o, "guidanceScale")) properties_["guidance_scale"] = static_cast<float>(Num(o, "guidanceScale"));
  if (Has(o, "strength")) properties_["strength"] = static_cast<float>(Num(o, "strength"));
  if (Has(o, "numImages")) properties_["num_images_per_prompt"] = static_cast<size_t>(Num(o, "numImages"));
  if (Has(o, "maxSequenceLength")) properties_["max_sequence_length"] = static_cast<int>(Num(o, "maxSequenceLength"));
  static const std::pair<const char*, const char*> kStrings[] = {
      {"prompt2", "prompt_2"},
      {"prompt3", "prompt_3"},
      {"negativePrompt", "negative_prompt"},
      {"negativePrompt2", "negative_prompt_2"},
      {"negativePrompt3", "negative_prompt_3"},
  };
  for (const auto& [js, genai] : kStrings) {
    if (Has(o, js)) properties_[genai] = Str(o, js);
  }
  if (Has(o, "task")) task_ = static_cast<Task>(static_cast<int>(Num(o, "task")));
  // Checked in lib/core/pipeline.ts (checkImageCall: the model's defaults.imageInputs).
  assert(task_ == Task::kText2Image || genai_.image2image);
  if (task_ != Task::kText2Image) image_ = ImageTensor(o.Get("image").As<Napi::Object>());
  if (task_ == Task::kInpainting) mask_ = ImageTensor(o.Get("mask").As<Napi::Object>());
  const int scheduler = Has(o, "scheduler") ? static_cast<int>(Num(o, "scheduler")) : 0;
  if (scheduler != pipeline->scheduler(task_)) {
    scheduler_ = scheduler;
    scheduler_config_ = pipeline->model_dir() + "/scheduler/scheduler_config.json";
  }

  const size_t registered = pipeline->adapters().size();
  Napi::Array chosen = o.Get("adapters").As<Napi::Array>();
  // Checked in lib/core/options.ts (checkGenerate: none in fuse mode) and resolved by name in lib/core/pipeline.ts
  // (#resolve: indices into the adapters this native pipeline was built with, the chosen ones and those listed at 0
  // so that no layer's rank drops to 0: listFor in lib/core/genai-quirks.ts).
  assert(!pipeline->fused() || chosen.Length() == 0);
  assert(registered > 0 || chosen.Length() == 0);
  if (!pipeline->fused() && registered > 0) {
    std::vector<AdapterChoice> choices;
    for (uint32_t i = 0; i < chosen.Length(); ++i) {
      Napi::Array pair = chosen.Get(i).As<Napi::Array>();
      uint32_t index = pair.Get(uint32_t{0}).As<Napi::Number>().Uint32Value();
      assert(index < registered);
      choices.emplace_back(index, pair.Get(uint32_t{1}).As<Napi::Number>().FloatValue());
    }
    // Always explicit: without it, GenAI would apply the adapters as registered.
    properties_["adapters"] = pipeline->AdapterConfigFor(choices, task_ == Task::kText2Image);
  }

  preview_ = Has(o, "preview") && o.Get("preview").ToBoolean().Value();
  if (info.Length() > 2 && info[2].IsFunction()) {
    // At most 8 events wait for JS; beyond that they are dropped rather than slowing the denoising loop.
    progress_ = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "multilora.progress", 8, 1);
  }
  // Every call gets a step callback, even without progress or a signal: it is what stops a run when the process
  // exits or its worker_thread is terminated. (GenAI runs it on a thread it starts for each call.)
  properties_["callback"] = std::function<bool(size_t, size_t, ov::Tensor&)>(
      [this](size_t step, size_t num_steps, ov::Tensor& latent) { return OnStep(step, num_steps, latent); });
}

PipelineGenerateWorker::~PipelineGenerateWorker() = default;

bool PipelineGenerateWorker::OnStep(size_t step, size_t num_steps, ov::Tensor& latent) {
  if (abort_->load()) {
    aborted_ = true;
    return true;
  }
  if (progress_ && !stopping_.load()) {
    auto* event = new Progress{step + 1, num_steps,
                               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
                                   .count(),
                               {}};
    if (preview_) event->preview = LatentPreview(latent, event->preview_width, event->preview_height);
    napi_status status = progress_->NonBlockingCall(event, [](Napi::Env env, Napi::Function fn, Progress* p) {
      std::unique_ptr<Progress> owned(p);
      if (env == nullptr || fn.IsEmpty()) return;
      // lib/core/pipeline.ts catches what the user's callback throws: what reaches here is an environment that can no
      // longer run JS (a worker's process.exit()), and an exception must not leave this C callback.
      try {
        Napi::Object e = Napi::Object::New(env);
        e.Set("step", Napi::Number::New(env, static_cast<double>(p->step)));
        e.Set("total", Napi::Number::New(env, static_cast<double>(p->total)));
        e.Set("elapsedMs", Napi::Number::New(env, p->elapsed_ms));
        if (!p->preview.empty()) {
          Napi::Object preview = Napi::Object::New(env);
          preview.Set("width", Napi::Number::New(env, static_cast<double>(p->preview_width)));
          preview.Set("height", Napi::Number::New(env, static_cast<double>(p->preview_height)));
          preview.Set("channels", Napi::Number::New(env, 3));
          preview.Set("data", Napi::Buffer<uint8_t>::Copy(env, p->preview.data(), p->preview.size()));
          e.Set("preview", preview);
        }
        fn.Call({e});
      } catch (const Napi::Error&) {
      }
    });
    if (status != napi_ok) delete event;  // queue full or closing: drop the event
  }
  return abort_->load() ? (aborted_ = true) : false;
}

void PipelineGenerateWorker::FlushProgress() {
  // Progress events that were queued reach JS before the promise settles: a last call is answered only after those
  // before it. Never a blocking call, and never waited for once Stop() was called: then the JS thread is waiting
  // for this thread, or gone. Bounded, so that a JS thread that is stuck cannot hold this thread forever.
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> flushed = done->get_future();
  auto* signal = new std::shared_ptr<std::promise<void>>(done);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto answer = [](Napi::Env, Napi::Function, std::shared_ptr<std::promise<void>>* p) {
    (*p)->set_value();
    delete p;
  };
  napi_status status;
  while ((status = progress_->NonBlockingCall(signal, answer)) == napi_queue_full) {
    if (stopping_.load() || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (status != napi_ok) {
    delete signal;
    return;
  }
  while (!stopping_.load() && std::chrono::steady_clock::now() < deadline &&
         flushed.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
  }
}

void PipelineGenerateWorker::Run() {
  started_ = std::chrono::steady_clock::now();
  try {
    if (abort_->load()) {
      aborted_ = true;
    } else {
      if (scheduler_) {
        auto scheduler = ov::genai::Scheduler::from_config(scheduler_config_,
                                                          static_cast<ov::genai::Scheduler::Type>(*scheduler_));
        switch (task_) {
          case Task::kText2Image: genai_.text2image->set_scheduler(scheduler); break;
          case Task::kImage2Image: genai_.image2image->set_scheduler(scheduler); break;
          case Task::kInpainting: genai_.inpainting->set_scheduler(scheduler); break;
        }
        pipeline_->set_scheduler(task_, *scheduler_);
      }
      ov::Tensor output;
      switch (task_) {
        case Task::kText2Image: output = genai_.text2image->generate(prompt_, properties_); break;
        case Task::kImage2Image: output = genai_.image2image->generate(prompt_, image_, properties_); break;
        case Task::kInpainting: output = genai_.inpainting->generate(prompt_, image_, mask_, properties_); break;
      }
      if (!aborted_) {
        if (output.get_element_type() != ov::element::u8 || output.get_shape().size() != 4 ||
            output.get_shape()[3] != 3) {
          Fail({kErrGenai, "ov::genai::Text2ImagePipeline::generate returned a tensor of an unexpected type or shape"});
        } else {
          output_ = output;
          if (borrow_) {
            images_ = output;
          } else {
            images_ = quirks::OwnCopy(output);  // docs/GENAI-BUGS.md#output-reused
          }
          ov::genai::ImageGenerationPerfMetrics m = task_ == Task::kText2Image    ? genai_.text2image->get_performance_metrics()
                                                    : task_ == Task::kImage2Image ? genai_.image2image->get_performance_metrics()
                                                                                  : genai_.inpainting->get_performance_metrics();
          metrics_.load_ms = m.get_load_time();
          metrics_.total_ms = m.get_generate_duration();
          const ov::genai::MeanStdPair step = m.get_iteration_duration();
          metrics_.step_mean_ms = step.mean;
          metrics_.step_std_ms = step.std;
          const ov::genai::MeanStdPair unet = m.get_unet_infer_duration();
          const ov::genai::MeanStdPair transformer = m.get_transformer_infer_duration();
          metrics_.denoiser_mean_ms = unet.mean > 0 ? unet.mean : transformer.mean;
          for (const auto& [name, ms] : m.get_text_encoder_infer_duration()) metrics_.text_encoders_ms.emplace_back(name, ms);
          metrics_.vae_decoder_ms = m.get_vae_decoder_infer_duration();
          metrics_.vae_encoder_ms = m.get_vae_encoder_infer_duration();
        }
      }
    }
  } catch (...) {
    Fail(DescribeCurrentException(kErrGenai, task_ == Task::kText2Image    ? "ov::genai::Text2ImagePipeline::generate"
                                                 : task_ == Task::kImage2Image ? "ov::genai::Image2ImagePipeline::generate"
                                                                               : "ov::genai::InpaintingPipeline::generate"));
  }
  if (progress_) FlushProgress();
  if (aborted_) Fail({kErrAborted, "The generation was aborted"});
  properties_.clear();  // drops the callback and the adapter config
  // If the pipeline was disposed meanwhile, the last reference goes here, on this thread, not on the JS thread.
  image_ = ov::Tensor();
  mask_ = ov::Tensor();
  genai_ = GenaiPipelines();
}

Napi::Value PipelineGenerateWorker::Resolve(Napi::Env env) {
  const ov::Shape shape = images_.get_shape();
  const size_t size = images_.get_byte_size();
  auto* holder = new TensorHolder{images_};
  images_ = ov::Tensor();
  auto* data = static_cast<uint8_t*>(holder->tensor.data());
  // A copy is memory that this Buffer alone keeps alive: V8 is told of it. Borrowed memory is GenAI's, allocated
  // whether or not the Buffer lives, so it is not counted. (A pipeline disposed during the run lends nothing:
  // then the Buffer gets a copy, made here.)
  if (borrow_ && !pipeline_->genai()) {
    borrow_ = false;
    ov::Tensor copy(holder->tensor.get_element_type(), shape);
    holder->tensor.copy_to(copy);
    holder->tensor = copy;
    data = static_cast<uint8_t*>(copy.data());
  }
  const int64_t external = borrow_ ? 0 : static_cast<int64_t>(size);
  Napi::MemoryManagement::AdjustExternalMemory(env, external);
  Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::NewOrCopy(
      env, data, size,
      [external](Napi::Env env, uint8_t*, TensorHolder* hint) {
        delete hint;
        Napi::MemoryManagement::AdjustExternalMemory(env, -external);
      },
      holder);
  if (borrow_) pipeline_->Lend(buffer);
  Napi::Object result = Napi::Object::New(env);
  result.Set("data", buffer);
  result.Set("count", Napi::Number::New(env, static_cast<double>(shape[0])));
  result.Set("height", Napi::Number::New(env, static_cast<double>(shape[1])));
  result.Set("width", Napi::Number::New(env, static_cast<double>(shape[2])));
  // The public shape (Metrics in lib/core/options.ts): TS hands it on as it is.
  Napi::Object metrics = Napi::Object::New(env);
  metrics.Set("loadMs", Napi::Number::New(env, metrics_.load_ms));
  metrics.Set("totalMs", Napi::Number::New(env, metrics_.total_ms));
  Napi::Object step = Napi::Object::New(env);
  step.Set("mean", Napi::Number::New(env, metrics_.step_mean_ms));
  step.Set("std", Napi::Number::New(env, metrics_.step_std_ms));
  metrics.Set("stepMs", step);
  metrics.Set("denoiserMs", Napi::Number::New(env, metrics_.denoiser_mean_ms));
  Napi::Object encoders = Napi::Object::New(env);
  for (const auto& [name, ms] : metrics_.text_encoders_ms) encoders.Set(name, Napi::Number::New(env, ms));
  metrics.Set("textEncodersMs", encoders);
  metrics.Set("vaeDecoderMs", Napi::Number::New(env, metrics_.vae_decoder_ms));
  metrics.Set("vaeEncoderMs", Napi::Number::New(env, metrics_.vae_encoder_ms));
  result.Set("metrics", metrics);
  return result;
}

void PipelineGenerateWorker::Stop() {
  stopping_.store(true);
  abort_->store(true);
}

void PipelineGenerateWorker::Abandon() {
  if (progress_) {
    progress_->Release();
    progress_.reset();
  }
  pipeline_->GenerateFinished(this, true, ov::Tensor());
}

void PipelineGenerateWorker::Settled(Napi::Env env) {
  if (progress_) {
    progress_->Release();
    progress_.reset();
  }
  pipeline_->GenerateFinished(this, Rejected(), std::move(output_));
  owner_.Reset();
}

}  // namespace multilora
