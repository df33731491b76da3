#include "common/fs/inode_allocator.h"

#include <algorithm>
#include <limits>

namespace kvfs {

namespace {
// Range numbers are 32 bits.
constexpr uint64_t kRangeLimit = 1ull << (64 - schema::kRangeShift);
}  // namespace

InodeAllocator::InodeAllocator(KVStore* store, uint64_t chunk) : store_(store), chunk_(chunk) {}

Status InodeAllocator::Recover() {
  auto it = store_->NewIterator(Column::kMeta, IteratorOptions());
  it->SeekBefore(schema::RangeKey(std::numeric_limits<uint64_t>::max()));
  uint64_t last = 0;
  if (it->Valid() && !schema::ParseRangeKey(it->key(), &last)) last = 0;
  KVFS_RETURN_IF_ERROR(it->status());
  std::lock_guard<std::mutex> l(next_range_mu_);
  next_range_ = last + 1;
  return Status::OK();
}

InodeAllocator::RangeState* InodeAllocator::StateFor(uint64_t range) {
  {
    std::shared_lock<std::shared_mutex> l(ranges_mu_);
    auto it = ranges_.find(range);
    if (it != ranges_.end()) return it->second.get();
  }
  std::unique_lock<std::shared_mutex> l(ranges_mu_);
  auto& slot = ranges_[range];
  if (!slot) slot = std::make_unique<RangeState>();
  return slot.get();
}

Status InodeAllocator::Allocate(uint64_t range, Ino* ino) {
  RangeState* st = StateFor(range);
  std::lock_guard<std::mutex> l(st->mu);
  if (!st->loaded) {
    std::string value;
    Status s = store_->Get(Column::kMeta, schema::RangeKey(range), &value);
    if (s.IsNotFound()) {
      return Status::Corruption("inode range " + std::to_string(range) + " has no record");
    }
    KVFS_RETURN_IF_ERROR(s);
    KVFS_RETURN_IF_ERROR(schema::DecodeRangeRecord(value, &st->record));
    // Numbers below the stored mark may have been handed out before a
    // restart: start above all of them.
    st->next = st->record.high_water;
    st->loaded = true;
  }
  if (st->next > schema::kLocalMask) {
    return Status::FromErrno(ENOSPC, "inode range " + std::to_string(range) + " is exhausted");
  }
  if (st->next >= st->record.high_water) {
    schema::RangeRecord raised = st->record;
    raised.high_water = st->next + chunk_;
    WriteOptions wo;
    wo.sync = true;
    WriteBatch b;
    b.Put(Column::kMeta, schema::RangeKey(range), schema::EncodeRangeRecord(raised));
    KVFS_RETURN_IF_ERROR(store_->Write(wo, b));
    st->record = raised;
  }
  *ino = schema::MakeIno(range, st->next++);
  return Status::OK();
}

Status InodeAllocator::WithRangeHeld(uint64_t range, const std::function<Status()>& body) {
  RangeState* st = StateFor(range);
  std::lock_guard<std::mutex> l(st->mu);
  Status s = body();
  st->loaded = false;
  return s;
}

Status InodeAllocator::NewRange(uint64_t* range, schema::RangeRecord* record) {
  std::lock_guard<std::mutex> l(next_range_mu_);
  if (next_range_ >= kRangeLimit) return Status::FromErrno(ENOSPC, "no inode ranges left");
  *range = next_range_++;
  record->owner = schema::RangeOwnerIno(*range);
  // Local 1 is the owner itself; allocation in the range starts at 2.
  record->high_water = 2;
  return Status::OK();
}

Status InodeAllocator::UseRange(uint64_t range, schema::RangeRecord* record) {
  std::lock_guard<std::mutex> l(next_range_mu_);
  if (range == 0 || range >= kRangeLimit) {
    return Status::FromErrno(ENOSPC, "no inode range " + std::to_string(range));
  }
  next_range_ = std::max(next_range_, range + 1);
  record->owner = schema::RangeOwnerIno(range);
  record->high_water = 2;
  return Status::OK();
}

Status InodeAllocator::ReserveRange(uint64_t at_least, uint64_t* range) {
  std::lock_guard<std::mutex> l(next_range_mu_);
  const uint64_t r = std::max(next_range_, at_least);
  if (r >= kRangeLimit) return Status::FromErrno(ENOSPC, "no inode ranges left");
  *range = r;
  next_range_ = r + 1;
  return Status::OK();
}

}  // namespace kvfs
