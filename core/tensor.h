// A small host tensor: fp32, up to 4-D, contiguous NCHW, owning or viewing memory.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"

namespace gancu {

class Shape {
 public:
  static constexpr int kMaxRank = 4;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[i]; }
  int64_t& operator[](int i) { return dims_[i]; }
  int64_t numel() const;
  std::vector<int64_t> dims() const { return {dims_, dims_ + rank_}; }
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "[128, 3, 64, 64]"

 private:
  int64_t dims_[kMaxRank] = {0, 0, 0, 0};
  int rank_ = 0;
};

class Tensor {
 public:
  Tensor() = default;
  // Owning, zero-initialised.
  explicit Tensor(const Shape& shape);
  static Tensor zeros(const Shape& shape) { return Tensor(shape); }
  static Tensor filled(const Shape& shape, float value);
  // Non-owning view of memory someone else keeps alive.
  static Tensor view(float* data, const Shape& shape);

  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  int64_t dim(int i) const { return shape_[i]; }
  float* data() { return data_; }
  const float* data() const { return data_; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }
  bool owns_memory() const { return storage_ != nullptr; }

  // Same memory, new shape with the same element count.
  Tensor reshaped(const Shape& shape) const;
  Tensor clone() const;

  void fill(float value);
  void fill_normal(Rng& rng, float mean = 0.0f, float stddev = 1.0f);
  void fill_uniform(Rng& rng, float lo = 0.0f, float hi = 1.0f);

 private:
  Shape shape_;
  std::shared_ptr<std::vector<float>> storage_;
  float* data_ = nullptr;
};

}  // namespace gancu
