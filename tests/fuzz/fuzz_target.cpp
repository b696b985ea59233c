// The libFuzzer entry of one reader: GANCU_FUZZ_TARGET names its entry in tests/fuzz/fuzz_inputs.h (CMake builds one
// executable per target). Exceptions other than a reader's refusal are left uncaught, so libFuzzer reports them.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gancu::fuzz::Target& target = gancu::fuzz::find_target(GANCU_FUZZ_TARGET);
  target.run(data, size);
  return 0;
}
