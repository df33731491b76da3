// Transaction: the read-modify-write state of one file system mutation.
//
// A mutation loads the buckets, inode locations and blocks it changes through
// a Transaction, which caches each of them once (so two views of the same
// bucket can never diverge), then Commit() encodes everything that changed
// into one WriteBatch and writes it atomically. The caller must hold the
// LockTable locks that cover every record it modifies.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/fs/location_cache.h"
#include "common/fs/schema.h"
#include "common/kv/kv_store.h"

namespace kvfs {

class Transaction {
 public:
  // `locations` (not owned) is the file system's location cache: read for
  // locations, and told of every change this transaction commits.
  Transaction(KVStore* store, LocationCache* locations)
      : store_(store), locations_cache_(locations) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // The bucket <dir, bucket>; an absent key yields an empty bucket. The
  // pointer stays valid for the transaction's life; MarkBucketDirty must be
  // called after changing it.
  Status GetBucket(Ino dir, uint64_t bucket, schema::Bucket** out);
  void MarkBucketDirty(Ino dir, uint64_t bucket);

  // The location of `ino` (ESTALE if it has none).
  Status GetLocation(Ino ino, schema::InodeLocation** out);
  // Records that `ino`'s record is now embedded in <parent, bucket>.
  void SetEmbeddedLocation(Ino ino, Ino parent, uint64_t bucket);
  // Makes `ino` detached with `record` as its record.
  void SetDetached(Ino ino, const schema::InodeRecord& record);
  // Removes `ino` from the inode index.
  void EraseLocation(Ino ino);

  // The record of `ino`, wherever it lives; marks its container dirty, as
  // callers ask for it to change it. ESTALE if `ino` does not exist.
  Status GetRecordForUpdate(Ino ino, schema::InodeRecord** out);

  // Contents of block `block` of `ino` (possibly short or empty).
  Status GetBlock(Ino ino, uint64_t block, std::string* out);
  void PutBlock(Ino ino, uint64_t block, std::string data);
  void DeleteBlock(Ino ino, uint64_t block);
  // Deletes blocks [first, end) of `ino` at a cost independent of how many
  // there are: a point delete each for up to kMaxPointDeletes blocks, one
  // range delete beyond (range deletes slow RocksDB's reads while they are
  // in its memtable, so small files never make one).
  void DeleteBlocks(Ino ino, uint64_t first, uint64_t end);
  static constexpr uint64_t kMaxPointDeletes = 256;
  // Sets *bytes to the bytes blocks [first, end) of `ino` hold, as this
  // transaction would leave them. Time is proportional to the blocks that
  // exist in the range, memory is constant.
  Status StoredBytes(Ino ino, uint64_t first, uint64_t end, uint64_t* bytes);

  // The batch for everything else (meta keys, counters).
  WriteBatch* batch() { return &batch_; }
  // Adjusts the usage counters of `range` and of the whole store.
  void AddUsage(uint64_t range, int64_t bytes, int64_t inodes);

  // Writes all changes atomically (not synced), then updates the location
  // cache (so call it with the locks held).
  Status Commit();

 private:
  struct BucketState {
    schema::Bucket bucket;
    bool dirty = false;
  };
  struct LocationState {
    schema::InodeLocation loc;
    bool exists = true;
    bool dirty = false;
  };

  KVStore* const store_;
  LocationCache* const locations_cache_;
  std::map<std::pair<Ino, uint64_t>, BucketState> buckets_;
  std::map<Ino, LocationState> locations_;
  // Blocks [first, end) of an inode, deleted by one range delete.
  struct BlockRange {
    Ino ino;
    uint64_t first;
    uint64_t end;
  };
  // True if a range delete of this transaction covers the block.
  bool RangeDeleted(Ino ino, uint64_t block) const;

  // A block is in at most one of block_puts_ and block_deletes_; both are
  // newer than every range delete.
  std::map<std::pair<Ino, uint64_t>, std::string> block_puts_;
  std::set<std::pair<Ino, uint64_t>> block_deletes_;
  std::vector<BlockRange> range_deletes_;
  WriteBatch batch_;
};

}  // namespace kvfs
