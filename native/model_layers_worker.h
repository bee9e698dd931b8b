// Reads one OpenVINO IR (openvino_model.xml) off the JS thread and lists its MatMul and Convolution layers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <napi.h>

#include "promise_worker.h"

namespace multilora {

struct LayerInfo {
  std::string name;
  std::string type;
  std::vector<int64_t> shape;  // of the weights (input 1)
  bool transpose_b = false;
};

class ModelLayersWorker : public PromiseWorker {
 public:
  ModelLayersWorker(Napi::Env env, std::string xml_path);

 protected:
  void Run() override;
  Napi::Value Resolve(Napi::Env env) override;

 private:
  std::string xml_path_;
  std::vector<LayerInfo> layers_;
};

}  // namespace multilora
