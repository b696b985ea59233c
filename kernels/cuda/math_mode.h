// Arithmetic contract of a kernel call. kFp32: IEEE fp32 multiply-adds only (no reduced-precision tensor cores).
// kTf32: inputs rounded to TF32 (10-bit mantissa, round-to-nearest-away) and multiplied on tensor cores with fp32
// accumulation, the trade PyTorch makes with allow_tf32.
#pragma once

namespace gancu::cuda {

enum class MathMode { kFp32, kTf32 };

inline const char* to_string(MathMode mode) { return mode == MathMode::kFp32 ? "fp32" : "tf32"; }

}  // namespace gancu::cuda
