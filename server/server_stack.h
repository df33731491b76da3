// ServerStack: everything a process that serves a KVFS store runs on top of
// it, opened in one call and closed in the right order. Both front ends use
// it: the NFS FSAL (fsal_kvfs/kvfs_bridge.cc) and the FUSE mount (fuse/).
//
//   1. the key/value store in db_path (kv_backend.h), created if missing;
//   2. the FileSystem over it (common/fs/file_system.h);
//   3. with a persistent store: the cache manager (cache/tree_cache.h)
//      wrapping that FileSystem, so the top level shows the store's tarballs,
//      claiming top-level names through the coordination (etcd) if one is
//      set;
//   4. with a metrics address: the metrics endpoint (metrics/metrics.h), and
//      the FileSystem and persistent store wrapped to count into it;
//   5. the control server on ControlSocketPath(db_path) (ingest/
//      control_server.h), through which kvfs-ingest/-export/-evict and
//      `kvfs cache` reach the store while this process holds it. It is not
//      essential: if it cannot start, the stack still serves and
//      control_error() says why.
//
// Every backend allows one opening process, so while a ServerStack is open no
// other process can open the store (Open fails with the backend's lock error).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/fs/file_system.h"
#include "common/status.h"
#include "progress/transfer_progress.h"

namespace kvfs::cache {
class TreeCache;
}
namespace kvfs::ingest {
class ControlServer;
}
namespace kvfs::metrics {
class Metrics;
}

namespace kvfs::server {

struct ServerStackOptions {
  // Directory of the key/value store; created (with its parents) if
  // missing. Must be absolute.
  std::string db_path;
  // Key/value backend; "": the one recorded in db_path, else the default.
  std::string kv_backend;
  // The backend's options, "name=value,...".
  std::string kv_options;

  // The persistent store (the tarballs): "" for none (no cache manager; the
  // store is served as it is). Otherwise its URL or directory (store/store.h,
  // docs/stores.md).
  std::string persistent_store;
  // The store plugin's settings ("s3_endpoint" -> "http://..."; store/store.h).
  std::map<std::string, std::string> store_options;
  // The coordination the servers sharing the persistent store use
  // (coord/coordination.h, docs/coordination.md): "" for none (claims in the
  // persistent store itself), or "etcd://HOST:PORT[,HOST:PORT...]/PREFIX".
  // Needs a persistent store. An etcd that does not answer fails Open.
  std::string coordination;
  // The length of this server's etcd lease, which tree ownership lives
  // under (coord::CoordinationOptions::lease_seconds): how long a dead
  // server's trees stay its own, and how long a server cut off from etcd
  // goes on changing them. coord::kMinLeaseSeconds..kMaxLeaseSeconds (2 to
  // 3600); Open refuses other values.
  int coordination_lease_seconds = 10;
  // Cache manager settings (cache::TreeCacheOptions; docs/cache.md).
  uint64_t cache_quota_bytes = 0;
  uint64_t cache_quota_inodes = 0;
  int cache_refresh_seconds = 60;
  int cache_writeback_delay_seconds = 30;
  int cache_retry_seconds = 10;
  // Compression of tarballs written back: "" or "none", "gzip", "zstd", "xz".
  std::string cache_compression;

  // Where to serve Prometheus metrics (docs/operations.md#monitor): "" for
  // nowhere (the default), "PORT" for 127.0.0.1:PORT, or "ADDRESS:PORT".
  std::string metrics_listen;

  // Receives the cache manager's, the persistent store's and the control
  // server's log lines (load and write-back failures, conflicts, retries),
  // from any thread. Null: stderr.
  std::function<void(const std::string&)> log;
};

// Resolves absolute `path` ("/a/b") from the root of `fs` without following
// symlinks: the directory an NFS export or a FUSE mount serves as its root
// (its `subtree`). ENOTDIR if a non-final component is not a directory. With
// `create`, missing components are created as directories (mode 0755, owned
// by root).
Status ResolveSubtree(FileSystem* fs, std::string_view path, bool create, Attributes* out);

// Creates directory `db_path` (and its parents) if missing and sets *out to
// its canonical path (symlinks, "." and ".." resolved): the identity of a
// store. EINVAL if db_path is not absolute, ENOTDIR if it is not a directory.
Status CanonicalDbPath(const std::string& db_path, std::string* out);

class ServerStack {
 public:
  // Opens the stack described by `options` (see the file comment). On error
  // nothing stays open and the Status says which layer failed and why.
  static Status Open(const ServerStackOptions& options, std::unique_ptr<ServerStack>* out);
  // Stops the control server, then the cache manager's thread, then closes
  // the store. Call Sync first to make a clean shutdown durable.
  ~ServerStack();
  ServerStack(const ServerStack&) = delete;
  ServerStack& operator=(const ServerStack&) = delete;

  // The canonical database path (CanonicalDbPath).
  const std::string& db_path() const { return db_path_; }
  // What the front end serves: the cache manager if there is one, else the
  // core FileSystem.
  FileSystem* fs() const { return fs_.get(); }
  // The cache manager, or null without a persistent store.
  cache::TreeCache* cache() const { return cache_; }

  // Calls `listener` (registered under `key`; one per key) with each inode
  // whose cached state a change made outside the front end's own operations
  // made wrong: a tree ingested, replaced or evicted through the control
  // socket, a tree the cache manager loaded or evicted (the root; the top
  // directory). Listeners run on the control server's or the cache manager's
  // thread, never inside a FileSystem operation. ENOTCONN (with the reason)
  // if the control server did not start.
  Status AddInvalidateListener(const void* key, std::function<void(Ino)> listener);
  // Unregisters `key`'s listener; once this returns it is not called again.
  void RemoveInvalidateListener(const void* key);
  // The port the metrics endpoint listens on, 0 without one.
  int metrics_port() const;
  // Why the control server is not running ("" if it is).
  const std::string& control_error() const { return control_error_; }

 private:
  struct Relay;
  ServerStack();

  std::string db_path_;
  std::unique_ptr<Relay> relay_;
  std::unique_ptr<metrics::Metrics> metrics_;  // outlives fs_, which counts into it
  // Loads, write-backs, ingests and exports in progress (the cache and the
  // control server register there); outlives both.
  std::unique_ptr<progress::ProgressRegistry> progress_;
  std::unique_ptr<FileSystem> fs_;
  cache::TreeCache* cache_ = nullptr;  // fs_ itself, if there is a cache manager
  std::unique_ptr<ingest::ControlServer> control_;
  std::string control_error_;
};

}  // namespace kvfs::server
