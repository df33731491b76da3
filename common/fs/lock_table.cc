#include "common/fs/lock_table.h"

#include <algorithm>

namespace kvfs {

LockTable::LockTable(size_t stripes)
    : mutexes_(std::make_unique<std::mutex[]>(stripes)), stripes_(stripes) {}

size_t LockTable::StripeOf(uint64_t id) const {
  // Mix the bits: lock ids are structured (inode numbers, hashes).
  uint64_t x = id * 0x9E3779B97F4A7C15ull;
  return static_cast<size_t>((x ^ (x >> 29)) % stripes_);
}

LockTable::MultiLock::MultiLock(LockTable* table, std::vector<uint64_t> ids) : table_(table) {
  stripes_.reserve(ids.size());
  for (uint64_t id : ids) stripes_.push_back(table->StripeOf(id));
  std::sort(stripes_.begin(), stripes_.end());
  stripes_.erase(std::unique(stripes_.begin(), stripes_.end()), stripes_.end());
  for (size_t s : stripes_) table_->mutexes_[s].lock();
}

LockTable::MultiLock::MultiLock(LockTable* table) : table_(table) {
  stripes_.resize(table->stripes_);
  for (size_t s = 0; s < stripes_.size(); ++s) stripes_[s] = s;
  for (size_t s : stripes_) table_->mutexes_[s].lock();
}

LockTable::MultiLock::~MultiLock() {
  for (auto it = stripes_.rbegin(); it != stripes_.rend(); ++it) table_->mutexes_[*it].unlock();
}

}  // namespace kvfs
