#include "fuse.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <utility>

#include "openvino/core/type/bfloat16.hpp"
#include "openvino/core/type/float16.hpp"
#include "openvino/op/add.hpp"
#include "openvino/op/constant.hpp"
#include "openvino/op/convert.hpp"
#include "openvino/op/convolution.hpp"
#include "openvino/op/matmul.hpp"
#include "openvino/runtime/core.hpp"

#include "genai/quirks.h"

namespace multilora {
namespace {

constexpr const char* kErrIncompatible = "ERR_ADAPTER_INCOMPATIBLE";
constexpr const char* kErrModel = "ERR_MODEL_INVALID";

/// Where a constant's values sit in the part's weights tensor.
struct Slot {
  size_t offset = 0;
  ov::element::Type type;
  ov::Shape shape;
};

/// A layer's weights (and bias, when it has one) in the weights tensor.
struct Target {
  Slot weights;
  bool transposed = false;  // a MatMul without transpose_b holds [in, out]
  std::optional<Slot> bias;
};

std::string ReadFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw FuseError(kErrModel, "cannot read " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

ov::Tensor ReadWeights(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) throw FuseError(kErrModel, "cannot read " + file.string());
  const auto size = static_cast<size_t>(in.tellg());
  ov::Tensor tensor(ov::element::u8, ov::Shape{size});
  in.seekg(0);
  if (!in.read(static_cast<char*>(tensor.data()), static_cast<std::streamsize>(size))) {
    throw FuseError(kErrModel, "cannot read " + file.string());
  }
  return tensor;
}

/// The constant behind a weights input: itself, or decompressed by a Convert (fp16 weights). Null otherwise
/// (int8/int4 weights come through a Subtract/Multiply chain).
std::shared_ptr<ov::op::v0::Constant> ConstantOf(const ov::Output<ov::Node>& input) {
  std::shared_ptr<ov::Node> node = input.get_node_shared_ptr();
  if (auto convert = ov::as_type_ptr<ov::op::v0::Convert>(node)) node = convert->get_input_node_shared_ptr(0);
  return ov::as_type_ptr<ov::op::v0::Constant>(node);
}

std::string Dims(const ov::Shape& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

FuseError Incompatible(const FuseLayer& layer, const std::string& part, const std::string& what, size_t got,
                     size_t want, const ov::Shape& torch) {
  return FuseError(kErrIncompatible, layer.label + " has " + std::to_string(got) + " " + what + " for the " +
                                         part + " layer \"" + layer.node + "\" of shape " + Dims(torch) +
                                         ", which needs " + std::to_string(want) +
                                         ": the LoRA is made for another base model");
}

/// DoRA, as LyCORIS merges it: the weights times alpha · (magnitude / norm - 1) + 1, the norm taken per output
/// row or per input column, plus float32's epsilon.
void Decompose(const FuseLayer& layer, const std::string& part, std::vector<float>& w, const ov::Shape& torch) {
  const size_t out = torch[0], in = torch[1];
  const size_t kernel = w.size() / (out * in);
  const bool rows = layer.dora_axis == 0;
  const size_t count = rows ? out : in;
  if (layer.magnitude.size() != count) {
    throw Incompatible(layer, part, rows ? "DoRA magnitudes (one per output)" : "DoRA magnitudes (one per input)",
                       layer.magnitude.size(), count, torch);
  }
  std::vector<double> sums(count, 0.0);
  for (size_t o = 0; o < out; ++o) {
    for (size_t i = 0; i < in; ++i) {
      for (size_t k = 0; k < kernel; ++k) {
        const double v = w[(o * in + i) * kernel + k];
        sums[rows ? o : i] += v * v;
      }
    }
  }
  std::vector<float> factor(count);
  for (size_t c = 0; c < count; ++c) {
    const float norm = static_cast<float>(std::sqrt(sums[c])) + std::numeric_limits<float>::epsilon();
    factor[c] = layer.alpha * (layer.magnitude[c] / norm - 1.0f) + 1.0f;
  }
  for (size_t o = 0; o < out; ++o) {
    for (size_t i = 0; i < in; ++i) {
      for (size_t k = 0; k < kernel; ++k) w[(o * in + i) * kernel + k] *= factor[rows ? o : i];
    }
  }
}

/// Diag-OFT: each block of b output rows becomes mixᵀ times those rows, in float64.
void Rotate(const FuseLayer& layer, const std::string& part, std::vector<float>& w, size_t out, size_t columns) {
  const size_t b = layer.blocks ? out / layer.blocks : 0;
  if (layer.blocks * b != out || layer.mix.size() != layer.blocks * b * b) {
    throw FuseError(kErrIncompatible, layer.label + " has " + std::to_string(layer.blocks) + " OFT blocks for the " +
                                          part + " layer \"" + layer.node + "\" of " + std::to_string(out) +
                                          " outputs: the LoRA is made for another base model");
  }
  std::vector<double> rotated(b * columns);
  for (size_t k = 0; k < layer.blocks; ++k) {
    std::fill(rotated.begin(), rotated.end(), 0.0);
    const double* mix = layer.mix.data() + k * b * b;
    for (size_t n = 0; n < b; ++n) {
      const float* row = w.data() + (k * b + n) * columns;
      for (size_t m = 0; m < b; ++m) {
        const double f = mix[n * b + m];
        double* into = rotated.data() + m * columns;
        for (size_t j = 0; j < columns; ++j) into[j] += f * row[j];
      }
    }
    for (size_t i = 0; i < b * columns; ++i) w[k * b * columns + i] = static_cast<float>(rotated[i]);
  }
}

/// Changes a layer's weights `w` (in torch's layout, of shape `torch`) as python/convert.py's fuse_one does: alpha ·
/// up·down added (then DoRA's norms), or the OFT blocks' rotation; then OFT's rescale. The bias is the caller's.
void FuseWeights(const FuseLayer& layer, const std::string& part, std::vector<float>& w, const ov::Shape& torch) {
  const size_t out = torch[0];
  const size_t columns = w.size() / out;  // in · kernel
  if (!layer.mix.empty()) {
    Rotate(layer, part, w, out, columns);
  } else {
    if (layer.up.size() != out * layer.rank || layer.down.size() != layer.rank * columns) {
      throw FuseError(kErrIncompatible, layer.label + " has A of " + std::to_string(layer.down.size()) +
                                            " values and B of " + std::to_string(layer.up.size()) +
                                            " at rank " + std::to_string(layer.rank) + ", which do not fit the " +
                                            part + " layer \"" + layer.node + "\" of shape " + Dims(torch) +
                                            ": the LoRA is made for another base model");
    }
    std::vector<float> delta(w.size(), 0.0f);
    for (size_t o = 0; o < out; ++o) {
      float* row = delta.data() + o * columns;
      for (size_t r = 0; r < layer.rank; ++r) {
        const float u = layer.up[o * layer.rank + r];
        if (u == 0.0f) continue;  // a full difference's B is the identity: a row at a time
        const float* a = layer.down.data() + r * columns;
        for (size_t j = 0; j < columns; ++j) row[j] += u * a[j];
      }
    }
    for (size_t i = 0; i < w.size(); ++i) w[i] += layer.alpha * delta[i];
    if (layer.dora_axis >= 0) Decompose(layer, part, w, torch);
  }
  if (!layer.rescale.empty()) {
    if (layer.rescale.size() != out) throw Incompatible(layer, part, "rescale", layer.rescale.size(), out, torch);
    for (size_t o = 0; o < out; ++o) {
      for (size_t j = 0; j < columns; ++j) w[o * columns + j] *= layer.rescale[o];
    }
  }
}

/// One part (unet, text_encoder, text_encoder_2) of the model, its .bin held in memory to be changed in place.
class PartInMemory {
 public:
  PartInMemory(const std::filesystem::path& dir, const std::string& part)
      : name_(part), xml_(ReadFile(dir / part / "openvino_model.xml")),
        weights_(ReadWeights(dir / part / "openvino_model.bin")) {}

  /// The IR and its changed weights, for GenAI's models to read (this part is done with them).
  quirks::PartIR Release() { return quirks::PartIR{std::move(xml_), weights_}; }

  /// Finds where each named layer's weights are. Read from the tensor itself, so that OpenVINO's constants point
  /// into it: their addresses give the offsets.
  void Index(const std::vector<const FuseLayer*>& layers) {
    ov::Core core;
    std::shared_ptr<ov::Model> model = core.read_model(xml_, weights_);
    std::map<std::string, std::shared_ptr<ov::Node>> nodes;
    for (const std::shared_ptr<ov::Node>& node : model->get_ordered_ops()) {
      if (ov::as_type_ptr<ov::op::v0::MatMul>(node) || ov::as_type_ptr<ov::op::v1::Convolution>(node)) {
        nodes.emplace(node->get_friendly_name(), node);
      }
    }
    for (const FuseLayer* layer : layers) {
      if (targets_.count(layer->node)) continue;
      auto found = nodes.find(layer->node);
      if (found == nodes.end()) {
        throw FuseError(kErrModel, "the " + name_ + " has no MatMul or Convolution named \"" + layer->node + "\"");
      }
      const std::shared_ptr<ov::Node>& node = found->second;
      auto constant = ConstantOf(node->input_value(1));
      if (!constant) {
        throw FuseError(kErrModel, layer->label + ": the weights of the " + name_ + " layer \"" + layer->node +
                                       "\" are compressed below 16 bits (int8/int4), which multilora does not fuse "
                                       "into: use a model exported with --weight-format fp16 or fp32");
      }
      Target target;
      target.weights = SlotOf(*constant, layer->node);
      auto matmul = ov::as_type_ptr<ov::op::v0::MatMul>(node);
      target.transposed = matmul && !matmul->get_transpose_b();
      const size_t out = target.weights.shape.at(target.transposed ? 1 : 0);
      for (const ov::Input<ov::Node>& consumer : node->output(0).get_target_inputs()) {
        if (!ov::as_type<ov::op::v1::Add>(consumer.get_node())) continue;
        auto bias = ConstantOf(consumer.get_node()->input_value(1 - consumer.get_index()));
        if (bias && ov::shape_size(bias->get_shape()) == out) target.bias = SlotOf(*bias, layer->node);
      }
      targets_.emplace(layer->node, std::move(target));
    }
  }

  /// Changes one layer's weights as python/convert.py's fuse_one does.
  void Apply(const FuseLayer& layer) {
    const Target& target = targets_.at(layer.node);
    std::vector<float> w = ReadTorchLayout(target);
    const ov::Shape torch = TorchShape(target);
    FuseWeights(layer, name_, w, torch);
    WriteTorchLayout(target, w);
    if (!layer.bias.empty()) {
      if (!target.bias || ov::shape_size(target.bias->shape) != layer.bias.size()) {
        throw FuseError(kErrIncompatible, layer.label + " changes a bias of " + std::to_string(layer.bias.size()) +
                                              " values, but the " + name_ + " layer \"" + layer.node + "\" has " +
                                              (target.bias ? "one of shape " + Dims(target.bias->shape) : "no bias"));
      }
      std::vector<float> b = Read(*target.bias);
      for (size_t i = 0; i < b.size(); ++i) b[i] += layer.alpha * layer.bias[i];
      Write(*target.bias, b);
    }
  }

 private:
  Slot SlotOf(const ov::op::v0::Constant& constant, const std::string& node) const {
    const auto* data = static_cast<const uint8_t*>(constant.get_data_ptr());
    const auto* base = static_cast<const uint8_t*>(weights_.data());
    const ov::element::Type type = constant.get_element_type();
    if (type != ov::element::f32 && type != ov::element::f16 && type != ov::element::bf16) {
      throw FuseError(kErrModel, "the weights of the " + name_ + " layer \"" + node + "\" are " +
                                     type.get_type_name() + ", which multilora does not fuse into");
    }
    if (data < base || data + constant.get_byte_size() > base + weights_.get_byte_size()) {
      throw FuseError(kErrModel, "OpenVINO copied the weights of the " + name_ + " layer \"" + node +
                                     "\" instead of reading them in place");
    }
    return Slot{static_cast<size_t>(data - base), type, constant.get_shape()};
  }

  ov::Shape TorchShape(const Target& target) const {
    ov::Shape shape = target.weights.shape;
    if (target.transposed) std::swap(shape[0], shape[1]);
    return shape;
  }

  std::vector<float> Read(const Slot& slot) const {
    const size_t n = ov::shape_size(slot.shape);
    std::vector<float> values(n);
    const uint8_t* at = static_cast<const uint8_t*>(weights_.data()) + slot.offset;
    if (slot.type == ov::element::f32) {
      std::memcpy(values.data(), at, n * sizeof(float));
    } else if (slot.type == ov::element::f16) {
      for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(ov::float16::from_bits(Bits(at, i)));
    } else {
      for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(ov::bfloat16::from_bits(Bits(at, i)));
    }
    return values;
  }

  void Write(const Slot& slot, const std::vector<float>& values) {
    uint8_t* at = static_cast<uint8_t*>(weights_.data()) + slot.offset;
    if (slot.type == ov::element::f32) {
      std::memcpy(at, values.data(), values.size() * sizeof(float));
    } else if (slot.type == ov::element::f16) {
      for (size_t i = 0; i < values.size(); ++i) SetBits(at, i, ov::float16(values[i]).to_bits());
    } else {
      for (size_t i = 0; i < values.size(); ++i) SetBits(at, i, ov::bfloat16(values[i]).to_bits());
    }
  }

  static uint16_t Bits(const uint8_t* at, size_t i) {
    uint16_t bits;
    std::memcpy(&bits, at + 2 * i, 2);
    return bits;
  }

  static void SetBits(uint8_t* at, size_t i, uint16_t bits) { std::memcpy(at + 2 * i, &bits, 2); }

  std::vector<float> ReadTorchLayout(const Target& target) const {
    std::vector<float> values = Read(target.weights);
    if (!target.transposed) return values;
    const size_t in = target.weights.shape[0], out = target.weights.shape[1];
    std::vector<float> t(values.size());
    for (size_t i = 0; i < in; ++i) {
      for (size_t o = 0; o < out; ++o) t[o * in + i] = values[i * out + o];
    }
    return t;
  }

  void WriteTorchLayout(const Target& target, const std::vector<float>& values) {
    if (!target.transposed) return Write(target.weights, values);
    const size_t in = target.weights.shape[0], out = target.weights.shape[1];
    std::vector<float> t(values.size());
    for (size_t i = 0; i < in; ++i) {
      for (size_t o = 0; o < out; ++o) t[i * out + o] = values[o * in + i];
    }
    Write(target.weights, t);
  }

  std::string name_;
  std::string xml_;
  ov::Tensor weights_;
  std::map<std::string, Target> targets_;
};

}  // namespace

std::vector<std::vector<float>> FusedChanges(const std::filesystem::path& dir, const std::vector<FuseLayer>& layers) {
  std::vector<std::vector<float>> changes(layers.size());
  std::map<std::string, std::vector<size_t>> by_part;
  for (size_t i = 0; i < layers.size(); ++i) by_part[layers[i].part].push_back(i);
  ov::Core core;
  for (const auto& [part, indices] : by_part) {
    // read in place (the .bin is mapped): only the layers asked for are copied
    std::shared_ptr<ov::Model> model = core.read_model(dir / part / "openvino_model.xml");
    std::map<std::string, std::shared_ptr<ov::Node>> nodes;
    for (const std::shared_ptr<ov::Node>& node : model->get_ordered_ops()) nodes.emplace(node->get_friendly_name(), node);
    for (size_t i : indices) {
      const FuseLayer& layer = layers[i];
      auto found = nodes.find(layer.node);
      auto matmul = found == nodes.end() ? nullptr : ov::as_type_ptr<ov::op::v0::MatMul>(found->second);
      if (found == nodes.end() || (!matmul && !ov::as_type_ptr<ov::op::v1::Convolution>(found->second))) {
        throw FuseError(kErrModel, "the " + part + " has no MatMul or Convolution named \"" + layer.node + "\"");
      }
      auto constant = ConstantOf(found->second->input_value(1));
      if (!constant) {
        throw FuseError(kErrModel, layer.label + ": the weights of the " + part + " layer \"" + layer.node +
                                       "\" are compressed below 16 bits (int8/int4)");
      }
      std::vector<float> base = constant->cast_vector<float>();
      ov::Shape torch = constant->get_shape();
      if (matmul && !matmul->get_transpose_b()) {
        const size_t in = torch[0], out = torch[1];
        std::vector<float> t(base.size());
        for (size_t r = 0; r < in; ++r) {
          for (size_t c = 0; c < out; ++c) t[c * in + r] = base[r * out + c];
        }
        base.swap(t);
        std::swap(torch[0], torch[1]);
      }
      std::vector<float> w = base;
      FuseWeights(layer, part, w, torch);
      for (size_t k = 0; k < w.size(); ++k) w[k] -= base[k];
      changes[i] = std::move(w);
    }
  }
  return changes;
}

GenaiPipelines BuildFusedPipelines(const std::filesystem::path& dir, const std::string& family,
                                   const std::vector<FuseLayer>& layers, const std::string& device,
                                   const ov::AnyMap& properties, const std::optional<StaticShape>& shape) {
  if (family != "sd" && family != "lcm" && family != "sdxl") {
    throw FuseError(kErrModel, "multilora fuses LoRA into SD 1.5, LCM and SDXL models, not " + family + " ones");
  }
  std::map<std::string, std::vector<const FuseLayer*>> by_part;
  for (const FuseLayer& layer : layers) by_part[layer.part].push_back(&layer);
  std::map<std::string, std::unique_ptr<PartInMemory>> parts;
  for (const auto& [name, list] : by_part) {
    if (name != "unet" && name != "text_encoder" && (name != "text_encoder_2" || family != "sdxl")) {
      throw FuseError(kErrModel, "a " + family + " model has no part \"" + name + "\" to fuse into");
    }
    auto part = std::make_unique<PartInMemory>(dir, name);
    part->Index(list);
    for (const FuseLayer* layer : list) part->Apply(*layer);
    parts.emplace(name, std::move(part));
  }

  std::map<std::string, quirks::PartIR> ir;
  for (auto& [name, part] : parts) ir.emplace(name, part->Release());
  parts.clear();
  return quirks::AssembleModelPipelines(dir, family, ir, device, properties, shape);
}

}  // namespace multilora
