// kvfs-fuse: mounts a KVFS store through FUSE (docs/fuse.md).
//
//   kvfs-fuse --db DIR [--store STORE] [-o OPTIONS] MOUNTPOINT
//
// Start-up: parse and check the command line, then (as a daemon) fork before
// any thread exists; the child opens the store and mounts, and tells the
// waiting parent the outcome through a pipe, so that `kvfs-fuse ...` returns
// once the mount is usable, or fails with the reason and exit status 1.
// Shutdown (fusermount3 -u, umount, SIGTERM/SIGINT/SIGHUP): the session ends,
// the mount is removed, the store is synced and closed.
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fuse/fuse_mount.h"
#include "fuse/fuse_operations.h"
#include "fuse/mount_options.h"
#include "server/server_stack.h"

namespace kvfs::fusefs {
namespace {

// Where the process logs: stderr in the foreground, a file or syslog as a
// daemon. Thread-safe.
class Logger {
 public:
  void ToStderr() { Set(Sink::kStderr, nullptr); }
  void ToSyslog() {
    openlog("kvfs-fuse", LOG_PID, LOG_DAEMON);
    Set(Sink::kSyslog, nullptr);
  }
  Status ToFile(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "ae");
    if (f == nullptr) return Status::FromErrno(errno, "cannot open log file " + path);
    std::setvbuf(f, nullptr, _IOLBF, 0);
    Set(Sink::kFile, f);
    return Status::OK();
  }
  void Log(const std::string& line) {
    std::lock_guard<std::mutex> l(mu_);
    switch (sink_) {
      case Sink::kStderr:
        std::fprintf(stderr, "kvfs-fuse: %s\n", line.c_str());
        break;
      case Sink::kSyslog:
        syslog(LOG_NOTICE, "%s", line.c_str());
        break;
      case Sink::kFile: {
        char stamp[32];
        std::time_t now = std::time(nullptr);
        std::tm tm;
        localtime_r(&now, &tm);
        std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
        std::fprintf(file_, "%s kvfs-fuse[%d]: %s\n", stamp, static_cast<int>(getpid()),
                     line.c_str());
        break;
      }
    }
  }

 private:
  enum class Sink { kStderr, kSyslog, kFile };
  void Set(Sink s, FILE* f) {
    std::lock_guard<std::mutex> l(mu_);
    sink_ = s;
    file_ = f;
  }
  std::mutex mu_;
  Sink sink_ = Sink::kStderr;
  FILE* file_ = nullptr;
};

Logger& GetLogger() {
  static Logger* logger = new Logger();  // used until exit, by every thread
  return *logger;
}

// The parent's side of daemon start-up: waits for the child's word.
// Messages on the pipe: "" + EOF = mounted; anything else = why it failed.
[[noreturn]] void WaitForDaemon(int fd) {
  std::string message;
  char buf[4096];
  ssize_t n;
  bool got_status = false;
  while ((n = ::read(fd, buf, sizeof(buf))) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got_status = true;
    message.append(buf, static_cast<size_t>(n));
  }
  if (!got_status) {
    std::fprintf(stderr, "kvfs-fuse: the daemon exited during start-up (see its log)\n");
    _exit(1);
  }
  if (message == "ok") _exit(0);
  std::fprintf(stderr, "kvfs-fuse: %s\n", message.c_str());
  _exit(1);
}

// Tells the waiting parent (if any) how start-up went.
class StartupReport {
 public:
  // Becomes a daemon: forks (the parent waits in WaitForDaemon and never
  // returns), starts a new session, changes to "/".
  Status Daemonize() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
    pid_t pid = ::fork();
    if (pid < 0) return Status::FromErrno(errno, "fork");
    if (pid > 0) {
      ::close(fds[1]);
      sigset_t none;
      sigemptyset(&none);
      pthread_sigmask(SIG_SETMASK, &none, nullptr);  // the parent stays interruptible
      WaitForDaemon(fds[0]);
    }
    ::close(fds[0]);
    fd_ = fds[1];
    if (::setsid() < 0) return Status::FromErrno(errno, "setsid");
    if (::chdir("/") != 0) return Status::FromErrno(errno, "chdir /");
    return Status::OK();
  }
  void Failed(const std::string& why) {
    if (fd_ < 0) {
      std::fprintf(stderr, "kvfs-fuse: %s\n", why.c_str());
      return;
    }
    GetLogger().Log(why);
    Send(why);
  }
  // Start-up is over: the parent exits 0, stdin/stdout/stderr go to
  // /dev/null.
  void Succeeded() {
    if (fd_ < 0) return;
    Send("ok");
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::close(null);
    }
  }

 private:
  void Send(const std::string& message) {
    const char* p = message.data();
    size_t left = message.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      p += n;
      left -= static_cast<size_t>(n);
    }
    ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

server::ServerStackOptions StackOptions(const StoreSettings& s) {
  server::ServerStackOptions o = s;
  o.log = [](const std::string& line) { GetLogger().Log("cache: " + line); };
  return o;
}

int Run(const CommandLine& cmd) {
  Logger& logger = GetLogger();
  StartupReport report;
  if (!cmd.foreground) {
    Status s = report.Daemonize();
    if (!s.ok()) {
      report.Failed("cannot become a daemon: " + s.ToString());
      return 1;
    }
    s = cmd.log_file.empty() ? (logger.ToSyslog(), Status::OK()) : logger.ToFile(cmd.log_file);
    if (!s.ok()) {
      report.Failed(s.ToString());
      return 1;
    }
  } else if (!cmd.log_file.empty()) {
    Status s = logger.ToFile(cmd.log_file);
    if (!s.ok()) {
      report.Failed(s.ToString());
      return 1;
    }
  }

  std::unique_ptr<server::ServerStack> stack;
  Status s = server::ServerStack::Open(StackOptions(cmd.store), &stack);
  if (!s.ok()) {
    report.Failed("cannot open the store " + cmd.store.db_path + ": " + s.ToString());
    return 1;
  }
  if (stack->metrics_port() != 0) {
    logger.Log("metrics on port " + std::to_string(stack->metrics_port()) + " (/metrics)");
  }
  Attributes root;
  s = server::ResolveSubtree(stack->fs(), cmd.store.subtree, /*create=*/true, &root);
  if (s.ok() && root.type != FileType::kDirectory) {
    s = Status::FromErrno(ENOTDIR, cmd.store.subtree + " is not a directory");
  }
  if (!s.ok()) {
    report.Failed("--subtree " + cmd.store.subtree + ": " + s.ToString());
    return 1;
  }

  FuseOperationsOptions oo;
  oo.root = root.ino;
  oo.settings = cmd.fuse;
  // With a quota the cache manager reports it as the capacity (as the FSAL).
  if (cmd.store.cache_quota_bytes == 0) oo.capacity_bytes = cmd.store.capacity_bytes;
  if (cmd.store.cache_quota_inodes == 0) oo.capacity_inodes = cmd.store.capacity_inodes;
  oo.log = [](const std::string& line) { GetLogger().Log(line); };
  FuseOperations ops(stack->fs(), oo);

  FuseMountOptions mo;
  mo.mountpoint = cmd.mountpoint;
  mo.kernel_options = KernelMountOptions(cmd);
  mo.debug = cmd.debug;
  mo.handle_signals = true;
  mo.settings = cmd.fuse;
  mo.log = [](const std::string& line) { GetLogger().Log(line); };
  std::unique_ptr<FuseMount> mount;
  s = FuseMount::Mount(&ops, mo, &mount);
  if (!s.ok()) {
    report.Failed(s.message());
    return 1;
  }
  s = stack->AddInvalidateListener(&ops, [&ops](Ino ino) { ops.Invalidate(ino); });
  if (!s.ok()) {
    logger.Log("kvfs-ingest and kvfs cache cannot reach this mount: " + s.ToString());
  }
  logger.Log("mounted " + stack->db_path() + (cmd.store.subtree == "/" ? "" : cmd.store.subtree) +
             " on " + cmd.mountpoint +
             (cmd.store.persistent_store.empty()
                  ? ""
                  : " with persistent store " + cmd.store.persistent_store));
  report.Succeeded();

  int signal = 0;
  s = mount->Serve(&signal);
  if (!s.ok()) logger.Log(s.ToString());
  // No more invalidations (the kernel ended the session, or the signal
  // handling stopped them while requests were still served), then none are
  // asked for, then the mount goes.
  ops.DetachSession();
  stack->RemoveInvalidateListener(&ops);
  mount.reset();  // unmounts if a signal ended the session
  Status synced = stack->fs()->Sync();
  stack.reset();
  logger.Log(std::string("unmounted ") + cmd.mountpoint +
             (signal != 0 ? std::string(" on signal ") + strsignal(signal) : std::string()));
  if (!synced.ok()) {
    logger.Log("sync at unmount failed: " + synced.ToString());
    return 1;
  }
  return s.ok() ? 0 : 1;
}

}  // namespace
}  // namespace kvfs::fusefs

int main(int argc, char** argv) {
  using namespace kvfs::fusefs;
  // Before any thread exists: the mount takes SIGTERM, SIGINT and SIGHUP on
  // a thread of its own.
  BlockTerminationSignals();
  std::vector<std::string> args(argv, argv + argc);
  CommandLine cmd;
  kvfs::Status s = ParseCommandLine(args, &cmd);
  if (!s.ok()) {
    std::fprintf(stderr, "kvfs-fuse: %s\nTry 'kvfs-fuse --help'.\n", s.message().c_str());
    return 2;
  }
  if (cmd.help) {
    std::fputs(UsageText().c_str(), stdout);
    return 0;
  }
  if (cmd.version) {
    std::printf("kvfs-fuse 0.1 (libfuse %s)\n", fuse_pkgversion());
    return 0;
  }
  MakePathsAbsolute(&cmd);
  for (const kvfs::Status& check :
       {CheckMountpoint(cmd.mountpoint), CheckFuseDevice("/dev/fuse")}) {
    if (!check.ok()) {
      std::fprintf(stderr, "kvfs-fuse: %s\n", check.message().c_str());
      return 1;
    }
  }
  return Run(cmd);
}
