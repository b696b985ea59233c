// The test binaries' main: GoogleTest's, after selecting the OpenBLAS kernels `gan` runs with (kernels/cpu/blas.h),
// so that the fast CPU paths are tested with the GEMMs users get.
#include <gtest/gtest.h>

#include "kernels/cpu/blas.h"

int main(int argc, char** argv) {
  gancu::blas::reexec_with_best_openblas_core(argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
