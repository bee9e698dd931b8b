// What GenAI 2026.3's Text2ImagePipeline::clone() does with LoRA adapters, for test/clone.spec.js. Python's
// openvino_genai 2026.3 does not bind clone(), so this is C++, on the project's own declarations of the GenAI API.
//
//   clone_probe <model dir> <adapter A> <adapter B>
//
// Prints one JSON object: for each step of a fixed scenario, a digest of the image (FNV-1a of its bytes), or the
// error it threw. Every call: seed 42, 64x64, 4 steps, guidance 7.5, A and B registered at construction, each
// call's AdapterConfig listing both adapters (the chosen one at 1, the other at 0), as multilora does.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "genai/genai.h"

namespace {

using ov::genai::Adapter;
using ov::genai::AdapterConfig;
using ov::genai::Text2ImagePipeline;

std::string Digest(const ov::Tensor& image) {
  const auto* p = static_cast<const uint8_t*>(image.data());
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < image.get_byte_size(); ++i) h = (h ^ p[i]) * 1099511628211ull;
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    out += c;
  }
  return out + "\"";
}

struct Probe {
  Adapter a, b;
  std::string model;

  AdapterConfig Config(float alpha_a, float alpha_b) const {
    AdapterConfig config;
    config.add(a, alpha_a);
    config.add(b, alpha_b);
    return config;
  }

  Text2ImagePipeline Build() const {
    return Text2ImagePipeline(model, "CPU", ov::AnyMap{{"adapters", AdapterConfig(std::vector<Adapter>{a, b})}});
  }

  /** The image's digest, or "error: <message>". */
  std::string Run(Text2ImagePipeline& pipe, float alpha_a, float alpha_b) const {
    try {
      ov::AnyMap properties{{"rng_seed", static_cast<size_t>(42)},       {"width", static_cast<int64_t>(64)},
                            {"height", static_cast<int64_t>(64)},       {"num_inference_steps", static_cast<size_t>(4)},
                            {"guidance_scale", 7.5f},                    {"adapters", Config(alpha_a, alpha_b)}};
      return Digest(pipe.generate("a lighthouse", properties));
    } catch (const std::exception& e) {
      return std::string("error: ") + e.what();
    }
  }
};

/** One JSON object on one line of stdout, flushed. */
void Print(const std::vector<std::pair<std::string, std::string>>& out) {
  std::printf("{");
  for (size_t i = 0; i < out.size(); ++i) std::printf("%s%s: %s", i ? ", " : "", Quote(out[i].first).c_str(), Quote(out[i].second).c_str());
  std::printf("}\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: clone_probe <model dir> <adapter A> <adapter B>\n");
    return 2;
  }
  Probe probe{Adapter(std::filesystem::path(argv[2])), Adapter(std::filesystem::path(argv[3])), argv[1]};
  std::vector<std::pair<std::string, std::string>> out;
  // The truth: each config as the first call of a new pipeline.
  for (auto [name, a, b] : {std::tuple{"refNone", 0.f, 0.f}, {"refA", 1.f, 0.f}, {"refB", 0.f, 1.f}}) {
    Text2ImagePipeline fresh = probe.Build();
    out.emplace_back(name, probe.Run(fresh, a, b));
  }
  Text2ImagePipeline original = probe.Build();
  out.emplace_back("originalA", probe.Run(original, 1, 0));
  Text2ImagePipeline clone = original.clone();
  out.emplace_back("cloneA", probe.Run(clone, 1, 0));
  out.emplace_back("originalBAfterClone", probe.Run(original, 0, 1));
  out.emplace_back("originalAAfterClone", probe.Run(original, 1, 0));
  out.emplace_back("cloneB", probe.Run(clone, 0, 1));
  out.emplace_back("cloneNone", probe.Run(clone, 0, 0));
  // A clone of a pipeline that never generated.
  Text2ImagePipeline unused = probe.Build();
  Text2ImagePipeline early = unused.clone();
  out.emplace_back("earlyCloneA", probe.Run(early, 1, 0));
  out.emplace_back("earlyOriginalB", probe.Run(unused, 0, 1));
  // What ran one call at a time is written (and flushed) first: the concurrent part below may crash the process.
  Print(out);
  out.clear();
  // The original and its clone at once, a few times each.
  std::vector<std::string> left(4), right(4);
  std::thread t1([&] { for (auto& r : left) r = probe.Run(original, 1, 0); });
  std::thread t2([&] { for (auto& r : right) r = probe.Run(clone, 0, 1); });
  t1.join();
  t2.join();
  for (size_t i = 0; i < left.size(); ++i) {
    out.emplace_back("concurrentOriginalA" + std::to_string(i), left[i]);
    out.emplace_back("concurrentCloneB" + std::to_string(i), right[i]);
  }
  Print(out);
  return 0;
}
