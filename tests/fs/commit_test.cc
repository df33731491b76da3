// FileSystem::Fsync (an NFS COMMIT, a FUSE flush) over a store that knows
// what a power loss keeps: it makes a file's unstable writes durable, and it
// syncs nothing when a sync since the file's last unstable write already did
// (common/fs/unstable_writes.h).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fs/file_system.h"
#include "common/kv/fault_injection_store.h"
#include "tests/kv/power_loss_store.h"
#include "tests/status_assertions.h"

namespace kvfs {
namespace {

using kv_test::PowerLossStore;
using Op = FaultInjectionStore::Operation;

class CommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    power_ = new PowerLossStore();
    counter_ = new FaultInjectionStore(std::unique_ptr<KVStore>(power_));
    ASSERT_OK(FileSystem::Open(FileSystemOptions(), std::unique_ptr<KVStore>(counter_), &fs_));
  }

  Ino NewFile(const std::string& name) {
    Attributes a;
    EXPECT_OK(fs_->Create(kRootIno, name, NewObject{}, true, &a));
    return a.ino;
  }
  void WriteUnstable(Ino ino, const std::string& data) {
    Attributes a;
    EXPECT_OK(fs_->Write(ino, 0, data, Stability::kUnstable, &a));
  }
  // Store syncs that `fn` made.
  template <typename Fn>
  uint64_t SyncsOf(Fn fn) {
    const uint64_t before = counter_->CallCount(Op::kSync);
    fn();
    return counter_->CallCount(Op::kSync) - before;
  }
  // What file `name` holds after a power loss now ("<missing>" if absent).
  std::string AfterPowerLoss(const std::string& name) {
    std::unique_ptr<FileSystem> after;
    EXPECT_OK(FileSystem::Open(FileSystemOptions(), power_->PowerLoss(), &after));
    if (after == nullptr) return "<no file system>";
    Attributes a;
    if (!after->Lookup(kRootIno, name, &a).ok()) return "<missing>";
    std::string data;
    bool eof = false;
    EXPECT_OK(after->Read(a.ino, 0, 1 << 20, &data, &eof));
    return data;
  }

  PowerLossStore* power_ = nullptr;         // owned by counter_
  FaultInjectionStore* counter_ = nullptr;  // owned by fs_
  std::unique_ptr<FileSystem> fs_;
};

TEST_F(CommitTest, FsyncMakesUnstableWritesDurableOnce) {
  const Ino a = NewFile("a");
  WriteUnstable(a, "first");
  EXPECT_EQ(AfterPowerLoss("a"), "");  // an unstable write alone is not durable
  EXPECT_EQ(SyncsOf([&] { ASSERT_OK(fs_->Fsync(a)); }), 1u);
  EXPECT_EQ(AfterPowerLoss("a"), "first");
  // Nothing written since: a second commit (Ganesha sends two) syncs nothing.
  EXPECT_EQ(SyncsOf([&] { ASSERT_OK(fs_->Fsync(a)); }), 0u);
  WriteUnstable(a, "again");
  EXPECT_EQ(SyncsOf([&] { ASSERT_OK(fs_->Fsync(a)); }), 1u);
  EXPECT_EQ(AfterPowerLoss("a"), "again");
}

TEST_F(CommitTest, AnotherOperationsSyncCarriesTheWrite) {
  const Ino a = NewFile("a");
  WriteUnstable(a, "carried");
  // A durable mutation of another file syncs the log the write is in.
  NewFile("b");
  EXPECT_EQ(AfterPowerLoss("a"), "carried");
  EXPECT_EQ(SyncsOf([&] { ASSERT_OK(fs_->Fsync(a)); }), 0u);

  // One file's commit carries another's earlier write.
  const Ino c = NewFile("c");
  WriteUnstable(a, "second!");
  WriteUnstable(c, "c2");
  EXPECT_EQ(SyncsOf([&] { ASSERT_OK(fs_->Fsync(c)); }), 1u);
  EXPECT_EQ(SyncsOf([&] { ASSERT_OK(fs_->Fsync(a)); }), 0u);
  EXPECT_EQ(AfterPowerLoss("a"), "second!");
  EXPECT_EQ(AfterPowerLoss("c"), "c2");

  // A write after the last sync is not covered by it.
  WriteUnstable(a, "third!!");
  EXPECT_EQ(SyncsOf([&] { ASSERT_OK(fs_->Fsync(a)); }), 1u);
  EXPECT_EQ(AfterPowerLoss("a"), "third!!");
}

TEST_F(CommitTest, AFailedSyncCoversNothing) {
  const Ino a = NewFile("a");
  WriteUnstable(a, "lost?");
  counter_->FailCall(0);  // the next call, the sync of this Fsync, fails
  EXPECT_FALSE(fs_->Fsync(a).ok());
  counter_->Heal();
  EXPECT_EQ(AfterPowerLoss("a"), "");
  EXPECT_EQ(SyncsOf([&] { ASSERT_OK(fs_->Fsync(a)); }), 1u);
  EXPECT_EQ(AfterPowerLoss("a"), "lost?");
}

// Threads write and commit files of their own while the others' syncs run:
// whenever Fsync returns, a power loss keeps what the thread wrote, whether
// that Fsync synced or was carried by another thread's sync.
TEST_F(CommitTest, ConcurrentCommitsNeverSkipANeededSync) {
  constexpr int kThreads = 6;
  constexpr int kRounds = 60;
  std::vector<Ino> files;
  for (int t = 0; t < kThreads; ++t) files.push_back(NewFile("f" + std::to_string(t)));
  const uint64_t syncs_before = counter_->CallCount(Op::kSync);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const std::string data = "thread " + std::to_string(t) + " round " + std::to_string(r);
        WriteUnstable(files[t], data);
        if (r % 3 == 0) {  // a durable change now and then, as SETATTRs are
          SetAttrRequest mode;
          mode.mode = 0600 + r % 2;
          Attributes a;
          EXPECT_OK(fs_->SetAttr(files[t], mode, &a));
        }
        ASSERT_OK(fs_->Fsync(files[t]));
        ASSERT_EQ(AfterPowerLoss("f" + std::to_string(t)), data);
      }
    });
  }
  for (auto& th : threads) th.join();
  // Some commits were carried by other threads' syncs (else this test
  // checked nothing about skipping).
  const uint64_t syncs = counter_->CallCount(Op::kSync) - syncs_before;
  const uint64_t durable_setattrs = kThreads * ((kRounds + 2) / 3);
  EXPECT_LT(syncs, durable_setattrs + kThreads * kRounds);
}

}  // namespace
}  // namespace kvfs
