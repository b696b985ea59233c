// Kernel benchmark driver (implements bench/kernels/bench.h): measures the ceilings (copy bandwidth, cuBLAS SGEMM in
// strict fp32 and TF32), runs every registered group, prints one table and writes the same rows as JSON.
//
//   gancu_bench_kernels [--filter SUBSTR] [--iterations N] [--warmup N] [--json PATH] [--commit SHA] [--allow-no-gpu]
//
// The commit comes from --commit, else the environment variable GANCU_COMMIT, else "unknown".
#include <cublas_v2.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/kernels/bench.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise.h"

namespace gancu::bench {

std::vector<Group>& registry() {
  static std::vector<Group> groups;  // function-local: safe to use from other files' static initialisers
  return groups;
}

Registrar::Registrar(const char* name, GroupFn fn) { registry().push_back(Group{name, fn}); }

int rotation_sets(size_t bytes_per_set) {
  int device = 0, l2_bytes = 0;
  GANCU_CUDA_CHECK(cudaGetDevice(&device));
  GANCU_CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
  if (bytes_per_set == 0) return 2;
  const size_t wanted = (2 * size_t(l2_bytes)) / bytes_per_set + 1;
  // Tiny problems are latency-bound whatever the cache does; the cap keeps their buffers small.
  return int(std::clamp<size_t>(wanted, 2, 4096));
}

double time_median_ms(Context& ctx, const std::function<void(int rotation)>& launch) {
  int rotation = 0;
  for (int i = 0; i < ctx.warmup; ++i) launch(rotation++);
  const int runs = std::max(ctx.iterations, 1);
  std::vector<cudaEvent_t> start(runs), stop(runs);
  for (int i = 0; i < runs; ++i) {
    GANCU_CUDA_CHECK(cudaEventCreate(&start[i]));
    GANCU_CUDA_CHECK(cudaEventCreate(&stop[i]));
  }
  std::vector<double> ms(runs);
  try {
    for (int i = 0; i < runs; ++i) {
      GANCU_CUDA_CHECK(cudaEventRecord(start[i], ctx.stream));
      launch(rotation++);
      GANCU_CUDA_CHECK(cudaEventRecord(stop[i], ctx.stream));
    }
    GANCU_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    for (int i = 0; i < runs; ++i) {
      float elapsed = 0;
      GANCU_CUDA_CHECK(cudaEventElapsedTime(&elapsed, start[i], stop[i]));
      ms[i] = elapsed;
    }
  } catch (...) {
    for (int i = 0; i < runs; ++i) {
      cudaEventDestroy(start[i]);
      cudaEventDestroy(stop[i]);
    }
    throw;
  }
  for (int i = 0; i < runs; ++i) {
    cudaEventDestroy(start[i]);
    cudaEventDestroy(stop[i]);
  }
  std::sort(ms.begin(), ms.end());
  return runs % 2 ? ms[runs / 2] : 0.5 * (ms[runs / 2 - 1] + ms[runs / 2]);
}

namespace {

// ---- ceilings ---------------------------------------------------------------------------------------------------

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + ": " + cublasGetStatusString(status));
}

// Device-to-device copy of a buffer far larger than L2; read + write bytes per second.
double measure_copy_gbps(Context& ctx) {
  int device = 0, l2_bytes = 0;
  GANCU_CUDA_CHECK(cudaGetDevice(&device));
  GANCU_CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
  const size_t bytes = std::max<size_t>(size_t(256) << 20, size_t(l2_bytes) * 8);
  void *src = nullptr, *dst = nullptr;
  GANCU_CUDA_CHECK(cudaMalloc(&src, bytes));
  GANCU_CUDA_CHECK(cudaMalloc(&dst, bytes));
  double ms = 0;
  try {
    GANCU_CUDA_CHECK(cudaMemsetAsync(src, 0, bytes, ctx.stream));
    ms = time_median_ms(ctx, [&](int) { GANCU_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream)); });
  } catch (...) {
    cudaFree(src);
    cudaFree(dst);
    throw;
  }
  cudaFree(src);
  cudaFree(dst);
  return 2.0 * double(bytes) / (ms * 1e6);
}

// Square SGEMM rate in TFLOP/s for one cuBLAS math mode.
double measure_sgemm_tflops(Context& ctx, cublasHandle_t handle, cublasMath_t math, int n) {
  check_cublas(cublasSetStream(handle, ctx.stream), "cublasSetStream");
  check_cublas(cublasSetMathMode(handle, math), "cublasSetMathMode");
  const size_t bytes = size_t(n) * n * sizeof(float);
  float *a = nullptr, *b = nullptr, *c = nullptr;
  GANCU_CUDA_CHECK(cudaMalloc(&a, bytes));
  GANCU_CUDA_CHECK(cudaMalloc(&b, bytes));
  GANCU_CUDA_CHECK(cudaMalloc(&c, bytes));
  double ms = 0;
  try {
    // Random operands, not zeros: a GEMM on zeros toggles fewer bits, draws less power and so holds higher clocks,
    // which overstates the ceiling (a bf16 product measured ~13% faster on zeros than on random data on an H200).
    cuda::fill_uniform(int64_t(n) * n, -1.0f, 1.0f, 1, 0, a, ctx.stream);
    cuda::fill_uniform(int64_t(n) * n, -1.0f, 1.0f, 2, 0, b, ctx.stream);
    Context gemm_ctx = ctx;  // fewer runs: each one is tens of milliseconds
    gemm_ctx.warmup = 3;
    gemm_ctx.iterations = 11;
    const float alpha = 1.0f, beta = 0.0f;
    ms = time_median_ms(gemm_ctx, [&](int) {
      check_cublas(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, n, b, n, &beta, c, n), "sgemm");
    });
  } catch (...) {
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    throw;
  }
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 2.0 * double(n) * n * n / (ms * 1e9);
}

// ---- report -----------------------------------------------------------------------------------------------------

// Achieved rate of a row and its fraction of the ceiling that bounds it: compute-bound rows against the GEMM rate of
// their math mode, memory-bound rows against copy bandwidth.
struct Rates {
  double custom_rate = 0, baseline_rate = 0, percent_of_ceiling = 0;
  const char* unit = "GB/s";
};
Rates rates(const Row& row, const Ceilings& c) {
  Rates r;
  if (row.flops > 0) {
    r.unit = "TFLOP/s";
    r.custom_rate = row.custom_ms > 0 ? row.flops / (row.custom_ms * 1e9) : 0;
    r.baseline_rate = row.baseline_ms > 0 ? row.flops / (row.baseline_ms * 1e9) : 0;
    const double ceiling = row.mode == "tf32" ? c.gemm_tf32_tflops : c.gemm_fp32_tflops;
    r.percent_of_ceiling = ceiling > 0 ? 100.0 * r.custom_rate / ceiling : 0;
  } else {
    r.custom_rate = row.custom_ms > 0 ? row.bytes / (row.custom_ms * 1e6) : 0;
    r.baseline_rate = row.baseline_ms > 0 ? row.bytes / (row.baseline_ms * 1e6) : 0;
    r.percent_of_ceiling = c.copy_gbps > 0 ? 100.0 * r.custom_rate / c.copy_gbps : 0;
  }
  return r;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

void print_table(const std::vector<Row>& rows, const Ceilings& c) {
  std::printf("\nceilings: copy %.0f GB/s, SGEMM fp32 %.1f TFLOP/s, SGEMM tf32 %.1f TFLOP/s\n\n", c.copy_gbps,
              c.gemm_fp32_tflops, c.gemm_tf32_tflops);
  std::printf("%-28s %-44s %-5s %11s %11s %8s %16s %8s\n", "op", "shape", "mode", "custom ms", "baseline ms",
              "speedup", "custom rate", "% ceil");
  for (const Row& row : rows) {
    const Rates r = rates(row, c);
    const double speedup = row.custom_ms > 0 && row.baseline_ms > 0 ? row.baseline_ms / row.custom_ms : 0;
    std::printf("%-28s %-44s %-5s %11.4f %11.4f %7.2fx %8.1f %-7s %7.1f%%\n", row.op.c_str(), row.shape.c_str(),
                row.mode.c_str(), row.custom_ms, row.baseline_ms, speedup, r.custom_rate, r.unit,
                r.percent_of_ceiling);
  }
  std::printf("\nspeedup = baseline ms / custom ms (> 1: the custom kernel is faster).\n");
}

nlohmann::json to_json(const Context& ctx, const std::string& commit, const std::vector<std::string>& failures) {
  int device = 0, driver = 0, runtime = 0;
  cudaDeviceProp prop{};
  GANCU_CUDA_CHECK(cudaGetDevice(&device));
  GANCU_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  GANCU_CUDA_CHECK(cudaDriverGetVersion(&driver));
  GANCU_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  nlohmann::json out;
  out["device"] = prop.name;
  out["compute_capability"] = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  out["driver_version"] = driver;
  out["runtime_version"] = runtime;
  out["cudnn_version"] = cudnnGetVersion();
  out["date"] = utc_now();
  out["commit"] = commit;
  out["iterations"] = ctx.iterations;
  out["warmup"] = ctx.warmup;
  out["ceilings"] = {{"copy_gbps", ctx.ceilings.copy_gbps},
                     {"gemm_fp32_tflops", ctx.ceilings.gemm_fp32_tflops},
                     {"gemm_tf32_tflops", ctx.ceilings.gemm_tf32_tflops}};
  out["rows"] = nlohmann::json::array();
  for (const Row& row : ctx.rows) {
    const Rates r = rates(row, ctx.ceilings);
    out["rows"].push_back({{"op", row.op},
                           {"shape", row.shape},
                           {"mode", row.mode},
                           {"custom_ms", row.custom_ms},
                           {"baseline_ms", row.baseline_ms},
                           {"speedup", row.custom_ms > 0 && row.baseline_ms > 0 ? row.baseline_ms / row.custom_ms : 0},
                           {"flops", row.flops},
                           {"bytes", row.bytes},
                           {"unit", r.unit},
                           {"custom_rate", r.custom_rate},
                           {"baseline_rate", r.baseline_rate},
                           {"percent_of_ceiling", r.percent_of_ceiling}});
  }
  out["failures"] = failures;
  return out;
}

struct Options {
  std::string filter, json_path, commit;
  int iterations = 50, warmup = 10;
  bool allow_no_gpu = false;
};

int parse_int(const std::string& flag, const char* text) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < 1 || value > 1000000)
    throw std::invalid_argument(flag + " expects a positive integer, got '" + text + "'");
  return int(value);
}

Options parse(int argc, char** argv) {
  Options o;
  if (const char* env = std::getenv("GANCU_COMMIT")) o.commit = env;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--filter") o.filter = value();
    else if (arg == "--iterations") o.iterations = std::max(parse_int(arg, value()), 50);
    else if (arg == "--warmup") o.warmup = parse_int(arg, value());
    else if (arg == "--json") o.json_path = value();
    else if (arg == "--commit") o.commit = value();
    else if (arg == "--allow-no-gpu") o.allow_no_gpu = true;
    else if (arg == "--help" || arg == "-h") {
      std::printf("usage: %s [--filter SUBSTR] [--iterations N (≥ 50)] [--warmup N] [--json PATH] [--commit SHA] "
                  "[--allow-no-gpu]\n", argv[0]);
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown argument " + arg);
    }
  }
  if (o.commit.empty()) o.commit = "unknown";
  return o;
}

int run(const Options& o) {
  if (cuda::device_count() == 0) {
    std::printf("no CUDA device\n");
    return o.allow_no_gpu ? 0 : 1;
  }
  Context ctx;
  ctx.filter = o.filter;
  ctx.iterations = o.iterations;
  ctx.warmup = o.warmup;
  GANCU_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));

  cudaDeviceProp prop{};
  GANCU_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d), commit %s\n", prop.name, prop.major, prop.minor, o.commit.c_str());

  ctx.ceilings.copy_gbps = measure_copy_gbps(ctx);
  cublasHandle_t handle = nullptr;
  check_cublas(cublasCreate(&handle), "cublasCreate");
  constexpr int kGemmSize = 8192;
  ctx.ceilings.gemm_fp32_tflops = measure_sgemm_tflops(ctx, handle, CUBLAS_DEFAULT_MATH, kGemmSize);
  ctx.ceilings.gemm_tf32_tflops = measure_sgemm_tflops(ctx, handle, CUBLAS_TF32_TENSOR_OP_MATH, kGemmSize);
  cublasDestroy(handle);

  // A failing group is reported and the others still run.
  std::vector<std::string> failures;
  for (const Group& group : registry()) {
    if (!ctx.filter.empty() && group.name.find(ctx.filter) == std::string::npos) continue;
    std::printf("running %s ...\n", group.name.c_str());
    std::fflush(stdout);
    try {
      group.fn(ctx);
      GANCU_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    } catch (const std::exception& e) {
      failures.push_back(group.name + ": " + e.what());
      std::fprintf(stderr, "group %s failed: %s\n", group.name.c_str(), e.what());
      cudaGetLastError();  // clear a non-sticky error so later groups can run
    }
  }
  print_table(ctx.rows, ctx.ceilings);

  if (!o.json_path.empty()) {
    std::ofstream file(o.json_path);
    if (!file) throw std::runtime_error("cannot write " + o.json_path);
    file << to_json(ctx, o.commit, failures).dump(2) << "\n";
  }
  GANCU_CUDA_CHECK(cudaStreamDestroy(ctx.stream));
  for (const std::string& f : failures) std::fprintf(stderr, "FAILED: %s\n", f.c_str());
  return failures.empty() ? 0 : 2;
}

}  // namespace
}  // namespace gancu::bench

int main(int argc, char** argv) {
  try {
    return gancu::bench::run(gancu::bench::parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gancu_bench_kernels: %s\n", e.what());
    return 1;
  }
}
