// One entry point per reader of outside bytes, shared by the libFuzzer targets (tests/fuzz/fuzz_target.cpp, one
// executable per entry) and the corpus replay of the normal suite (tests/test_fuzz_corpus.cpp). Each entry hands the
// bytes to its reader the way the program meets them (through a file where the reader takes a path), checks what an
// accepted input must satisfy, and says whether the reader accepted or refused the input.
//
// A refusal is a std::runtime_error, as every reader promises. Anything else is a bug the fuzzer must report: a
// crash, a sanitizer error, an allocation over the fuzzer's limit, another exception type, or a broken invariant of an
// accepted input (thrown as std::logic_error, which nothing catches in a fuzz target, so libFuzzer sees an abort).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace gancu::fuzz {

enum class Outcome { accepted, refused };

struct Target {
  const char* name;  // also the corpus folder, tests/fuzz/corpus/<name>/, and the executable, fuzz_<name>
  Outcome (*run)(const uint8_t* data, size_t size);
};

const std::vector<Target>& targets();
// The target of that name; std::logic_error if there is none.
const Target& find_target(std::string_view name);

}  // namespace gancu::fuzz
