#include "finite_scan_worker.h"

#include <algorithm>
#include <fstream>

namespace multilora {

namespace {

constexpr uint64_t kChunkBytes = 8u << 20;

/// The index of the first value whose exponent bits are all ones (NaN or ±Infinity), or `count`. Whole blocks are
/// tested without branches first, which the compiler vectorizes; only a block that has one is searched.
template <typename Word>
uint64_t FirstNonFinite(const Word* words, uint64_t count, Word mask) {
  constexpr uint64_t kBlock = 1024;
  for (uint64_t start = 0; start < count; start += kBlock) {
    const uint64_t end = std::min(count, start + kBlock);
    bool any = false;
    for (uint64_t i = start; i < end; ++i) any |= (words[i] & mask) == mask;
    if (!any) continue;
    for (uint64_t i = start; i < end; ++i) {
      if ((words[i] & mask) == mask) return i;
    }
  }
  return count;
}

}  // namespace

FiniteScanWorker::FiniteScanWorker(Napi::Env env, std::string path, std::vector<FloatSpan> spans)
    : PromiseWorker(env, "multilora.FiniteScan"), path_(std::move(path)), spans_(std::move(spans)) {}

void FiniteScanWorker::Run() {
  std::ifstream file(path_, std::ios::binary);
  if (!file) {
    Fail({kErrAdapterInvalid, "Cannot open " + path_});
    return;
  }
  // One buffer per word size, each read into through char* (which may alias any object).
  std::vector<uint32_t> words;
  std::vector<uint16_t> halves;
  for (size_t s = 0; s < spans_.size(); ++s) {
    const FloatSpan& span = spans_[s];
    const uint64_t word = span.kind == FloatSpan::Kind::kF32 ? 4 : 2;
    uint64_t done = 0;  // bytes of this span looked through
    while (done + word <= span.byte_length) {
      const uint64_t want = std::min(kChunkBytes, (span.byte_length - done) / word * word);
      char* chunk = nullptr;
      if (word == 4) {
        words.resize(kChunkBytes / 4);
        chunk = reinterpret_cast<char*>(words.data());
      } else {
        halves.resize(kChunkBytes / 2);
        chunk = reinterpret_cast<char*>(halves.data());
      }
      file.seekg(static_cast<std::streamoff>(span.offset + done));
      file.read(chunk, static_cast<std::streamsize>(want));
      if (static_cast<uint64_t>(file.gcount()) != want) {
        Fail({kErrAdapterInvalid, path_ + " ends inside a tensor (at byte " + std::to_string(span.offset + done) + ")"});
        return;
      }
      const uint64_t count = want / word;
      uint64_t at = count;
      if (span.kind == FloatSpan::Kind::kF32) {
        at = FirstNonFinite<uint32_t>(words.data(), count, 0x7f800000u);
      } else {
        const uint16_t mask = span.kind == FloatSpan::Kind::kF16 ? 0x7c00 : 0x7f80;
        at = FirstNonFinite<uint16_t>(halves.data(), count, mask);
      }
      if (at < count) {
        found_ = std::make_pair(s, done / word + at);
        return;
      }
      done += want;
    }
  }
}

Napi::Value FiniteScanWorker::Resolve(Napi::Env env) {
  if (!found_) return env.Null();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(found_->first)));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(found_->second)));
  return out;
}

}  // namespace multilora
