// PowerLossStore: a KVStore that remembers what a power loss would keep.
//
// Reads and writes go to an in-memory store (the "live" state, what the page
// cache holds). A second in-memory store holds the "durable" state: a batch
// reaches it when written with WriteOptions::sync or at the next Sync() after
// it, as a write-ahead log's records reach the disk. PowerLoss() hands out the
// durable state as it is at that moment: what a machine that lost power then
// would find. (Killing a process cannot tell the two apart: unsynced writes
// are already in the kernel's page cache and survive it.)
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "common/kv/kv_store.h"

namespace kvfs::kv_test {

class PowerLossStore final : public KVStore {
 public:
  PowerLossStore();

  // A copy of the durable state now. The live state goes on as before.
  std::unique_ptr<KVStore> PowerLoss();

  Status Get(const ReadOptions& opts, Column c, std::string_view key, std::string* value) override;
  Status Write(const WriteOptions& opts, const WriteBatch& batch) override;
  std::unique_ptr<Iterator> NewIterator(Column c, const IteratorOptions& opts) override;
  std::unique_ptr<Snapshot> GetSnapshot() override;
  Status Sync() override;
  std::string Name() const override { return "power-loss"; }

 private:
  Status SyncLocked();

  std::unique_ptr<KVStore> live_;
  std::mutex mu_;
  std::unique_ptr<KVStore> durable_;  // guarded by mu_
  std::vector<WriteBatch> pending_;   // guarded by mu_: written, not yet synced
};

}  // namespace kvfs::kv_test
