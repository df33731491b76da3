// FuseMount: a libfuse session over FuseOperations, mounted on a directory
// and served by libfuse's single- or multi-threaded loop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "fuse/fuse_operations.h"
#include "fuse/mount_options.h"

struct fuse_session;

namespace kvfs::fusefs {

struct FuseMountOptions {
  std::string mountpoint;
  // The kernel's mount options (KernelMountOptions).
  std::string kernel_options;
  // libfuse's request trace on its log.
  bool debug = false;
  // SIGTERM, SIGINT and SIGHUP end Serve (libfuse's handlers; one mount per
  // process). Serve must then run on the main thread, which the kernel
  // prefers for process-directed signals.
  bool handle_signals = false;
  // single_thread, max_threads, clone_fd.
  FuseSettings settings;
  // Receives libfuse's messages; null: stderr.
  std::function<void(const std::string&)> log;
};

class FuseMount {
 public:
  // Creates the session (userdata `ops`, not owned, which must outlive the
  // mount) and mounts it. On failure the Status carries libfuse's own
  // messages.
  static Status Mount(FuseOperations* ops, const FuseMountOptions& options,
                      std::unique_ptr<FuseMount>* out);
  // Unmounts (lazily, if still mounted) and destroys the session.
  ~FuseMount();
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;

  // Serves requests until the file system is unmounted (fusermount3 -u,
  // umount) or a handled signal arrives; *signal (if not null) is that
  // signal's number, 0 after an unmount.
  Status Serve(int* signal);

  fuse_session* session() const { return session_; }

 private:
  FuseMount(FuseOperations* ops, FuseMountOptions options);

  FuseOperations* const ops_;
  const FuseMountOptions options_;
  fuse_session* session_ = nullptr;
  bool mounted_ = false;
  bool signals_ = false;
};

}  // namespace kvfs::fusefs
