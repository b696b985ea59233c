// `gan train` as a process (the real binary, built as target gan): SIGINT/SIGTERM stop a run at a step boundary with
// a checkpoint that resumes bit-identically; a second signal quits at once and leaves the last checkpoint intact; one
// run at a time holds a run folder, and the kernel frees it when the run dies, even by kill -9. Tiny runs on a small
// IDX file written by the test; every wait is for a file or a line to appear, with a timeout.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "core/files.h"
#include "tests/dataset_files.h"
#include "tests/temp_dir.h"
#include "tools/io/safetensors.h"

namespace gancu {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const fs::path kGan = fs::path(GANCU_BINARY_DIR) / "gan";
constexpr auto kTimeout = std::chrono::seconds(60);  // only reached when something is wrong

const std::vector<std::string> kTinyModel = {"--image-size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "4"};

// The flags of a run of `steps` steps of `model` (by default tiny: 16x16, width 4, batch 4, about a millisecond a step).
std::vector<std::string> train_args(const std::string& data, int64_t steps,
                                    const std::vector<std::string>& model = kTinyModel) {
  std::vector<std::string> args = {"train", "--data", data, "--nz", "8", "--seed", "7", "--sample-every", "0",
                                   "--no-progress", "--steps", std::to_string(steps)};
  args.insert(args.end(), model.begin(), model.end());
  return args;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string text_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int64_t lines_in(const fs::path& file) {
  const std::string text = text_of(file);
  return std::count(text.begin(), text.end(), '\n');
}

// Polls `done` every millisecond; false after kTimeout.
bool wait_until(const std::function<bool()>& done) {
  const auto deadline = Clock::now() + kTimeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// One `gan` process, its stdout and stderr in a log file, started in `cwd` with default signal dispositions.
class Gan {
 public:
  Gan(const std::vector<std::string>& args, const fs::path& log, const fs::path& cwd) : log_(log) {
    std::vector<std::string> all = {kGan.string()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addchdir_np(&files, cwd.c_str());
    posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const int rc = posix_spawn(&pid_, kGan.c_str(), &files, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw std::runtime_error(kGan.string() + ": cannot start (" + std::strerror(rc) + ")");
  }
  ~Gan() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  std::string output() const { return text_of(log_); }
  bool output_has(const std::string& text) const { return output().find(text) != std::string::npos; }
  void signal(int signo) const { ASSERT_EQ(::kill(pid_, signo), 0); }
  // Waits for the process to end: its exit code, kKilledBy + the signal that killed it, or -1 after kTimeout (then
  // the destructor kills it).
  static constexpr int kKilledBy = 1000;
  int wait() {
    int status = 0;
    if (!wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; })) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : kKilledBy + WTERMSIG(status);
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
};

// Every file under `dir` (relative path → contents and modification time), to show that a process changed nothing.
std::map<std::string, std::pair<std::string, fs::file_time_type>> snapshot(const fs::path& dir) {
  std::map<std::string, std::pair<std::string, fs::file_time_type>> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = {text_of(e.path()), e.last_write_time()};
  return files;
}

struct Checkpoint {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;
  int64_t step() const { return std::stoll(meta.at("step")); }
};
Checkpoint load_checkpoint(const fs::path& dir) {
  Checkpoint c;
  c.tensors = load_safetensors((dir / "checkpoint.safetensors").string(), &c.meta);
  return c;
}

// Every tensor and every counter of a and b equal, bit for bit.
void expect_identical(const Checkpoint& a, const Checkpoint& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  ASSERT_GT(a.tensors.size(), 20u);
  for (const auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    const Tensor& u = b.tensors.at(name);
    EXPECT_TRUE(t.shape() == u.shape() && std::memcmp(t.data(), u.data(), size_t(t.numel()) * sizeof(float)) == 0)
        << name;
  }
  for (const char* key : {"step", "counter.G", "counter.D", "loader.epoch", "loader.position"})
    EXPECT_EQ(a.meta.at(key), b.meta.at(key)) << key;
}

// The steps metrics.jsonl logs, in order.
std::vector<int64_t> logged_steps(const fs::path& dir) {
  std::vector<int64_t> steps;
  std::ifstream in(dir / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) steps.push_back(std::stoll(line.substr(line.find(':') + 1)));
  return steps;
}
std::vector<int64_t> one_to(int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

class TrainProcess : public testing::TempDirTest {
 protected:
  void SetUp() override {
    if (!fs::exists(kGan)) GTEST_SKIP() << kGan << " is not built (cmake --build build --target gan)";
    TempDirTest::SetUp();
    data_ = path("tiny-images-idx3-ubyte");
    write_bytes("tiny-images-idx3-ubyte", testing::idx_bytes(64, 16, 16));
  }
  // Runs gan to the end; its exit code (its output is in <dir>/<log>).
  int run(const std::vector<std::string>& args, const std::string& log) {
    Gan gan(args, dir_ / log, dir_);
    const int rc = gan.wait();
    EXPECT_NE(rc, -1) << gan.output();
    return rc;
  }
  std::string data_;
};

// SIGTERM and SIGINT mid-run: exit 143 and 130 with a one-line message, a checkpoint at the step where the run stopped
// (metrics.jsonl logs exactly the steps before it), and resuming to N steps gives the run an uninterrupted N-step run
// gives, bit for bit.
TEST_F(TrainProcess, ASignalStopsAtAStepBoundaryAndTheRunResumesBitIdentically) {
  for (const int signo : {SIGTERM, SIGINT}) {
    const std::string name = signo == SIGTERM ? "term" : "int";
    SCOPED_TRACE(name);
    const fs::path run_dir = dir_ / name;
    Gan gan(train_args(data_, 1000000) + std::vector<std::string>{"--out", run_dir.string()}, dir_ / (name + ".log"), dir_);
    ASSERT_TRUE(wait_until([&] { return lines_in(run_dir / "metrics.jsonl") >= 3; })) << gan.output();
    gan.signal(signo);
    ASSERT_EQ(gan.wait(), 128 + signo) << gan.output();
    const std::string out = gan.output();
    const std::string stopped = std::string("gan train: stopped by ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT");
    ASSERT_NE(out.find(stopped), std::string::npos) << out;
    EXPECT_EQ(out.find('\n', out.find(stopped)), out.size() - 1) << "the stop message is the last line: " << out;
    EXPECT_NE(out.find("--resume " + run_dir.string()), std::string::npos) << out;

    const Checkpoint stopped_at = load_checkpoint(run_dir);
    const int64_t s = stopped_at.step();
    EXPECT_GE(s, 3);
    EXPECT_EQ(logged_steps(run_dir), one_to(s));
    // The run report was refreshed with that checkpoint, and says why the run stopped.
    const std::string report_status = "step " + std::to_string(s) + " of 1000000 · " + stopped.substr(11);
    EXPECT_NE(text_of(run_dir / "report.html").find(report_status), std::string::npos) << report_status;

    const int64_t n = s + 3;
    ASSERT_EQ(run(train_args(data_, n) + std::vector<std::string>{"--resume", run_dir.string()}, name + "_resume.log"), 0);
    const fs::path straight = dir_ / (name + "_straight");
    ASSERT_EQ(run(train_args(data_, n) + std::vector<std::string>{"--out", straight.string()}, name + "_straight.log"), 0);
    expect_identical(load_checkpoint(run_dir), load_checkpoint(straight));
    EXPECT_EQ(read_file((run_dir / "generator.safetensors").string()), read_file((straight / "generator.safetensors").string()));
    EXPECT_EQ(logged_steps(run_dir), one_to(n));
  }
}

// A second SIGINT while the first waits for the step to finish quits at once, with 130: no checkpoint of the step in
// progress, the one before intact and resumable. A temporary file that a process killed mid-write leaves behind is
// removed by the next run in the folder. The steps are slow here (width 128, batch 64: most of a second on two cores),
// so that the second signal lands while the step runs even on a loaded machine.
TEST_F(TrainProcess, ASecondSigintQuitsAtOnceAndKeepsThePreviousCheckpoint) {
  const fs::path run_dir = dir_ / "run";
  const std::vector<std::string> slow = {"--image-size", "16", "--ngf", "128", "--ndf", "128", "--batch-size", "64"};
  Gan gan(train_args(data_, 1000000, slow) + std::vector<std::string>{"--checkpoint-every", "1", "--out", run_dir.string()},
          dir_ / "gan.log", dir_);
  const pid_t pid = gan.pid();
  ASSERT_TRUE(wait_until([&] { return lines_in(run_dir / "metrics.jsonl") >= 2; })) << gan.output();
  gan.signal(SIGINT);
  ASSERT_TRUE(wait_until([&] { return gan.output_has("gan train: stopping after this step"); })) << gan.output();
  const auto second = Clock::now();
  gan.signal(SIGINT);
  ASSERT_EQ(gan.wait(), 130) << gan.output();
  const double exit_ms = std::chrono::duration<double, std::milli>(Clock::now() - second).count();
  const std::string out = gan.output();
  EXPECT_NE(out.find("gan train: quit at once; " + run_dir.string() + " keeps the last checkpoint written"),
            std::string::npos) << out;
  EXPECT_EQ(out.find("stopped by"), std::string::npos) << "the run was not cut short: " << out;
  std::printf("exit %.1f ms after the second SIGINT\n", exit_ms);

  // The previous checkpoint: loadable, of a step the run finished (the second signal may have cut short the
  // checkpoint of the step it had just logged, or the step after).
  const Checkpoint kept = load_checkpoint(run_dir);
  const int64_t s = kept.step();
  EXPECT_GE(s, 1);
  EXPECT_GE(int64_t(logged_steps(run_dir).size()), s);
  // What a kill mid-write leaves: "<file>.tmp.<pid>" of a process that is gone (this one has just been reaped). The
  // next run in the folder removes it, and any the kill above left.
  const fs::path leftover = run_dir / ("checkpoint.safetensors.tmp." + std::to_string(pid));
  write_file_atomic(leftover.string(), "half a checkpoint");
  ASSERT_EQ(run(train_args(data_, s + 1, slow) + std::vector<std::string>{"--resume", run_dir.string()}, "resume.log"), 0)
      << text_of(dir_ / "resume.log");
  EXPECT_EQ(load_checkpoint(run_dir).step(), s + 1);
  for (const auto& [name, file] : snapshot(run_dir)) EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
}

// A second run into a folder held by a running one (fresh with --out, --resume, and the default folder) fails at once
// with one line naming the folder and the holder, and changes nothing there; the default folder moves on to
// runs/train-2. The lock is gone when the holder exits, whether it stops on a signal or is killed with -9.
TEST_F(TrainProcess, OneRunAtATimeHoldsARunFolder) {
  // The holder runs in the default folder, runs/train under its working directory, and writes no checkpoint until it
  // stops: the folder is taken by the lock alone.
  const fs::path run_dir = dir_ / "runs" / "train";
  Gan holder(train_args(data_, 1000000) + std::vector<std::string>{"--checkpoint-every", "0"}, dir_ / "holder.log", dir_);
  ASSERT_TRUE(wait_until([&] { return lines_in(run_dir / "metrics.jsonl") >= 2; })) << holder.output();
  holder.signal(SIGSTOP);  // holds the lock, writes nothing while the others try
  const auto before = snapshot(run_dir);
  const std::string held = run_dir.string() + ": another run holds this folder (PID " + std::to_string(holder.pid()) + ")";
  for (const auto& [log, args] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"fresh.log", train_args(data_, 2) + std::vector<std::string>{"--out", run_dir.string()}},
           {"overwrite.log", train_args(data_, 2) + std::vector<std::string>{"--out", run_dir.string(), "--overwrite"}},
           {"resume.log", train_args(data_, 2) + std::vector<std::string>{"--resume", run_dir.string()}}}) {
    SCOPED_TRACE(log);
    const auto start = Clock::now();
    EXPECT_EQ(run(args, log), 1);
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 5.0);
    const std::string out = text_of(dir_ / log);
    EXPECT_EQ(out.rfind("gan: error: " + held, 0), 0u) << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  }
  // The default folder moves on past the held one.
  ASSERT_EQ(run(train_args(data_, 2), "default.log"), 0) << text_of(dir_ / "default.log");
  EXPECT_NE(text_of(dir_ / "default.log").find("runs/train is in use by another run (PID " + std::to_string(holder.pid()) +
                                               "); writing this one to runs/train-2"),
            std::string::npos)
      << text_of(dir_ / "default.log");
  EXPECT_EQ(load_checkpoint(dir_ / "runs" / "train-2").step(), 2);
  EXPECT_TRUE(snapshot(run_dir) == before) << "a refused run changed " << run_dir;

  EXPECT_FALSE(fs::exists(run_dir / "checkpoint.safetensors"));

  // The holder stops on SIGTERM; the folder is free again.
  holder.signal(SIGCONT);
  holder.signal(SIGTERM);
  ASSERT_EQ(holder.wait(), 143) << holder.output();
  const int64_t s = load_checkpoint(run_dir).step();
  ASSERT_EQ(run(train_args(data_, s + 1) + std::vector<std::string>{"--resume", run_dir.string()}, "after.log"), 0)
      << text_of(dir_ / "after.log");

  // Killed with -9: the kernel drops the lock with the process.
  Gan killed(train_args(data_, 1000000) + std::vector<std::string>{"--resume", run_dir.string()}, dir_ / "killed.log", dir_);
  ASSERT_TRUE(wait_until([&] { return lines_in(run_dir / "metrics.jsonl") > s + 2; })) << killed.output();
  killed.signal(SIGKILL);
  ASSERT_EQ(killed.wait(), Gan::kKilledBy + SIGKILL);
  EXPECT_EQ(run(train_args(data_, 2) + std::vector<std::string>{"--out", run_dir.string(), "--overwrite"}, "overwrite.log"), 0)
      << text_of(dir_ / "overwrite.log");
}

}  // namespace
}  // namespace gancu

namespace gancu {
namespace {

// --model picks the recipe for train and bench; its own flags parse (--image-size for the MLP GAN), a resumed run
// finds its recipe in the checkpoint without --model, and an unknown recipe or unlabelled data for a conditional one
// is one line and a non-zero exit.
TEST_F(TrainProcess, ModelFlagChoosesTheRecipe) {
  const fs::path run_dir = dir_ / "mlp";
  const std::vector<std::string> mlp = {"train", "--model", "mlp-gan", "--data", data_, "--image-size", "16", "--nz", "8",
                                        "--batch-size", "4", "--sample-every", "0", "--no-progress", "--out",
                                        run_dir.string()};
  ASSERT_EQ(run(mlp + std::vector<std::string>{"--steps", "2"}, "mlp.log"), 0) << text_of(dir_ / "mlp.log");
  EXPECT_EQ(load_checkpoint(run_dir).meta.at("recipe"), "mlp-gan");
  ASSERT_EQ(run({"train", "--resume", run_dir.string(), "--steps", "3", "--no-progress"}, "resume.log"), 0)
      << text_of(dir_ / "resume.log");
  EXPECT_EQ(load_checkpoint(run_dir).step(), 3);

  EXPECT_EQ(run({"train", "--model", "stylegan9", "--data", data_}, "unknown.log"), 1);
  EXPECT_NE(text_of(dir_ / "unknown.log").find("--model stylegan9: unknown (use dcgan, mlp-gan, conditional-dcgan, srresnet, srgan)"),
            std::string::npos) << text_of(dir_ / "unknown.log");
  EXPECT_EQ(run({"train", "--model", "conditional-dcgan", "--data", data_, "--image-size", "16", "--batch-size", "4",
                 "--steps", "1", "--no-progress", "--out", (dir_ / "cond").string()},
                "cond.log"),
            1);
  const std::string cond = text_of(dir_ / "cond.log");
  EXPECT_NE(cond.find("labels"), std::string::npos) << cond;
  EXPECT_EQ(std::count(cond.begin(), cond.end(), '\n'), 1) << cond;

  ASSERT_EQ(run({"bench", "--model", "mlp-gan", "--image-size", "16", "--nz", "8", "--batch-size", "4", "--steps", "2",
                 "--warmup", "0"},
                "bench.log"),
            0);
  EXPECT_NE(text_of(dir_ / "bench.log").find("\"model\":\"mlp-gan\""), std::string::npos) << text_of(dir_ / "bench.log");
}

// An impossible configuration (DCGAN-1024 at width 2048: terabytes) is refused at once with the numbers and exit 1,
// before anything is allocated: never left to the OOM killer.
TEST_F(TrainProcess, AnImpossibleConfigurationIsRefusedWithItsNumbers) {
  ASSERT_EQ(run({"train", "--data", data_, "--image-size", "1024", "--ngf", "2048", "--ndf", "2048", "--steps", "1",
                 "--no-progress", "--out", (dir_ / "huge").string()},
                "huge.log"),
            1);
  const std::string out = text_of(dir_ / "huge.log");
  EXPECT_NE(out.find("gan: error: the plan needs "), std::string::npos) << out;
  EXPECT_NE(out.find("TiB"), std::string::npos) << out;
  EXPECT_NE(out.find("available; use a smaller batch or image size"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_FALSE(fs::exists(dir_ / "huge" / "checkpoint.safetensors"));
}

}  // namespace
}  // namespace gancu
