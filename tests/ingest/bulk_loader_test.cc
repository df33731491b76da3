// KVStore::NewBulkLoader: the default (WriteBatch) loader of the memory and
// fault-injecting stores, and RocksDB's SST-file loader: visibility only at
// Commit, atomicity across columns (also across a crash), order checks,
// clean-up of staging files.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "common/kv/fault_injection_store.h"
#include "common/kv/kv_backend.h"
#include "common/kv/kv_store.h"
#include "common/kv/memory_store.h"
#include "tests/fs/test_util.h"
#include "tests/test_backends.h"

namespace kvfs {
namespace {

using kvfs::testing::TempDir;

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k%08d", i);
  return buf;
}

size_t CountKeys(KVStore* store, Column c) {
  auto it = store->NewIterator(c, IteratorOptions());
  size_t n = 0;
  for (it->Seek(""); it->Valid(); it->Next()) ++n;
  return n;
}

// Descriptors this process has open.
size_t OpenDescriptors() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

class BulkLoaderTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_OK(testing::OpenTestStore(GetParam(), dir_.path() + "/db", &store_));
  }
  std::string Staging() const { return dir_.path() + "/staging"; }

  TempDir dir_{"kvfs-bulk"};
  std::unique_ptr<KVStore> store_;
};

TEST_P(BulkLoaderTest, VisibleOnlyAfterCommit) {
  ASSERT_OK(store_->Put(Column::kMeta, "existing", "old"));
  std::unique_ptr<BulkLoader> loader;
  ASSERT_OK(store_->NewBulkLoader(Staging(), &loader));
  // Columns interleaved, each ascending.
  uint64_t bytes = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string e = "e" + std::to_string(i);
    ASSERT_OK(loader->Add(Column::kEntries, Key(i), e));
    ASSERT_OK(loader->Add(Column::kBlocks, Key(i), std::string(100, 'b')));
    bytes += 2 * Key(i).size() + e.size() + 100;
  }
  ASSERT_OK(loader->Add(Column::kMeta, "existing", "new"));
  EXPECT_EQ(loader->BytesAdded(), bytes + 11);
  EXPECT_EQ(CountKeys(store_.get(), Column::kEntries), 0u);
  ASSERT_OK(loader->Commit());
  EXPECT_EQ(CountKeys(store_.get(), Column::kEntries), 1000u);
  EXPECT_EQ(CountKeys(store_.get(), Column::kBlocks), 1000u);
  std::string v;
  ASSERT_OK(store_->Get(Column::kEntries, Key(123), &v));
  EXPECT_EQ(v, "e123");
  ASSERT_OK(store_->Get(Column::kMeta, "existing", &v));
  EXPECT_EQ(v, "new");
  EXPECT_EQ(loader->Commit().posix_errno(), EINVAL);
  EXPECT_EQ(loader->Add(Column::kEntries, Key(5000), "x").posix_errno(), EINVAL);
  loader.reset();
  // The loader's files are gone (moved into the database or removed).
  if (std::filesystem::exists(Staging())) {
    EXPECT_TRUE(std::filesystem::is_empty(Staging()));
  }
}

TEST_P(BulkLoaderTest, DiscardedWithoutCommit) {
  {
    std::unique_ptr<BulkLoader> loader;
    ASSERT_OK(store_->NewBulkLoader(Staging(), &loader));
    for (int i = 0; i < 100; ++i) ASSERT_OK(loader->Add(Column::kInodes, Key(i), "x"));
  }
  EXPECT_EQ(CountKeys(store_.get(), Column::kInodes), 0u);
  if (std::filesystem::exists(Staging())) {
    EXPECT_TRUE(std::filesystem::is_empty(Staging()));
  }
}

TEST_P(BulkLoaderTest, RefusesKeysOutOfOrder) {
  std::unique_ptr<BulkLoader> loader;
  ASSERT_OK(store_->NewBulkLoader(Staging(), &loader));
  ASSERT_OK(loader->Add(Column::kEntries, Key(2), "x"));
  EXPECT_EQ(loader->Add(Column::kEntries, Key(1), "x").posix_errno(), EINVAL);
  EXPECT_EQ(loader->Add(Column::kEntries, Key(2), "x").posix_errno(), EINVAL);
  // Another column has its own order.
  ASSERT_OK(loader->Add(Column::kInodes, Key(1), "x"));
}

TEST_P(BulkLoaderTest, EmptyLoadCommits) {
  std::unique_ptr<BulkLoader> loader;
  ASSERT_OK(store_->NewBulkLoader(Staging(), &loader));
  ASSERT_OK(loader->Commit());
  EXPECT_EQ(loader->BytesAdded(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Stores, BulkLoaderTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

// The default loader writes one batch: a failed write applies nothing.
TEST(DefaultBulkLoader, FailedCommitChangesNothing) {
  FaultInjectionStore store(NewMemoryStore());
  std::unique_ptr<BulkLoader> loader;
  ASSERT_OK(store.NewBulkLoader("", &loader));
  for (int i = 0; i < 10; ++i) ASSERT_OK(loader->Add(Column::kBlocks, Key(i), "x"));
  store.FailNth(FaultInjectionStore::kWrite, 0);
  EXPECT_EQ(loader->Commit().posix_errno(), EIO);
  EXPECT_EQ(CountKeys(&store, Column::kBlocks), 0u);
}

// A staging directory that cannot be created is reported, not crashed on.
TEST(RocksDBBulkLoader, BadStagingDirectory) {
  TempDir dir("kvfs-bulk");
  std::unique_ptr<KVStore> store;
  ASSERT_OK(testing::OpenTestStore("rocksdb", dir.path() + "/db", &store));
  std::unique_ptr<BulkLoader> loader;
  EXPECT_FALSE(store->NewBulkLoader("/proc/kvfs-no-such-dir", &loader).ok());
  EXPECT_EQ(store->NewBulkLoader("", &loader).posix_errno(), EINVAL);
}

// bulk_load_compression picks how the loaded SST files are compressed: every
// choice reads back the same values, the files' sizes follow the choice, and
// an unknown name is refused with the choices.
TEST(RocksDBBulkLoader, CompressionChoices) {
  // 400 values of 4 KiB of text: ~1.6 MB raw, a fraction of that compressed.
  auto value = [](int i) {
    std::string v;
    while (v.size() < 4096) v += "block " + std::to_string(i) + " of the loaded tree; ";
    return v.substr(0, 4096);
  };
  std::map<std::string, uintmax_t> sst_bytes;
  for (const std::string compression : {"zstd", "lz4", "none"}) {
    SCOPED_TRACE(compression);
    TempDir dir("kvfs-bulk");
    std::unique_ptr<KVStore> store;
    ASSERT_OK(testing::OpenTestStore("rocksdb", dir.path() + "/db", &store,
                                     {{"bulk_load_compression", compression}}));
    std::unique_ptr<BulkLoader> loader;
    ASSERT_OK(store->NewBulkLoader(dir.path() + "/db/staging", &loader));
    for (int i = 0; i < 400; ++i) ASSERT_OK(loader->Add(Column::kBlocks, Key(i), value(i)));
    ASSERT_OK(loader->Commit());
    for (int i = 0; i < 400; i += 37) {
      std::string v;
      ASSERT_OK(store->Get(Column::kBlocks, Key(i), &v));
      EXPECT_EQ(v, value(i));
    }
    for (const auto& f : std::filesystem::recursive_directory_iterator(dir.path() + "/db")) {
      if (f.path().extension() == ".sst") sst_bytes[compression] += f.file_size();
    }
  }
  EXPECT_GT(sst_bytes["none"], 400u * 4096);
  EXPECT_LT(sst_bytes["lz4"], sst_bytes["none"] / 2);
  EXPECT_LT(sst_bytes["zstd"], sst_bytes["lz4"]);

  TempDir dir("kvfs-bulk");
  std::unique_ptr<KVStore> store;
  Status s = testing::OpenTestStore("rocksdb", dir.path() + "/db", &store,
                                    {{"bulk_load_compression", "snappy"}});
  EXPECT_EQ(s.posix_errno(), EINVAL);
  EXPECT_NE(s.ToString().find("zstd, lz4 or none"), std::string::npos) << s.ToString();
}

// A load cut into many SST files built by several threads: every column
// reads back complete and in order (also after reopening), the files really
// were cut (at most 64 KiB of a column in each), and the staging directory is left
// empty.
TEST(RocksDBBulkLoader, ManyFilesBuiltOnSeveralThreads) {
  TempDir dir("kvfs-bulk");
  // Fewer table files kept open than the load writes.
  const KVOptions options = {
      {"bulk_load_threads", "3"}, {"bulk_load_file_bytes", "64K"}, {"max_open_files", "64"}};
  auto block = [](int i) {
    std::string v = "block " + std::to_string(i) + ":";
    v.resize(1000 + (i * 7919) % 6000, static_cast<char>('a' + i % 26));
    return v;
  };
  // Interleaved columns of different sizes: ~7 MB of blocks, small entries
  // and inodes.
  constexpr int kBlocks = 2000, kEntries = 5000, kInodes = 3000;
  uint64_t block_bytes = 0;
  {
    std::unique_ptr<KVStore> store;
    ASSERT_OK(testing::OpenTestStore("rocksdb", dir.path() + "/db", &store, options));
    std::unique_ptr<BulkLoader> loader;
    ASSERT_OK(store->NewBulkLoader(dir.path() + "/staging", &loader));
    for (int i = 0; i < kEntries; ++i) {
      if (i < kBlocks) {
        ASSERT_OK(loader->Add(Column::kBlocks, Key(i), block(i)));
        block_bytes += Key(i).size() + block(i).size();
      }
      ASSERT_OK(loader->Add(Column::kEntries, Key(i), "entry " + std::to_string(i)));
      if (i < kInodes) ASSERT_OK(loader->Add(Column::kInodes, Key(i), "inode"));
    }
    ASSERT_OK(loader->Commit());
  }
  size_t sst_files = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir.path() + "/db")) {
    if (f.path().extension() == ".sst") ++sst_files;
  }
  // A file holds at most 64 KiB and one value (< 7 KiB) more, and at least
  // 8 KiB (an eighth: a file is ended early when its worker falls behind
  // while another has nothing to do); entries and inodes add a few files.
  EXPECT_GE(sst_files, block_bytes / (71 << 10));
  EXPECT_LE(sst_files, block_bytes / (8 << 10) + 3 * 16);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/staging"));

  const size_t fds_before = OpenDescriptors();
  std::unique_ptr<KVStore> store;
  ASSERT_OK(testing::OpenTestStore("rocksdb", dir.path() + "/db", &store, options));
  auto it = store->NewIterator(Column::kBlocks, IteratorOptions());
  int i = 0;
  for (it->Seek(""); it->Valid(); it->Next(), ++i) {
    ASSERT_EQ(it->key(), Key(i));
    ASSERT_EQ(it->value(), block(i)) << Key(i);
  }
  ASSERT_OK(it->status());
  EXPECT_EQ(i, kBlocks);
  it = store->NewIterator(Column::kEntries, IteratorOptions());
  i = 0;
  for (it->Seek(""); it->Valid(); it->Next(), ++i) {
    ASSERT_EQ(it->key(), Key(i));
    ASSERT_EQ(it->value(), "entry " + std::to_string(i));
  }
  EXPECT_EQ(i, kEntries);
  EXPECT_EQ(CountKeys(store.get(), Column::kInodes), static_cast<size_t>(kInodes));
  // Every file was read, yet no more than max_open_files of them are open
  // (besides the WAL, MANIFEST, LOCK, LOG and the like).
  it.reset();
  EXPECT_LE(OpenDescriptors(), fds_before + 64 + 16);
}

// A file that cannot be written (its directory removed under the load) fails
// the load with an error naming it; nothing becomes visible, nothing hangs.
TEST(RocksDBBulkLoader, FailedFileFailsTheLoad) {
  TempDir dir("kvfs-bulk");
  std::unique_ptr<KVStore> store;
  ASSERT_OK(testing::OpenTestStore("rocksdb", dir.path() + "/db", &store,
                                   {{"bulk_load_threads", "2"}, {"bulk_load_file_bytes", "64K"}}));
  std::unique_ptr<BulkLoader> loader;
  ASSERT_OK(store->NewBulkLoader(dir.path() + "/staging", &loader));
  const std::string value(4096, 'v');
  ASSERT_OK(loader->Add(Column::kBlocks, Key(0), value));
  std::filesystem::remove_all(dir.path() + "/staging");
  Status s;
  for (int i = 1; i < 100000 && s.ok(); ++i) s = loader->Add(Column::kBlocks, Key(i), value);
  if (s.ok()) s = loader->Commit();
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_NE(s.ToString().find("SST file"), std::string::npos) << s.ToString();
  EXPECT_FALSE(loader->Commit().ok());
  loader.reset();
  EXPECT_EQ(CountKeys(store.get(), Column::kBlocks), 0u);
}

// bulk_load_file_bytes below 64K is refused.
TEST(RocksDBBulkLoader, TinyFileSizeRefused) {
  TempDir dir("kvfs-bulk");
  std::unique_ptr<KVStore> store;
  Status s = testing::OpenTestStore("rocksdb", dir.path() + "/db", &store,
                                    {{"bulk_load_file_bytes", "4K"}});
  EXPECT_EQ(s.posix_errno(), EINVAL);
  EXPECT_NE(s.ToString().find("bulk_load_file_bytes"), std::string::npos) << s.ToString();
}

// Killed at any moment, a load into several columns is visible in all of
// them or in none after reopening, on every persistent backend.
class BulkLoaderCrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BulkLoaderCrashTest, AtomicAcrossColumnsAndCrashes) {
  TempDir dir("kvfs-bulk");
  const std::string db = dir.path() + "/db";
  constexpr int kKeys = 20000;
  for (int round = 0; round < 8; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::unique_ptr<KVStore> store;
      if (!testing::OpenTestStore(GetParam(), db, &store).ok()) _exit(1);
      std::unique_ptr<BulkLoader> loader;
      if (!store->NewBulkLoader(dir.path() + "/staging", &loader).ok()) _exit(2);
      const std::string prefix = "r" + std::to_string(round) + "/";
      for (int i = 0; i < kKeys; ++i) {
        for (Column c : {Column::kEntries, Column::kInodes, Column::kBlocks}) {
          if (!loader->Add(c, prefix + Key(i), std::string(64, 'v')).ok()) _exit(3);
        }
      }
      if (!loader->Commit().ok()) _exit(4);
      _exit(0);
    }
    // Kill it at a different moment each round (the last rounds finish).
    usleep(static_cast<useconds_t>(round * 40000));
    if (round < 6) kill(pid, SIGKILL);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) << status;
    std::unique_ptr<KVStore> store;
    ASSERT_OK(testing::OpenTestStore(GetParam(), db, &store));
    const std::string prefix = "r" + std::to_string(round) + "/";
    size_t counts[3] = {};
    int i = 0;
    for (Column c : {Column::kEntries, Column::kInodes, Column::kBlocks}) {
      IteratorOptions io;
      io.upper_bound = "r" + std::to_string(round) + "0";
      auto it = store->NewIterator(c, io);
      for (it->Seek(prefix); it->Valid(); it->Next()) ++counts[i];
      ++i;
    }
    EXPECT_TRUE(counts[0] == counts[1] && counts[1] == counts[2]) << "round " << round;
    EXPECT_TRUE(counts[0] == 0 || counts[0] == kKeys) << "round " << round << ": " << counts[0];
    if (WIFEXITED(status)) {
      EXPECT_EQ(counts[0], static_cast<size_t>(kKeys));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BulkLoaderCrashTest,
                         ::testing::ValuesIn(testing::PersistentBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace kvfs
