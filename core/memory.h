// How much memory this process may still take, so that an impossible configuration is refused with its numbers
// before anything is allocated, rather than left to the OOM killer.
#pragma once
#include <cstdint>
#include <string>

namespace gancu {

// Host memory available to a new allocation: /proc/meminfo's MemAvailable, capped by the address-space limit
// (ulimit -v) less what the process already maps; -1 if neither can be read.
int64_t available_host_memory_bytes();

// "1.5 GiB", "640 MiB", "12 KiB": for the messages of those refusals.
std::string human_bytes(int64_t bytes);

}  // namespace gancu
