// The C++ side of `npm run bench` (scripts/bench.mjs): GenAI's Text2ImagePipeline driven with no binding in
// between, built by the project's CMakeLists.txt (option MULTILORA_BENCH_DRIVER) against native/genai/genai.h.
//
// It speaks the runners' line protocol on stdin/stdout (scripts/bench/protocol.md): one command per line, fields
// separated by tabs, one reply line per command ("ok\t..." or "err\t<message>"). It makes exactly the GenAI calls
// that multilora makes for the same request: the same build (genai_build.h) and the same AdapterConfig per call
// (quirks::AdapterSwitch, native/genai/quirks.h).
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/md5.h"
#include "genai/quirks.h"
#include "genai_build.h"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> Split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::stringstream stream(line);
  std::string field;
  while (std::getline(stream, field, separator)) fields.push_back(field);
  return fields;
}

class Driver {
 public:
  // load <model dir> <device> <static shape WxHxNxGUIDANCE or -> <cache dir or -> <adapter paths joined by '|' or ->
  std::string Load(const std::vector<std::string>& f) {
    if (f.size() != 6) return "err\tload takes 5 fields";
    pipeline_.reset();
    adapters_ = multilora::quirks::AdapterSwitch();
    ov::AnyMap properties;
    if (f[4] != "-") properties["CACHE_DIR"] = f[4];
    if (f[5] != "-") {
      std::vector<ov::genai::Adapter> adapters;
      for (const std::string& path : Split(f[5], '|')) adapters.emplace_back(std::filesystem::path(path));
      properties["adapters"] = ov::genai::AdapterConfig(adapters);
      adapters_ = multilora::quirks::AdapterSwitch(std::move(adapters), multilora::quirks::Spacer());
    }
    const Clock::time_point start = Clock::now();
    // As multilora builds it (quirks::BuildModelPipelines), so that the compiled models are the same.
    std::optional<multilora::StaticShape> shape;
    if (f[3] != "-") {
      std::vector<std::string> s = Split(f[3], 'x');
      shape = multilora::StaticShape{std::stoi(s[2]), std::stoi(s[1]), std::stoi(s[0]), std::stof(s[3])};
    }
    pipeline_ = multilora::quirks::BuildModelPipelines(f[1], f[2], properties, shape).text2image;
    return "ok\t" + std::to_string(Ms(start));
  }

  // gen <seed> <width> <height> <steps> <guidance> <alphas, one per registered adapter, comma-separated, or ->
  //     <prompt>
  // Alphas "empty": an empty AdapterConfig, GenAI's own way to ask for no LoRA (which multilora cannot use:
  // docs/GENAI-BUGS.md#switching).
  // first: the same fields; see below.
  std::string Generate(const std::vector<std::string>& f) {
    if (!pipeline_) return "err\tno pipeline loaded";
    if (f.size() != 8) return "err\tgen takes 7 fields";
    ov::AnyMap properties{
        {"rng_seed", static_cast<size_t>(std::stoull(f[1]))},
        {"width", static_cast<int64_t>(std::stoll(f[2]))},
        {"height", static_cast<int64_t>(std::stoll(f[3]))},
        {"num_inference_steps", static_cast<size_t>(std::stoull(f[4]))},
        {"guidance_scale", std::stof(f[5])},
    };
    if (f[6] == "empty") properties["adapters"] = ov::genai::AdapterConfig();
    else if (!adapters_.adapters().empty()) properties["adapters"] = ConfigFor(f[6]);
    const Clock::time_point start = Clock::now();
    if (f[0] == "first") {
      // Up to the end of the first step, then stop (GenAI skips the rest and the VAE): what a call costs before
      // denoising, plus one step.
      double first_ms = 0;
      std::function<bool(size_t, size_t, ov::Tensor&)> stop = [&](size_t, size_t, ov::Tensor&) {
        first_ms = Ms(start);
        return true;
      };
      properties["callback"] = stop;
      Run(f[7], properties);
      adapters_.ResendAlphas();  // as multilora does after a call it stopped (aborted)
      return "ok\t" + std::to_string(first_ms);
    }
    ov::Tensor image = Run(f[7], properties);
    // The first byte is read inside the clock, as the other runners do, so that the image is surely there.
    volatile uint8_t first = image.data<uint8_t>()[0];
    const double ms = Ms(start);
    (void)first;
    const float step_ms = pipeline_->get_performance_metrics().get_iteration_duration().mean;
    // The md5 of every byte of the image, outside the clock: scripts/bench.mjs compares the runners' images whole.
    const std::string md5 = multilora::bench::Md5Hex(image.data<uint8_t>(), image.get_byte_size());
    return "ok\t" + std::to_string(ms) + "\tmd5=" + md5 + "\tstepMs=" + std::to_string(step_ms);
  }

 private:
  static double Ms(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  }

  // A failed call leaves GenAI's record of the config in doubt: the next one resends the alphas, as in multilora.
  ov::Tensor Run(const std::string& prompt, const ov::AnyMap& properties) {
    try {
      return pipeline_->generate(prompt, properties);
    } catch (...) {
      adapters_.ResendAlphas();
      throw;
    }
  }

  // One alpha per registered adapter; "~": left out of the list (multilora's listFor, computed by bench.mjs).
  ov::genai::AdapterConfig ConfigFor(const std::string& csv) {
    std::vector<float> alphas;
    std::vector<bool> listed;
    if (csv != "-") {
      for (const std::string& value : Split(csv, ',')) {
        listed.push_back(value != "~");
        alphas.push_back(value == "~" ? 0.0f : std::stof(value));
      }
    }
    alphas.resize(adapters_.adapters().size(), 0.0f);
    listed.resize(adapters_.adapters().size(), true);
    return adapters_.ConfigFor(std::move(alphas), std::move(listed), true);
  }

  std::shared_ptr<ov::genai::Text2ImagePipeline> pipeline_;
  multilora::quirks::AdapterSwitch adapters_;
};

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  Driver driver;
  std::string line;
  std::cout << "ready\tcpp" << std::endl;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> fields = Split(line, '\t');
    if (fields.empty()) continue;
    std::string reply;
    try {
      if (fields[0] == "load") reply = driver.Load(fields);
      else if (fields[0] == "gen" || fields[0] == "first") reply = driver.Generate(fields);
      else if (fields[0] == "quit") break;
      else reply = "err\tunknown command " + fields[0];
    } catch (const std::exception& e) {
      std::string message = e.what();
      for (char& c : message) if (c == '\n' || c == '\t') c = ' ';
      reply = "err\t" + message;
    }
    std::cout << reply << std::endl;
  }
  return 0;
}
