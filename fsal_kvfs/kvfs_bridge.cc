// The C ABI of kvfs_bridge.h over kvfs::FileSystem.
#include "fsal_kvfs/kvfs_bridge.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "common/fs/file_system.h"
#include "common/status.h"
#include "server/server_stack.h"
#include "store/store.h"

// One open file system, shared by every export of its database.
struct kvfs_fs {
  std::string path;  // canonical database path (the registry key)
  // The store, the core, the cache manager if any, the control server.
  std::unique_ptr<kvfs::server::ServerStack> stack;
  kvfs::FileSystem* fs = nullptr;  // stack->fs()
  int refs = 0;                    // guarded by Registry::mu
};

namespace {

// The file systems open in this process, by canonical database path. Only
// export creation and release take the lock; operations never do.
struct Registry {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<kvfs_fs>> open;  // guarded by mu
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();  // never destroyed
  return *registry;
}

thread_local std::string t_last_error;

int Fail(int err, std::string message) {
  t_last_error = std::move(message);
  return err;
}

int Fail(const kvfs::Status& s) {
  t_last_error = s.ToString();
  return s.posix_errno() != 0 ? s.posix_errno() : EIO;
}

int Check(const kvfs::Status& s) { return s.ok() ? 0 : Fail(s); }

// Runs f, turning any C++ exception into an errno: none may cross the C ABI.
template <typename F>
int Guard(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Fail(ENOMEM, "out of memory");
  } catch (const std::exception& e) {
    return Fail(EIO, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    return Fail(EIO, "unexpected exception");
  }
}

kvfs_timespec ToC(const kvfs::Timespec& t) { return kvfs_timespec{t.sec, t.nsec}; }

kvfs::Timespec FromC(const kvfs_timespec& t) { return kvfs::Timespec{t.sec, t.nsec}; }

void ToC(const kvfs::Attributes& a, kvfs_attr* out) {
  if (out == nullptr) return;
  out->ino = a.ino;
  out->type = static_cast<uint32_t>(a.type);
  out->mode = a.mode;
  out->uid = a.uid;
  out->gid = a.gid;
  out->nlink = a.nlink;
  out->size = a.size;
  out->rdev = a.rdev;
  out->atime = ToC(a.atime);
  out->mtime = ToC(a.mtime);
  out->ctime = ToC(a.ctime);
  out->change = a.change;
  out->space_used = a.space_used;
  out->parent = a.parent;
}

kvfs::NewObject FromC(const kvfs_new_object* obj) {
  kvfs::NewObject n;
  n.mode = obj->mode & 07777;
  n.uid = obj->uid;
  n.gid = obj->gid;
  return n;
}

// Validates a name from the wire (the core checks length and '/', but a
// NUL-terminated C string cannot carry a NUL, and NULL must not crash).
int CheckName(const char* name) {
  if (name == nullptr) return Fail(EINVAL, "missing name");
  return 0;
}

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

uint64_t Fnv1a(const void* data, size_t n, uint64_t h = kFnvOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= kFnvPrime;
  }
  return h;
}

// SplitMix64's finalizer: spreads FNV's weak low bits over the word.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

void PutLE(unsigned char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

uint64_t GetLE(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

constexpr unsigned char kHandleMagic = 0x4b;  // 'K'
constexpr unsigned char kHandleVersion = 1;
constexpr size_t kCheckedBytes = 20;

uint32_t HandleCheck(const unsigned char* h) {
  return static_cast<uint32_t>(Mix(Fnv1a(h, kCheckedBytes)));
}

}  // namespace

extern "C" {

const char* kvfs_last_error(void) { return t_last_error.c_str(); }

int kvfs_fs_acquire(const kvfs_fs_options* options, kvfs_fs** out, char** canonical_path) {
  return Guard([&]() -> int {
    if (options == nullptr || options->db_path == nullptr || options->db_path[0] != '/') {
      return Fail(EINVAL, "db_path must be an absolute path");
    }
    std::string path;
    if (int err = Check(kvfs::server::CanonicalDbPath(options->db_path, &path))) return err;

    Registry& reg = GetRegistry();
    std::lock_guard<std::mutex> lock(reg.mu);
    std::unique_ptr<kvfs_fs>& slot = reg.open[path];
    if (slot == nullptr) {
      kvfs::server::ServerStackOptions o;
      o.db_path = path;
      o.kv_backend = options->kv_backend != nullptr ? options->kv_backend : "";
      o.kv_options = options->kv_options != nullptr ? options->kv_options : "";
      if (options->persistent_store != nullptr) o.persistent_store = options->persistent_store;
      for (size_t i = 0; options->store_settings != nullptr && i < KVFS_STORE_SETTING_COUNT; ++i) {
        if (options->store_settings[i] != nullptr) {
          o.store_options[kvfs::store::kStoreSettings[i]] = options->store_settings[i];
        }
      }
      o.cache_quota_bytes = options->cache_quota_bytes;
      o.cache_quota_inodes = options->cache_quota_inodes;
      o.cache_refresh_seconds = options->cache_refresh_seconds;
      o.cache_writeback_delay_seconds = options->cache_writeback_delay_seconds;
      o.cache_retry_seconds = options->cache_retry_seconds;
      if (options->cache_compression != nullptr) o.cache_compression = options->cache_compression;
      if (options->metrics_port != nullptr) o.metrics_listen = options->metrics_port;
      if (options->coordination != nullptr) o.coordination = options->coordination;
      if (options->coordination_lease != 0) {
        o.coordination_lease_seconds = options->coordination_lease;
      }
      if (options->log != nullptr) {
        void (*log)(const char*) = options->log;
        o.log = [log](const std::string& line) { log(line.c_str()); };
      }
      auto entry = std::make_unique<kvfs_fs>();
      entry->path = path;
      kvfs::Status s = kvfs::server::ServerStack::Open(o, &entry->stack);
      if (!s.ok()) {
        reg.open.erase(path);
        return Fail(s);
      }
      entry->fs = entry->stack->fs();
      slot = std::move(entry);
    }
    if (canonical_path != nullptr) {
      *canonical_path = strdup(path.c_str());
      if (*canonical_path == nullptr) {
        if (slot->refs == 0) reg.open.erase(path);
        return Fail(ENOMEM, "out of memory");
      }
    }
    slot->refs++;
    *out = slot.get();
    return 0;
  });
}

void kvfs_fs_release(kvfs_fs* fs) {
  if (fs == nullptr) return;
  (void)Guard([&]() -> int {
    Registry& reg = GetRegistry();
    // Closed under the lock, so that a new export of the same database
    // cannot try to open it while RocksDB still holds its lock file.
    std::lock_guard<std::mutex> lock(reg.mu);
    if (--fs->refs > 0) return 0;
    (void)fs->fs->Sync();
    const std::string path = fs->path;  // (erase destroys fs and its path)
    reg.open.erase(path);
    return 0;
  });
}

int kvfs_fs_add_invalidate_hook(kvfs_fs* fs, kvfs_invalidate_cb cb, void* arg) {
  return Guard([&]() -> int {
    return Check(fs->stack->AddInvalidateListener(arg, [cb, arg](kvfs::Ino ino) { cb(arg, ino); }));
  });
}

void kvfs_fs_remove_invalidate_hook(kvfs_fs* fs, void* arg) {
  if (fs != nullptr) fs->stack->RemoveInvalidateListener(arg);
}

int kvfs_core_lookup(kvfs_fs* fs, uint64_t parent, const char* name, kvfs_attr* out) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    kvfs::Attributes a;
    if (int err = Check(fs->fs->Lookup(parent, name, &a))) return err;
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_getattr(kvfs_fs* fs, uint64_t ino, kvfs_attr* out) {
  return Guard([&]() -> int {
    kvfs::Attributes a;
    if (int err = Check(fs->fs->GetAttr(ino, &a))) return err;
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_setattr(kvfs_fs* fs, uint64_t ino, const kvfs_setattr* req, kvfs_attr* out) {
  return Guard([&]() -> int {
    kvfs::SetAttrRequest r;
    if (req->mask & KVFS_SET_MODE) r.mode = req->mode & 07777;
    if (req->mask & KVFS_SET_UID) r.uid = req->uid;
    if (req->mask & KVFS_SET_GID) r.gid = req->gid;
    if (req->mask & KVFS_SET_SIZE) r.size = req->size;
    r.size_grow_only = (req->mask & KVFS_SET_SIZE_GROW_ONLY) != 0;
    if (req->mask & KVFS_SET_ATIME) r.atime = FromC(req->atime);
    if (req->mask & KVFS_SET_MTIME) r.mtime = FromC(req->mtime);
    r.atime_now = (req->mask & KVFS_SET_ATIME_NOW) != 0;
    r.mtime_now = (req->mask & KVFS_SET_MTIME_NOW) != 0;
    kvfs::Attributes a;
    if (int err = Check(fs->fs->SetAttr(ino, r, &a))) return err;
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_resolve_path(kvfs_fs* fs, const char* path, bool create, kvfs_attr* out) {
  return Guard([&]() -> int {
    if (path == nullptr || path[0] != '/') return Fail(EINVAL, "path must be absolute");
    kvfs::Attributes a;
    if (int err = Check(kvfs::server::ResolveSubtree(fs->fs, path, create, &a))) return err;
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_is_within(kvfs_fs* fs, uint64_t ino, uint64_t root, bool* inside) {
  return Guard([&]() -> int {
    *inside = false;
    uint64_t cur = ino;
    for (int steps = 0; steps < 4096; steps++) {
      if (cur == root) {
        *inside = true;
        return 0;
      }
      if (cur == kvfs::kRootIno || cur == 0) return 0;
      kvfs::Attributes a;
      if (int err = Check(fs->fs->GetAttr(cur, &a))) return err;
      if (a.parent == cur) return 0;
      cur = a.parent;
    }
    return Fail(ELOOP, "parent chain too long");
  });
}

int kvfs_core_create(kvfs_fs* fs, uint64_t parent, const char* name, const kvfs_new_object* obj,
                     kvfs_attr* out) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    kvfs::Attributes a;
    if (int err = Check(fs->fs->Create(parent, name, FromC(obj), /*exclusive=*/true, &a))) {
      return err;
    }
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_mkdir(kvfs_fs* fs, uint64_t parent, const char* name, const kvfs_new_object* obj,
                    kvfs_attr* out) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    kvfs::Attributes a;
    if (int err = Check(fs->fs->Mkdir(parent, name, FromC(obj), &a))) return err;
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_mknod(kvfs_fs* fs, uint64_t parent, const char* name, uint32_t type,
                    const kvfs_new_object* obj, uint64_t rdev, kvfs_attr* out) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    kvfs::FileType t;
    switch (type) {
      case KVFS_TYPE_CHAR_DEVICE:
      case KVFS_TYPE_BLOCK_DEVICE:
      case KVFS_TYPE_FIFO:
      case KVFS_TYPE_SOCKET:
        t = static_cast<kvfs::FileType>(type);
        break;
      default:
        return Fail(EINVAL, "mknod of a type that is not a node");
    }
    kvfs::Attributes a;
    if (int err = Check(fs->fs->Mknod(parent, name, t, FromC(obj), rdev, &a))) return err;
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_symlink(kvfs_fs* fs, uint64_t parent, const char* name, const char* target,
                      const kvfs_new_object* obj, kvfs_attr* out) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    if (target == nullptr) return Fail(EINVAL, "missing symlink target");
    kvfs::Attributes a;
    if (int err = Check(fs->fs->Symlink(parent, name, target, FromC(obj), &a))) return err;
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_readlink(kvfs_fs* fs, uint64_t ino, char* buf, size_t bufsize, size_t* len) {
  return Guard([&]() -> int {
    std::string target;
    if (int err = Check(fs->fs->Readlink(ino, &target))) return err;
    if (target.size() + 1 > bufsize) return Fail(ENAMETOOLONG, "symlink target too long");
    std::memcpy(buf, target.data(), target.size());
    buf[target.size()] = '\0';
    *len = target.size();
    return 0;
  });
}

int kvfs_core_link(kvfs_fs* fs, uint64_t ino, uint64_t new_parent, const char* name,
                   kvfs_attr* out) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    kvfs::Attributes a;
    if (int err = Check(fs->fs->Link(ino, new_parent, name, &a))) return err;
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_unlink(kvfs_fs* fs, uint64_t parent, const char* name) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    return Check(fs->fs->Unlink(parent, name));
  });
}

int kvfs_core_rmdir(kvfs_fs* fs, uint64_t parent, const char* name) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    return Check(fs->fs->Rmdir(parent, name));
  });
}

int kvfs_core_rename(kvfs_fs* fs, uint64_t parent, const char* name, uint64_t new_parent,
                     const char* new_name) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    if (int err = CheckName(new_name)) return err;
    return Check(fs->fs->Rename(parent, name, new_parent, new_name));
  });
}

int kvfs_core_read(kvfs_fs* fs, uint64_t ino, uint64_t offset, const struct iovec* iov, int iovcnt,
                   size_t* nread, bool* eof) {
  return Guard([&]() -> int {
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++) want += iov[i].iov_len;
    std::string data;
    bool at_end = false;
    if (int err = Check(fs->fs->Read(ino, offset, want, &data, &at_end))) return err;
    size_t done = 0;
    for (int i = 0; i < iovcnt && done < data.size(); i++) {
      size_t n = std::min(iov[i].iov_len, data.size() - done);
      std::memcpy(iov[i].iov_base, data.data() + done, n);
      done += n;
    }
    *nread = done;
    *eof = at_end;
    return 0;
  });
}

int kvfs_core_write(kvfs_fs* fs, uint64_t ino, uint64_t offset, const struct iovec* iov, int iovcnt,
                    bool stable, kvfs_attr* out) {
  return Guard([&]() -> int {
    std::string joined;
    std::string_view data;
    if (iovcnt == 1) {
      data = std::string_view(static_cast<const char*>(iov[0].iov_base), iov[0].iov_len);
    } else {
      for (int i = 0; i < iovcnt; i++) {
        joined.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      }
      data = joined;
    }
    kvfs::Attributes a;
    auto stability = stable ? kvfs::Stability::kStable : kvfs::Stability::kUnstable;
    if (int err = Check(fs->fs->Write(ino, offset, data, stability, &a))) return err;
    ToC(a, out);
    return 0;
  });
}

int kvfs_core_fsync(kvfs_fs* fs, uint64_t ino) {
  return Guard([&]() -> int { return Check(fs->fs->Fsync(ino)); });
}

int kvfs_core_open_file(kvfs_fs* fs, uint64_t ino) {
  return Guard([&]() -> int { return Check(fs->fs->OpenFile(ino)); });
}

int kvfs_core_close_file(kvfs_fs* fs, uint64_t ino) {
  return Guard([&]() -> int { return Check(fs->fs->CloseFile(ino)); });
}

int kvfs_core_readdir(kvfs_fs* fs, uint64_t dir, uint64_t cookie, kvfs_readdir_cb cb, void* arg,
                      bool* eof) {
  return Guard([&]() -> int {
    bool at_end = false;
    kvfs::Status s = fs->fs->ReadDir(
        dir, cookie,
        [&](const kvfs::DirEntry& e) {
          kvfs_attr a;
          ToC(e.attrs, &a);
          return cb(arg, e.name.c_str(), &a, e.cookie);
        },
        &at_end);
    if (int err = Check(s)) return err;
    *eof = at_end;
    return 0;
  });
}

int kvfs_core_cookie_of(kvfs_fs* fs, uint64_t dir, const char* name, uint64_t* cookie) {
  return Guard([&]() -> int {
    if (int err = CheckName(name)) return err;
    return Check(fs->fs->CookieOf(dir, name, cookie));
  });
}

int kvfs_core_statfs(kvfs_fs* fs, kvfs_statfs* out) {
  return Guard([&]() -> int {
    kvfs::StatFsInfo info;
    if (int err = Check(fs->fs->StatFs(&info))) return err;
    out->total_bytes = info.total_bytes;
    out->used_bytes = info.used_bytes;
    out->total_inodes = info.total_inodes;
    out->used_inodes = info.used_inodes;
    out->block_size = info.block_size;
    out->max_name_length = info.max_name_length;
    return 0;
  });
}

uint64_t kvfs_export_identity(const char* canonical_db_path, uint64_t root_ino) {
  static constexpr char kDomain[] = "kvfs-export-v1";
  uint64_t h = Fnv1a(kDomain, sizeof(kDomain));
  h = Fnv1a(canonical_db_path, std::strlen(canonical_db_path) + 1, h);
  unsigned char ino[8];
  PutLE(ino, root_ino, 8);
  h = Fnv1a(ino, sizeof(ino), h);
  return Mix(h);
}

void kvfs_handle_encode(uint64_t export_identity, uint64_t ino,
                        unsigned char out[KVFS_HANDLE_SIZE]) {
  out[0] = kHandleMagic;
  out[1] = kHandleVersion;
  out[2] = 0;
  out[3] = 0;
  PutLE(out + 4, export_identity, 8);
  PutLE(out + 12, ino, 8);
  PutLE(out + 20, HandleCheck(out), 4);
}

kvfs_handle_status kvfs_handle_decode(const void* buf, size_t len, uint64_t export_identity,
                                      uint64_t* ino) {
  if (buf == nullptr || len != KVFS_HANDLE_SIZE) return KVFS_HANDLE_MALFORMED;
  const auto* h = static_cast<const unsigned char*>(buf);
  if (h[0] != kHandleMagic || h[1] != kHandleVersion || h[2] != 0 || h[3] != 0) {
    return KVFS_HANDLE_MALFORMED;
  }
  if (GetLE(h + 20, 4) != HandleCheck(h)) return KVFS_HANDLE_MALFORMED;
  uint64_t n = GetLE(h + 12, 8);
  if (n == 0) return KVFS_HANDLE_MALFORMED;
  if (GetLE(h + 4, 8) != export_identity) return KVFS_HANDLE_OTHER_EXPORT;
  *ino = n;
  return KVFS_HANDLE_OK;
}

}  // extern "C"
