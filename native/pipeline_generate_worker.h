// One Text2ImagePipeline::generate call, on a thread of its own (thread_promise_worker.h: not libuv's pool).
// - Its constructor reads the JS options into plain C++ fields (the TS layer has validated them).
// - Step progress reaches JS through a thread-safe function with non-blocking calls: when JS lags, events are
//   dropped, and the denoising loop never waits for JS.
// - Cancellation: Abort() sets an atomic flag that GenAI's step callback reads; returning true stops the run. Every
//   call has the callback, so that process exit and worker_threads teardown can stop any run (Stop()).
// - The initial noise: GenAI's own generator from the seed, or (options.generator 'torch') a TorchGenerator.
// - The result: GenAI 2026.3 writes every result of a model into one tensor of its VAE decoder, which the next
//   call overwrites or reallocates even while someone holds it (docs/GENAI-BUGS.md#output-reused, test/zero-copy.spec.js). So by
//   default the images are copied once, on the worker thread, into a tensor that only the JS Buffer owns (a
//   finalizer frees it). With options.output 'borrow', the Buffer wraps GenAI's own memory instead, with no copy,
//   and the Pipeline detaches it before GenAI may touch that memory again (Pipeline::RevokeLent).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <napi.h>

#include "genai/genai.h"
#include "pipeline.h"
#include "thread_promise_worker.h"

namespace multilora {

class Pipeline;

/// GenAI's timings of one generate call, in milliseconds.
struct GenerateMetrics {
  float load_ms = 0;
  float total_ms = 0;
  float step_mean_ms = 0;
  float step_std_ms = 0;
  float denoiser_mean_ms = 0;
  std::vector<std::pair<std::string, float>> text_encoders_ms;
  float vae_decoder_ms = 0;
  float vae_encoder_ms = 0;
};

class PipelineGenerateWorker : public ThreadPromiseWorker {
 public:
  /// info: (prompt, options[, onProgress]); see NativeGenerateOptions in lib/core/binding.ts. options.task picks
  /// text-to-image (0), image-to-image (1, options.image) or inpainting (2, options.image and options.mask).
  PipelineGenerateWorker(const Napi::CallbackInfo& info, Pipeline* pipeline);
  ~PipelineGenerateWorker() override;

  /// Asks the run to stop at its next step. Safe from the JS thread at any time.
  void Abort() { abort_->store(true); }

 protected:
  void Run() override;
  Napi::Value Resolve(Napi::Env env) override;
  void Settled(Napi::Env env) override;
  /// The environment is going away: abort at the next step, send no more progress, do not wait for JS.
  void Stop() override;
  void Abandon() override;

 private:
  struct Progress;

  bool OnStep(size_t step, size_t num_steps, ov::Tensor& latent);
  void FlushProgress();

  Napi::ObjectReference owner_;  // keeps the JS Pipeline alive while the run lasts
  Pipeline* pipeline_;
  GenaiPipelines genai_;  // copies of the owner's: a dispose meanwhile frees them only when this run is over
  bool borrow_ = false;   // lend GenAI's output memory instead of copying it
  Task task_ = Task::kText2Image;
  ov::Tensor image_;
  ov::Tensor mask_;
  std::string prompt_;
  ov::AnyMap properties_;
  std::optional<int> scheduler_;  // a Scheduler::Type to switch to first
  std::string scheduler_config_;
  std::shared_ptr<std::atomic<bool>> abort_ = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool> stopping_{false};  // Stop(): the JS thread waits for this run and will not take events
  std::optional<Napi::ThreadSafeFunction> progress_;
  bool preview_ = false;
  std::chrono::steady_clock::time_point started_;
  bool aborted_ = false;
  ov::Tensor output_;  // GenAI's output tensor (its handle: GenAI may resize it in place on later calls)
  ov::Tensor images_;  // what the JS Buffer wraps: a copy of output_, or output_ itself when borrowing
  GenerateMetrics metrics_;
};

}  // namespace multilora
