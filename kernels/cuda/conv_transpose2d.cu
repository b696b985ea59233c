// conv_transpose2d as the adjoint of a conv2d: thin wrappers over the shared passes in conv2d.cu.
#include "kernels/cuda/conv_transpose2d.h"

#include "kernels/cuda/conv_engine.cuh"

namespace gancu::cuda {

size_t conv_transpose2d_forward_workspace_bytes(const ConvTranspose2dParams& p) {
  return detail::adjoint_workspace_bytes(detail::adjoint_geometry_of(p));
}

void conv_transpose2d_forward(const ConvTranspose2dParams& p, MathMode mode, const float* x, const float* w,
                              const float* bias, float* y, void* workspace, cudaStream_t stream) {
  detail::correlate_adjoint(mode, detail::adjoint_geometry_of(p), x, w, bias, y, workspace, stream);
}

size_t conv_transpose2d_backward_input_workspace_bytes(const ConvTranspose2dParams& p) {
  return detail::correlate_workspace_bytes(detail::adjoint_geometry_of(p));
}

void conv_transpose2d_backward_input(const ConvTranspose2dParams& p, MathMode mode, const float* dy, const float* w,
                                     float* dx, void* workspace, cudaStream_t stream) {
  detail::correlate(mode, detail::adjoint_geometry_of(p), dy, w, nullptr, dx, workspace, stream);
}

size_t conv_transpose2d_backward_weight_workspace_bytes(const ConvTranspose2dParams& p) {
  return detail::weight_grad_workspace_bytes(detail::adjoint_geometry_of(p));
}

// dw[ci, co, ky, kx] = Σ x[n, ci, iy, ix]·dy[n, co, iy·s − p + ky, ix·s − p + kx]: the adjoint conv's weight
// gradient with x in the role of its output gradient and dy in the role of its input.
void conv_transpose2d_backward_weight(const ConvTranspose2dParams& p, MathMode mode, const float* x, const float* dy,
                                      float* dw, void* workspace, cudaStream_t stream) {
  detail::correlate_weight_grad(mode, detail::adjoint_geometry_of(p), dy, x, dw, workspace, stream);
}

}  // namespace gancu::cuda
