#include "adapter_load_worker.h"

#include <cstring>

#include "adapter.h"

namespace multilora {

AdapterLoadWorker::AdapterLoadWorker(Napi::Env env, std::string path)
    : PromiseWorker(env, "multilora.AdapterLoad"), path_(std::move(path)) {}

AdapterLoadWorker::AdapterLoadWorker(Napi::Env env, const uint8_t* data, size_t size)
    : PromiseWorker(env, "multilora.AdapterLoad"), bytes_(data, data + size), from_bytes_(true) {}

void AdapterLoadWorker::Run() {
  try {
    if (from_bytes_) {
      ov::Tensor tensor(ov::element::u8, ov::Shape{bytes_.size()});
      std::memcpy(tensor.data(), bytes_.data(), bytes_.size());
      std::vector<uint8_t>().swap(bytes_);
      adapter_ = ov::genai::Adapter(tensor);
    } else {
      adapter_ = ov::genai::Adapter(std::filesystem::path(path_));
    }
  } catch (...) {
    Fail(DescribeCurrentException(kErrAdapterInvalid, "ov::genai::Adapter"));
  }
}

Napi::Value AdapterLoadWorker::Resolve(Napi::Env env) { return Adapter::NewInstance(env, adapter_); }

}  // namespace multilora
