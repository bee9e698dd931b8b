// Where GenAI 2026.3 puts each generate's result while earlier results are still held, and what multilora's copy of
// a result costs: the measurements behind docs/GENAI-BUGS.md §2 and the `output` option. Not part of the addon.
//
// Build and run from the repository's root (one command per line):
//   S=$PWD/.sdk/venv/lib/python3.11/site-packages
//   g++ -std=c++17 -O2 -Inative -isystem $S/openvino/include scripts/probe-output-memory.cc -o /tmp/probe-output-memory $S/openvino_genai/libopenvino_genai.so.2630 $S/openvino/libs/libopenvino.so.2630 -Wl,--disable-new-dtags -Wl,-rpath,$S/openvino_genai:$S/openvino/libs
//   OPENVINO_TOKENIZERS_PATH_GENAI=$S/openvino_tokenizers/lib/libopenvino_tokenizers.so /tmp/probe-output-memory test/fixtures/models/sd15-tiny
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "genai/genai.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Held {
  std::string what;
  ov::Tensor tensor;           // the handle GenAI returned, kept as a finalizer would keep it
  std::vector<uint8_t> bytes;  // what it held when it was returned
};

ov::Tensor Picture(size_t width, size_t height) {
  ov::Tensor t(ov::element::u8, {1, height, width, 3});
  auto* p = static_cast<uint8_t*>(t.data());
  for (size_t i = 0; i < t.get_byte_size(); ++i) p[i] = static_cast<uint8_t>(i * 31 % 251);
  return t;
}

void Report(std::vector<Held>& held, const std::string& what, const ov::Tensor& out) {
  std::printf("%-28s at %p, %zu bytes\n", what.c_str(), out.data(), out.get_byte_size());
  for (const Held& h : held) {
    const bool same = h.tensor.data() == out.data();
    const bool changed = h.tensor.get_byte_size() != h.bytes.size() ||
                         std::memcmp(h.tensor.data(), h.bytes.data(), h.bytes.size()) != 0;
    std::printf("    held '%s': now at %p (%s), bytes %s\n", h.what.c_str(), h.tensor.data(),
                same ? "the new result's memory" : "elsewhere", changed ? "CHANGED" : "kept");
  }
  const auto* p = static_cast<const uint8_t*>(out.data());
  held.push_back({what, out, std::vector<uint8_t>(p, p + out.get_byte_size())});
}

ov::AnyMap Call(size_t seed, int64_t width, int64_t height, size_t images) {
  return {{"rng_seed", seed}, {"width", width}, {"height", height}, {"num_inference_steps", size_t(2)},
          {"num_images_per_prompt", images}};
}

/// The median time of what the worker does by default: a fresh tensor of the result's shape, and copy_to.
void CopyCost(size_t side, bool keep) {
  ov::Tensor source = Picture(side, side);
  std::vector<ov::Tensor> kept;  // results a program keeps: each copy then lands in memory never touched before
  std::vector<double> ms;
  for (int i = 0; i < 201; ++i) {
    const auto start = Clock::now();
    ov::Tensor copy(source.get_element_type(), source.get_shape());
    source.copy_to(copy);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (keep) kept.push_back(copy);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("copy of a %zux%zu result (%zu bytes), %s memory: median %.4f ms\n", side, side, source.get_byte_size(),
              keep ? "fresh" : "reused", ms[ms.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: probe-output-memory <model folder with a VAE encoder>\n");
    return 2;
  }
  auto inpainting = std::make_shared<ov::genai::InpaintingPipeline>(argv[1], "CPU", ov::AnyMap{});
  ov::genai::Image2ImagePipeline image2image(*inpainting);
  ov::genai::Text2ImagePipeline text2image(*inpainting);
  std::vector<Held> held;
  Report(held, "text2image 64x64 seed 1", text2image.generate("x", Call(1, 64, 64, 1)));
  Report(held, "text2image 64x64 seed 2", text2image.generate("x", Call(2, 64, 64, 1)));
  Report(held, "text2image 64x64 seed 3", text2image.generate("x", Call(3, 64, 64, 1)));
  Report(held, "text2image 96x64 seed 4", text2image.generate("x", Call(4, 96, 64, 1)));
  Report(held, "text2image 64x64 seed 5", text2image.generate("x", Call(5, 64, 64, 1)));
  Report(held, "text2image 2 x 64x64 seed 6", text2image.generate("x", Call(6, 64, 64, 2)));
  Report(held, "text2image 2 x 64x64 seed 7", text2image.generate("x", Call(7, 64, 64, 2)));
  const ov::AnyMap from_image{{"rng_seed", size_t(8)}, {"num_inference_steps", size_t(4)}, {"strength", 0.8f}};
  Report(held, "image2image 64x64", image2image.generate("x", Picture(64, 64), from_image));
  Report(held, "inpainting 64x64", inpainting->generate("x", Picture(64, 64), Picture(64, 64), from_image));
  for (size_t side : {128, 512, 1024}) {
    CopyCost(side, true);
    CopyCost(side, false);
  }
  return 0;
}
