// Fast single-precision CPU paths for the ops that dominate a step: im2col/col2im around OpenBLAS sgemm.
// Same names and semantics as the reference kernels in namespace gancu::ref (outputs overwritten, never accumulated).
// The scratch buffer must hold blas::conv_scratch_floats(p) floats (one chunk of images' im2col matrix plus one of
// its tensors, bounded to a few tens of MB whatever the batch; 0 for dense windows; its contents need not be
// initialised and are garbage afterwards); the engine plans it like any other tensor. Bias gradients are cheap
// reductions with no fast path here: use ref::bias2d_backward and ref::linear_backward_bias.
#pragma once
#include <cstdint>

#include "kernels/params.h"

namespace gancu::blas {

// Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) does not recognise CPUs newer than itself, e.g. the Sapphire Rapids that
// virtual machines report as "Intel Xeon Processor", and falls back to its generic Prescott (SSE3) kernels: 4.5x
// slower GEMMs there than its AVX-512 ones. OpenBLAS reads OPENBLAS_CORETYPE once, as it loads, so the only cure is
// a fresh process: when the running core is such a fallback, the CPU has AVX-512 (SkylakeX kernels) or AVX2 and FMA
// (Haswell), and the user has not set OPENBLAS_CORETYPE, this re-executes the program (same binary, same argv)
// with it set. Call first thing in main. Returns when there is nothing to do or the exec failed.
void reexec_with_best_openblas_core(char** argv);
// The kernel set OpenBLAS runs, e.g. "SkylakeX" (its corename), and whether it is a pre-AVX fallback.
const char* openblas_core();
bool openblas_runs_fallback_kernels();

int64_t conv_scratch_floats(const Conv2dParams& p);
int64_t conv_scratch_floats(const ConvTranspose2dParams& p);

void conv2d_forward(const Conv2dParams& p, const float* x, const float* weight, const float* bias, float* y, float* scratch);
void conv2d_backward_input(const Conv2dParams& p, const float* dy, const float* weight, float* dx, float* scratch);
void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dweight, float* scratch);

void conv_transpose2d_forward(const ConvTranspose2dParams& p, const float* x, const float* weight, const float* bias, float* y, float* scratch);
void conv_transpose2d_backward_input(const ConvTranspose2dParams& p, const float* dy, const float* weight, float* dx, float* scratch);
void conv_transpose2d_backward_weight(const ConvTranspose2dParams& p, const float* x, const float* dy, float* dweight, float* scratch);

void linear_forward(const LinearParams& p, const float* x, const float* weight, const float* bias, float* y);
void linear_backward_input(const LinearParams& p, const float* dy, const float* weight, float* dx);
void linear_backward_weight(const LinearParams& p, const float* x, const float* dy, float* dweight);

}  // namespace gancu::blas
