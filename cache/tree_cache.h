// TreeCache: the cache manager. A FileSystem whose top level shows every
// tarball of a persistent store, loads a tarball's tree on first touch,
// evicts least recently used trees under a quota and writes changed trees
// back as whole tarballs (docs/cache.md).
//
// It wraps the core FileSystem and forwards every operation; what it adds:
//   - Each tarball NAME.tar[.gz|.zst|.xz] of the store is a top-level
//     directory NAME. One that is not loaded is a stub (TreeLifecycle::AddStubs):
//     listed, with attributes, without fetching anything.
//   - The first operation that needs a tree's contents (a lookup or readdir
//     inside it, getattr or read of anything below its top) waits while the
//     tarball is fetched and filled into the stub in place
//     (IngestOptions::fill_top); concurrent first touches share one load. A
//     load that fails gives EIO with the reason, logged, and is tried again
//     at the next touch after retry_seconds.
//   - Under a quota (bytes and/or inodes of the key/value store), loading
//     first evicts the least recently used trees that are not in use: a
//     changed tree is written back first, then reset to a stub
//     (TreeLifecycle::ResetToStub). A tree with open files or operations in
//     progress is never evicted. A clean tree loaded again from the same
//     tarball gets the same inode numbers, so clients' handles stay valid.
//   - A tree is dirty from the first change after its last write-back (made
//     durable before that change runs) until a write-back that no change
//     overlapped; dirty trees are written back on demand, on eviction and
//     writeback_delay_seconds after their last change. A tree whose tarball
//     another writer replaced since this server loaded (or wrote) it is never
//     written over it: it goes to NAME.conflict-<server>-<UTC time>.tar
//     (logged, and shown by List).
//   - mkdir in the root claims the name first (in the persistent store,
//     PersistentStore::ClaimName, or in etcd with a coordination:
//     coord/coordination.h): of two servers sharing a store, the
//     loser's client gets EEXIST. Non-directories cannot be created in the
//     root (EPERM), top-level trees cannot be renamed (EXDEV) and those
//     backed by a tarball cannot be removed (EPERM).
//   - With a coordination that numbers trees (etcd), each tarball version
//     is loaded into the inode range claimed for it there, so every server
//     presents the same numbers; and a tree is changed only by the server
//     that owns it (EROFS elsewhere; docs/coordination.md).
//   - StatFs reports the quota as the capacity.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/fs/file_system.h"
#include "common/status.h"
#include "coord/coordination.h"
#include "ingest/persistent_store.h"
#include "progress/transfer_progress.h"

namespace kvfs::cache {

// One load, eviction or write-back of a tree, for monitoring
// (TreeCacheOptions::observe).
struct CacheEvent {
  enum class Kind { kLoad, kEviction, kWriteBack };
  Kind kind = Kind::kLoad;
  bool ok = false;
  // Loads and write-backs: the tarball's size (0 if a load failed before
  // finding it); evictions: the tree's bytes in the key/value store.
  uint64_t bytes = 0;
  double seconds = 0;
};

struct TreeCacheOptions {
  // Quota of the key/value store; 0: none. Usage is what the core's usage
  // counters report (StatFs), stubs included (one inode each).
  uint64_t quota_bytes = 0;
  uint64_t quota_inodes = 0;
  // Seconds between listings of the persistent store; 0: only on demand
  // (Refresh).
  int refresh_seconds = 60;
  // Seconds after a tree's last change before it is written back; 0: only
  // on demand and on eviction.
  int writeback_delay_seconds = 30;
  // Seconds a failed load is remembered: touches within them fail at once
  // with the same error; the first touch after them tries again.
  int retry_seconds = 10;
  // Compression of tarballs written back.
  ingest::Compression compression = ingest::Compression::kNone;
  // Staging directory for loads (on the key/value store's file system).
  std::string staging_dir;
  // Recorded with name claims ("host=... pid=...").
  std::string owner;
  // This server's name in conflict tarballs (NAME.conflict-<server>-<UTC
  // time>.tar); "": the host name.
  std::string server_name;
  // Where top-level names are claimed (shared with whoever else uses it);
  // null: in the persistent store itself (coord::StoreClaims).
  std::shared_ptr<coord::Coordination> coordination;
  NameHasher hasher = DefaultNameHasher();
  // Called with a line for the operator's log: load failures, write-back
  // failures, conflicts. May be called from any thread. Null: stderr.
  std::function<void(const std::string&)> log;
  // Called (from the cache's own thread, never from inside an operation)
  // with each inode whose cached attributes or contents are now wrong: the
  // top of a tree that was loaded or evicted, the root when trees appeared
  // or went away.
  std::function<void(Ino)> invalidate;
  // Called after every load (successful or not), eviction and write-back
  // (of a dirty tree), from the thread that did it, with no lock held.
  // Null: none.
  std::function<void(const CacheEvent&)> observe;
  // If not null (must outlive the cache): loads and write-backs register
  // their progress there while they run (CachedTree::transfer).
  progress::ProgressRegistry* progress = nullptr;
};

// A tree as the operator sees it (TreeCache::List).
struct CachedTree {
  std::string name;
  Ino ino = 0;
  // "unloaded", "loading", "clean", "dirty" or "evicting".
  std::string state;
  uint64_t bytes = 0;  // usage in the key/value store, the top included
  uint64_t inodes = 0;
  // Seconds since the epoch of the last operation on it (0: never used
  // since this server started).
  int64_t last_use = 0;
  uint32_t open_files = 0;
  uint32_t in_use = 0;  // operations in progress
  // Its tarball in the persistent store ("" if it has none yet).
  std::string object;
  // Why its last load failed ("" if it did not).
  std::string last_error;
  // A load or write-back of it in progress (only with
  // TreeCacheOptions::progress): how far it is.
  bool transferring = false;
  progress::ProgressSnapshot transfer;
  // The conflict tarball its last write-back wrote instead of replacing a
  // tarball another writer had replaced meanwhile ("" if none since this
  // server started).
  std::string conflict;
};

// The id under which the load or write-back of `tree` registers its progress
// (TreeCacheOptions::progress; what `kvfs cache load` asks about).
std::string TransferIdOf(const std::string& tree);

// Usage against the quota (TreeCache::Quota).
struct QuotaInfo {
  uint64_t quota_bytes = 0;  // 0: none
  uint64_t quota_inodes = 0;
  uint64_t used_bytes = 0;
  uint64_t used_inodes = 0;
  uint64_t trees = 0;
  uint64_t loaded = 0;
  uint64_t dirty = 0;
};

class TreeCache : public FileSystem {
 public:
  // Wraps `base` (owned) with the persistent store `store` (owned): adopts
  // the top-level directories `base` has (a loaded one without a cache
  // record, such as one ingested by kvfs-ingest, counts as dirty), lists the
  // store, adds stubs for its new tarballs and starts the background thread
  // (refresh, delayed write-back, quota).
  static Status Open(std::unique_ptr<FileSystem> base,
                     std::unique_ptr<ingest::PersistentStore> store,
                     const TreeCacheOptions& options, std::unique_ptr<TreeCache>* out);
  // Stops the background thread. Dirty trees stay dirty (their state is
  // durable) and are written back by the next server.
  ~TreeCache() override;

  // ---- Operator commands ------------------------------------------------------
  // The trees whose names sort after `after` ("": from the first), sorted by
  // name, at most `limit` of them; *more says whether trees follow. The
  // usage of each tree is read from the store, so a page costs `limit`
  // reads at most, whatever the number of trees.
  virtual Status ListPage(const std::string& after, size_t limit, std::vector<CachedTree>* out,
                          bool* more) = 0;
  // Every tree, sorted by name (ListPage without a limit).
  Status List(std::vector<CachedTree>* out);
  // Loads tree `name` now (ENOENT if there is none).
  virtual Status Load(const std::string& name) = 0;
  // Writes tree `name` back now if it is dirty; *written says whether it was.
  virtual Status Flush(const std::string& name, bool* written) = 0;
  // Writes every dirty tree back.
  virtual Status FlushAll() = 0;
  // Evicts tree `name` (written back first if dirty); EBUSY while it has
  // open files or operations in progress, or is loading.
  virtual Status Drop(const std::string& name) = 0;
  // Lists the persistent store again now (see TreeCacheOptions).
  virtual Status Refresh() = 0;
  virtual Status Quota(QuotaInfo* out) = 0;
  // The persistent store (not owned by the caller).
  virtual ingest::PersistentStore* persistent_store() = 0;
  // The wrapped file system.
  virtual FileSystem* base() = 0;
};

}  // namespace kvfs::cache
