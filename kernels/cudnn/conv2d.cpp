#include "kernels/cudnn/conv2d.h"

#include "kernels/cuda/conv_engine.cuh"

namespace gancu::cudnn {

void conv2d_forward(Context& ctx, const Conv2dParams& p, MathMode mode, const float* x, const float* w,
                    const float* bias, float* y, cudaStream_t stream) {
  detail::conv_forward(ctx, cuda::detail::geometry_of(p), mode, x, w, bias, y, stream);
}

void conv2d_backward_input(Context& ctx, const Conv2dParams& p, MathMode mode, const float* dy, const float* w,
                           float* dx, cudaStream_t stream) {
  detail::conv_backward_data(ctx, cuda::detail::geometry_of(p), mode, dy, w, nullptr, dx, stream);
}

void conv2d_backward_weight(Context& ctx, const Conv2dParams& p, MathMode mode, const float* x, const float* dy,
                            float* dw, cudaStream_t stream) {
  detail::conv_backward_filter(ctx, cuda::detail::geometry_of(p), mode, x, dy, dw, stream);
}

void bias2d_backward(Context& ctx, int batch, int channels, int spatial, const float* dy, float* dbias,
                     cudaStream_t stream) {
  cudnnTensorDescriptor_t dy_desc = nullptr, db_desc = nullptr;
  GANCU_CUDNN_CHECK(cudnnCreateTensorDescriptor(&dy_desc));
  cudnnStatus_t status = cudnnCreateTensorDescriptor(&db_desc);
  const float one = 1.0f, zero = 0.0f;
  if (status == CUDNN_STATUS_SUCCESS)
    status = cudnnSetTensor4dDescriptor(dy_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, batch, channels, spatial, 1);
  if (status == CUDNN_STATUS_SUCCESS)
    status = cudnnSetTensor4dDescriptor(db_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, channels, 1, 1);
  if (status == CUDNN_STATUS_SUCCESS) status = cudnnSetStream(ctx.handle(), stream);
  if (status == CUDNN_STATUS_SUCCESS)
    status = cudnnConvolutionBackwardBias(ctx.handle(), &one, dy_desc, dy, &zero, db_desc, dbias);
  if (db_desc) cudnnDestroyTensorDescriptor(db_desc);
  cudnnDestroyTensorDescriptor(dy_desc);
  GANCU_CUDNN_CHECK(status);
}

}  // namespace gancu::cudnn
