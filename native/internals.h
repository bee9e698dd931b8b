// Internal functions for the tests and the benchmark, exported as `internals` (lib/core/binding.ts types them). Not
// public API: nothing in lib/ calls them on a user's behalf.
#pragma once

#include <napi.h>

namespace multilora {

/// { torchRandn(seed, shapes) -> Float32Array[]: successive torch.randn calls on one TorchGenerator;
///   bufferAddress(view) -> bigint: the address of a Buffer's (any ArrayBufferView's) first byte }
Napi::Object Internals(Napi::Env env);

}  // namespace multilora
