#include "fuse/fuse_mount.h"

#include <fuse_lowlevel.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
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

sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR2);  // stops the signal thread
  return set;
}

// Interrupts Serve's blocking call (SIGUSR1, no SA_RESTART).
void Wake(int) {}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = HandledSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

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
  if (fuse_session_mount(mount->session_, options.mountpoint.c_str()) != 0) {
    return failed("cannot mount on " + options.mountpoint);
  }
  mount->mounted_ = true;
  {
    std::lock_guard<std::mutex> l(log.mu);
    log.capture = false;
  }
  ops->AttachSession(mount->session_);
  if (options.handle_signals) {
    struct sigaction wake = {};
    wake.sa_handler = Wake;  // no SA_RESTART: blocking calls return EINTR
    sigaction(SIGUSR1, &wake, nullptr);
    signal(SIGPIPE, SIG_IGN);
    FuseMount* m = mount.get();
    mount->signal_thread_ = std::thread([m] { m->HandleSignals(); });
  }
  *out = std::move(mount);
  return Status::OK();
}

void FuseMount::HandleSignals() {
  const sigset_t set = HandledSignals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0 || sig == SIGUSR2) return;
    if (signal_.load() != 0) continue;
    signal_ = sig;
    // While the loop still answers requests: an invalidation in progress
    // may be waiting for one.
    ops_->DetachSession();
    fuse_session_exit(session_);
    // Wake Serve's thread until its loop has seen the exit (a wake-up that
    // lands just before it blocks is lost, hence again).
    std::unique_lock<std::mutex> l(mu_);
    while (serving_) {
      pthread_kill(loop_thread_, SIGUSR1);
      cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return !serving_; });
    }
  }
}

FuseMount::~FuseMount() {
  if (signal_thread_.joinable()) {
    pthread_kill(signal_thread_.native_handle(), SIGUSR2);
    signal_thread_.join();
  }
  ops_->DetachSession();
  if (session_ == nullptr) return;
  if (mounted_) fuse_session_unmount(session_);
  fuse_session_destroy(session_);
}

Status FuseMount::Serve(int* signal) {
  {
    std::lock_guard<std::mutex> l(mu_);
    loop_thread_ = pthread_self();
    serving_ = true;
  }
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
  {
    std::lock_guard<std::mutex> l(mu_);
    serving_ = false;
  }
  cv_.notify_all();
  if (signal != nullptr) *signal = signal_.load();
  // The loops return 0 when the session was exited or unmounted, else -errno.
  if (ret < 0) return Status::FromErrno(-ret, "serving the FUSE session failed");
  return Status::OK();
}

}  // namespace kvfs::fusefs
