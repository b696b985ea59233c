#include "core/files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <system_error>

namespace gancu {

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::streamsize size = in.tellg();
  if (size < 0) throw std::runtime_error(path + ": cannot determine size");
  std::vector<char> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(bytes.data(), size)) throw std::runtime_error(path + ": read failed");
  return bytes;
}

namespace {

// The fault set by set_write_fault or GANCU_FAULT_WRITE; error 0 is none.
struct WriteFault {
  int error = 0;
  uint64_t budget = 0;  // bytes still written before the fault
  std::string name;     // only files whose name contains this; empty: every file
};

std::mutex g_fault_mutex;
WriteFault g_fault;
bool g_fault_loaded = false;  // the environment has been read, or set_write_fault called

WriteFault parse_write_fault(const std::string& spec) {
  WriteFault f;
  if (spec.empty()) return f;
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument(std::string(kWriteFaultEnv) + " \"" + spec + "\": " + why +
                                 " (expected <ENOSPC|EIO>@<bytes>[:<name>])");
  };
  const size_t at = spec.find('@');
  if (at == std::string::npos) throw bad("no '@'");
  const std::string error = spec.substr(0, at);
  if (error == "ENOSPC") f.error = ENOSPC;
  else if (error == "EIO") f.error = EIO;
  else throw bad("unknown error '" + error + "'");
  const size_t colon = spec.find(':', at);
  const std::string bytes = spec.substr(at + 1, colon == std::string::npos ? std::string::npos : colon - at - 1);
  if (bytes.empty() || bytes.size() > 18 || bytes.find_first_not_of("0123456789") != std::string::npos)
    throw bad("the byte count is not a number");
  f.budget = std::stoull(bytes);
  if (colon != std::string::npos) {
    f.name = spec.substr(colon + 1);
    if (f.name.empty()) throw bad("empty file name after ':'");
  }
  return f;
}

// Reads GANCU_FAULT_WRITE once, before the first file is opened for writing, so a malformed spec fails before
// anything is created.
void load_write_fault() {
  const std::lock_guard<std::mutex> lock(g_fault_mutex);
  if (g_fault_loaded) return;
  const char* spec = std::getenv(kWriteFaultEnv);
  g_fault = parse_write_fault(spec ? spec : "");
  g_fault_loaded = true;
}

bool fault_applies(const std::string& path) {
  return g_fault.error != 0 &&
         (g_fault.name.empty() || std::filesystem::path(path).filename().string().find(g_fault.name) != std::string::npos);
}

// How many of `wanted` bytes for `path` the injected fault lets through (all without one); when none, *error is its
// errno.
size_t writable_bytes(const std::string& path, size_t wanted, int* error) {
  const std::lock_guard<std::mutex> lock(g_fault_mutex);
  if (!fault_applies(path)) return wanted;
  *error = g_fault.error;
  return static_cast<size_t>(std::min<uint64_t>(wanted, g_fault.budget));
}

void count_written(const std::string& path, size_t bytes) {
  const std::lock_guard<std::mutex> lock(g_fault_mutex);
  if (fault_applies(path)) g_fault.budget -= std::min<uint64_t>(bytes, g_fault.budget);
}

// Writes all of `bytes` to fd, carrying on after short writes and EINTR. Returns 0, or the errno that stopped it (some
// bytes may have been written).
int write_all(int fd, const std::string& path, std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    int injected = 0;
    const size_t allowed = writable_bytes(path, bytes.size() - done, &injected);
    if (allowed == 0) return injected;
    const ssize_t n = ::write(fd, bytes.data() + done, allowed);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;  // a regular file that takes nothing and reports no error: give up rather than spin
    count_written(path, static_cast<size_t>(n));
    done += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

void set_write_fault(const std::string& spec) {
  WriteFault f = parse_write_fault(spec);
  const std::lock_guard<std::mutex> lock(g_fault_mutex);
  g_fault = std::move(f);
  g_fault_loaded = true;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  load_write_fault();
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot create temporary file (" + std::strerror(errno) + ")");
  // Every failure before the rename removes the temporary file: `path` keeps its old contents.
  const auto fail = [&](const std::string& what, int error, bool still_open) {
    if (still_open) ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": " + what + " failed (" + std::strerror(error) + ")");
  };
  if (const int error = write_all(fd, path, bytes); error != 0) fail("write", error, true);
  if (::fsync(fd) != 0) fail("fsync", errno, true);
  if (::close(fd) != 0) fail("close", errno, false);  // never retried: on Linux the descriptor is gone either way
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename", errno, false);
  // Make the rename itself durable. A file system that cannot fsync a directory says EINVAL: nothing more to do there.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw std::runtime_error(path + ": cannot open its folder to fsync the rename (" + std::strerror(errno) + ")");
  if (::fsync(dfd) != 0 && errno != EINVAL) {
    const int error = errno;
    ::close(dfd);
    throw std::runtime_error(path + ": fsync of its folder failed (" + std::strerror(error) + ")");
  }
  ::close(dfd);
}

AppendFile::AppendFile(const std::string& path) : path_(path) {
  load_write_fault();
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(path + ": cannot open for appending (" + std::strerror(errno) + ")");
}

AppendFile::~AppendFile() { ::close(fd_); }

void AppendFile::append(std::string_view bytes) {
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  const int error = write_all(fd_, path_, bytes);
  if (error == 0) return;
  // Cut off the part that was written, so that the log never ends in half a line. Should that fail too, the write's
  // error is still the one to report.
  if (before >= 0) [[maybe_unused]] const bool cut = ::ftruncate(fd_, before) == 0;
  throw std::runtime_error(path_ + ": write failed (" + std::strerror(error) + ")");
}

int remove_stale_temp_files(const std::string& dir) {
  namespace fs = std::filesystem;
  int removed = 0;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at == 0 || at + 5 == name.size() || !entry.is_regular_file(ec)) continue;
    const std::string pid_text = name.substr(at + 5);
    if (pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    // A live process may be writing it right now (this one, or another program writing into the folder).
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (fs::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

std::unique_ptr<FolderLock> FolderLock::try_acquire(const std::string& dir, long* holder_pid) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create the folder (" + ec.message() + ")");
  const std::string path = (std::filesystem::path(dir) / ".lock").string();
  // No O_TRUNC: opening the file must not change it while another process holds it.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot open the lock file (" + std::strerror(errno) + ")");
  int rc;
  do rc = ::flock(fd, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int error = errno;
    const std::string why = std::strerror(error);
    const bool held = error == EWOULDBLOCK;
    char text[32] = {};
    const ssize_t n = held ? ::pread(fd, text, sizeof text - 1, 0) : 0;
    ::close(fd);
    if (!held) throw std::runtime_error(path + ": cannot lock (" + why + ")");
    *holder_pid = n > 0 ? std::strtol(text, nullptr, 10) : 0;
    return nullptr;
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error(path + ": cannot write the lock file (" + why + ")");
  }
  return std::unique_ptr<FolderLock>(new FolderLock(fd));
}

FolderLock::~FolderLock() {
  // Forget the PID first, so nobody is told about a process that has let go; closing releases the lock.
  [[maybe_unused]] const int rc = ::ftruncate(fd_, 0);
  ::close(fd_);
}

}  // namespace gancu
