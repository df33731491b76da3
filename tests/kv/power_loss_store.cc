#include "tests/kv/power_loss_store.h"

#include <utility>

#include "common/kv/memory_store.h"

namespace kvfs::kv_test {

PowerLossStore::PowerLossStore() : live_(NewMemoryStore()), durable_(NewMemoryStore()) {}

std::unique_ptr<KVStore> PowerLossStore::PowerLoss() {
  std::lock_guard<std::mutex> l(mu_);
  std::unique_ptr<KVStore> copy = NewMemoryStore();
  for (int c = 0; c < kNumColumns; ++c) {
    WriteBatch batch;
    std::unique_ptr<Iterator> it = durable_->NewIterator(static_cast<Column>(c), IteratorOptions());
    for (it->Seek(""); it->Valid(); it->Next()) {
      batch.Put(static_cast<Column>(c), it->key(), it->value());
    }
    if (!it->status().ok() || !copy->Write(WriteOptions(), batch).ok()) return nullptr;
  }
  return copy;
}

Status PowerLossStore::Get(const ReadOptions& opts, Column c, std::string_view key,
                           std::string* value) {
  return live_->Get(opts, c, key, value);
}

Status PowerLossStore::Write(const WriteOptions& opts, const WriteBatch& batch) {
  std::lock_guard<std::mutex> l(mu_);
  KVFS_RETURN_IF_ERROR(live_->Write(opts, batch));
  if (!opts.sync) {
    pending_.push_back(batch);
    return Status::OK();
  }
  // A synced write makes the log up to it durable.
  pending_.push_back(batch);
  return SyncLocked();
}

std::unique_ptr<Iterator> PowerLossStore::NewIterator(Column c, const IteratorOptions& opts) {
  return live_->NewIterator(c, opts);
}

std::unique_ptr<Snapshot> PowerLossStore::GetSnapshot() { return live_->GetSnapshot(); }

Status PowerLossStore::Sync() {
  std::lock_guard<std::mutex> l(mu_);
  return SyncLocked();
}

Status PowerLossStore::SyncLocked() {
  for (const WriteBatch& b : pending_) KVFS_RETURN_IF_ERROR(durable_->Write(WriteOptions(), b));
  pending_.clear();
  return Status::OK();
}

}  // namespace kvfs::kv_test
