// Reference image resizing for data preparation. Antialiased bicubic (Keys a = −0.5, the support widened by the
// scale factor when shrinking), identical to PIL's Image.resize(BICUBIC) and PyTorch's
// F.interpolate(mode="bicubic", antialias=True, align_corners=False). SRGAN's low-resolution inputs are made with it.
#pragma once

namespace gancu::ref {

// x [batch, channels, in_h, in_w] → y [batch, channels, out_h, out_w]; any sizes (shrink or enlarge).
template <class T>
void resize_bicubic(int batch, int channels, int in_h, int in_w, int out_h, int out_w, const T* x, T* y);
// Downsampling by an integer factor: out = in / factor (in divisible by factor, else std::invalid_argument).
template <class T> void bicubic_downsample(int batch, int channels, int h, int w, int factor, const T* x, T* y);

}  // namespace gancu::ref
