#include "core/memory.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace gancu {
namespace {

// A "<key>: <n> kB" line of a /proc file, in bytes; -1 if absent.
int64_t proc_kib_field(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    int64_t kib = -1;
    if (fields >> kib) return kib * 1024;
  }
  return -1;
}

}  // namespace

int64_t available_host_memory_bytes() {
  int64_t available = proc_kib_field("/proc/meminfo", "MemAvailable");
  struct rlimit limit = {};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const int64_t mapped = proc_kib_field("/proc/self/status", "VmSize");
    const int64_t left = static_cast<int64_t>(limit.rlim_cur) - (mapped > 0 ? mapped : 0);
    available = available < 0 ? left : std::min(available, left);
  }
  return available;
}

std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace gancu
