// The command line of kvfs-fuse and the checks of what it names, before any
// of it is opened (docs/fuse.md has the full table):
//
//   kvfs-fuse --db DIR [--store STORE] [store settings] [-f] [-d] [-s]
//             [-o OPTION[,OPTION...]]... MOUNTPOINT
//
// Long options name the store and are the FSAL's EXPORT settings under the
// same names (--capacity-bytes is capacity_bytes, ...); -o options are the
// mount's, as for any FUSE file system. Every error a user can make is an
// InvalidArgument (or the errno of the failed check) whose message says what
// was wrong and what is accepted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/server_stack.h"

namespace kvfs::fusefs {

// What keeps a file's pages in the kernel's page cache across opens.
enum class CacheMode {
  kNone,    // dropped at every open (libfuse's default)
  kKernel,  // kept (-o kernel_cache)
  kAuto,    // kept while the file's mtime and size are as at its last open
};

// Whether the kernel lists directories with their entries' attributes.
enum class ReaddirPlus { kNo, kYes, kAuto };

// Settings of the mount itself, the -o options.
struct FuseSettings {
  // Shown by mount(8) and df as the source; "": the database path.
  std::string fsname;
  // The type is "fuse.<subtype>".
  std::string subtype = "kvfs";
  // Let users other than the one who mounted use the mount.
  bool allow_other = false;
  // Read-only mount.
  bool read_only = false;
  // Honour device nodes and set-user/group-ID bits of the mount's files (as
  // for any FUSE mount, both are off unless asked for).
  bool dev = false;
  bool suid = false;
  // Seconds the kernel may cache a name's lookup, attributes, and the
  // absence of a name.
  double entry_timeout = 1.0;
  double attr_timeout = 1.0;
  double negative_timeout = 0.0;
  // Bypass the page cache for reads and writes.
  bool direct_io = false;
  CacheMode cache = CacheMode::kNone;
  // Largest read and write request, bytes (0: the kernel's default for
  // max_read).
  uint32_t max_read = 0;
  uint32_t max_write = 1 << 20;
  ReaddirPlus readdirplus = ReaddirPlus::kAuto;
  // Let the kernel gather writes in its page cache (docs/fuse.md says what
  // is durable when).
  bool writeback_cache = false;
  // Serve requests on one thread (-s) instead of libfuse's multi-threaded
  // loop, which starts up to max_threads threads.
  bool single_thread = false;
  uint32_t max_threads = 10;
  // One /dev/fuse descriptor per thread.
  bool clone_fd = false;
};

// Settings of the store, the long options (as the FSAL's EXPORT block):
// what the server stack opens (--db, --store, --kv-backend, --kv-options,
// --cache-*), and what the mount serves of it.
struct StoreSettings : server::ServerStackOptions {
  std::string subtree = "/";  // --subtree
  // Reported by statfs; 0: the core's (with a persistent store and a quota,
  // the quota).
  uint64_t capacity_bytes = 0;
  uint64_t capacity_inodes = 0;
};

struct CommandLine {
  StoreSettings store;
  FuseSettings fuse;
  std::string mountpoint;
  bool foreground = false;  // -f
  bool debug = false;       // -d: libfuse's request trace (implies -f)
  // Where a daemon writes its log; "": syslog. A foreground process logs to
  // stderr.
  std::string log_file;
  bool help = false;     // -h, --help
  bool version = false;  // -V, --version
};

// Parses argv (argv[0] is the program). Relative paths stay as given (see
// MakePathsAbsolute). InvalidArgument for anything unknown, missing or out of
// range.
Status ParseCommandLine(const std::vector<std::string>& argv, CommandLine* out);

// The --help text.
std::string UsageText();

// The -o option string libfuse mounts with (fsname, subtype, allow_other,
// default_permissions, ro, max_read): what the kernel is told at mount time.
std::string KernelMountOptions(const CommandLine& cmd);

// Turns the relative paths of `cmd` (database, persistent store when it is
// a path, mountpoint, log file) into absolute ones against the current
// directory: a daemon changes to "/".
void MakePathsAbsolute(CommandLine* cmd);

// Checks that `path` can be mounted on: an existing directory. ENOENT,
// ENOTDIR or the errno of stat, with a message naming the path.
Status CheckMountpoint(const std::string& path);

// Checks that the FUSE device `path` (/dev/fuse) can be opened for reading
// and writing, with a message saying what to do when it cannot (missing:
// load the module or give the container the device; no permission).
Status CheckFuseDevice(const std::string& path);

}  // namespace kvfs::fusefs
