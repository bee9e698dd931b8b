// Built with -ffp-contract=off (CMakeLists.txt): every fused multiply-add below is an explicit std::fma, placed where
// torch's AVX2 kernel has one, and the compiler must not fuse anything else. See torch_generator.h.
#include "torch_generator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace multilora {

namespace {

uint32_t BitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float FloatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The constants of cephes' single-precision logf and sinf/cosf, as avx_mathfun declares them: double literals
// rounded to float.
constexpr float kSqrtHalf = static_cast<float>(0.707106781186547524);
constexpr float kLogPoly[9] = {
    static_cast<float>(7.0376836292E-2),  static_cast<float>(-1.1514610310E-1), static_cast<float>(1.1676998740E-1),
    static_cast<float>(-1.2420140846E-1), static_cast<float>(1.4249322787E-1),  static_cast<float>(-1.6668057665E-1),
    static_cast<float>(2.0000714765E-1),  static_cast<float>(-2.4999993993E-1), static_cast<float>(3.3333331174E-1),
};
constexpr float kLogQ1 = static_cast<float>(-2.12194440e-4);  // log(2) = kLogQ2 - kLogQ1, split for precision
constexpr float kLogQ2 = static_cast<float>(0.693359375);
constexpr float kFourOverPi = static_cast<float>(1.27323954473516);
constexpr float kMinusPiOver4[3] = {  // -pi/4 in three parts, for Cody-Waite reduction
    static_cast<float>(-0.78515625),
    static_cast<float>(-2.4187564849853515625e-4),
    static_cast<float>(-3.77489497744594108e-8),
};
constexpr float kSinPoly[3] = {static_cast<float>(-1.9515295891E-4), static_cast<float>(8.3321608736E-3),
                               static_cast<float>(-1.6666654611E-1)};
constexpr float kCosPoly[3] = {static_cast<float>(2.443315711809948E-005), static_cast<float>(-1.388731625493765E-003),
                               static_cast<float>(4.166664568298827E-002)};
// torch writes 2.0f * c10::pi<double>: computed in double, then rounded to float.
constexpr float kTwoPi = static_cast<float>(2.0 * 3.14159265358979323846);
constexpr double kTwoPiDouble = 2.0 * 3.14159265358979323846;

/// log(x) for x > 0, as torch's AVX2 normal kernel computes it: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), then
/// log(1 + r) for r = m - 1 by cephes' degree-9 polynomial, plus e * log(2) in two parts.
float KernelLog(float x) {
  if (!(x > 0.0f)) return std::numeric_limits<float>::quiet_NaN();  // never happens here: the argument is in (0, 1]
  x = std::max(x, std::numeric_limits<float>::min());              // no subnormals
  const uint32_t bits = BitsOf(x);
  float e = static_cast<float>(static_cast<int32_t>(bits >> 23) - 127) + 1.0f;
  const float m = FloatOf((bits & ~0x7f800000u) | BitsOf(0.5f));  // the mantissa, in [0.5, 1)
  float r = m - 1.0f;
  if (m < kSqrtHalf) {  // one octave down: m + m - 1, computed as (m - 1) + m
    e = e - 1.0f;
    r = r + m;
  }
  const float z = r * r;
  float y = kLogPoly[0];
  for (int i = 1; i < 9; ++i) y = std::fma(y, r, kLogPoly[i]);
  y = y * r;
  y = std::fma(y, z, e * kLogQ1);
  y = std::fma(-z, 0.5f, y);
  r = r + y;
  return std::fma(e, kLogQ2, r);
}

/// sin(x) and cos(x) for 0 <= x < 2^24, as torch's AVX2 normal kernel computes them: x reduced to [-pi/4, pi/4] by
/// the octant j, then cephes' sine and cosine polynomials, swapped and signed by j.
void KernelSinCos(float x, float& sine, float& cosine) {
  uint32_t sin_sign = BitsOf(x) & 0x80000000u;
  x = std::fabs(x);
  const int32_t j = (static_cast<int32_t>(x * kFourOverPi) + 1) & ~1;  // the even octant at or above x
  const float octant = static_cast<float>(j);
  sin_sign ^= static_cast<uint32_t>(j & 4) << 29;
  const uint32_t cos_sign = static_cast<uint32_t>(~(j - 2) & 4) << 29;
  const bool sine_is_sin = (j & 2) == 0;  // else the polynomials swap roles
  for (float part : kMinusPiOver4) x = std::fma(octant, part, x);
  const float z = x * x;
  float c = std::fma(kCosPoly[0], z, kCosPoly[1]);
  c = std::fma(c, z, kCosPoly[2]);
  c = c * z;
  c = std::fma(c, z, -(z * 0.5f));
  c = c + 1.0f;
  float s = std::fma(kSinPoly[0], z, kSinPoly[1]);
  s = std::fma(s, z, kSinPoly[2]);
  s = s * z;
  s = std::fma(s, x, x);
  // The kernel selects by masking, so the sums below (with exact zeros) are what it computes.
  const float sin_part_s = sine_is_sin ? s : 0.0f;
  const float sin_part_c = sine_is_sin ? 0.0f : c;
  sine = FloatOf(BitsOf(sin_part_s + sin_part_c) ^ sin_sign);
  cosine = FloatOf(BitsOf((s - sin_part_s) + (c - sin_part_c)) ^ cos_sign);
}

/// torch's normal_fill_16: data[0..8) and data[8..16) hold uniforms in [0, 1); they become 16 normals. The kernel
/// ends with value * std + mean, here * 1 + 0: kept as + 0, which turns -0 into +0 as it does.
void BoxMuller16(float* data) {
  for (int k = 0; k < 8; ++k) {
    const float radius = std::sqrt(KernelLog(1.0f - data[k]) * -2.0f);
    float sine, cosine;
    KernelSinCos(data[k + 8] * kTwoPi, sine, cosine);
    data[k] = radius * cosine + 0.0f;
    data[k + 8] = radius * sine + 0.0f;
  }
}

}  // namespace

TorchGenerator::TorchGenerator(uint64_t seed) { this->seed(static_cast<size_t>(seed)); }

TorchGenerator::~TorchGenerator() = default;

void TorchGenerator::seed(size_t new_seed) {
  engine_.seed(static_cast<uint32_t>(new_seed & 0xffffffffu));
  next_normal_.reset();
}

float TorchGenerator::Uniform24() { return static_cast<float>(engine_() & 0xffffffu) * (1.0f / 16777216.0f); }

double TorchGenerator::Uniform53() {
  const uint64_t high = engine_();
  const uint64_t low = engine_();
  return static_cast<double>(((high << 32) | low) & ((uint64_t{1} << 53) - 1)) * (1.0 / 9007199254740992.0);
}

double TorchGenerator::NormalDouble() {
  if (next_normal_) {
    const double kept = *next_normal_;
    next_normal_.reset();
    return kept + 0.0;  // torch's value * std + mean, as in BoxMuller16
  }
  const double u1 = Uniform53();
  const double u2 = Uniform53();
  const double radius = std::sqrt(-2.0 * std::log1p(-u2));
  const double theta = kTwoPiDouble * u1;
  next_normal_ = radius * std::sin(theta);
  return radius * std::cos(theta) + 0.0;
}

void TorchGenerator::Fill(float* data, size_t count) {
  if (count < 16) {
    for (size_t i = 0; i < count; ++i) data[i] = static_cast<float>(NormalDouble());
    return;
  }
  for (size_t i = 0; i < count; ++i) data[i] = Uniform24();
  for (size_t i = 0; i + 16 <= count; i += 16) BoxMuller16(data + i);
  if (count % 16 != 0) {
    float* tail = data + count - 16;
    for (size_t i = 0; i < 16; ++i) tail[i] = Uniform24();
    BoxMuller16(tail);
  }
}

float TorchGenerator::next() { return static_cast<float>(NormalDouble()); }

ov::Tensor TorchGenerator::randn_tensor(const ov::Shape& shape) {
  ov::Tensor tensor(ov::element::f32, shape);
  Fill(tensor.data<float>(), tensor.get_size());
  return tensor;
}

}  // namespace multilora
