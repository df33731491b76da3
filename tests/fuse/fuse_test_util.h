// Helpers for the kvfs-fuse tests, which ctest runs in private namespaces
// (ci/run-in-namespace.sh), so mounts never leave them: a kvfs-fuse process
// serving one mount, and checks of the mount table.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fs/file_system.h"
#include "common/status.h"
#include "fuse/fuse_mount.h"
#include "fuse/fuse_operations.h"

namespace kvfs::fuse_test {

// The kvfs-fuse binary under test (KVFS_FUSE_BIN, set by CMake).
std::string KvfsFuseBinary();

// Whether `mountpoint` is a mount point in this mount namespace; *fstype
// (if not null) receives its type ("fuse.kvfs").
bool IsMounted(const std::string& mountpoint, std::string* fstype = nullptr);
// The mount options of `mountpoint` as /proc/self/mountinfo lists them (the
// per-mount and the super block options, comma-separated).
std::string MountOptionsOf(const std::string& mountpoint);

// The data limit (RLIMIT_DATA) of the processes tests start, as the NFS
// server's in its tests: 2 GiB.
extern const uint64_t kDataLimit;

// Runs `argv` (argv[0] the program) to completion under `data_limit`;
// returns its exit status (128 + N for signal N) and sets *output to what it
// printed on stdout and stderr.
int RunProgram(const std::vector<std::string>& argv, std::string* output,
               uint64_t data_limit = 2ull << 30);

// A kvfs-fuse process in the foreground serving one mount.
class KvfsFuse {
 public:
  // `args`: everything between the program and the mountpoint (--db ...,
  // -o ...); -f is added.
  KvfsFuse(std::vector<std::string> args, std::string mountpoint);
  // Stops a running process (Stop, else Kill9).
  ~KvfsFuse();
  KvfsFuse(const KvfsFuse&) = delete;
  KvfsFuse& operator=(const KvfsFuse&) = delete;

  // Starts the process (under kDataLimit, so that a regression fails the
  // test and not the machine) and waits until the
  // mount is in the mount table; fails with the process's output if it
  // exits first.
  Status Start();
  // Unmounts with fusermount3 -u and waits for the process to exit; fails
  // unless it exits with status 0.
  Status Stop();
  // Sends `sig` and waits for the process to exit; *status (if not null)
  // receives its exit status (128 + N when killed by signal N).
  Status SignalAndWait(int sig, int* status);
  // SIGKILL; the dead mount is detached (umount -l), as an operator does.
  Status Kill9();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& mountpoint() const { return mountpoint_; }
  // What the process printed (its log: it runs in the foreground).
  std::string Output() const;

 private:
  Status Wait(int* status);

  std::vector<std::string> args_;
  std::string mountpoint_;
  std::string output_path_;
  pid_t pid_ = -1;
};

// FuseOperations over a FileSystem of the test's own, mounted and served in
// this process (so the test can look at the operations' state and use
// stores no kvfs-fuse process could have).
class InProcessMount {
 public:
  // `fs` (not owned) must outlive the mount.
  InProcessMount(FileSystem* fs, fusefs::FuseOperationsOptions options, std::string mountpoint);
  // Unmounts if still mounted.
  ~InProcessMount();

  // Mounts and starts serving on a thread of its own.
  Status Start();
  // Unmounts (umount(2): fails with EBUSY while files are open) and waits for
  // the serving thread.
  Status Stop();

  fusefs::FuseOperations& ops() { return *ops_; }

 private:
  std::unique_ptr<fusefs::FuseOperations> ops_;
  std::string mountpoint_;
  std::unique_ptr<fusefs::FuseMount> mount_;
  std::thread server_;
  Status served_;
};

}  // namespace kvfs::fuse_test
