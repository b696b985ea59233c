#include "kernels/cudnn/conv_transpose2d.h"

#include "kernels/cuda/conv_engine.cuh"

namespace gancu::cudnn {

void conv_transpose2d_forward(Context& ctx, const ConvTranspose2dParams& p, MathMode mode, const float* x,
                              const float* w, const float* bias, float* y, cudaStream_t stream) {
  detail::conv_backward_data(ctx, cuda::detail::adjoint_geometry_of(p), mode, x, w, bias, y, stream);
}

void conv_transpose2d_backward_input(Context& ctx, const ConvTranspose2dParams& p, MathMode mode, const float* dy,
                                     const float* w, float* dx, cudaStream_t stream) {
  detail::conv_forward(ctx, cuda::detail::adjoint_geometry_of(p), mode, dy, w, nullptr, dx, stream);
}

// The adjoint conv's input is the transposed output (dy) and its output the transposed input (x).
void conv_transpose2d_backward_weight(Context& ctx, const ConvTranspose2dParams& p, MathMode mode, const float* x,
                                      const float* dy, float* dw, cudaStream_t stream) {
  detail::conv_backward_filter(ctx, cuda::detail::adjoint_geometry_of(p), mode, dy, x, dw, stream);
}

}  // namespace gancu::cudnn
