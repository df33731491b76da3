// FuseMount: a libfuse session over FuseOperations, mounted on a directory
// and served by libfuse's single- or multi-threaded loop.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "fuse/fuse_operations.h"
#include "fuse/mount_options.h"

struct fuse_session;

namespace kvfs::fusefs {

// Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR2 in the calling thread and in
// every thread it starts afterwards, so that a FuseMount with
// handle_signals receives them on a thread of its own: call first thing in
// main, before any thread exists.
void BlockTerminationSignals();

struct FuseMountOptions {
  std::string mountpoint;
  // The kernel's mount options (KernelMountOptions).
  std::string kernel_options;
  // libfuse's request trace on its log.
  bool debug = false;
  // SIGTERM, SIGINT and SIGHUP end Serve: invalidations stop first (while
  // requests are still served, so none can wait for an unanswered one), then
  // the loop ends. Needs BlockTerminationSignals() at the start of main. One
  // such mount per process.
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
  // Stops handling signals, stops invalidations, unmounts (lazily, if still
  // mounted) and destroys the session.
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
  void HandleSignals();

  FuseOperations* const ops_;
  const FuseMountOptions options_;
  fuse_session* session_ = nullptr;
  bool mounted_ = false;

  std::thread signal_thread_;
  std::atomic<int> signal_{0};  // the signal that ended Serve
  std::mutex mu_;
  std::condition_variable cv_;  // serving_ went false
  bool serving_ = false;        // guarded by mu_
  pthread_t loop_thread_{};     // guarded by mu_: Serve's thread while serving_
};

}  // namespace kvfs::fusefs
