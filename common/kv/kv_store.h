// The narrow key/value interface the file system core is written against.
//
// A KVStore is an ordered map of byte-string keys to byte-string values,
// split into a fixed set of columns (RocksDB column families). It offers
// point reads, atomic multi-key write batches, ordered iteration from a key,
// range deletion, signed 64-bit counters, read snapshots and an explicit
// durability barrier. Implementations: RocksDB (production), an in-memory
// map (unit tests) and a fault-injecting wrapper (error-path tests).
//
// All methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kvfs {

// The columns of the store. Each holds one kind of key (see docs/schema.md).
enum class Column : uint8_t {
  kMeta = 0,     // superblock, inode-range records, usage counters, orphans
  kEntries = 1,  // directory entries: <parent ino, name hash> -> entries
  kInodes = 2,   // inode index: ino -> location of its attributes
  kBlocks = 3,   // file contents too large to inline: <ino, block> -> bytes
};
inline constexpr int kNumColumns = 4;

// The column's name, as used for RocksDB column families and in dumps.
const char* ColumnName(Column c);

// An ordered list of mutations applied atomically by KVStore::Write: after a
// crash either all of them are visible or none.
class WriteBatch {
 public:
  enum class OpType : uint8_t { kPut, kDelete, kDeleteRange, kAdd };
  struct Op {
    OpType type;
    Column column;
    std::string key;    // for kDeleteRange: first key deleted
    std::string value;  // for kDeleteRange: first key kept; kAdd: 8-byte delta
  };

  void Put(Column c, std::string_view key, std::string_view value);
  void Delete(Column c, std::string_view key);
  // Deletes every key k with begin <= k < end.
  void DeleteRange(Column c, std::string_view begin, std::string_view end);
  // Adds `delta` to the signed 64-bit counter stored at `key` (a missing key
  // counts as 0). Read the counter back with DecodeCounter(value).
  void Add(Column c, std::string_view key, int64_t delta);

  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  // Total bytes of keys and values, a rough measure of the batch's cost.
  size_t ByteSize() const { return bytes_; }
  void Clear() {
    ops_.clear();
    bytes_ = 0;
  }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

// Encoding of counters maintained by WriteBatch::Add (8 bytes, little endian).
std::string EncodeCounter(int64_t v);
// Decodes a counter value; a value of the wrong size decodes as 0.
int64_t DecodeCounter(std::string_view value);

// A consistent read-only view of the store as of its creation. Released when
// destroyed; must not outlive the store that made it.
class Snapshot {
 public:
  virtual ~Snapshot() = default;
};

// Options for reads.
struct ReadOptions {
  // Read as of this snapshot; nullptr reads the latest state.
  const Snapshot* snapshot = nullptr;
};

// Options for iterators.
struct IteratorOptions {
  const Snapshot* snapshot = nullptr;
  // If non-empty, the iterator stops before the first key >= upper_bound.
  std::string upper_bound;
  // Whether the blocks this iterator reads are kept in the store's block
  // cache. False for one-pass scans (an export), which then neither evict
  // the working set nor pay for the cache's insertions and evictions.
  bool fill_cache = true;
};

// Iterates the keys of one column in ascending byte order.
class Iterator {
 public:
  virtual ~Iterator() = default;
  // Positions at the first key >= target.
  virtual void Seek(std::string_view target) = 0;
  // Positions at the last key < target (or the last key if target is empty).
  virtual void SeekBefore(std::string_view target) = 0;
  virtual void Next() = 0;
  // True while positioned at an entry; false at the end or on error.
  virtual bool Valid() const = 0;
  // Valid only while Valid(); invalidated by the next move.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Non-OK if iteration stopped because of an error rather than the end.
  virtual Status status() const = 0;
};

struct WriteOptions {
  // Make the batch durable (WAL synced) before Write returns. Prefer
  // sync=false followed by KVStore::Sync(), which commits concurrent
  // writers' batches with one sync (group commit).
  bool sync = false;
};

// Loads many new keys into a KVStore at once (KVStore::NewBulkLoader), e.g. a
// whole subtree built by the ingest sidecar.
//
// Keys are added column by column, each column's keys in strictly ascending
// byte order (columns may be interleaved). Commit() then makes all of them
// visible atomically and durably, with the effect of one synced WriteBatch of
// Puts: after a crash either every key is there or none. A key that already
// exists is overwritten. Destroying a loader without a successful Commit()
// discards what was added and leaves the store untouched; so does a failed
// Commit(). Loads are fastest when their keys lie in a key range the store
// holds nothing in (a fresh inode range): RocksDB then places the files
// without rewriting any existing data.
//
// Not thread-safe: one thread adds and commits.
class BulkLoader {
 public:
  virtual ~BulkLoader() = default;
  // Adds key -> value to column c. InvalidArgument if the key is not greater
  // than the previous key added to that column, or after Commit().
  virtual Status Add(Column c, std::string_view key, std::string_view value) = 0;
  // Makes every key added visible and durable, atomically. Call at most
  // once.
  virtual Status Commit() = 0;
  // Bytes of keys and values added so far.
  virtual uint64_t BytesAdded() const = 0;
};

// The key order BulkLoader::Add demands, for loader implementations: each
// column's keys strictly ascending.
class BulkLoadKeyOrder {
 public:
  // OK if `key` may be added to column `c` now; InvalidArgument for a bad
  // column or a key not greater than the column's previous one.
  Status Check(Column c, std::string_view key) const;
  // Records `key` as column c's last key (after a successful Check and add).
  void Added(Column c, std::string_view key);

 private:
  bool has_last_[kNumColumns] = {};
  std::string last_[kNumColumns];
};

class KVStore {
 public:
  virtual ~KVStore() = default;

  // Reads the value at `key`. NotFound (ENOENT) if absent.
  virtual Status Get(const ReadOptions& opts, Column c, std::string_view key,
                     std::string* value) = 0;
  // Applies the batch atomically.
  virtual Status Write(const WriteOptions& opts, const WriteBatch& batch) = 0;
  // A new iterator over column `c`, not yet positioned.
  virtual std::unique_ptr<Iterator> NewIterator(Column c, const IteratorOptions& opts) = 0;
  // A snapshot of the current state.
  virtual std::unique_ptr<Snapshot> GetSnapshot() = 0;
  // Durability barrier: every Write that returned before this call is on
  // stable storage when it returns. Concurrent callers share one sync.
  virtual Status Sync() = 0;
  // A short name of the implementation ("rocksdb", "memory", ...).
  virtual std::string Name() const = 0;
  // A new BulkLoader. `staging_dir` is a directory on the store's file
  // system for the loader's temporary files (created if missing; the loader
  // removes what it creates there); stores that need no files ignore it. This
  // default implementation buffers everything in one WriteBatch, written
  // synced by Commit(): correct for any store, but memory grows with the
  // load (the memory store uses it). RocksDB writes SST files instead.
  virtual Status NewBulkLoader(const std::string& staging_dir, std::unique_ptr<BulkLoader>* out);
  // The implementation's own statistics, for monitoring: (name, value)
  // pairs whose names are lower-case letters, digits and '_' (RocksDB:
  // "estimate_num_keys", "live_sst_files_size_bytes"...; docs/operations.md).
  // Cheap enough for every metrics scrape. This default has none.
  virtual std::vector<std::pair<std::string, uint64_t>> Statistics();
  // Writes a consistent copy of the store as of one moment (every Write
  // that returned before the call, nothing after) into new directory `dir`
  // (its parent must exist; EEXIST if it exists), openable as a store of the
  // same backend, while the store stays open and in use. RocksDB hard-links
  // its table files where it can. This default: ENOTSUP.
  virtual Status Checkpoint(const std::string& dir);

  // Convenience wrappers.
  Status Get(Column c, std::string_view key, std::string* value) {
    return Get(ReadOptions(), c, key, value);
  }
  Status Put(Column c, std::string_view key, std::string_view value);
  Status Delete(Column c, std::string_view key);
};

}  // namespace kvfs
