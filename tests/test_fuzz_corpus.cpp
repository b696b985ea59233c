// The fuzz targets' seed corpora (tests/fuzz/corpus/<target>/, written by tests/fuzz/make_corpus.py) replayed through
// the same entry points the fuzzers call, in the normal suite: no clang needed, and the ASan stage of tools/test.sh
// runs them under the sanitizers too. A file named ok-… must be accepted and one named bad-… refused with the reader's
// runtime_error; a crash, another exception or a broken invariant fails the test.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/files.h"
#include "tests/fuzz/fuzz_inputs.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(GANCU_SOURCE_DIR) / "tests" / "fuzz" / "corpus";

std::vector<std::string> target_names() {
  std::vector<std::string> names;
  for (const fuzz::Target& t : fuzz::targets()) names.push_back(t.name);
  return names;
}

TEST(FuzzCorpus, EveryTargetHasACorpusFolderAndEveryFolderATarget) {
  std::set<std::string> folders;
  for (const fs::directory_entry& entry : fs::directory_iterator(kCorpus))
    if (entry.is_directory()) folders.insert(entry.path().filename().string());
  const std::vector<std::string> names = target_names();
  EXPECT_EQ(folders, std::set<std::string>(names.begin(), names.end()));
}

class FuzzCorpusReplay : public ::testing::TestWithParam<std::string> {};

TEST_P(FuzzCorpusReplay, EachSeedHasTheOutcomeItsNameSays) {
  const fuzz::Target& target = fuzz::find_target(GetParam());
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(kCorpus / GetParam()))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  int accepted = 0, refused = 0;
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    const bool want_ok = name.rfind("ok-", 0) == 0;
    ASSERT_TRUE(want_ok || name.rfind("bad-", 0) == 0) << file << ": corpus files are named ok-… or bad-…";
    const std::vector<char> bytes = read_file(file.string());
    fuzz::Outcome outcome = fuzz::Outcome::refused;
    try {
      outcome = target.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      ADD_FAILURE() << file << ": " << e.what();
      continue;
    }
    EXPECT_EQ(outcome == fuzz::Outcome::accepted, want_ok) << file << (want_ok ? " was refused" : " was accepted");
    ++(want_ok ? accepted : refused);
  }
  // A corpus needs both kinds to exercise the reader.
  EXPECT_GT(accepted, 0) << "no ok- seeds for " << GetParam();
  EXPECT_GT(refused, 0) << "no bad- seeds for " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzCorpusReplay, ::testing::ValuesIn(target_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace gancu
