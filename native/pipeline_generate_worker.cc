#include "pipeline_generate_worker.h"

#include "pipeline.h"

namespace multilora {

namespace {

/// Owns the output tensor for as long as a JS Buffer points into it.
struct TensorHolder {
  ov::Tensor tensor;
};

}  // namespace

PipelineGenerateWorker::PipelineGenerateWorker(Napi::Env env, Napi::Object owner, Pipeline* pipeline,
                                               std::shared_ptr<ov::genai::Text2ImagePipeline> genai,
                                               std::string prompt, ov::AnyMap properties)
    : PromiseWorker(env, "multilora.PipelineGenerate"),
      owner_(Napi::Persistent(owner)),
      pipeline_(pipeline),
      genai_(std::move(genai)),
      prompt_(std::move(prompt)),
      properties_(std::move(properties)) {}

void PipelineGenerateWorker::Run() {
  try {
    ov::Tensor output = genai_->generate(prompt_, properties_);
    if (output.get_element_type() != ov::element::u8 || output.get_shape().size() != 4 ||
        output.get_shape()[3] != 3) {
      Fail({kErrGenai, "ov::genai::Text2ImagePipeline::generate returned a tensor of an unexpected type or shape"});
    } else {
      // GenAI 2026.3 hands back memory that its next generate call overwrites (test/generate.spec.js shows it), so
      // the image is copied once, here on the worker thread, into a tensor that only the JS Buffer owns.
      images_ = ov::Tensor(output.get_element_type(), output.get_shape());
      output.copy_to(images_);
    }
  } catch (...) {
    Fail(DescribeCurrentException(kErrGenai, "ov::genai::Text2ImagePipeline::generate"));
  }
  properties_.clear();
  // If the pipeline was disposed meanwhile, the last reference goes here, on this thread, not on the JS thread.
  genai_.reset();
}

Napi::Value PipelineGenerateWorker::Resolve(Napi::Env env) {
  const ov::Shape shape = images_.get_shape();
  const size_t size = images_.get_byte_size();
  auto* holder = new TensorHolder{images_};
  images_ = ov::Tensor();
  auto* data = static_cast<uint8_t*>(holder->tensor.data());
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(size));
  Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::NewOrCopy(
      env, data, size,
      [size](Napi::Env env, uint8_t*, TensorHolder* hint) {
        delete hint;
        Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(size));
      },
      holder);
  Napi::Object result = Napi::Object::New(env);
  result.Set("data", buffer);
  result.Set("count", Napi::Number::New(env, static_cast<double>(shape[0])));
  result.Set("height", Napi::Number::New(env, static_cast<double>(shape[1])));
  result.Set("width", Napi::Number::New(env, static_cast<double>(shape[2])));
  return result;
}

void PipelineGenerateWorker::Settled(Napi::Env env) {
  pipeline_->GenerateFinished();
  owner_.Reset();
}

}  // namespace multilora
