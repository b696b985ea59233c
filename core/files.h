// Whole-file reads and atomic writes. Every file gancu writes (checkpoints, .npy, PNG, reports) goes through
// write_file_atomic, so a crash or a full disk never leaves a half-written file in place of a good one; logs that grow
// line by line go through AppendFile. Both report a failed write as one line naming the file and the errno text, and
// both can be made to fail on purpose (set_write_fault, GANCU_FAULT_WRITE) to test that.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gancu {

// Reads the whole file; throws std::runtime_error("<path>: <reason>") if it cannot.
std::vector<char> read_file(const std::string& path);
// Writes to "<path>.tmp.<pid>", fsyncs it, renames it over path and fsyncs the directory, so `path` holds either its
// old contents or all of `bytes`, also after a crash. On any failure (a short or failed write, fsync, rename) the
// temporary file is removed and std::runtime_error("<path>: <what> failed (<errno text>)") is thrown; the file at
// `path` is then untouched, except when only the directory fsync failed (the new file is in place, maybe not durable).
void write_file_atomic(const std::string& path, std::string_view bytes);

// A log appended to in place (metrics.jsonl): each append() is written whole or not at all. A failed write is cut
// back off the file (ftruncate to the length before) and throws std::runtime_error("<path>: write failed (<errno
// text>)"). No fsync: a line lost to a crash belongs to steps after the last checkpoint, which a resume redoes.
class AppendFile {
 public:
  // Opens (creating it if needed) for appending; throws "<path>: cannot open for appending (<errno text>)".
  explicit AppendFile(const std::string& path);
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  void append(std::string_view bytes);

 private:
  std::string path_;
  int fd_;
};

// Test seam: makes the writes above fail as a full disk or a failing device does, so that tests reach every error
// path without root (a small tmpfs) or real hardware faults. The spec is "<ERRNO>@<bytes>[:<name>]", ERRNO being
// ENOSPC or EIO: the writes of this process to files whose name (last path component of the target) contains <name>
// (every file if it is absent) succeed for <bytes> bytes in all; the write that would pass that count writes what fits
// and fails with ERRNO, and so does every later one (a full disk stays full). Bytes are counted from the moment the
// spec is set. Files with nothing to write create no fault. `gan` and the tests' child processes read the spec from the
// environment variable GANCU_FAULT_WRITE at their first write; set_write_fault replaces it in this process ("" turns
// faults off). A malformed spec throws std::invalid_argument.
inline constexpr const char* kWriteFaultEnv = "GANCU_FAULT_WRITE";
void set_write_fault(const std::string& spec);
// Removes the "<name>.tmp.<pid>" files in `dir` whose process is gone: what write_file_atomic leaves behind when its
// process is killed mid-write (the file it was replacing is intact). Returns how many it removed.
int remove_stale_temp_files(const std::string& dir);

// An exclusive lock on a folder, so that one process at a time writes into it: flock(2) on "<dir>/.lock", held while
// the object lives. The kernel releases it when the process dies, so even kill -9 leaves no stale lock. The holder's
// PID is kept in the file for the messages of those turned away.
class FolderLock {
 public:
  // Creates the folder if needed and takes its lock, or returns null if another open lock file holds it, with
  // *holder_pid set to the PID it recorded (0 if it has not yet).
  static std::unique_ptr<FolderLock> try_acquire(const std::string& dir, long* holder_pid);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  explicit FolderLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace gancu
