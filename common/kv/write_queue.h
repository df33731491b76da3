// WriteQueue: group commit for stores that take one writer at a time and
// make each commit durable by itself (LMDB, LevelDB with synced writes).
//
// Writers call Write(batch) concurrently. One of them, the leader, takes the
// batches of every writer waiting at that moment (up to a byte budget) and
// hands them to `apply` as one group, which must apply them in order,
// atomically and durably (one transaction, one sync). The others wait and
// return the group's result. So N concurrent writers pay for one commit,
// while each Write still returns only once its batch is durable.
//
// If a group of several batches fails, each batch is applied again alone, so
// one bad batch (e.g. too big for the store) never fails another writer's.
//
// `apply` is never called concurrently with itself, so it may do
// read-modify-write (counters) against the store without further locking.
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "common/kv/kv_store.h"
#include "common/status.h"

namespace kvfs {

class WriteQueue {
 public:
  using ApplyFn = std::function<Status(std::span<const WriteBatch* const> batches)>;

  // A group takes batches until their ByteSize() sum exceeds
  // `max_group_bytes` (a single larger batch forms a group alone).
  explicit WriteQueue(ApplyFn apply, size_t max_group_bytes = 8 << 20);

  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  // Applies `batch` (alone or with others) and returns its result.
  Status Write(const WriteBatch& batch);

  // Number of groups formed so far (for tests and statistics); a failed
  // group retried batch by batch counts once.
  uint64_t Groups() const;

 private:
  struct Writer;

  const ApplyFn apply_;
  const size_t max_group_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Writer*> queue_;  // front is the leader while it applies
  uint64_t groups_ = 0;
};

}  // namespace kvfs
