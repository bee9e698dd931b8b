// Reads a LoRA adapter (a .safetensors file, or its bytes) with GenAI off the JS thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <napi.h>

#include "genai/genai.h"
#include "promise_worker.h"

namespace multilora {

class AdapterLoadWorker : public PromiseWorker {
 public:
  /// From a path.
  AdapterLoadWorker(Napi::Env env, std::string path);
  /// From the bytes of a .safetensors file; they are copied before the worker runs.
  AdapterLoadWorker(Napi::Env env, const uint8_t* data, size_t size);

 protected:
  void Run() override;
  Napi::Value Resolve(Napi::Env env) override;

 private:
  std::string path_;
  std::vector<uint8_t> bytes_;
  bool from_bytes_ = false;
  ov::genai::Adapter adapter_;
};

}  // namespace multilora
