#include "fuse/fuse_mount.h"

#include <fuse_lowlevel.h>

#include <cstdarg>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <utility>
#include <vector>

namespace kvfs::fusefs {

namespace {

// libfuse logs through one process-wide function: its lines go to the sink
// of the latest mount, and the ones of a failing mount into its Status.
struct LibfuseLog {
  std::mutex mu;
  std::function<void(const std::string&)> sink;  // guarded by mu
  std::string captured;                          // guarded by mu
  bool capture = false;                          // guarded by mu
};

LibfuseLog& GetLibfuseLog() {
  static LibfuseLog* log = new LibfuseLog();  // never destroyed
  return *log;
}

void LogFromLibfuse(enum fuse_log_level, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string line(buf);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  LibfuseLog& log = GetLibfuseLog();
  std::lock_guard<std::mutex> l(log.mu);
  if (log.capture) log.captured += (log.captured.empty() ? "" : "; ") + line;
  if (log.sink) {
    log.sink(line);
  } else {
    std::cerr << line << "\n";
  }
}

}  // namespace

FuseMount::FuseMount(FuseOperations* ops, FuseMountOptions options)
    : ops_(ops), options_(std::move(options)) {}

Status FuseMount::Mount(FuseOperations* ops, const FuseMountOptions& options,
                        std::unique_ptr<FuseMount>* out) {
  LibfuseLog& log = GetLibfuseLog();
  {
    std::lock_guard<std::mutex> l(log.mu);
    log.sink = options.log;
    log.captured.clear();
    log.capture = true;
  }
  fuse_set_log_func(LogFromLibfuse);
  auto failed = [&](const std::string& what) {
    std::lock_guard<std::mutex> l(log.mu);
    log.capture = false;
    return Status::FromErrno(EIO, what + (log.captured.empty() ? "" : ": " + log.captured));
  };

  std::unique_ptr<FuseMount> mount(new FuseMount(ops, options));
  std::vector<std::string> args = {"kvfs-fuse", "-o", options.kernel_options};
  if (options.debug) args.push_back("-d");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  mount->session_ =
      fuse_session_new(&fargs, &FuseOperations::Table(), sizeof(fuse_lowlevel_ops), ops);
  fuse_opt_free_args(&fargs);
  if (mount->session_ == nullptr) return failed("cannot start a FUSE session");
  if (options.handle_signals) {
    if (fuse_set_signal_handlers(mount->session_) != 0) {
      return failed("cannot install signal handlers");
    }
    mount->signals_ = true;
  }
  if (fuse_session_mount(mount->session_, options.mountpoint.c_str()) != 0) {
    return failed("cannot mount on " + options.mountpoint);
  }
  mount->mounted_ = true;
  {
    std::lock_guard<std::mutex> l(log.mu);
    log.capture = false;
  }
  ops->AttachSession(mount->session_);
  *out = std::move(mount);
  return Status::OK();
}

FuseMount::~FuseMount() {
  ops_->DetachSession();
  if (session_ == nullptr) return;
  if (mounted_) fuse_session_unmount(session_);
  if (signals_) fuse_remove_signal_handlers(session_);
  fuse_session_destroy(session_);
}

Status FuseMount::Serve(int* signal) {
  int ret;
  if (options_.settings.single_thread) {
    ret = fuse_session_loop(session_);
  } else {
    fuse_loop_config* config = fuse_loop_cfg_create();
    if (config == nullptr) return Status::FromErrno(ENOMEM, "out of memory");
    fuse_loop_cfg_set_max_threads(config, options_.settings.max_threads);
    fuse_loop_cfg_set_clone_fd(config, options_.settings.clone_fd ? 1 : 0);
    ret = fuse_session_loop_mt(session_, config);
    fuse_loop_cfg_destroy(config);
  }
  if (signal != nullptr) *signal = 0;
  // The loops return the number of the signal that ended them, 0 after an
  // unmount, or -errno.
  if (ret > 0) {
    if (signal != nullptr) *signal = ret;
    return Status::OK();
  }
  if (ret < 0) return Status::FromErrno(-ret, "serving the FUSE session failed");
  return Status::OK();
}

}  // namespace kvfs::fusefs
