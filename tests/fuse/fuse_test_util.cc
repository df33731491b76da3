#include "tests/fuse/fuse_test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/file_contents.h"

namespace kvfs::fuse_test {

using kvfs::testing::ReadFileContents;

namespace {

// Fields of a /proc/self/mountinfo line: the mount point (5th) and, after
// " - ", the type, the source and the super block options.
struct MountInfo {
  std::string mountpoint;
  std::string options;
  std::string fstype;
  std::string super_options;
};

bool FindMount(const std::string& mountpoint, MountInfo* out) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point, options;
    fields >> id >> parent >> dev >> root >> point >> options;
    if (point != mountpoint) continue;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    MountInfo m;
    std::string source;
    m.mountpoint = point;
    m.options = options;
    rest >> m.fstype >> source >> m.super_options;
    *out = m;
    found = true;  // the last one listed is the one on top
  }
  return found;
}

// Execs argv in a child with stdout and stderr to `output_fd`, under a data
// limit; the child dies with the test.
pid_t Spawn(const std::vector<std::string>& argv, int output_fd, uint64_t data_limit) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  dup2(output_fd, 1);
  dup2(output_fd, 2);
  struct rlimit limit = {data_limit, data_limit};
  setrlimit(RLIMIT_DATA, &limit);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
  _exit(127);
}

int ExitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::string KvfsFuseBinary() { return KVFS_FUSE_BIN; }

const uint64_t kDataLimit = 2ull << 30;

bool IsMounted(const std::string& mountpoint, std::string* fstype) {
  MountInfo m;
  if (!FindMount(mountpoint, &m)) return false;
  if (fstype != nullptr) *fstype = m.fstype;
  return true;
}

std::string MountOptionsOf(const std::string& mountpoint) {
  MountInfo m;
  if (!FindMount(mountpoint, &m)) return "";
  return m.options + "," + m.super_options;
}

int RunProgram(const std::vector<std::string>& argv, std::string* output, uint64_t data_limit) {
  char path[] = "/tmp/kvfs-fuse-run.XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  unlink(path);
  pid_t pid = Spawn(argv, fd, data_limit);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  output->clear();
  lseek(fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) output->append(buf, static_cast<size_t>(n));
  close(fd);
  return ExitStatus(status);
}

KvfsFuse::KvfsFuse(std::vector<std::string> args, std::string mountpoint)
    : args_(std::move(args)), mountpoint_(std::move(mountpoint)) {}

KvfsFuse::~KvfsFuse() {
  if (running() && !Stop().ok()) (void)Kill9();
  if (!output_path_.empty()) unlink(output_path_.c_str());
}

std::string KvfsFuse::Output() const {
  return output_path_.empty() ? "" : ReadFileContents(output_path_);
}

Status KvfsFuse::Start() {
  if (output_path_.empty()) {
    char path[] = "/tmp/kvfs-fuse-log.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return Status::FromErrno(errno, "mkstemp");
    close(fd);
    output_path_ = path;
  }
  int fd = open(output_path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + output_path_);
  std::vector<std::string> argv = {KvfsFuseBinary(), "-f"};
  argv.insert(argv.end(), args_.begin(), args_.end());
  argv.push_back(mountpoint_);
  pid_ = Spawn(argv, fd, kDataLimit);
  close(fd);
  // Mounting is quick; the deadline only bounds a hang.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!IsMounted(mountpoint_)) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return Status::FromErrno(EIO, "kvfs-fuse exited with status " +
                                        std::to_string(ExitStatus(status)) +
                                        " before mounting: " + Output());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      (void)Kill9();
      return Status::FromErrno(ETIMEDOUT, "kvfs-fuse did not mount within 60 s: " + Output());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::OK();
}

Status KvfsFuse::Wait(int* status) {
  int raw = 0;
  while (waitpid(pid_, &raw, 0) < 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "waitpid");
  }
  pid_ = -1;
  if (status != nullptr) *status = ExitStatus(raw);
  return Status::OK();
}

Status KvfsFuse::Stop() {
  if (!running()) return Status::FromErrno(ESRCH, "kvfs-fuse is not running");
  std::string out;
  int unmount = RunProgram({"/usr/bin/fusermount3", "-u", mountpoint_}, &out);
  if (unmount != 0) {
    return Status::FromErrno(EBUSY, "fusermount3 -u " + mountpoint_ + " failed: " + out);
  }
  int status = 0;
  KVFS_RETURN_IF_ERROR(Wait(&status));
  if (status != 0) {
    return Status::FromErrno(EIO, "kvfs-fuse exited with status " + std::to_string(status) +
                                      " after unmounting: " + Output());
  }
  return Status::OK();
}

Status KvfsFuse::SignalAndWait(int sig, int* status) {
  if (!running()) return Status::FromErrno(ESRCH, "kvfs-fuse is not running");
  if (kill(pid_, sig) != 0) return Status::FromErrno(errno, "kill");
  return Wait(status);
}

Status KvfsFuse::Kill9() {
  if (running()) {
    kill(pid_, SIGKILL);
    KVFS_RETURN_IF_ERROR(Wait(nullptr));
  }
  if (IsMounted(mountpoint_) && umount2(mountpoint_.c_str(), MNT_DETACH) != 0) {
    return Status::FromErrno(errno, "umount -l " + mountpoint_);
  }
  return Status::OK();
}

InProcessMount::InProcessMount(FileSystem* fs, fusefs::FuseOperationsOptions options,
                               std::string mountpoint)
    : ops_(std::make_unique<fusefs::FuseOperations>(fs, std::move(options))),
      mountpoint_(std::move(mountpoint)) {}

InProcessMount::~InProcessMount() {
  if (server_.joinable()) {
    if (!Stop().ok()) {
      umount2(mountpoint_.c_str(), MNT_DETACH);
      server_.join();
    }
  }
}

Status InProcessMount::Start() {
  fusefs::FuseMountOptions mo;
  mo.mountpoint = mountpoint_;
  mo.kernel_options = "default_permissions,fsname=in-process,subtype=kvfs";
  KVFS_RETURN_IF_ERROR(fusefs::FuseMount::Mount(ops_.get(), mo, &mount_));
  server_ = std::thread([this] { served_ = mount_->Serve(nullptr); });
  return Status::OK();
}

Status InProcessMount::Stop() {
  if (umount2(mountpoint_.c_str(), 0) != 0)
    return Status::FromErrno(errno, "umount " + mountpoint_);
  server_.join();
  mount_.reset();
  return served_;
}

}  // namespace kvfs::fuse_test
