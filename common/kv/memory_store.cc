#include "common/kv/memory_store.h"

#include <array>
#include <atomic>
#include <iterator>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>

#include "common/kv/error_iterator.h"

namespace kvfs {
namespace {

using Map = std::map<std::string, std::string, std::less<>>;
using MapPtr = std::shared_ptr<const Map>;
using Columns = std::array<MapPtr, kNumColumns>;

bool ValidColumn(Column c) { return static_cast<int>(c) < kNumColumns; }

class MemorySnapshot final : public Snapshot {
 public:
  MemorySnapshot(const KVStore* store, Columns columns)
      : store_(store), columns_(std::move(columns)) {}
  const KVStore* store() const { return store_; }
  const MapPtr& column(Column c) const { return columns_[static_cast<int>(c)]; }

 private:
  const KVStore* const store_;  // the store it was taken from
  const Columns columns_;
};

// Iterates an immutable version of one column.
class MemoryIterator final : public Iterator {
 public:
  MemoryIterator(MapPtr map, std::string upper_bound)
      : map_(std::move(map)), upper_bound_(std::move(upper_bound)), it_(map_->end()) {}

  void Seek(std::string_view target) override {
    it_ = map_->lower_bound(target);
    ClampToBound();
  }

  void SeekBefore(std::string_view target) override {
    // Keys at or past the upper bound are invisible, so the bound acts as a
    // smaller target.
    if (!upper_bound_.empty() && (target.empty() || std::string_view(upper_bound_) < target)) {
      target = upper_bound_;
    }
    auto it = target.empty() ? map_->end() : map_->lower_bound(target);
    it_ = it == map_->begin() ? map_->end() : std::prev(it);
  }

  void Next() override {
    if (it_ == map_->end()) return;
    ++it_;
    ClampToBound();
  }

  bool Valid() const override { return it_ != map_->end(); }
  std::string_view key() const override { return it_->first; }
  std::string_view value() const override { return it_->second; }
  Status status() const override { return Status::OK(); }

 private:
  void ClampToBound() {
    if (it_ != map_->end() && !upper_bound_.empty() && it_->first >= upper_bound_) {
      it_ = map_->end();
    }
  }

  const MapPtr map_;
  const std::string upper_bound_;
  Map::const_iterator it_;
};

class MemoryStore final : public KVStore {
 public:
  MemoryStore() {
    for (auto& column : columns_) column = std::make_shared<Map>();
  }

  Status Get(const ReadOptions& opts, Column c, std::string_view key, std::string* value) override {
    if (!ValidColumn(c)) return Status::InvalidArgument("memory store: bad column");
    if (opts.snapshot != nullptr) {
      auto* snap = dynamic_cast<const MemorySnapshot*>(opts.snapshot);
      if (snap == nullptr || snap->store() != this) {
        return Status::InvalidArgument("snapshot of another store");
      }
      return Lookup(*snap->column(c), key, value);
    }
    // Look up under the lock rather than pinning the version, so that a
    // later writer need not copy the column.
    std::shared_lock lock(mu_);
    return Lookup(*columns_[static_cast<int>(c)], key, value);
  }

  Status Write(const WriteOptions&, const WriteBatch& batch) override {
    // Validate everything first so that a bad op leaves the store untouched.
    for (const auto& op : batch.ops()) {
      if (!ValidColumn(op.column)) return Status::InvalidArgument("memory store: bad column");
      if (op.type == WriteBatch::OpType::kDeleteRange && op.key > op.value) {
        return Status::InvalidArgument("DeleteRange: begin > end");
      }
    }
    std::unique_lock lock(mu_);
    // Copy-on-write: a pinned version is left to its readers and replaced by
    // a private copy.
    std::array<Map*, kNumColumns> writable{};
    for (const auto& op : batch.ops()) {
      const int i = static_cast<int>(op.column);
      if (writable[i] != nullptr) continue;
      if (pinned_[i].load(std::memory_order_relaxed)) {
        columns_[i] = std::make_shared<Map>(*columns_[i]);
        pinned_[i].store(false, std::memory_order_relaxed);
      }
      writable[i] = columns_[i].get();
    }
    for (const auto& op : batch.ops()) {
      Map& map = *writable[static_cast<int>(op.column)];
      switch (op.type) {
        case WriteBatch::OpType::kPut:
          map.insert_or_assign(op.key, op.value);
          break;
        case WriteBatch::OpType::kDelete:
          map.erase(op.key);
          break;
        case WriteBatch::OpType::kDeleteRange:
          map.erase(map.lower_bound(op.key), map.lower_bound(op.value));
          break;
        case WriteBatch::OpType::kAdd: {
          auto it = map.find(op.key);
          const int64_t old = it == map.end() ? 0 : DecodeCounter(it->second);
          // Wrap around like the RocksDB merge operator instead of
          // overflowing (undefined for signed integers).
          const int64_t sum = static_cast<int64_t>(static_cast<uint64_t>(old) +
                                                   static_cast<uint64_t>(DecodeCounter(op.value)));
          map.insert_or_assign(op.key, EncodeCounter(sum));
          break;
        }
      }
    }
    return Status::OK();
  }

  std::unique_ptr<Iterator> NewIterator(Column c, const IteratorOptions& opts) override {
    if (!ValidColumn(c))
      return NewErrorIterator(Status::InvalidArgument("memory store: bad column"));
    MapPtr map;
    Status s = Version(opts.snapshot, c, &map);
    if (!s.ok()) return NewErrorIterator(std::move(s));
    return std::make_unique<MemoryIterator>(std::move(map), opts.upper_bound);
  }

  std::unique_ptr<Snapshot> GetSnapshot() override {
    std::shared_lock lock(mu_);
    Columns columns;
    for (int i = 0; i < kNumColumns; ++i) columns[i] = Pin(i);
    return std::make_unique<MemorySnapshot>(this, std::move(columns));
  }

  Status Sync() override { return Status::OK(); }

  std::string Name() const override { return "memory"; }

 private:
  static Status Lookup(const Map& map, std::string_view key, std::string* value) {
    auto it = map.find(key);
    if (it == map.end()) return Status::NotFound("key not found");
    value->assign(it->second);
    return Status::OK();
  }

  // Sets *map to the version of column c as of `snapshot` (or now).
  Status Version(const Snapshot* snapshot, Column c, MapPtr* map) {
    if (snapshot != nullptr) {
      auto* snap = dynamic_cast<const MemorySnapshot*>(snapshot);
      if (snap == nullptr || snap->store() != this) {
        return Status::InvalidArgument("snapshot of another store");
      }
      *map = snap->column(c);
      return Status::OK();
    }
    std::shared_lock lock(mu_);
    *map = Pin(static_cast<int>(c));
    return Status::OK();
  }

  // The current version of column i, which from now on is never mutated.
  // Requires mu_ held (shared suffices: pinned_ is atomic).
  MapPtr Pin(int i) {
    pinned_[i].store(true, std::memory_order_relaxed);
    return columns_[i];
  }

  std::shared_mutex mu_;
  // Current version of each column, guarded by mu_. Get reads it under the
  // shared lock; iterators and snapshots pin it (Pin) and read it without the
  // lock. A writer (exclusive lock) mutates a version only if it is not
  // pinned, else replaces it with an unpinned copy. Ordering between pinning
  // and the writer's check comes from mu_, so relaxed atomics suffice.
  std::array<std::shared_ptr<Map>, kNumColumns> columns_;
  std::array<std::atomic<bool>, kNumColumns> pinned_{};
};

}  // namespace

std::unique_ptr<KVStore> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace kvfs
