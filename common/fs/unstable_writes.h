// UnstableWrites: which inodes may still have unstable (not yet synced)
// writes, so that an Fsync whose writes a later store sync already made
// durable returns without syncing again.
//
// An NFS client writes a file UNSTABLE and then sends COMMIT; commit2 is
// called twice per file in an NFSv3 untar (docs/benchmarks.md), and with many requests in flight
// the CREATEs and SETATTRs of other files sync the store all the time. Each of those syncs makes
// every write that returned before it durable, so a COMMIT that comes after such a sync has nothing
// left to wait for.
//
// Bookkeeping in fixed memory: every unstable write takes the next number
// of a counter after it returned from the store, and raises the slot of its
// inode (inodes share 4096 slots by hash) to that number. Every sync made
// through Sync() takes the counter's value before it starts; when it
// succeeds, everything up to that value is durable. An inode is durable
// when its slot is not above the durable value. A shared slot can only
// make an Fsync sync when it need not (never skip one it needs).
//
// Thread-safe; lock-free.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "common/fs/file_system.h"
#include "common/kv/kv_store.h"

namespace kvfs {

class UnstableWrites {
 public:
  // Records that an unstable write to `ino` has returned from the store.
  void Noted(Ino ino);
  // True if every unstable write to `ino` noted before this call is on
  // stable storage (made so by a Sync() that succeeded).
  bool Durable(Ino ino) const;
  // store->Sync(), recording on success that every write noted before this
  // call is durable. Every sync of the store that should count must go
  // through here (a sync made elsewhere is merely not taken into account).
  Status Sync(KVStore* store);

 private:
  static constexpr int kSlotBits = 12;
  static constexpr size_t kSlots = size_t{1} << kSlotBits;
  static size_t SlotOf(Ino ino);

  std::atomic<uint64_t> noted_{0};
  std::atomic<uint64_t> durable_{0};
  std::array<std::atomic<uint64_t>, kSlots> slots_{};
};

}  // namespace kvfs
