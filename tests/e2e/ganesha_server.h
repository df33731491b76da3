// GaneshaServer: runs one NFS-Ganesha daemon (Debian's /usr/bin/ganesha.nfsd)
// for an end-to-end test.
//
// A GaneshaServer owns a work directory holding the generated ganesha.conf,
// the daemon's log and pid file, and a per-server plugin directory
// (Plugins_Dir) into which it symlinks the FSAL modules the test asks for:
// the project's own (e.g. build/fsal_kvfs/libfsalkvfs.so) and Debian's system
// FSALs (libfsalmem.so, libfsalvfs.so). Start() launches the daemon in the
// foreground as a child process and returns once port 2049 on its address
// (127.0.0.1 unless GaneshaOptions::bind_addr) answers and every export can
// be mounted; the destructor stops it.
//
// It only ever runs inside the private namespaces that ci/run-in-namespace.sh
// creates (checked by CheckPrivateNamespace()), so a test can never disturb a
// real NFS server on the machine or another test. Ganesha always listens on
// port 2049: one server per namespace, or several on distinct loopback
// addresses (bind_addr; NFSv4 only, since they would all register NFSv3
// with the one rpcbind: docs/coordination.md).
//
// Typical use:
//   GaneshaOptions opts;
//   opts.system_fsals = {"MEM"};
//   opts.exports.push_back({.path = "/mem", .fsal_name = "MEM"});
//   GaneshaServer server(opts);
//   ASSERT_TRUE(server.Start().ok());
//   NfsClient client(NfsVersion::kV4);
//   ASSERT_EQ(client.Mount("/mem"), 0);
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tests/e2e/nfs_client.h"

namespace kvfs::e2e {

// Where Debian installs its FSAL modules.
inline constexpr char kSystemFsalDir[] = "/usr/lib/x86_64-linux-gnu/ganesha";

// The port Ganesha serves NFS on (and NFSv4 clients connect to).
inline constexpr int kNfsPort = 2049;

// One EXPORT block of ganesha.conf.
struct GaneshaExport {
  // Export_Id; unique per server, 1..65535 (0 is the NFSv4 pseudo root).
  int export_id = 1;
  // Path: what NFSv3 clients mount, and what the FSAL is asked to export.
  std::string path;
  // Pseudo: where the export appears in the NFSv4 pseudo file system.
  // Empty means the same as path.
  std::string pseudo;
  // FSAL { Name = ...; } e.g. "MEM", "VFS", "KVFS".
  std::string fsal_name;
  // Extra lines inside the FSAL block (FSAL-specific parameters).
  std::string fsal_config;
  // Access_Type.
  std::string access_type = "RW";
  // Squash.
  std::string squash = "No_Root_Squash";
  // Extra lines inside the EXPORT block.
  std::string extra_config;

  // The pseudo path actually used (pseudo, or path when pseudo is empty).
  std::string PseudoPath() const { return pseudo.empty() ? path : pseudo; }
  // The EXPORT { ... } block text.
  std::string ToConfig() const;
};

// A mount that must succeed before Start() reports the server ready.
struct MountProbe {
  NfsVersion version = NfsVersion::kV3;
  // Export path (NFSv3) or pseudo path (NFSv4).
  std::string path;
};

// How to configure and run one ganesha.nfsd.
struct GaneshaOptions {
  // Directories whose libfsal*.so files are symlinked into Plugins_Dir
  // (e.g. the build directory of the project's FSAL).
  std::vector<std::string> plugin_dirs;
  // Individual FSAL modules (full paths) symlinked into Plugins_Dir.
  std::vector<std::string> plugin_files;
  // Debian FSALs to make available, by FSAL name ("MEM" links
  // kSystemFsalDir/libfsalmem.so).
  std::vector<std::string> system_fsals;

  // EXPORT blocks generated from structs; each also yields default mount
  // probes (path over NFSv3, pseudo over NFSv4).
  std::vector<GaneshaExport> exports;
  // EXPORT blocks (or any other config) written verbatim after `exports`.
  // Add `probes` for them, or Start() only waits for the port.
  std::string raw_exports;
  // Extra mount probes, checked after the default ones.
  std::vector<MountProbe> probes;

  // The loopback address to serve on (NFS_CORE_PARAM { Bind_addr }), e.g.
  // "127.0.0.2" for a second server in the namespace; "" serves on every
  // address and is probed on 127.0.0.1. Ganesha resolves Bind_addr as IPv6
  // (v4-mapped), which needs an IPv6 address besides ::1: Start() adds
  // ::2/128 to lo. Use with nfsv3 = false when several servers share the
  // namespace.
  std::string bind_addr;
  // Serve NFSv3 / NFSv4 (NFS_Protocols).
  bool nfsv3 = true;
  bool nfsv4 = true;
  // NFSv4 { Graceless; Lease_Lifetime } — no 90 s grace period after a
  // (re)start, short leases.
  bool graceless = true;
  int lease_lifetime = 20;
  // Enable_NLM (NFSv3 locking; needs rpc.statd for real use).
  bool enable_nlm = false;
  // Extra lines inside NFS_CORE_PARAM / NFSv4 blocks.
  std::string core_params;
  std::string nfsv4_params;
  // Appended verbatim at the end of ganesha.conf (e.g. a LOG block or an
  // FSAL's own top-level block).
  std::string extra_config;

  // RLIMIT_DATA of the daemon (heap and private writable mappings, thread
  // stacks included: the memory it can claim), 0: unlimited. A request that
  // makes the server claim more fails inside the server (allocation
  // failure) instead of taking the machine down.
  uint64_t data_limit_bytes = 0;

  // Log level passed as `-N` (NIV_EVENT, NIV_INFO, NIV_DEBUG, NIV_FULL_DEBUG).
  std::string log_level = "NIV_EVENT";
  // Treat "Config File ... CRIT" lines in the log as a start failure (Ganesha
  // itself keeps running without the broken export).
  bool config_errors_fatal = true;

  // Work directory; empty creates a fresh one under $TMPDIR (or /tmp).
  std::string work_dir;
  // Keep the work directory after destruction (also: env KVFS_E2E_KEEP=1).
  bool keep_work_dir = false;

  // The daemon binary.
  std::string binary = "/usr/bin/ganesha.nfsd";
  // How long Start() waits for the port and the mounts.
  std::chrono::milliseconds start_timeout{20000};
  // How long Stop() waits after SIGTERM before it sends SIGKILL.
  std::chrono::milliseconds stop_timeout{10000};
};

// Splits a colon-separated list ("a:b"), dropping empty items; e.g. the
// KVFS_E2E_FSAL_DIRS macro that kvfs_add_e2e_test(FSAL_TARGETS ...) defines.
std::vector<std::string> SplitPathList(std::string_view list);

// Options for a server with one FSAL_MEM export (Debian's in-memory FSAL) at
// `path` (Path and Pseudo), for tests of the harness or of client behaviour.
// FSAL_MEM keeps only the first `inode_size` bytes of each file (MEM {
// Inode_Size }, at most 2 MiB, allocated for every object) and reads back
// 'a' beyond them.
GaneshaOptions MemServerOptions(const std::string& path = "/mem", uint32_t inode_size = 1 << 20);

class GaneshaServer {
 public:
  // Verifies that this process runs inside namespaces made by
  // ci/run-in-namespace.sh: the KVFS_E2E_NAMESPACE marker names this
  // process's own net/pid/mount namespaces, no non-loopback interface is up,
  // and /var/lib/nfs/ganesha is a private tmpfs. Start() calls it first.
  static Status CheckPrivateNamespace();

  // Does not start anything yet.
  explicit GaneshaServer(GaneshaOptions options);
  GaneshaServer(const GaneshaServer&) = delete;
  GaneshaServer& operator=(const GaneshaServer&) = delete;
  // Stops the daemon if running and removes the work directory (unless
  // kept).
  ~GaneshaServer();

  // Writes the work directory (first call only: config, plugin links), starts
  // ganesha.nfsd -F and waits until it is ready. On failure the daemon is
  // stopped and the error includes the tail of its log.
  Status Start();
  // SIGTERM, then SIGKILL after stop_timeout; reaps the process. OK if the
  // daemon was not running. Non-OK if it had to be killed or exited with a
  // non-zero status / a signal (it is stopped either way).
  Status Stop();
  // Stop() then Start() on the same configuration and work directory.
  Status Restart();
  // SIGKILL, for crash tests; reaps the process.
  Status Kill9();

  // True while the daemon runs (reaps it if it has exited on its own).
  bool running();
  // The address clients reach it on (bind_addr, or 127.0.0.1).
  std::string address() const {
    return options_.bind_addr.empty() ? "127.0.0.1" : options_.bind_addr;
  }
  // The daemon's pid, or -1.
  pid_t pid() const { return pid_; }
  // How the daemon ended, as text ("exit status 0", "signal 9"), after it
  // was stopped or died; "" while running or never started.
  const std::string& exit_description() const { return exit_description_; }
  // Time the last successful Start() took, from launch to ready.
  std::chrono::milliseconds last_start_duration() const { return last_start_duration_; }

  // Paths inside the work directory.
  const std::string& work_dir() const { return work_dir_; }
  std::string config_path() const { return work_dir_ + "/ganesha.conf"; }
  std::string log_path() const { return work_dir_ + "/ganesha.log"; }
  std::string plugins_dir() const { return work_dir_ + "/plugins"; }
  // The generated configuration text.
  std::string ConfigText() const;

  // The whole log (all starts of this server).
  std::string ReadLog() const;
  // The log written since the last Start().
  std::string LogSinceStart() const;
  // The last `lines` lines of the log since the last Start(), plus anything
  // the daemon printed on stdout/stderr.
  std::string LogTail(size_t lines = 40) const;
  // Config diagnostics ("config_errs_to_log" lines: unknown parameters,
  // failed blocks) logged since the last Start(); "" if none.
  std::string ConfigDiagnostics() const;

 private:
  Status PrepareWorkDir();
  Status Launch();
  Status WaitReady();
  // Reaps the child if it has exited; returns true if it is still running.
  bool Reap(bool block);
  std::vector<MountProbe> AllProbes() const;
  Status StartFailure(const std::string& what);

  GaneshaOptions options_;
  std::string work_dir_;
  bool owns_work_dir_ = false;
  bool prepared_ = false;
  pid_t pid_ = -1;
  std::string exit_description_;
  int exit_code_ = 0;  // 0 for a clean exit
  // Sizes of the log and of the stdout/stderr capture when the last start
  // began: what came before belongs to earlier runs.
  size_t log_offset_ = 0;
  size_t out_offset_ = 0;
  std::chrono::milliseconds last_start_duration_{0};
};

}  // namespace kvfs::e2e
