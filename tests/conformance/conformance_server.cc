// conformance_server: serves a fresh KVFS store through ganesha.nfsd and the
// freshly built libfsalkvfs.so while conformance suites run against it.
//
//   conformance_server --work-dir DIR [--step-timeout SECONDS] [--fsal VFS]
//                      [--data-limit BYTES] -- STEP [--restart STEP]...
//
// Each STEP is a command line (argv words) run as a child process while the
// server runs; `--restart` between two steps stops the server cleanly and
// starts it again on the same store. The export's Pseudo path is /kvfs
// (kExportPath); children get it as KVFS_CONFORMANCE_EXPORT (NFSv4), its
// Path as KVFS_CONFORMANCE_NFS3_PATH (NFSv3 MOUNT) and the daemon's pid as
// KVFS_CONFORMANCE_SERVER_PID (to check it is alive after each test).
// `--data-limit` runs the daemon under that RLIMIT_DATA (its memory), so a
// request that makes it claim more fails instead of the machine.
//
// The run fails (exit 1) and prints the tail of Ganesha's log when the server
// does not start, dies while a step runs (crash), does not stop cleanly, or
// when a step exceeds the step timeout (hang); otherwise the exit status is
// the first non-zero status of a step (0 if all passed). DIR keeps the store
// (DIR/store) and Ganesha's work directory (DIR/ganesha: config and log).
// `--fsal VFS` serves a fresh directory (DIR/vfs) through Debian's FSAL_VFS
// instead, to measure the baseline the KVFS results are compared with.
// Must run inside ci/run-in-namespace.sh, like every e2e test.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/ganesha_server.h"
#include "tests/fsal/fsal_test_util.h"

namespace {

using Clock = std::chrono::steady_clock;
using kvfs::e2e::GaneshaServer;

constexpr char kExportPath[] = "/kvfs";
constexpr auto kPollInterval = std::chrono::milliseconds(100);
constexpr auto kChildGrace = std::chrono::seconds(5);

struct Args {
  std::string work_dir;
  std::chrono::seconds step_timeout{900};
  std::string fsal = "KVFS";
  uint64_t data_limit = 0;
  std::vector<std::vector<std::string>> steps;
};

int Usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " --work-dir DIR [--step-timeout SECONDS] [--fsal VFS] [--data-limit BYTES] -- STEP "
               "[--restart STEP]...\n";
  return 2;
}

bool ParseArgs(int argc, char** argv, Args* args) {
  int i = 1;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    const std::string opt = argv[i];
    if (i + 1 >= argc) return false;
    if (opt == "--work-dir") {
      args->work_dir = argv[++i];
    } else if (opt == "--fsal") {
      args->fsal = argv[++i];
    } else if (opt == "--data-limit") {
      args->data_limit = std::strtoull(argv[++i], nullptr, 10);
    } else if (opt == "--step-timeout") {
      args->step_timeout = std::chrono::seconds(std::atoi(argv[++i]));
    } else {
      return false;
    }
  }
  args->steps.emplace_back();
  for (++i; i < argc; ++i) {
    if (std::strcmp(argv[i], "--restart") == 0) {
      args->steps.emplace_back();
    } else {
      args->steps.back().push_back(argv[i]);
    }
  }
  if (args->work_dir.empty() || args->step_timeout.count() <= 0) return false;
  if (args->fsal != "KVFS" && args->fsal != "VFS") return false;
  for (const auto& step : args->steps) {
    if (step.empty()) return false;
  }
  return true;
}

std::string Join(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

pid_t Spawn(const std::vector<std::string>& step) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  // Own process group, so a hung suite is killed with all its children.
  setpgid(0, 0);
  std::vector<char*> argv;
  for (const std::string& w : step) argv.push_back(const_cast<char*>(w.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  std::cerr << "conformance_server: exec " << step[0] << ": " << std::strerror(errno) << "\n";
  _exit(127);
}

// Ends a step's process group: SIGTERM, then SIGKILL after a grace period.
void KillStep(pid_t pid) {
  kill(-pid, SIGTERM);
  const auto deadline = Clock::now() + kChildGrace;
  int status;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  kill(-pid, SIGKILL);  // leftovers of the group, if any
}

// Runs one step while watching the server. Returns the step's exit status,
// or -1 if the server died or the step timed out (reported on stderr).
int RunStep(const std::vector<std::string>& step, GaneshaServer& server,
            std::chrono::seconds timeout) {
  std::cout << "conformance_server: running " << Join(step) << std::endl;
  const pid_t pid = Spawn(step);
  if (pid < 0) {
    std::cerr << "conformance_server: fork: " << std::strerror(errno) << "\n";
    return -1;
  }
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    if (!server.running()) {
      KillStep(pid);
      std::cerr << "conformance_server: FAILURE: ganesha.nfsd died during `" << Join(step) << "` ("
                << server.exit_description() << "); log tail:\n"
                << server.LogTail(80) << "\n";
      return -1;
    }
    if (Clock::now() > deadline) {
      KillStep(pid);
      std::cerr << "conformance_server: FAILURE: `" << Join(step) << "` did not finish within "
                << timeout.count() << " s (server hang?); log tail:\n"
                << server.LogTail(80) << "\n";
      return -1;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

// One KVFS export of a fresh store in db_path. It exports a top-level
// directory of the store rather than its root: objects never leave their
// top-level directory (docs/schema.md), so at the root a hard link from
// pynfs's tree/ into its tmp/ would be EXDEV, as between two file systems.
kvfs::e2e::GaneshaOptions KvfsOptions(const std::filesystem::path& db_path) {
  kvfs::fsal_test::KvfsExport kvfs_export;
  kvfs_export.path = kExportPath;
  kvfs_export.db_path = db_path.string();
  kvfs_export.subtree = "/conformance";
  kvfs_export.export_extra = "UseCookieVerifier = false;";
  return kvfs::fsal_test::KvfsServerOptions({kvfs_export});
}

// One FSAL_VFS export of the fresh directory dir at the same pseudo path.
kvfs::e2e::GaneshaOptions VfsOptions(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  kvfs::e2e::GaneshaOptions options;
  options.system_fsals = {"VFS"};
  kvfs::e2e::GaneshaExport vfs_export;
  vfs_export.path = dir.string();
  vfs_export.pseudo = kExportPath;
  vfs_export.fsal_name = "VFS";
  options.exports.push_back(vfs_export);
  return options;
}

int Run(const Args& args) {
  namespace fs = std::filesystem;
  const fs::path work = fs::absolute(args.work_dir);
  std::error_code ec;
  fs::remove_all(work, ec);  // a fresh store and log for every run
  fs::create_directories(work, ec);
  if (ec) {
    std::cerr << "conformance_server: create " << work << ": " << ec.message() << "\n";
    return 1;
  }

  kvfs::e2e::GaneshaOptions options =
      args.fsal == "VFS" ? VfsOptions(work / "vfs") : KvfsOptions(work / "store");
  options.work_dir = (work / "ganesha").string();
  options.keep_work_dir = true;
  options.data_limit_bytes = args.data_limit;
  setenv("KVFS_CONFORMANCE_EXPORT", kExportPath, 1);
  setenv("KVFS_CONFORMANCE_NFS3_PATH", options.exports.front().path.c_str(), 1);

  GaneshaServer server(options);
  int result = 0;
  for (size_t i = 0; i < args.steps.size(); ++i) {
    kvfs::Status s = i == 0 ? server.Start() : server.Restart();
    if (!s.ok()) {
      std::cerr << "conformance_server: FAILURE: " << (i == 0 ? "start" : "restart") << ": "
                << s.ToString() << "\n";
      return 1;
    }
    setenv("KVFS_CONFORMANCE_SERVER_PID", std::to_string(server.pid()).c_str(), 1);
    const int status = RunStep(args.steps[i], server, args.step_timeout);
    if (status < 0) return 1;
    if (result == 0) result = status;
  }
  kvfs::Status s = server.Stop();
  if (!s.ok()) {
    std::cerr << "conformance_server: FAILURE: ganesha.nfsd did not stop cleanly: " << s.ToString()
              << "; log tail:\n"
              << server.LogTail(80) << "\n";
    return 1;
  }
  std::cout << "conformance_server: logs in " << work.string() << std::endl;
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) return Usage(argv[0]);
  return Run(args);
}
