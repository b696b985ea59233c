// The kernel benchmark's shared pieces: a registry of benchmark groups, a CUDA-event timer (median of many runs
// after warm-up), and the row every group reports. Each bench/kernels/bench_<op>.cu registers its groups with
// GANCU_BENCH(name) and reports rows; bench_main.cu measures the ceilings, runs the groups, prints the table and
// writes JSON.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <string>
#include <vector>

namespace gancu::bench {

// Ceilings measured in the same run, so every figure can be given as a fraction of one.
struct Ceilings {
  double copy_gbps = 0;         // device-to-device copy bandwidth, counting read + write bytes
  double gemm_fp32_tflops = 0;  // cuBLAS SGEMM, strict fp32
  double gemm_tf32_tflops = 0;  // cuBLAS SGEMM with TF32 tensor-core math
};

// One line of the table: an op at one shape, custom kernel against the baseline (cuDNN/cuBLAS) in one math mode.
struct Row {
  std::string op;        // "conv_transpose2d_forward"
  std::string shape;     // "dcgan64.G.1 128x512x4x4->256x8x8 k4s2p1"
  std::string mode;      // "fp32" | "tf32" | "-" for memory-bound ops
  double custom_ms = 0;  // median
  double baseline_ms = 0;
  double flops = 0;      // per call; 0 for memory-bound ops
  double bytes = 0;      // compulsory DRAM traffic per call (each input read once, each output written once)
};

struct Context {
  Ceilings ceilings;
  cudaStream_t stream = nullptr;
  int warmup = 10;
  int iterations = 50;  // at least 50 timed runs; the median is reported
  std::vector<Row> rows;
  std::string filter;   // run only groups whose name contains this
};

// Times `launch(rotation)` with CUDA events: `warmup` untimed calls, then `iterations` timed calls, each event-pair
// around one call; returns the median in milliseconds. `rotation` counts up so the caller can cycle through several
// input sets whose total exceeds L2 (so no run is served from a warm cache).
double time_median_ms(Context& ctx, const std::function<void(int rotation)>& launch);

// How many input sets to rotate so that sets × bytes_per_set exceeds 2 × L2 (at least 2).
int rotation_sets(size_t bytes_per_set);

using GroupFn = void (*)(Context&);
struct Registrar {
  Registrar(const char* name, GroupFn fn);
};
struct Group {
  std::string name;
  GroupFn fn;
};
std::vector<Group>& registry();

}  // namespace gancu::bench

#define GANCU_BENCH_CONCAT2(a, b) a##b
#define GANCU_BENCH_CONCAT(a, b) GANCU_BENCH_CONCAT2(a, b)
#define GANCU_BENCH(name)                                                                                 \
  static void GANCU_BENCH_CONCAT(gancu_bench_group_, __LINE__)(::gancu::bench::Context&);                 \
  static ::gancu::bench::Registrar GANCU_BENCH_CONCAT(gancu_bench_registrar_, __LINE__)(                  \
      name, &GANCU_BENCH_CONCAT(gancu_bench_group_, __LINE__));                                           \
  static void GANCU_BENCH_CONCAT(gancu_bench_group_, __LINE__)(::gancu::bench::Context & ctx)
