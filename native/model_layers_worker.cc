#include "model_layers_worker.h"

#include "openvino/op/convolution.hpp"
#include "openvino/op/matmul.hpp"
#include "openvino/runtime/core.hpp"

namespace multilora {

ModelLayersWorker::ModelLayersWorker(Napi::Env env, std::string xml_path)
    : PromiseWorker(env, "multilora.ModelLayers"), xml_path_(std::move(xml_path)) {}

void ModelLayersWorker::Run() {
  try {
    ov::Core core;
    std::shared_ptr<ov::Model> model = core.read_model(xml_path_);
    for (const std::shared_ptr<ov::Node>& node : model->get_ordered_ops()) {
      auto matmul = ov::as_type_ptr<ov::op::v0::MatMul>(node);
      auto conv = ov::as_type_ptr<ov::op::v1::Convolution>(node);
      if (!matmul && !conv) continue;
      const ov::PartialShape& weights = node->get_input_partial_shape(1);
      if (!weights.is_static()) continue;
      LayerInfo layer{node->get_friendly_name(), matmul ? "MatMul" : "Convolution", {}, matmul && matmul->get_transpose_b()};
      for (const ov::Dimension& d : weights) layer.shape.push_back(d.get_length());
      layers_.push_back(std::move(layer));
    }
  } catch (...) {
    Fail(DescribeCurrentException(kErrModelInvalid, "ov::Core::read_model(\"" + xml_path_ + "\")"));
  }
}

Napi::Value ModelLayersWorker::Resolve(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env, layers_.size());
  for (uint32_t i = 0; i < layers_.size(); ++i) {
    const LayerInfo& layer = layers_[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", layer.name);
    o.Set("type", layer.type);
    Napi::Array shape = Napi::Array::New(env, layer.shape.size());
    for (uint32_t k = 0; k < layer.shape.size(); ++k) shape.Set(k, Napi::Number::New(env, static_cast<double>(layer.shape[k])));
    o.Set("shape", shape);
    o.Set("transposeB", layer.transpose_b);
    out.Set(i, o);
  }
  return out;
}

}  // namespace multilora
