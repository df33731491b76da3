#include "common/fs/unstable_writes.h"

namespace kvfs {

size_t UnstableWrites::SlotOf(Ino ino) {
  // Fibonacci hashing: neighbouring inode numbers land in different slots.
  return static_cast<size_t>((ino * 0x9E3779B97F4A7C15ull) >> (64 - kSlotBits));
}

void UnstableWrites::Noted(Ino ino) {
  const uint64_t n = noted_.fetch_add(1, std::memory_order_acq_rel) + 1;
  std::atomic<uint64_t>& slot = slots_[SlotOf(ino)];
  uint64_t seen = slot.load(std::memory_order_acquire);
  while (seen < n && !slot.compare_exchange_weak(seen, n, std::memory_order_acq_rel)) {
  }
}

bool UnstableWrites::Durable(Ino ino) const {
  return slots_[SlotOf(ino)].load(std::memory_order_acquire) <=
         durable_.load(std::memory_order_acquire);
}

Status UnstableWrites::Sync(KVStore* store) {
  // Every write noted up to `covered` returned from the store before this
  // sync was asked for, so KVStore::Sync's promise covers it.
  const uint64_t covered = noted_.load(std::memory_order_acquire);
  Status s = store->Sync();
  if (!s.ok()) return s;
  uint64_t seen = durable_.load(std::memory_order_acquire);
  while (seen < covered &&
         !durable_.compare_exchange_weak(seen, covered, std::memory_order_acq_rel)) {
  }
  return s;
}

}  // namespace kvfs
