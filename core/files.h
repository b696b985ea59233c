// Whole-file reads and atomic writes. Every file gancu writes (checkpoints, .npy, PNG, reports) goes through
// write_file_atomic, so a crash or a full disk never leaves a half-written file in place of a good one.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gancu {

// Reads the whole file; throws std::runtime_error("<path>: <reason>") if it cannot.
std::vector<char> read_file(const std::string& path);
// Writes to "<path>.tmp.<pid>", fsyncs it, renames it over path and fsyncs the directory.
void write_file_atomic(const std::string& path, std::string_view bytes);
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
