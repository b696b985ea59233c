#include "core/tensor.h"

#include <algorithm>
#include <stdexcept>

namespace gancu {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  if (dims.size() > kMaxRank) throw std::invalid_argument("Shape: rank " + std::to_string(dims.size()) + " exceeds 4");
  rank_ = static_cast<int>(dims.size());
  for (int i = 0; i < rank_; ++i) {
    if (dims[i] < 0) throw std::invalid_argument("Shape: negative dimension");
    dims_[i] = dims[i];
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (rank_ != o.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[i] != o.dims_[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
  return s + "]";
}

Tensor::Tensor(const Shape& shape)
    : shape_(shape), storage_(std::make_shared<std::vector<float>>(shape.numel(), 0.0f)), data_(storage_->data()) {}

Tensor Tensor::filled(const Shape& shape, float value) {
  Tensor t(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::view(float* data, const Shape& shape) {
  Tensor t;
  t.shape_ = shape;
  t.data_ = data;
  return t;
}

Tensor Tensor::reshaped(const Shape& shape) const {
  if (shape.numel() != numel())
    throw std::invalid_argument("Tensor::reshaped: " + shape_.str() + " cannot become " + shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(shape_);
  std::copy(data_, data_ + numel(), t.data_);
  return t;
}

void Tensor::fill(float value) { std::fill(data_, data_ + numel(), value); }

void Tensor::fill_normal(Rng& rng, float mean, float stddev) {
  for (int64_t i = 0; i < numel(); ++i) data_[i] = rng.normal(mean, stddev);
}

void Tensor::fill_uniform(Rng& rng, float lo, float hi) {
  for (int64_t i = 0; i < numel(); ++i) data_[i] = rng.uniform(lo, hi);
}

}  // namespace gancu
