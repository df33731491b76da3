// Tests of FaultInjectionStore: each kind of call can be made to fail with
// EIO, failures have no effect, and healing restores normal operation.
#include "common/kv/fault_injection_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/kv/memory_store.h"

namespace kvfs {
namespace {

using FIS = FaultInjectionStore;

class FaultInjectionTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.Put(Column::kEntries, "a", "1").ok());
    ASSERT_TRUE(store_.Put(Column::kEntries, "b", "2").ok());
    ASSERT_TRUE(store_.Put(Column::kEntries, "c", "3").ok());
  }

  // Reads every key of kEntries from the start; the status of the scan.
  Status Scan(std::vector<std::string>* keys, const Snapshot* snapshot = nullptr) {
    IteratorOptions opts;
    opts.snapshot = snapshot;
    auto it = store_.NewIterator(Column::kEntries, opts);
    for (it->Seek(""); it->Valid(); it->Next()) keys->emplace_back(it->key());
    return it->status();
  }

  FIS store_{NewMemoryStore()};
};

TEST_F(FaultInjectionTest, GetFailsOnceThenHeals) {
  std::string v;
  store_.FailNth(FIS::kGet, 0);
  Status s = store_.Get(Column::kEntries, "a", &v);
  EXPECT_EQ(s.posix_errno(), EIO);
  EXPECT_NE(s.message().find("injected fault"), std::string::npos);
  ASSERT_TRUE(store_.Get(Column::kEntries, "a", &v).ok());
  EXPECT_EQ(v, "1");
  EXPECT_EQ(store_.FailureCount(), 1u);
}

TEST_F(FaultInjectionTest, FailedWriteAppliesNothing) {
  WriteBatch batch;
  batch.Put(Column::kEntries, "x", "1");
  batch.Delete(Column::kEntries, "a");
  store_.FailNth(FIS::kWrite, 0);
  EXPECT_EQ(store_.Write(WriteOptions(), batch).posix_errno(), EIO);
  std::string v;
  EXPECT_TRUE(store_.Get(Column::kEntries, "x", &v).IsNotFound());
  EXPECT_TRUE(store_.Get(Column::kEntries, "a", &v).ok());
  // Convenience wrappers are Writes too.
  store_.FailNth(FIS::kWrite, 0);
  EXPECT_EQ(store_.Put(Column::kEntries, "x", "1").posix_errno(), EIO);
  store_.FailNth(FIS::kWrite, 0);
  EXPECT_EQ(store_.Delete(Column::kEntries, "a").posix_errno(), EIO);
  EXPECT_TRUE(store_.Write(WriteOptions(), batch).ok());
  EXPECT_TRUE(store_.Get(Column::kEntries, "x", &v).ok());
}

TEST_F(FaultInjectionTest, SyncFails) {
  store_.FailNth(FIS::kSync, 0);
  EXPECT_EQ(store_.Sync().posix_errno(), EIO);
  EXPECT_TRUE(store_.Sync().ok());
}

TEST_F(FaultInjectionTest, NewIteratorFailureGivesAFailedIterator) {
  store_.FailNth(FIS::kNewIterator, 0);
  auto it = store_.NewIterator(Column::kEntries, IteratorOptions());
  it->Seek("");
  EXPECT_FALSE(it->Valid());
  EXPECT_EQ(it->status().posix_errno(), EIO);
  std::vector<std::string> keys;
  EXPECT_TRUE(Scan(&keys).ok());
  EXPECT_EQ(keys.size(), 3u);
}

TEST_F(FaultInjectionTest, SeekFailureIsSticky) {
  auto it = store_.NewIterator(Column::kEntries, IteratorOptions());
  store_.FailNth(FIS::kIteratorSeek, 0);
  it->Seek("a");
  EXPECT_FALSE(it->Valid());
  EXPECT_EQ(it->status().posix_errno(), EIO);
  // Sticky: a later successful Seek does not revive it.
  it->Seek("a");
  EXPECT_FALSE(it->Valid());
  EXPECT_EQ(it->status().posix_errno(), EIO);
  // SeekBefore is a seek too.
  auto it2 = store_.NewIterator(Column::kEntries, IteratorOptions());
  store_.FailNth(FIS::kIteratorSeek, 0);
  it2->SeekBefore("");
  EXPECT_FALSE(it2->Valid());
  EXPECT_EQ(it2->status().posix_errno(), EIO);
}

TEST_F(FaultInjectionTest, NextFailureStopsIterationWithError) {
  store_.FailNth(FIS::kIteratorNext, 1);  // the second Next fails
  std::vector<std::string> keys;
  Status s = Scan(&keys);
  EXPECT_EQ(s.posix_errno(), EIO);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b"}));
}

TEST_F(FaultInjectionTest, GetSnapshotFailurePoisonsTheSnapshot) {
  store_.FailNth(FIS::kGetSnapshot, 0);
  auto snap = store_.GetSnapshot();
  ASSERT_NE(snap, nullptr);
  ReadOptions ro;
  ro.snapshot = snap.get();
  std::string v;
  EXPECT_EQ(store_.Get(ro, Column::kEntries, "a", &v).posix_errno(), EIO);
  std::vector<std::string> keys;
  EXPECT_EQ(Scan(&keys, snap.get()).posix_errno(), EIO);
  EXPECT_TRUE(keys.empty());

  // A healthy snapshot passes through and isolates later writes.
  auto good = store_.GetSnapshot();
  ASSERT_TRUE(store_.Put(Column::kEntries, "a", "changed").ok());
  ro.snapshot = good.get();
  ASSERT_TRUE(store_.Get(ro, Column::kEntries, "a", &v).ok());
  EXPECT_EQ(v, "1");
}

TEST_F(FaultInjectionTest, FailAfterFailsUntilHealed) {
  store_.FailAfter(FIS::kGet | FIS::kWrite, 2);
  std::string v;
  EXPECT_TRUE(store_.Get(Column::kEntries, "a", &v).ok());
  EXPECT_TRUE(store_.Sync().ok());  // other kinds neither fail nor count
  EXPECT_TRUE(store_.Put(Column::kEntries, "d", "4").ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(store_.Get(Column::kEntries, "a", &v).posix_errno(), EIO);
    EXPECT_EQ(store_.Put(Column::kEntries, "e", "5").posix_errno(), EIO);
  }
  EXPECT_TRUE(store_.Sync().ok());
  store_.Heal();
  EXPECT_TRUE(store_.Get(Column::kEntries, "a", &v).ok());
  EXPECT_TRUE(store_.Put(Column::kEntries, "e", "5").ok());
  EXPECT_EQ(store_.FailureCount(), 10u);
}

TEST_F(FaultInjectionTest, CountsCallsByKind) {
  const uint64_t before = store_.CallCount();
  std::string v;
  EXPECT_TRUE(store_.Get(Column::kEntries, "a", &v).ok());
  EXPECT_TRUE(store_.Sync().ok());
  std::vector<std::string> keys;
  EXPECT_TRUE(Scan(&keys).ok());  // NewIterator, Seek, 3 x Next
  auto snap = store_.GetSnapshot();
  EXPECT_EQ(store_.CallCount() - before, 8u);
  EXPECT_EQ(store_.CallCount(FIS::kIteratorNext), 3u);
  EXPECT_EQ(store_.CallCount(FIS::kIteratorSeek | FIS::kNewIterator), 2u);
  EXPECT_EQ(store_.CallCount(FIS::kGetSnapshot), 1u);
  EXPECT_EQ(store_.CallCount(FIS::kWrite), 3u);  // from SetUp
  EXPECT_EQ(store_.Name(), "fault_injection(memory)");
}

// An operation touching every kind of call; its first error, if any.
Status Operation(KVStore* kv) {
  std::string v;
  KVFS_RETURN_IF_ERROR(kv->Get(Column::kEntries, "a", &v));
  auto snap = kv->GetSnapshot();
  WriteBatch batch;
  batch.Put(Column::kEntries, "z", v);
  batch.Add(Column::kMeta, "ops", 1);
  KVFS_RETURN_IF_ERROR(kv->Write(WriteOptions(), batch));
  IteratorOptions io;
  io.snapshot = snap.get();
  io.upper_bound = "d";  // a, b, c: not "z" even after earlier runs
  auto it = kv->NewIterator(Column::kEntries, io);
  int n = 0;
  for (it->Seek(""); it->Valid(); it->Next()) ++n;
  KVFS_RETURN_IF_ERROR(it->status());
  if (n != 3) return Status::Corruption("snapshot saw " + std::to_string(n) + " keys");
  return kv->Sync();
}

TEST_F(FaultInjectionTest, FailingEachCallInTurnFailsTheOperation) {
  const uint64_t before = store_.CallCount();
  ASSERT_TRUE(Operation(&store_).ok());
  const uint64_t calls = store_.CallCount() - before;
  // Get, GetSnapshot, Write, NewIterator, Seek, 3 x Next, Sync.
  ASSERT_EQ(calls, 9u);
  for (uint64_t k = 0; k < calls; ++k) {
    SCOPED_TRACE("failing call " + std::to_string(k));
    store_.FailCall(k);
    Status s = Operation(&store_);
    EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
    store_.Heal();
    EXPECT_TRUE(Operation(&store_).ok());
  }
  std::string v;
  ASSERT_TRUE(store_.Get(Column::kMeta, "ops", &v).ok());
  // Runs whose Write went through: the first, the healed ones, and the
  // failing runs except those failing the Get (k = 0) or the Write (k = 2).
  // (A failed GetSnapshot, k = 1, only surfaces at NewIterator, after the
  // Write.)
  EXPECT_EQ(DecodeCounter(v), static_cast<int64_t>(1 + calls + (calls - 2)));
}

TEST(FaultInjectionStoreTest, BorrowsAStore) {
  auto base = NewMemoryStore();
  {
    FaultInjectionStore fis(base.get());
    EXPECT_EQ(fis.base(), base.get());
    ASSERT_TRUE(fis.Put(Column::kInodes, "k", "v").ok());
  }
  std::string v;
  ASSERT_TRUE(base->Get(Column::kInodes, "k", &v).ok());
  EXPECT_EQ(v, "v");
}

TEST(FaultInjectionStoreTest, RejectsForeignSnapshots) {
  auto other = NewMemoryStore();
  FaultInjectionStore fis(NewMemoryStore());
  auto snap = other->GetSnapshot();
  ReadOptions ro;
  ro.snapshot = snap.get();
  std::string v;
  EXPECT_EQ(fis.Get(ro, Column::kMeta, "k", &v).posix_errno(), EINVAL);
}

}  // namespace
}  // namespace kvfs
