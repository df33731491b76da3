#include "fuse/mount_options.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string_view>

#include "common/plugin/plugin_options.h"
#include "coord/coordination.h"
#include "ingest/persistent_store.h"
#include "store/store.h"

namespace kvfs::fusefs {

namespace {

constexpr uint64_t kMaxCapacity = 1ull << 62;
constexpr int kMaxSeconds = 86400;
// A FUSE request carries at most 256 pages (FUSE_MAX_MAX_PAGES).
constexpr uint64_t kMaxRequestBytes = 1 << 20;
constexpr uint64_t kMinRequestBytes = 4096;
constexpr double kMaxTimeout = 1e6;

Status Bad(const std::string& what) { return Status::InvalidArgument(what); }

Status ParseUnsigned(const std::string& name, const std::string& value, uint64_t min, uint64_t max,
                     uint64_t* out) {
  uint64_t n = 0;
  if (!ParseByteSize(value, &n) || n < min || n > max) {
    return Bad(name + "='" + value + "' is not a number in [" + std::to_string(min) + ", " +
               std::to_string(max) + "] (digits with an optional K, M, G or T)");
  }
  *out = n;
  return Status::OK();
}

Status ParseSeconds(const std::string& name, const std::string& value, int* out) {
  uint64_t n = 0;
  KVFS_RETURN_IF_ERROR(ParseUnsigned(name, value, 0, kMaxSeconds, &n));
  *out = static_cast<int>(n);
  return Status::OK();
}

Status ParseTimeout(const std::string& name, const std::string& value, double* out) {
  errno = 0;
  char* end = nullptr;
  double d = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || errno != 0 || !std::isfinite(d) || d < 0 ||
      d > kMaxTimeout) {
    return Bad(name + "='" + value + "' is not a number of seconds in [0, 1000000]");
  }
  *out = d;
  return Status::OK();
}

// One -o item: a flag (no '=') or name=value.
Status ApplyMountOption(std::string_view item, CommandLine* cmd) {
  FuseSettings& f = cmd->fuse;
  size_t eq = item.find('=');
  const std::string name(item.substr(0, eq));
  const bool has_value = eq != std::string_view::npos;
  const std::string value = has_value ? std::string(item.substr(eq + 1)) : std::string();

  using Setter = std::function<Status()>;
  auto flag = [&](bool* field, bool v) -> Setter {
    return [field, v]() {
      *field = v;
      return Status::OK();
    };
  };
  const std::map<std::string, Setter> flags = {
      {"allow_other", flag(&f.allow_other, true)},
      // Always on: the core checks no permissions, the kernel does.
      {"default_permissions", [] { return Status::OK(); }},
      {"ro", flag(&f.read_only, true)},
      {"rw", flag(&f.read_only, false)},
      {"dev", flag(&f.dev, true)},
      {"nodev", flag(&f.dev, false)},
      {"suid", flag(&f.suid, true)},
      {"nosuid", flag(&f.suid, false)},
      {"direct_io", flag(&f.direct_io, true)},
      {"kernel_cache",
       [&f] {
         f.cache = CacheMode::kKernel;
         return Status::OK();
       }},
      {"auto_cache",
       [&f] {
         f.cache = CacheMode::kAuto;
         return Status::OK();
       }},
      {"writeback_cache", flag(&f.writeback_cache, true)},
      {"no_writeback_cache", flag(&f.writeback_cache, false)},
      {"clone_fd", flag(&f.clone_fd, true)},
  };
  const std::map<std::string, Setter> valued = {
      {"fsname",
       [&] {
         if (value.empty()) return Bad("fsname is empty");
         f.fsname = value;
         return Status::OK();
       }},
      {"subtype",
       [&] {
         if (value.empty()) return Bad("subtype is empty");
         f.subtype = value;
         return Status::OK();
       }},
      {"entry_timeout", [&] { return ParseTimeout(name, value, &f.entry_timeout); }},
      {"attr_timeout", [&] { return ParseTimeout(name, value, &f.attr_timeout); }},
      {"negative_timeout", [&] { return ParseTimeout(name, value, &f.negative_timeout); }},
      {"max_read",
       [&] {
         uint64_t n = 0;
         KVFS_RETURN_IF_ERROR(ParseUnsigned(name, value, kMinRequestBytes, kMaxRequestBytes, &n));
         f.max_read = static_cast<uint32_t>(n);
         return Status::OK();
       }},
      {"max_write",
       [&] {
         uint64_t n = 0;
         KVFS_RETURN_IF_ERROR(ParseUnsigned(name, value, kMinRequestBytes, kMaxRequestBytes, &n));
         f.max_write = static_cast<uint32_t>(n);
         return Status::OK();
       }},
      {"max_threads",
       [&] {
         uint64_t n = 0;
         KVFS_RETURN_IF_ERROR(ParseUnsigned(name, value, 1, 1000, &n));
         f.max_threads = static_cast<uint32_t>(n);
         return Status::OK();
       }},
      {"readdirplus",
       [&] {
         if (value == "yes") {
           f.readdirplus = ReaddirPlus::kYes;
         } else if (value == "no") {
           f.readdirplus = ReaddirPlus::kNo;
         } else if (value == "auto") {
           f.readdirplus = ReaddirPlus::kAuto;
         } else {
           return Bad("readdirplus='" + value + "' is not yes, no or auto");
         }
         return Status::OK();
       }},
  };
  if (auto it = flags.find(name); it != flags.end()) {
    if (has_value) return Bad("-o " + name + " takes no value");
    return it->second();
  }
  if (auto it = valued.find(name); it != valued.end()) {
    if (!has_value) return Bad("-o " + name + " needs a value (" + name + "=...)");
    return it->second();
  }
  std::string known;
  for (const auto& [n, _] : flags) known += (known.empty() ? "" : ", ") + n;
  for (const auto& [n, _] : valued) known += ", " + n + "=";
  return Bad("unknown mount option '" + name + "' (-o knows: " + known + ")");
}

Status ApplyMountOptions(std::string_view list, CommandLine* cmd) {
  if (list.empty()) return Bad("-o needs a list of options");
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    KVFS_RETURN_IF_ERROR(ApplyMountOption(item, cmd));
  }
  return Status::OK();
}

// A long option that takes a value.
Status ApplyStoreOption(const std::string& name, const std::string& value, CommandLine* cmd) {
  StoreSettings& s = cmd->store;
  auto path = [&](std::string* field) {
    if (value.empty()) return Bad(name + " is empty");
    *field = value;
    return Status::OK();
  };
  if (name == "--db") return path(&s.db_path);
  if (name == "--store") return path(&s.persistent_store);
  if (name == "--coordination") return path(&s.coordination);
  if (name == "--coordination-lease") {
    uint64_t n = 0;
    KVFS_RETURN_IF_ERROR(
        ParseUnsigned(name, value, coord::kMinLeaseSeconds, coord::kMaxLeaseSeconds, &n));
    s.coordination_lease_seconds = static_cast<int>(n);
    return Status::OK();
  }
  if (name == "--log") return path(&cmd->log_file);
  if (name == "--subtree") {
    if (value.empty() || value[0] != '/') {
      return Bad("--subtree '" + value + "' is not an absolute path in the store");
    }
    s.subtree = value;
    return Status::OK();
  }
  if (name == "--kv-backend") return path(&s.kv_backend);
  if (name == "--kv-options") {
    s.kv_options = value;
    return Status::OK();
  }
  if (name == "--capacity-bytes") {
    return ParseUnsigned(name, value, 1 << 20, kMaxCapacity, &s.capacity_bytes);
  }
  if (name == "--capacity-inodes") {
    return ParseUnsigned(name, value, 1, kMaxCapacity, &s.capacity_inodes);
  }
  if (name == "--cache-quota-bytes") {
    return ParseUnsigned(name, value, 0, kMaxCapacity, &s.cache_quota_bytes);
  }
  if (name == "--cache-quota-inodes") {
    return ParseUnsigned(name, value, 0, kMaxCapacity, &s.cache_quota_inodes);
  }
  if (name == "--cache-refresh-seconds") {
    return ParseSeconds(name, value, &s.cache_refresh_seconds);
  }
  if (name == "--cache-writeback-delay-seconds") {
    return ParseSeconds(name, value, &s.cache_writeback_delay_seconds);
  }
  if (name == "--cache-retry-seconds") return ParseSeconds(name, value, &s.cache_retry_seconds);
  if (name == "--cache-compression") {
    ingest::Compression c;
    if (!ingest::ParseCompression(value, &c)) {
      return Bad("--cache-compression '" + value + "' is not none, gzip, zstd or xz");
    }
    s.cache_compression = value;
    return Status::OK();
  }
  if (name == "--metrics-port") {
    s.metrics_listen = value;  // checked when the metrics endpoint starts
    return Status::OK();
  }
  if (const char* setting = store::StoreSettingOfOption(name)) {
    s.store_options[setting] = value;
    return Status::OK();
  }
  return Bad("unknown option '" + name + "'");
}

bool TakesValue(const std::string& name) {
  if (store::StoreSettingOfOption(name) != nullptr) return true;
  static const char* const kNames[] = {
      "--db",
      "--store",
      "--subtree",
      "--kv-backend",
      "--kv-options",
      "--capacity-bytes",
      "--capacity-inodes",
      "--cache-quota-bytes",
      "--cache-quota-inodes",
      "--cache-refresh-seconds",
      "--cache-writeback-delay-seconds",
      "--cache-retry-seconds",
      "--cache-compression",
      "--metrics-port",
      "--coordination",
      "--coordination-lease",
      "--log",
  };
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

// Escapes ',' and '\' for libfuse's -o parser.
std::string EscapeOption(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string Absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

}  // namespace

Status ParseCommandLine(const std::vector<std::string>& argv, CommandLine* out) {
  CommandLine cmd;
  std::vector<std::string> positional;
  bool store_settings_without_store = false;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      cmd.help = true;
    } else if (arg == "-V" || arg == "--version") {
      cmd.version = true;
    } else if (arg == "-f" || arg == "--foreground") {
      cmd.foreground = true;
    } else if (arg == "-d" || arg == "--debug") {
      cmd.debug = true;
      cmd.foreground = true;
    } else if (arg == "-s") {
      cmd.fuse.single_thread = true;
    } else if (arg == "-o") {
      if (i + 1 >= argv.size()) return Bad("-o needs a list of options");
      KVFS_RETURN_IF_ERROR(ApplyMountOptions(argv[++i], &cmd));
    } else if (arg.rfind("-o", 0) == 0) {
      KVFS_RETURN_IF_ERROR(ApplyMountOptions(std::string_view(arg).substr(2), &cmd));
    } else if (arg.rfind("--", 0) == 0 && arg.size() > 2) {
      size_t eq = arg.find('=');
      std::string name = arg.substr(0, eq);
      if (!TakesValue(name)) return Bad("unknown option '" + name + "'");
      std::string value;
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < argv.size()) {
        value = argv[++i];
      } else {
        return Bad(name + " needs a value");
      }
      KVFS_RETURN_IF_ERROR(ApplyStoreOption(name, value, &cmd));
      if (name.rfind("--cache-", 0) == 0 || name.rfind("--coordination", 0) == 0 ||
          store::StoreSettingOfOption(name) != nullptr) {
        store_settings_without_store = true;
      }
    } else if (arg.size() > 1 && arg[0] == '-') {
      return Bad("unknown option '" + arg + "'");
    } else {
      positional.push_back(arg);
    }
  }
  if (cmd.help || cmd.version) {
    *out = std::move(cmd);
    return Status::OK();
  }
  if (cmd.store.db_path.empty()) return Bad("--db DIR is required: the store to mount");
  if (positional.empty()) return Bad("no mountpoint given");
  if (positional.size() > 1) {
    return Bad("one mountpoint expected, got '" + positional[0] + "' and '" + positional[1] + "'");
  }
  if (store_settings_without_store && cmd.store.persistent_store.empty()) {
    return Bad(
        "--cache-*, --coordination* and --s3-* settings need --store (the cache manager runs "
        "only over a persistent store)");
  }
  cmd.mountpoint = positional[0];
  *out = std::move(cmd);
  return Status::OK();
}

std::string UsageText() {
  return R"(usage: kvfs-fuse --db DIR [--store STORE] [OPTIONS] [-o OPTION[,OPTION...]] MOUNTPOINT

Mounts the KVFS store in DIR (created if missing) on MOUNTPOINT. Runs as a
daemon unless -f; unmount with `fusermount3 -u MOUNTPOINT` or SIGTERM.

The store (the NFS export's settings, docs/fsal.md and docs/cache.md):
  --db DIR                        key/value store directory (required)
  --store STORE                   persistent store (tarballs) shown as the top
                                  level, loaded on first touch (docs/cache.md)
  --subtree PATH                  directory of the store to mount (default /;
                                  missing components are created)
  --kv-backend NAME               backend of a new store (default: recorded, or rocksdb)
  --kv-options LIST               backend options "name=value,..."
  --capacity-bytes N              size statfs reports (default: the core's, or the quota)
  --capacity-inodes N             inodes statfs reports
  --cache-quota-bytes N           quota of the key/value store (default 0: none)
  --cache-quota-inodes N
  --cache-refresh-seconds N       listing period of the store (default 60)
  --cache-writeback-delay-seconds N  write-back delay after a change (default 30)
  --cache-retry-seconds N         before a failed load is tried again (default 10)
  --cache-compression C           none, gzip, zstd, xz (default none)
  --metrics-port [ADDRESS:]PORT   serve Prometheus metrics on http://ADDRESS:PORT/metrics
                                  (default address 127.0.0.1; default: no metrics;
                                  docs/operations.md)
  --coordination URL              etcd://HOST:PORT[,HOST:PORT...]/PREFIX: claims
                                  shared with the other servers of the store
                                  (docs/coordination.md; default: in the store)
  --coordination-lease SECONDS    this server's etcd lease, 2-3600 (default 10):
                                  how long its trees stay its own after it
                                  died, or while it cannot reach etcd
  --s3-*                          the persistent store's settings (below)

The process:
  -f, --foreground                stay in the foreground, log to stderr
  -d, --debug                     libfuse's request trace (implies -f)
  -s                              serve requests on one thread
  --log FILE                      daemon log (default: syslog)
  -h, --help  -V, --version

Mount options (-o, comma-separated; docs/fuse.md):
  fsname=NAME                     source shown by mount and df (default: DIR)
  subtype=NAME                    type fuse.NAME (default kvfs)
  allow_other                     let other users in (default: only the mounter)
  default_permissions             always on: the kernel checks permissions
  ro, rw                          read-only mount (default rw)
  dev, nodev                      honour device nodes (default nodev)
  suid, nosuid                    honour set-user/group-ID bits (default nosuid)
  entry_timeout=S                 lookup cache, seconds (default 1)
  attr_timeout=S                  attribute cache, seconds (default 1)
  negative_timeout=S              "no such name" cache, seconds (default 0)
  direct_io                       no page cache for file data
  kernel_cache                    keep file pages across opens
  auto_cache                      keep them while mtime and size are unchanged
  max_read=N, max_write=N         largest request, 4K-1M (default: kernel, 1M)
  readdirplus=yes|no|auto         attributes with listings (default auto)
  writeback_cache                 gather writes in the page cache (default off)
  max_threads=N                   serving threads (default 10)
  clone_fd                        one /dev/fuse descriptor per thread
)" + std::string(store::kStoreSettingsUsage);
}

std::string KernelMountOptions(const CommandLine& cmd) {
  const FuseSettings& f = cmd.fuse;
  std::string o = "default_permissions";
  o += ",fsname=" + EscapeOption(f.fsname.empty() ? cmd.store.db_path : f.fsname);
  o += ",subtype=" + EscapeOption(f.subtype);
  if (f.allow_other) o += ",allow_other";
  if (f.read_only) o += ",ro";
  if (f.dev) o += ",dev";
  if (f.suid) o += ",suid";
  if (f.max_read != 0) o += ",max_read=" + std::to_string(f.max_read);
  return o;
}

void MakePathsAbsolute(CommandLine* cmd) {
  cmd->store.db_path = Absolute(cmd->store.db_path);
  // A URL (scheme://...) is not a path.
  if (cmd->store.persistent_store.find("://") == std::string::npos) {
    cmd->store.persistent_store = Absolute(cmd->store.persistent_store);
  }
  cmd->mountpoint = Absolute(cmd->mountpoint);
  cmd->log_file = Absolute(cmd->log_file);
}

Status CheckMountpoint(const std::string& path) {
  auto dead = [&] {
    return Status::FromErrno(ENOTCONN, "mountpoint " + path +
                                           " is a FUSE mount whose server is gone: unmount it "
                                           "first (fusermount3 -u " +
                                           path + ")");
  };
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOTCONN) return dead();
    return Status::FromErrno(err, "mountpoint " + path + ": " + std::strerror(err));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::FromErrno(ENOTDIR, "mountpoint " + path + " is not a directory");
  }
  // stat may answer from the kernel's cache; statfs always asks the server.
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) != 0 && errno == ENOTCONN) return dead();
  return Status::OK();
}

Status CheckFuseDevice(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return Status::OK();
  }
  int err = errno;
  std::string msg = "cannot open the FUSE device " + path + ": " + std::strerror(err);
  if (err == ENOENT || err == ENODEV || err == ENXIO) {
    msg +=
        " (load the fuse kernel module with `modprobe fuse`, or give the container the "
        "device, e.g. docker run --device /dev/fuse)";
  } else if (err == EACCES || err == EPERM) {
    msg += " (run kvfs-fuse as root, or give this user read/write access to " + path + ")";
  }
  return Status::FromErrno(err, msg);
}

}  // namespace kvfs::fusefs
