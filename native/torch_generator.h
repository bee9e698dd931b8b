// A GenAI Generator that draws the noise PyTorch draws on the CPU: after TorchGenerator(seed), randn_tensor(shape)
// equals torch.randn(shape, generator=torch.Generator().manual_seed(seed)) (float32) bit for bit, and successive
// calls go on as successive torch.randn calls on that torch generator do. So the seeds of diffusers, and of
// tutorials that pass a torch generator, give the same initial latents here.
//
// What torch 2.x does, and what this class redoes (checked against test/fixtures/torch-randn.json, made with torch
// 2.13.0 on an AVX-512 machine):
// - The engine is the standard 32-bit Mersenne Twister seeded with the low 32 bits of the seed.
// - A float32 tensor of 16 or more elements first takes one draw per element, a uniform in [0, 1) made of the low
//   24 bits of the draw. Then Box-Muller turns each run of 16 into 16 normals (the first 8 uniforms give the radius,
//   the last 8 the angle). When the count is not a multiple of 16, the last 16 elements are drawn again and redone.
// - torch registers its normal kernel for AVX2 but not for AVX-512, so on every x86-64 CPU with AVX2 (with AVX-512
//   too) it runs the AVX2 kernel: Box-Muller with the polynomial log and sincos of avx_mathfun (cephes), evaluated
//   with fused multiply-adds where GCC contracted them when building torch. This class evaluates the same
//   polynomials, in the same order, with std::fma at the same places; the file is compiled with
//   -ffp-contract=off, so the compiler adds no fusing of its own. The result does not depend on the host CPU.
//   (torch's other kernel, on x86-64 CPUs without AVX2 or with ATEN_CPU_CAPABILITY=default, takes libm's logf, sinf
//   and cosf instead: 1571 of the 4096 values of seed 42, shape [1, 4, 32, 32] then differ in the last bits.)
// - Fewer than 16 elements take the double-precision path: 53-bit uniforms from two draws, Box-Muller in double
//   with libm, the sine half kept for the next element; then rounded to float.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>

#include "genai/genai.h"

namespace multilora {

class TorchGenerator : public ov::genai::Generator {
 public:
  /// As torch.Generator().manual_seed(seed); only the low 32 bits count, as in torch.
  explicit TorchGenerator(uint64_t seed);
  ~TorchGenerator() override;

  /// One normal sample, as torch.randn(1) on this generator would give it.
  float next() override;
  /// A float32 tensor of the shape, as torch.randn(shape) on this generator would give it.
  ov::Tensor randn_tensor(const ov::Shape& shape) override;
  /// As manual_seed: the engine starts again, and the kept sine half is dropped.
  void seed(size_t new_seed) override;

  /// Fills `count` floats as torch.randn of that many elements does.
  void Fill(float* data, size_t count);

 private:
  float Uniform24();
  double Uniform53();
  double NormalDouble();

  std::mt19937 engine_;
  std::optional<double> next_normal_;  // torch's next_double_normal_sample
};

}  // namespace multilora
