// Metrics: what a process serving a store (server/ServerStack: the NFS FSAL,
// kvfs-fuse) reports to Prometheus over HTTP (docs/operations.md#monitor):
//
//   kvfs_operation_duration_seconds{op}   histogram of FileSystem operations
//                                         by type (op="lookup", "read"...)
//   kvfs_operation_errors_total{op}       those that failed
//   kvfs_read_bytes_total, kvfs_written_bytes_total
//                                         file contents read and written
//   kvfs_kv_<statistic>{backend}          the key/value store's own
//                                         statistics (KVStore::Statistics),
//                                         read at each scrape
//   kvfs_cache_<load|eviction|writeback>_duration_seconds{result}
//   kvfs_cache_<load|eviction|writeback>_bytes_total{result}
//                                         the cache manager's work
//   kvfs_store_request_duration_seconds{op}, kvfs_store_request_errors_total{op},
//   kvfs_store_read_bytes_total, kvfs_store_written_bytes_total
//                                         the persistent store's requests
//
// Recording is thread-safe and costs no allocation; the decorators that call
// it are in metered_file_system.h and metered_store.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kvfs {
class KVStore;
}
namespace kvfs::cache {
struct CacheEvent;
}

namespace kvfs::metrics {

// The FileSystem operations counted (the op label: OpName).
enum class Op {
  kLookup,
  kGetAttr,
  kSetAttr,
  kCreate,
  kMkdir,
  kMknod,
  kSymlink,
  kReadlink,
  kLink,
  kUnlink,
  kRmdir,
  kRename,
  kRead,
  kWrite,
  kDataExtents,
  kFsync,
  kSync,
  kOpenFile,
  kCloseFile,
  kReadDir,
  kCookieOf,
  kStatFs,
  kCount
};
const char* OpName(Op op);

// The persistent store's requests counted (the op label: StoreOpName).
enum class StoreOp {
  kList,
  kStat,
  kOpenRead,
  kRead,
  kOpenWrite,
  kAppend,
  kCommit,
  kDelete,
  kClaimRange,
  kHighestClaimedRange,
  kClaimName,
  kReleaseName,
  kIsNameClaimed,
  kCount
};
const char* StoreOpName(StoreOp op);

class Metrics {
 public:
  // Serves the metrics at http://LISTEN/metrics: `listen` is "PORT"
  // (loopback only: 127.0.0.1:PORT) or "ADDRESS:PORT" ("0.0.0.0:9587" for
  // every address). Port 0 picks a free one (port()). EINVAL for a malformed
  // `listen`, EADDRINUSE (with the address) if it cannot listen.
  static Status Start(const std::string& listen, std::unique_ptr<Metrics>* out);
  // Stops serving (waits for a scrape in progress).
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The TCP port it listens on.
  int port() const;

  // One FileSystem operation that took `seconds`.
  void RecordOperation(Op op, double seconds, bool ok);
  // File contents read or written.
  void AddBytesRead(uint64_t bytes);
  void AddBytesWritten(uint64_t bytes);
  // One persistent store request that took `seconds`.
  void RecordStoreRequest(StoreOp op, double seconds, bool ok);
  void AddStoreBytesRead(uint64_t bytes);
  void AddStoreBytesWritten(uint64_t bytes);
  // One load, eviction or write-back of the cache manager.
  void RecordCacheEvent(const cache::CacheEvent& event);

  // Reports `kv`'s Statistics() at each scrape; null stops it. Returns once
  // no scrape uses the previous store any more, so that it can be closed.
  void SetKVStore(KVStore* kv);

 private:
  struct Impl;
  explicit Metrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvfs::metrics
