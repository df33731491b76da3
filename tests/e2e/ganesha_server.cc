#include "tests/e2e/ganesha_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "tests/file_contents.h"

namespace kvfs::e2e {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kNamespaceMarker[] = "KVFS_E2E_NAMESPACE";
constexpr char kStateDir[] = "/var/lib/nfs/ganesha";
constexpr auto kPollInterval = std::chrono::milliseconds(10);

size_t FileSizeOrZero(const std::string& path) {
  std::error_code ec;
  uintmax_t size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<size_t>(size);
}

std::string NamespaceId(const char* kind) {
  std::error_code ec;
  fs::path target = fs::read_symlink(std::string("/proc/self/ns/") + kind, ec);
  return ec ? std::string("?") : target.string();
}

std::string Lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The last `lines` lines of text.
std::string Tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (size_t i = 0; i < lines && pos > 0; ++i) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return text;
    pos = nl;
  }
  return pos == 0 ? text : text.substr(pos + 1);
}

// True if something accepts TCP connections on address:port (IPv4).
bool PortAnswers(const std::string& address, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return false;
  }
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Runs a shell command; its output (stderr too) in *out; its exit status.
int RunQuiet(const std::string& command, std::string* out) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[256];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  return pclose(p);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  }
  return "wait status " + std::to_string(status);
}

Status Errno(const std::string& what) { return Status::FromErrno(errno, what); }

}  // namespace

std::string GaneshaExport::ToConfig() const {
  std::ostringstream out;
  out << "EXPORT {\n"
      << "  Export_Id = " << export_id << ";\n"
      << "  Path = \"" << path << "\";\n"
      << "  Pseudo = \"" << PseudoPath() << "\";\n"
      << "  Access_Type = " << access_type << ";\n"
      << "  Squash = " << squash << ";\n";
  if (!extra_config.empty()) out << "  " << extra_config << "\n";
  out << "  FSAL {\n"
      << "    Name = " << fsal_name << ";\n";
  if (!fsal_config.empty()) out << "    " << fsal_config << "\n";
  out << "  }\n"
      << "}\n";
  return out.str();
}

std::vector<std::string> SplitPathList(std::string_view list) {
  std::vector<std::string> items;
  while (!list.empty()) {
    size_t colon = list.find(':');
    std::string_view item = list.substr(0, colon);
    if (!item.empty()) items.emplace_back(item);
    if (colon == std::string_view::npos) break;
    list.remove_prefix(colon + 1);
  }
  return items;
}

GaneshaOptions MemServerOptions(const std::string& path, uint32_t inode_size) {
  GaneshaOptions options;
  options.system_fsals = {"MEM"};
  options.extra_config = "MEM { Inode_Size = " + std::to_string(inode_size) + "; }";
  GaneshaExport e;
  e.path = path;
  e.fsal_name = "MEM";
  options.exports.push_back(e);
  return options;
}

Status GaneshaServer::CheckPrivateNamespace() {
  const std::string how =
      " Refusing to start ganesha.nfsd: e2e tests must run in private namespaces, through "
      "ci/run-in-namespace.sh (ctest does this for tests registered with kvfs_add_e2e_test).";
  const char* marker = std::getenv(kNamespaceMarker);
  if (marker == nullptr) {
    return Status::FromErrno(EPERM, std::string(kNamespaceMarker) + " is not set." + how);
  }
  const std::string mine = NamespaceId("net") + " " + NamespaceId("pid") + " " + NamespaceId("mnt");
  if (mine != marker) {
    return Status::FromErrno(EPERM, std::string(kNamespaceMarker) + "=\"" + marker +
                                        "\" does not name this process's namespaces (" + mine +
                                        ")." + how);
  }
  // No interface but loopback may be up: test traffic stays on this machine.
  ifaddrs* addrs = nullptr;
  if (getifaddrs(&addrs) != 0) return Errno("getifaddrs");
  std::string foreign;
  for (ifaddrs* a = addrs; a != nullptr; a = a->ifa_next) {
    if ((a->ifa_flags & IFF_UP) && !(a->ifa_flags & IFF_LOOPBACK)) foreign = a->ifa_name;
  }
  freeifaddrs(addrs);
  if (!foreign.empty()) {
    return Status::FromErrno(EPERM, "network interface " + foreign + " is up." + how);
  }
  struct statfs st;
  if (statfs(kStateDir, &st) != 0 || st.f_type != TMPFS_MAGIC) {
    return Status::FromErrno(EPERM, std::string(kStateDir) + " is not a private tmpfs." + how);
  }
  return Status::OK();
}

GaneshaServer::GaneshaServer(GaneshaOptions options) : options_(std::move(options)) {
  const char* keep = std::getenv("KVFS_E2E_KEEP");
  if (keep != nullptr && std::string(keep) != "0" && std::string(keep) != "") {
    options_.keep_work_dir = true;
  }
}

GaneshaServer::~GaneshaServer() {
  (void)Stop();
  if (owns_work_dir_ && !options_.keep_work_dir && !work_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(work_dir_, ec);
  }
}

std::string GaneshaServer::ConfigText() const {
  std::ostringstream out;
  out << "# Written by kvfs::e2e::GaneshaServer (tests/e2e/ganesha_server.cc).\n"
      << "NFS_CORE_PARAM {\n"
      << "  Plugins_Dir = \"" << plugins_dir() << "\";\n"
      << "  NFS_Protocols = ";
  if (options_.nfsv3) out << "3" << (options_.nfsv4 ? ", " : "");
  if (options_.nfsv4) out << "4";
  out << ";\n"
      << "  Enable_NLM = " << (options_.enable_nlm ? "true" : "false") << ";\n"
      << "  Enable_RQUOTA = false;\n";
  if (!options_.bind_addr.empty()) out << "  Bind_addr = " << options_.bind_addr << ";\n";
  if (!options_.core_params.empty()) out << "  " << options_.core_params << "\n";
  out << "}\n"
      << "NFSv4 {\n"
      << "  Graceless = " << (options_.graceless ? "true" : "false") << ";\n"
      << "  Lease_Lifetime = " << options_.lease_lifetime
      << ";\n"
      // libnfs sends and expects numeric owner strings; no idmapper here.
      << "  Only_Numeric_Owners = true;\n";
  // Each server its own client records (several may share the namespace).
  if (!options_.bind_addr.empty()) out << "  RecoveryRoot = \"" << work_dir_ << "/recovery\";\n";
  if (!options_.nfsv4_params.empty()) out << "  " << options_.nfsv4_params << "\n";
  out << "}\n";
  for (const GaneshaExport& e : options_.exports) out << e.ToConfig();
  if (!options_.raw_exports.empty()) out << options_.raw_exports << "\n";
  if (!options_.extra_config.empty()) out << options_.extra_config << "\n";
  return out.str();
}

Status GaneshaServer::PrepareWorkDir() {
  if (prepared_) return Status::OK();
  std::error_code ec;
  if (options_.work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kvfs-e2e-ganesha-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) return Errno("mkdtemp " + templ);
    work_dir_ = templ;
    owns_work_dir_ = true;
  } else {
    work_dir_ = options_.work_dir;
    fs::create_directories(work_dir_, ec);
    if (ec) return Status::IOError("create " + work_dir_ + ": " + ec.message());
  }

  const fs::path plugins = plugins_dir();
  fs::remove_all(plugins, ec);
  fs::create_directories(plugins, ec);
  if (ec) return Status::IOError("create " + plugins.string() + ": " + ec.message());
  auto link = [&](const fs::path& module) -> Status {
    if (!fs::exists(module)) return Status::NotFound("FSAL module " + module.string());
    fs::path dest = plugins / module.filename();
    fs::remove(dest, ec);
    fs::create_symlink(fs::absolute(module), dest, ec);
    if (ec) return Status::IOError("symlink " + dest.string() + ": " + ec.message());
    return Status::OK();
  };
  for (const std::string& name : options_.system_fsals) {
    KVFS_RETURN_IF_ERROR(link(fs::path(kSystemFsalDir) / ("libfsal" + Lowercase(name) + ".so")));
  }
  for (const std::string& file : options_.plugin_files) KVFS_RETURN_IF_ERROR(link(file));
  for (const std::string& dir : options_.plugin_dirs) {
    fs::directory_iterator it(dir, ec);
    if (ec) return Status::NotFound("plugin dir " + dir + ": " + ec.message());
    for (const fs::directory_entry& entry : it) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("libfsal") && name.ends_with(".so")) {
        KVFS_RETURN_IF_ERROR(link(entry.path()));
      }
    }
  }

  std::ofstream conf(config_path(), std::ios::trunc);
  conf << ConfigText();
  conf.close();
  if (!conf) return Status::IOError("write " + config_path());
  prepared_ = true;
  return Status::OK();
}

Status GaneshaServer::Launch() {
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls.
  const std::string pid_file = work_dir_ + "/ganesha.pid";
  const std::string out_file = work_dir_ + "/ganesha.stdout";
  const std::string conf = config_path();
  const std::string log = log_path();
  std::vector<std::string> args = {
      options_.binary, "-F", "-f", conf, "-L", log, "-p", pid_file, "-N", options_.log_level};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_fd = open(out_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0) return Errno("open " + out_file);
  log_offset_ = FileSizeOrZero(log);
  out_offset_ = FileSizeOrZero(out_file);
  exit_description_.clear();
  exit_code_ = 0;

  pid_t child = fork();
  if (child < 0) {
    int err = errno;
    close(out_fd);
    return Status::FromErrno(err, "fork");
  }
  if (child == 0) {
    // Die with the test process even if it is killed hard.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) signal(sig, SIG_DFL);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    if (options_.data_limit_bytes != 0) {
      const struct rlimit limit = {options_.data_limit_bytes, options_.data_limit_bytes};
      if (setrlimit(RLIMIT_DATA, &limit) != 0) _exit(126);
    }
    execv(argv[0], argv.data());
    const char msg[] = "GaneshaServer: execv failed\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  close(out_fd);
  pid_ = child;
  return Status::OK();
}

bool GaneshaServer::Reap(bool block) {
  if (pid_ < 0) return false;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return true;
  if (r < 0) {
    exit_description_ = std::string("waitpid: ") + strerror(errno);
    exit_code_ = -1;
  } else {
    exit_description_ = DescribeWaitStatus(status);
    exit_code_ = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : -1;
  }
  pid_ = -1;
  return false;
}

bool GaneshaServer::running() { return Reap(false); }

std::vector<MountProbe> GaneshaServer::AllProbes() const {
  std::vector<MountProbe> probes;
  for (const GaneshaExport& e : options_.exports) {
    if (options_.nfsv3) probes.push_back({NfsVersion::kV3, e.path});
    if (options_.nfsv4) probes.push_back({NfsVersion::kV4, e.PseudoPath()});
  }
  probes.insert(probes.end(), options_.probes.begin(), options_.probes.end());
  return probes;
}

Status GaneshaServer::StartFailure(const std::string& what) {
  const std::string tail = LogTail();
  (void)Stop();
  return Status::FromErrno(EIO, "ganesha.nfsd did not start: " + what + "\n--- config " +
                                    config_path() + " ---\n" + ConfigText() + "--- log " +
                                    log_path() + " (tail) ---\n" + tail);
}

Status GaneshaServer::WaitReady() {
  const auto deadline = Clock::now() + options_.start_timeout;
  const std::vector<MountProbe> probes = AllProbes();
  size_t next_probe = 0;
  bool port_up = false;
  std::string last_error = "port " + std::to_string(kNfsPort) + " never answered";
  while (true) {
    if (!running()) return StartFailure("it exited (" + exit_description_ + ")");
    if (options_.config_errors_fatal) {
      const std::string log = LogSinceStart();
      size_t pos = log.find("config_errs_to_log :CONFIG :CRIT");
      if (pos != std::string::npos) {
        size_t bol = log.rfind('\n', pos);
        size_t eol = log.find('\n', pos);
        bol = bol == std::string::npos ? 0 : bol + 1;
        return StartFailure("configuration error: " + log.substr(bol, eol - bol));
      }
    }
    if (!port_up) port_up = PortAnswers(address(), kNfsPort);
    while (port_up && next_probe < probes.size()) {
      const MountProbe& p = probes[next_probe];
      NfsClientOptions copts;
      copts.timeout_ms = 2000;
      copts.autoreconnect = 0;
      copts.server = address();
      NfsClient client(p.version, copts);
      int rc = client.Mount(p.path);
      if (rc != 0) {
        last_error = std::string(NfsVersionName(p.version)) + " mount of " + p.path +
                     " failed: " + strerror(-rc) + " (" + client.LastError() + ")";
        break;
      }
      ++next_probe;
    }
    if (port_up && next_probe == probes.size()) return Status::OK();
    if (Clock::now() >= deadline) {
      return StartFailure("not ready after " + std::to_string(options_.start_timeout.count()) +
                          " ms: " + last_error);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

Status GaneshaServer::Start() {
  if (pid_ >= 0 && running()) return Status::FromErrno(EBUSY, "ganesha.nfsd already running");
  KVFS_RETURN_IF_ERROR(CheckPrivateNamespace());
  KVFS_RETURN_IF_ERROR(PrepareWorkDir());
  if (PortAnswers(address(), kNfsPort)) {
    return Status::FromErrno(EADDRINUSE, "port " + std::to_string(kNfsPort) + " on " + address() +
                                             " is already served in this "
                                             "namespace (another server still running?)");
  }
  if (!options_.bind_addr.empty()) {
    // Ganesha resolves Bind_addr with AF_INET6 and AI_ADDRCONFIG, which
    // fails while lo has no IPv6 address but ::1 (docs/coordination.md).
    std::string out;
    const int rc = RunQuiet("ip -6 addr replace ::2/128 dev lo", &out);
    if (rc != 0) return Status::IOError("ip -6 addr replace ::2/128 dev lo: " + out);
  }
  const auto t0 = Clock::now();
  KVFS_RETURN_IF_ERROR(Launch());
  KVFS_RETURN_IF_ERROR(WaitReady());
  last_start_duration_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  return Status::OK();
}

Status GaneshaServer::Stop() {
  if (!running()) return Status::OK();
  kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + options_.stop_timeout;
  while (Reap(false)) {
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      Reap(true);
      return Status::FromErrno(ETIMEDOUT, "ganesha.nfsd ignored SIGTERM for " +
                                              std::to_string(options_.stop_timeout.count()) +
                                              " ms; killed with SIGKILL");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  if (exit_code_ != 0) {
    return Status::IOError("ganesha.nfsd ended with " + exit_description_ + " after SIGTERM");
  }
  return Status::OK();
}

Status GaneshaServer::Restart() {
  KVFS_RETURN_IF_ERROR(Stop());
  return Start();
}

Status GaneshaServer::Kill9() {
  if (!running()) return Status::FromErrno(ESRCH, "ganesha.nfsd is not running");
  kill(pid_, SIGKILL);
  Reap(true);
  return Status::OK();
}

std::string GaneshaServer::ReadLog() const { return kvfs::testing::ReadFileContents(log_path()); }

std::string GaneshaServer::LogSinceStart() const {
  std::string log = ReadLog();
  return log_offset_ <= log.size() ? log.substr(log_offset_) : log;
}

std::string GaneshaServer::LogTail(size_t lines) const {
  std::string tail = Tail(LogSinceStart(), lines);
  std::string out = kvfs::testing::ReadFileContents(work_dir_ + "/ganesha.stdout");
  out = out_offset_ <= out.size() ? out.substr(out_offset_) : out;
  if (!out.empty()) tail += "\n--- stdout/stderr ---\n" + Tail(out, lines);
  return tail;
}

std::string GaneshaServer::ConfigDiagnostics() const {
  std::istringstream in(LogSinceStart());
  std::string line, diags;
  while (std::getline(in, line)) {
    if (line.find("config_errs_to_log") != std::string::npos) diags += line + "\n";
  }
  return diags;
}

}  // namespace kvfs::e2e
