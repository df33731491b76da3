// kvfs_bridge: the C ABI between FSAL_KVFS's C layer (which fills Ganesha's
// operation tables and must include Ganesha's C-only headers) and the C++
// KVFS core (kvfs::FileSystem).
//
// Everything here is plain C: integers, fixed-layout structs and callbacks.
// Every function that can fail returns 0 or a POSIX errno value (as the core
// reports it, unchanged); kvfs_last_error() then gives a human-readable
// message for the log. No function throws or aborts on bad input.
//
// File systems are shared: kvfs_fs_acquire() on a database path that is
// already open in this process returns the same kvfs_fs with its reference
// count raised (RocksDB allows one opener per process), and the last
// kvfs_fs_release() closes it. All other functions are thread-safe and take
// no process-wide lock.
#ifndef KVFS_FSAL_KVFS_BRIDGE_H_
#define KVFS_FSAL_KVFS_BRIDGE_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "store/store_settings.h"

#ifdef __cplusplus
extern "C" {
#endif

// An open KVFS file system (opaque).
typedef struct kvfs_fs kvfs_fs;

// The root directory's inode number.
#define KVFS_ROOT_INO 1
// Longest directory entry name, in bytes.
#define KVFS_MAX_NAME 255
// Longest symlink target, in bytes (without the terminating NUL).
#define KVFS_MAX_SYMLINK 4095

// Object types; the values equal kvfs::FileType's.
enum kvfs_type {
  KVFS_TYPE_REGULAR = 1,
  KVFS_TYPE_DIRECTORY = 2,
  KVFS_TYPE_SYMLINK = 3,
  KVFS_TYPE_CHAR_DEVICE = 4,
  KVFS_TYPE_BLOCK_DEVICE = 5,
  KVFS_TYPE_FIFO = 6,
  KVFS_TYPE_SOCKET = 7,
};

// A point in time: seconds since the epoch plus nanoseconds.
struct kvfs_timespec {
  int64_t sec;
  uint32_t nsec;
};

// Attributes of an object (mirror of kvfs::Attributes).
struct kvfs_attr {
  uint64_t ino;
  uint32_t type;  // enum kvfs_type
  uint32_t mode;  // permission bits only (07777)
  uint32_t uid;
  uint32_t gid;
  uint32_t nlink;
  uint64_t size;
  uint64_t rdev;  // Linux dev_t encoding (major/minor via <sys/sysmacros.h>)
  struct kvfs_timespec atime, mtime, ctime;
  uint64_t change;      // NFS change attribute; never decreases
  uint64_t space_used;  // bytes of storage
  uint64_t parent;      // see kvfs::Attributes::parent
};

// Ownership and permissions of a new object.
struct kvfs_new_object {
  uint32_t mode;  // permission bits (07777)
  uint32_t uid;
  uint32_t gid;
};

// Bits of kvfs_setattr::mask: which fields to change.
#define KVFS_SET_MODE 0x01u
#define KVFS_SET_UID 0x02u
#define KVFS_SET_GID 0x04u
#define KVFS_SET_SIZE 0x08u
#define KVFS_SET_ATIME 0x10u      // to kvfs_setattr::atime
#define KVFS_SET_MTIME 0x20u      // to kvfs_setattr::mtime
#define KVFS_SET_ATIME_NOW 0x40u  // to the server's clock
#define KVFS_SET_MTIME_NOW 0x80u  // to the server's clock
// With KVFS_SET_SIZE: only extend a smaller file, never truncate (fallocate).
#define KVFS_SET_SIZE_GROW_ONLY 0x100u

// A setattr request: fields whose bit is set in mask are changed.
struct kvfs_setattr {
  uint32_t mask;
  uint32_t mode;
  uint32_t uid;
  uint32_t gid;
  uint64_t size;
  struct kvfs_timespec atime, mtime;
};

// Usage numbers of a file system.
struct kvfs_statfs {
  uint64_t total_bytes;
  uint64_t used_bytes;
  uint64_t total_inodes;
  uint64_t used_inodes;
  uint32_t block_size;
  uint32_t max_name_length;
};

// Options of kvfs_fs_acquire().
struct kvfs_fs_options {
  // Directory of the key/value store; created (with its parents) if missing.
  const char* db_path;
  // Key/value backend (kv_backend.h); NULL or "": the one recorded in
  // db_path, else the default (rocksdb).
  const char* kv_backend;
  // The backend's options, "name=value,..."; NULL: none. Only the first
  // opener's backend and options count.
  const char* kv_options;
  // The persistent store (the tarballs): a directory, file:///DIR or
  // s3://BUCKET[/PREFIX] (docs/stores.md). NULL or "": no cache manager, the
  // export shows the key/value store as it is. Otherwise the top level shows
  // the store's tarballs, loaded on first touch and evicted under the quota
  // (docs/cache.md). Like the backend, only the first opener's store and
  // cache settings count.
  const char* persistent_store;
  // The store's settings in the order of KVFS_STORE_SETTINGS
  // (store/store_settings.h): KVFS_STORE_SETTING_COUNT values, NULL for
  // those not given. NULL: none given.
  const char* const* store_settings;
  // Quota of the key/value store (0: none).
  uint64_t cache_quota_bytes;
  uint64_t cache_quota_inodes;
  // Seconds between listings of the store (0: only on demand), after a
  // tree's last change before it is written back (0: only on demand and
  // eviction), and before a failed load is tried again.
  int32_t cache_refresh_seconds;
  int32_t cache_writeback_delay_seconds;
  int32_t cache_retry_seconds;
  // Compression of tarballs written back: "none" (NULL), "gzip", "zstd",
  // "xz".
  const char* cache_compression;
  // Where to serve the store's Prometheus metrics: "PORT" (on 127.0.0.1)
  // or "ADDRESS:PORT"; NULL: nowhere. Only the first opener's counts.
  const char* metrics_port;
  // The coordination of servers sharing the persistent store:
  // "etcd://HOST:PORT[,...]/PREFIX" (docs/coordination.md); NULL or "":
  // none. An etcd that does not answer fails the open (no export).
  const char* coordination;
  // Its lease length in seconds (ServerStackOptions::
  // coordination_lease_seconds): 2..3600, 0 for the default (10); other
  // values fail the open.
  int32_t coordination_lease;
  // Receives the cache manager's and the persistent store's log lines (load
  // and write-back failures, conflicts, the store's fallbacks); NULL:
  // stderr. Called from any thread.
  void (*log)(const char* line);
};

// The message of the last failed call on this thread ("" if none).
const char* kvfs_last_error(void);

// Opens the file system in options->db_path, or shares it if this process
// already has it open, and sets *out. On success *canonical_path (if not
// NULL) receives the canonical database path (malloc'ed; free() it).
int kvfs_fs_acquire(const struct kvfs_fs_options* options, kvfs_fs** out, char** canonical_path);
// Drops one reference; the last one closes the file system. NULL is a no-op.
void kvfs_fs_release(kvfs_fs* fs);

// Called with each inode whose cached state a tree ingest, replacement or
// eviction made wrong (the root; a replaced or evicted top directory).
typedef void (*kvfs_invalidate_cb)(void* arg, uint64_t ino);
// Registers cb(arg, ino) (one per arg) with the control socket the file
// system serves for kvfs-ingest (docs/ingest.md); ENOTCONN if that socket
// could not be started (kvfs_last_error() says why).
int kvfs_fs_add_invalidate_hook(kvfs_fs* fs, kvfs_invalidate_cb cb, void* arg);
// Unregisters arg's callback; once this returns it is not called again.
void kvfs_fs_remove_invalidate_hook(kvfs_fs* fs, void* arg);

// Looks `name` up in directory `parent` ("." and ".." are accepted).
int kvfs_core_lookup(kvfs_fs* fs, uint64_t parent, const char* name, struct kvfs_attr* out);
// Attributes of `ino`; ENOENT if it does not exist (any more).
int kvfs_core_getattr(kvfs_fs* fs, uint64_t ino, struct kvfs_attr* out);
// Changes attributes of `ino`; *out (if not NULL) receives the new ones.
int kvfs_core_setattr(kvfs_fs* fs, uint64_t ino, const struct kvfs_setattr* req,
                      struct kvfs_attr* out);
// Resolves an absolute path ("/a/b") from the root without following
// symlinks. ENOTDIR if a non-final component is not a directory. With
// `create`, missing components are created as directories (mode 0755,
// owned by root).
int kvfs_core_resolve_path(kvfs_fs* fs, const char* path, bool create, struct kvfs_attr* out);
// Sets *inside to whether `ino` is `root` or lies below it, by following
// parents upwards (at most 4096 steps; ELOOP beyond).
int kvfs_core_is_within(kvfs_fs* fs, uint64_t ino, uint64_t root, bool* inside);

// Creates a regular file; EEXIST if `name` exists.
int kvfs_core_create(kvfs_fs* fs, uint64_t parent, const char* name,
                     const struct kvfs_new_object* obj, struct kvfs_attr* out);
// Creates a directory.
int kvfs_core_mkdir(kvfs_fs* fs, uint64_t parent, const char* name,
                    const struct kvfs_new_object* obj, struct kvfs_attr* out);
// Creates a device node, FIFO or socket (type: enum kvfs_type).
int kvfs_core_mknod(kvfs_fs* fs, uint64_t parent, const char* name, uint32_t type,
                    const struct kvfs_new_object* obj, uint64_t rdev, struct kvfs_attr* out);
// Creates a symbolic link to `target`.
int kvfs_core_symlink(kvfs_fs* fs, uint64_t parent, const char* name, const char* target,
                      const struct kvfs_new_object* obj, struct kvfs_attr* out);
// Copies the target of symlink `ino` into buf (NUL-terminated; bufsize must
// be at least KVFS_MAX_SYMLINK + 1) and sets *len to its length.
int kvfs_core_readlink(kvfs_fs* fs, uint64_t ino, char* buf, size_t bufsize, size_t* len);
// Adds the name `name` in `new_parent` for non-directory `ino`.
int kvfs_core_link(kvfs_fs* fs, uint64_t ino, uint64_t new_parent, const char* name,
                   struct kvfs_attr* out);
// Removes non-directory `name` from `parent`.
int kvfs_core_unlink(kvfs_fs* fs, uint64_t parent, const char* name);
// Removes empty directory `name` from `parent`.
int kvfs_core_rmdir(kvfs_fs* fs, uint64_t parent, const char* name);
// POSIX rename.
int kvfs_core_rename(kvfs_fs* fs, uint64_t parent, const char* name, uint64_t new_parent,
                     const char* new_name);

// Reads into the buffers of iov (iovcnt of them) from `offset`; *nread gets
// the bytes read, *eof whether the end of the file was reached.
int kvfs_core_read(kvfs_fs* fs, uint64_t ino, uint64_t offset, const struct iovec* iov, int iovcnt,
                   size_t* nread, bool* eof);
// Writes the buffers of iov at `offset`; durable on return if `stable`,
// else at the next kvfs_core_fsync/durable mutation. *out (if not NULL) receives
// the new attributes.
int kvfs_core_write(kvfs_fs* fs, uint64_t ino, uint64_t offset, const struct iovec* iov, int iovcnt,
                    bool stable, struct kvfs_attr* out);
// Makes everything written to `ino` durable.
int kvfs_core_fsync(kvfs_fs* fs, uint64_t ino);
// Marks `ino` open: its contents outlive the removal of its last name until
// the matching kvfs_core_close_file().
int kvfs_core_open_file(kvfs_fs* fs, uint64_t ino);
// Ends one kvfs_core_open_file().
int kvfs_core_close_file(kvfs_fs* fs, uint64_t ino);

// Called by kvfs_core_readdir() for each entry; return false to stop.
typedef bool (*kvfs_readdir_cb)(void* arg, const char* name, const struct kvfs_attr* attr,
                                uint64_t cookie);
// Lists directory `dir` after `cookie` (0: from the start) in cookie order.
// An entry's cookie resumes the listing right after it, even after other
// entries were added or removed. *eof is set when the end was reached.
int kvfs_core_readdir(kvfs_fs* fs, uint64_t dir, uint64_t cookie, kvfs_readdir_cb cb, void* arg,
                      bool* eof);
// The cookie kvfs_core_readdir() reports for entry `name` of `dir`.
int kvfs_core_cookie_of(kvfs_fs* fs, uint64_t dir, const char* name, uint64_t* cookie);
// Usage numbers of the file system.
int kvfs_core_statfs(kvfs_fs* fs, struct kvfs_statfs* out);

// --- Wire handles ---------------------------------------------------------
//
// The NFS file handle body FSAL_KVFS hands to clients (Ganesha wraps it in
// its own header carrying the export id). Layout, all little endian:
//   [0]      magic 0x4b ('K')
//   [1]      version (1)
//   [2..3]   flags, must be 0
//   [4..11]  export identity (kvfs_export_identity)
//   [12..19] inode number (never 0)
//   [20..23] check value over bytes 0..19
#define KVFS_HANDLE_SIZE 24

// Outcome of kvfs_handle_decode().
enum kvfs_handle_status {
  KVFS_HANDLE_OK = 0,
  KVFS_HANDLE_MALFORMED = 1,     // not a KVFS handle of a known version
  KVFS_HANDLE_OTHER_EXPORT = 2,  // a valid handle of another export
};

// The identity of an export: a 64-bit hash of the canonical database path
// and the inode number of the exported subtree's root. Stable across
// restarts; different for different databases or subtrees.
uint64_t kvfs_export_identity(const char* canonical_db_path, uint64_t root_ino);
// Writes the handle of `ino` in export `export_identity` to out.
void kvfs_handle_encode(uint64_t export_identity, uint64_t ino,
                        unsigned char out[KVFS_HANDLE_SIZE]);
// Checks `len` bytes at buf against the format and `export_identity`; on
// KVFS_HANDLE_OK sets *ino.
enum kvfs_handle_status kvfs_handle_decode(const void* buf, size_t len, uint64_t export_identity,
                                           uint64_t* ino);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // KVFS_FSAL_KVFS_BRIDGE_H_
