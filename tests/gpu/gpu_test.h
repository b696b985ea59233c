// GPU tests skip cleanly, saying why, when no CUDA device is present.
#pragma once
#include <gtest/gtest.h>

#include "kernels/cuda/check.h"

#define GANCU_REQUIRE_GPU()                                                              \
  do {                                                                                   \
    if (::gancu::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU test skipped"; \
  } while (0)
