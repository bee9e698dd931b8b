// Looks through a .safetensors file for NaN and infinite values off the JS thread, reading each tensor once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <napi.h>

#include "promise_worker.h"

namespace multilora {

/// One tensor to look through: where its bytes lie in the file and how its floats are laid out.
struct FloatSpan {
  uint64_t offset = 0;
  uint64_t byte_length = 0;
  enum class Kind { kF32, kF16, kBF16 } kind = Kind::kF32;
};

class FiniteScanWorker : public PromiseWorker {
 public:
  FiniteScanWorker(Napi::Env env, std::string path, std::vector<FloatSpan> spans);

 protected:
  void Run() override;
  /// null, or [span index, element index] of the first NaN or infinite value.
  Napi::Value Resolve(Napi::Env env) override;

 private:
  std::string path_;
  std::vector<FloatSpan> spans_;
  std::optional<std::pair<size_t, uint64_t>> found_;
};

}  // namespace multilora
