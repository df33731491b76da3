// InodeAllocator: hands out inode numbers that are never reused.
//
// Each range (see schema.h) has a persistent high-water mark in its range
// record. The allocator reserves local numbers in chunks: it raises the mark
// durably before handing out the numbers below it, so after a crash or
// restart allocation resumes above every number ever handed out. Each range
// has its own mutex, held only to bump a counter (and, once per chunk, for
// one synced write), so allocation is never a global lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "common/fs/schema.h"
#include "common/kv/kv_store.h"

namespace kvfs {

class InodeAllocator {
 public:
  // `chunk`: how many numbers one durable reservation covers.
  InodeAllocator(KVStore* store, uint64_t chunk);

  // Reads the highest range number in use from the store.
  Status Recover();

  // A fresh inode number in `range`, whose record must exist in the store.
  Status Allocate(uint64_t range, Ino* ino);

  // Picks an unused range number for a new top-level directory. The caller
  // writes the returned record (owner = RangeOwnerIno(range)) in the batch
  // that creates the directory; nothing is reserved if that batch fails.
  Status NewRange(uint64_t* range, schema::RangeRecord* record);

  // Runs `body` (which rewrites `range`'s record in the store) with
  // allocation in the range held off; the record is read again on the next
  // allocation, so the allocator never writes back a stale copy.
  Status WithRangeHeld(uint64_t range, const std::function<Status()>& body);

  // Picks the range number max(at_least, next unused) for a tree that will
  // be bulk loaded; later NewRange calls continue above it. ENOSPC past the
  // last range number.
  Status ReserveRange(uint64_t at_least, uint64_t* range);
  // Starts the record of range number `range`, chosen by the caller (a
  // range claimed for it elsewhere: docs/coordination.md), like NewRange;
  // later NewRange calls continue above it. The caller checks that the
  // range has no record. ENOSPC past the last range number.
  Status UseRange(uint64_t range, schema::RangeRecord* record);

 private:
  struct RangeState {
    std::mutex mu;
    bool loaded = false;
    schema::RangeRecord record;
    uint64_t next = 0;  // next local number to hand out
  };
  RangeState* StateFor(uint64_t range);

  KVStore* const store_;
  const uint64_t chunk_;
  std::shared_mutex ranges_mu_;
  std::map<uint64_t, std::unique_ptr<RangeState>> ranges_;
  std::mutex next_range_mu_;
  uint64_t next_range_ = 1;
};

}  // namespace kvfs
