// Tests of the KVStore implementations. The behavioural (contract) tests run
// against the in-memory store and every backend plugin of the build (in a
// fresh temporary directory per test); persistence, options, path errors and
// crash recovery run against every plugin; the plugin loader and WriteQueue
// have their own tests at the end.
//
// This binary has its own main(): run with "--kv_child ..." it is a helper
// process for the tests that need one (see ChildMain).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/kv/kv_backend.h"
#include "common/kv/kv_store.h"
#include "common/kv/memory_store.h"
#include "common/kv/write_queue.h"
#include "common/plugin/plugin_options.h"
#include "tests/status_assertions.h"
#include "tests/temp_dir.h"
#include "tests/test_backends.h"

namespace kvfs {
namespace {

using namespace std::chrono_literals;
using KVs = std::vector<std::pair<std::string, std::string>>;

using testing::TempDir;

// All key/value pairs of column c, in iteration order.
KVs Scan(KVStore* kv, Column c, const IteratorOptions& opts = IteratorOptions(),
         std::string_view from = "") {
  KVs out;
  auto it = kv->NewIterator(c, opts);
  for (it->Seek(from); it->Valid(); it->Next()) out.emplace_back(it->key(), it->value());
  EXPECT_OK(it->status());
  return out;
}

// The value at key, "<missing>" if absent, "<error: ...>" on error.
std::string Read(KVStore* kv, Column c, std::string_view key, const Snapshot* snap = nullptr) {
  ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  Status s = kv->Get(ro, c, key, &v);
  if (s.IsNotFound()) return "<missing>";
  if (!s.ok()) return "<error: " + s.ToString() + ">";
  return v;
}

int64_t ReadCounter(KVStore* kv, Column c, std::string_view key) {
  std::string v;
  Status s = kv->Get(c, key, &v);
  EXPECT_TRUE(s.ok() || s.IsNotFound()) << s.ToString();
  return DecodeCounter(v);
}

using kvfs::testing::AllBackends;
using kvfs::testing::BackendName;
using kvfs::testing::OpenTestStore;
using kvfs::testing::PersistentBackends;
using kvfs::testing::SmallBufferOptions;

// ---------------------------------------------------------------------------
// Encoding helpers.

TEST(KVEncodingTest, ColumnNamesAreStableAndDistinct) {
  EXPECT_STREQ(ColumnName(Column::kMeta), "meta");
  EXPECT_STREQ(ColumnName(Column::kEntries), "entries");
  EXPECT_STREQ(ColumnName(Column::kInodes), "inodes");
  EXPECT_STREQ(ColumnName(Column::kBlocks), "blocks");
}

TEST(KVEncodingTest, CountersAreLittleEndian64) {
  EXPECT_EQ(EncodeCounter(1), std::string("\x01\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(EncodeCounter(-1), std::string(8, '\xff'));
  EXPECT_EQ(EncodeCounter(0x0102030405060708), std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{1} << 40, INT64_MAX, INT64_MIN}) {
    EXPECT_EQ(DecodeCounter(EncodeCounter(v)), v);
  }
  EXPECT_EQ(DecodeCounter(""), 0);
  EXPECT_EQ(DecodeCounter("1234567"), 0);
  EXPECT_EQ(DecodeCounter("123456789"), 0);
}

TEST(KVEncodingTest, WriteBatchRecordsOpsInOrder) {
  WriteBatch b;
  EXPECT_TRUE(b.empty());
  b.Put(Column::kEntries, "k", "value");
  b.Delete(Column::kInodes, "d");
  b.DeleteRange(Column::kBlocks, "a", "b");
  b.Add(Column::kMeta, "c", -5);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b.ByteSize(), 6u + 1u + 2u + 9u);
  const auto& ops = b.ops();
  EXPECT_EQ(ops[0].type, WriteBatch::OpType::kPut);
  EXPECT_EQ(ops[0].value, "value");
  EXPECT_EQ(ops[1].type, WriteBatch::OpType::kDelete);
  EXPECT_EQ(ops[1].column, Column::kInodes);
  EXPECT_EQ(ops[2].type, WriteBatch::OpType::kDeleteRange);
  EXPECT_EQ(ops[2].key, "a");
  EXPECT_EQ(ops[2].value, "b");
  EXPECT_EQ(ops[3].type, WriteBatch::OpType::kAdd);
  EXPECT_EQ(DecodeCounter(ops[3].value), -5);
  b.Clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.ByteSize(), 0u);
}

// ---------------------------------------------------------------------------
// Behaviour common to every store.

class KVStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ASSERT_OK(OpenTestStore(GetParam(), dir_.path() + "/db", &store_)); }

  TempDir dir_;  // declared first: outlives store_
  std::unique_ptr<KVStore> store_;
};

TEST_P(KVStoreTest, Name) { EXPECT_EQ(store_->Name(), GetParam()); }

TEST_P(KVStoreTest, GetPutDelete) {
  KVStore* kv = store_.get();
  std::string v;
  Status s = kv->Get(Column::kEntries, "a", &v);
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.posix_errno(), ENOENT);

  ASSERT_OK(kv->Put(Column::kEntries, "a", "1"));
  EXPECT_EQ(Read(kv, Column::kEntries, "a"), "1");
  ASSERT_OK(kv->Put(Column::kEntries, "a", "22"));
  EXPECT_EQ(Read(kv, Column::kEntries, "a"), "22");
  // Columns are separate key spaces.
  EXPECT_EQ(Read(kv, Column::kInodes, "a"), "<missing>");
  ASSERT_OK(kv->Put(Column::kInodes, "a", "other"));
  EXPECT_EQ(Read(kv, Column::kEntries, "a"), "22");

  ASSERT_OK(kv->Delete(Column::kEntries, "a"));
  EXPECT_EQ(Read(kv, Column::kEntries, "a"), "<missing>");
  EXPECT_EQ(Read(kv, Column::kInodes, "a"), "other");
  // Deleting a missing key is fine.
  EXPECT_OK(kv->Delete(Column::kEntries, "never"));

  // Binary keys and values, empty values.
  const std::string key("k\0\xff", 3);
  const std::string value("\0\1\2\0", 4);
  ASSERT_OK(kv->Put(Column::kBlocks, key, value));
  ASSERT_OK(kv->Put(Column::kBlocks, "empty", ""));
  EXPECT_EQ(Read(kv, Column::kBlocks, key), value);
  EXPECT_EQ(Read(kv, Column::kBlocks, std::string("k\0", 2)), "<missing>");
  EXPECT_EQ(Read(kv, Column::kBlocks, "empty"), "");
}

TEST_P(KVStoreTest, BatchAppliesOpsInOrder) {
  KVStore* kv = store_.get();
  ASSERT_OK(kv->Put(Column::kMeta, "gone", "x"));
  WriteBatch b;
  b.Put(Column::kEntries, "k", "1");
  b.Delete(Column::kEntries, "k");
  b.Put(Column::kEntries, "k", "2");
  b.Put(Column::kEntries, "d", "x");
  b.Delete(Column::kEntries, "d");
  b.Delete(Column::kMeta, "gone");
  b.Put(Column::kMeta, "c", EncodeCounter(5));
  b.Add(Column::kMeta, "c", 3);
  b.Put(Column::kInodes, "r1", "x");
  b.DeleteRange(Column::kInodes, "r", "s");
  b.Put(Column::kInodes, "r2", "y");
  ASSERT_OK(kv->Write(WriteOptions(), b));
  EXPECT_EQ(Read(kv, Column::kEntries, "k"), "2");
  EXPECT_EQ(Read(kv, Column::kEntries, "d"), "<missing>");
  EXPECT_EQ(Read(kv, Column::kMeta, "gone"), "<missing>");
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "c"), 8);
  EXPECT_EQ(Read(kv, Column::kInodes, "r1"), "<missing>");
  EXPECT_EQ(Read(kv, Column::kInodes, "r2"), "y");
  // An empty batch is fine.
  EXPECT_OK(kv->Write(WriteOptions(), WriteBatch()));
}

TEST_P(KVStoreTest, InvalidBatchAppliesNothing) {
  KVStore* kv = store_.get();
  WriteBatch b;
  b.Put(Column::kEntries, "k", "v");
  b.DeleteRange(Column::kEntries, "z", "a");  // begin > end
  Status s = kv->Write(WriteOptions(), b);
  EXPECT_EQ(s.posix_errno(), EINVAL) << s.ToString();
  EXPECT_EQ(Read(kv, Column::kEntries, "k"), "<missing>");

  WriteBatch bad_column;
  bad_column.Put(Column::kEntries, "k", "v");
  bad_column.Put(static_cast<Column>(kNumColumns), "k", "v");
  EXPECT_EQ(kv->Write(WriteOptions(), bad_column).posix_errno(), EINVAL);
  EXPECT_EQ(Read(kv, Column::kEntries, "k"), "<missing>");
  std::string v;
  EXPECT_EQ(kv->Get(static_cast<Column>(kNumColumns), "k", &v).posix_errno(), EINVAL);
  auto it = kv->NewIterator(static_cast<Column>(kNumColumns), IteratorOptions());
  it->Seek("");
  EXPECT_FALSE(it->Valid());
  EXPECT_EQ(it->status().posix_errno(), EINVAL);
}

// A reader never sees half of a batch: two keys in two columns always
// written together must agree in every snapshot.
TEST_P(KVStoreTest, BatchesAreAtomicForConcurrentReaders) {
  KVStore* kv = store_.get();
  std::atomic<bool> stop{false};
  std::atomic<int> checks{0};
  std::thread writer([&] {
    // Start once the reader is reading, so the two really overlap (the
    // memory store can finish all writes before a thread is scheduled).
    while (checks.load() == 0) std::this_thread::yield();
    for (int i = 0; i < 2000; ++i) {
      WriteBatch b;
      b.Put(Column::kEntries, "x", std::to_string(i));
      b.Put(Column::kInodes, "y", std::to_string(i));
      b.Add(Column::kMeta, "n", 1);
      ASSERT_OK(kv->Write(WriteOptions(), b));
    }
    stop = true;
  });
  int mismatches = 0;
  while (!stop) {
    auto snap = kv->GetSnapshot();
    const std::string x = Read(kv, Column::kEntries, "x", snap.get());
    const std::string y = Read(kv, Column::kInodes, "y", snap.get());
    std::string n;
    ReadOptions ro;
    ro.snapshot = snap.get();
    const Status s = kv->Get(ro, Column::kMeta, "n", &n);
    if (x != y) ++mismatches;
    if (x != "<missing>" && (!s.ok() || DecodeCounter(n) != std::stoll(x) + 1)) ++mismatches;
    ++checks;
  }
  writer.join();
  EXPECT_GT(checks, 0);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "n"), 2000);
}

TEST_P(KVStoreTest, IteratesInUnsignedByteOrder) {
  KVStore* kv = store_.get();
  const std::vector<std::string> keys = {"b",    "a", "\xff", "ab", std::string("a\0", 2),
                                         "\x80", "B", ""};
  for (const auto& k : keys) ASSERT_OK(kv->Put(Column::kEntries, k, "v" + k));
  ASSERT_OK(kv->Put(Column::kInodes, "zzz", "other column"));
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end(), [](const std::string& a, const std::string& b) {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
      return static_cast<unsigned char>(x) < static_cast<unsigned char>(y);
    });
  });
  KVs got = Scan(kv, Column::kEntries);
  ASSERT_EQ(got.size(), sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    EXPECT_EQ(got[i].first, sorted[i]) << i;
    EXPECT_EQ(got[i].second, "v" + sorted[i]);
  }
  EXPECT_EQ(sorted.back(), "\xff");

  // Seek lands on the first key >= target.
  auto it = kv->NewIterator(Column::kEntries, IteratorOptions());
  EXPECT_FALSE(it->Valid());  // not yet positioned
  it->Seek("aa");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "ab");
  it->Seek("a");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "a");
  it->Seek("\xff\x01");
  EXPECT_FALSE(it->Valid());
  EXPECT_OK(it->status());
  it->Next();  // no-op at the end
  EXPECT_FALSE(it->Valid());
}

TEST_P(KVStoreTest, IteratorsStopAtTheUpperBound) {
  KVStore* kv = store_.get();
  for (const char* k : {"a", "b", "b1", "c", "d"}) ASSERT_OK(kv->Put(Column::kInodes, k, k));
  IteratorOptions opts;
  opts.upper_bound = "c";
  KVs got = Scan(kv, Column::kInodes, opts);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].first, "b1");
  got = Scan(kv, Column::kInodes, opts, "b0");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "b1");
  EXPECT_TRUE(Scan(kv, Column::kInodes, opts, "c").empty());
  EXPECT_TRUE(Scan(kv, Column::kInodes, opts, "zz").empty());
  // A bound between keys.
  opts.upper_bound = "b0";
  got = Scan(kv, Column::kInodes, opts);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].first, "b");
  // A bound below every key.
  opts.upper_bound = "0";
  EXPECT_TRUE(Scan(kv, Column::kInodes, opts).empty());
}

TEST_P(KVStoreTest, SeekBeforeFindsTheLastSmallerKey) {
  KVStore* kv = store_.get();
  for (const char* k : {"a", "c", "e"}) ASSERT_OK(kv->Put(Column::kEntries, k, k));
  auto at = [](Iterator* it) { return it->Valid() ? std::string(it->key()) : "<end>"; };

  auto it = kv->NewIterator(Column::kEntries, IteratorOptions());
  it->SeekBefore("c");
  EXPECT_EQ(at(it.get()), "a");
  it->SeekBefore("d");
  EXPECT_EQ(at(it.get()), "c");
  it->SeekBefore("a");
  EXPECT_EQ(at(it.get()), "<end>");
  EXPECT_OK(it->status());
  it->SeekBefore("");  // the last key
  EXPECT_EQ(at(it.get()), "e");
  it->SeekBefore("z");
  EXPECT_EQ(at(it.get()), "e");
  // Next moves forward from there.
  it->SeekBefore("e");
  EXPECT_EQ(at(it.get()), "c");
  it->Next();
  EXPECT_EQ(at(it.get()), "e");
  it->Next();
  EXPECT_EQ(at(it.get()), "<end>");

  // With an upper bound nothing at or past it is visible.
  IteratorOptions opts;
  opts.upper_bound = "d";
  auto bounded = kv->NewIterator(Column::kEntries, opts);
  bounded->SeekBefore("");
  EXPECT_EQ(at(bounded.get()), "c");
  bounded->SeekBefore("z");
  EXPECT_EQ(at(bounded.get()), "c");
  bounded->SeekBefore("e");
  EXPECT_EQ(at(bounded.get()), "c");
  bounded->SeekBefore("c");
  EXPECT_EQ(at(bounded.get()), "a");
  bounded->SeekBefore("d");
  EXPECT_EQ(at(bounded.get()), "c");
  bounded->Next();
  EXPECT_EQ(at(bounded.get()), "<end>");  // "e" is past the bound
  opts.upper_bound = "c";
  bounded = kv->NewIterator(Column::kEntries, opts);
  bounded->SeekBefore("");
  EXPECT_EQ(at(bounded.get()), "a");

  // An empty column.
  auto empty = kv->NewIterator(Column::kBlocks, IteratorOptions());
  empty->SeekBefore("");
  EXPECT_FALSE(empty->Valid());
  EXPECT_OK(empty->status());
}

TEST_P(KVStoreTest, DeleteRangeDeletesHalfOpenRange) {
  KVStore* kv = store_.get();
  char key[8];
  for (int i = 0; i < 20; ++i) {
    std::snprintf(key, sizeof(key), "k%02d", i);
    ASSERT_OK(kv->Put(Column::kBlocks, key, "v"));
    ASSERT_OK(kv->Put(Column::kEntries, key, "v"));
  }
  auto before = kv->GetSnapshot();
  WriteBatch b;
  b.DeleteRange(Column::kBlocks, "k05", "k10");
  b.DeleteRange(Column::kBlocks, "k15", "k15");      // empty range
  b.DeleteRange(Column::kBlocks, "k17", "k17\x01");  // exactly one key
  ASSERT_OK(kv->Write(WriteOptions(), b));
  std::vector<std::string> left;
  for (auto& [k, v] : Scan(kv, Column::kBlocks)) left.push_back(k);
  EXPECT_EQ(left, (std::vector<std::string>{"k00", "k01", "k02", "k03", "k04", "k10", "k11", "k12",
                                            "k13", "k14", "k15", "k16", "k18", "k19"}));
  EXPECT_EQ(Read(kv, Column::kBlocks, "k05"), "<missing>");
  EXPECT_EQ(Read(kv, Column::kBlocks, "k09"), "<missing>");
  EXPECT_EQ(Read(kv, Column::kBlocks, "k10"), "v");
  // Other columns are untouched; the earlier snapshot still sees everything.
  EXPECT_EQ(Scan(kv, Column::kEntries).size(), 20u);
  IteratorOptions opts;
  opts.snapshot = before.get();
  EXPECT_EQ(Scan(kv, Column::kBlocks, opts).size(), 20u);
  EXPECT_EQ(Read(kv, Column::kBlocks, "k07", before.get()), "v");
  // Keys written into a deleted range after the deletion are visible.
  ASSERT_OK(kv->Put(Column::kBlocks, "k07", "again"));
  EXPECT_EQ(Read(kv, Column::kBlocks, "k07"), "again");
  // Deleting everything.
  WriteBatch all;
  all.DeleteRange(Column::kBlocks, "", "\xff\xff");
  ASSERT_OK(kv->Write(WriteOptions(), all));
  EXPECT_TRUE(Scan(kv, Column::kBlocks).empty());
}

TEST_P(KVStoreTest, AddMaintainsCounters) {
  KVStore* kv = store_.get();
  WriteBatch b;
  b.Add(Column::kMeta, "c", 5);
  ASSERT_OK(kv->Write(WriteOptions(), b));
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "c"), 5);
  b.Clear();
  b.Add(Column::kMeta, "c", -7);
  b.Add(Column::kMeta, "c", 1);
  b.Add(Column::kMeta, "d", 100);
  ASSERT_OK(kv->Write(WriteOptions(), b));
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "c"), -1);
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "d"), 100);
  EXPECT_EQ(Read(kv, Column::kMeta, "c"), EncodeCounter(-1));

  // Wraps around instead of overflowing.
  ASSERT_OK(kv->Put(Column::kMeta, "big", EncodeCounter(INT64_MAX)));
  b.Clear();
  b.Add(Column::kMeta, "big", 1);
  ASSERT_OK(kv->Write(WriteOptions(), b));
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "big"), INT64_MIN);

  // A value of the wrong size counts as 0; a deleted counter restarts at 0.
  ASSERT_OK(kv->Put(Column::kMeta, "odd", "abc"));
  ASSERT_OK(kv->Delete(Column::kMeta, "d"));
  b.Clear();
  b.Add(Column::kMeta, "odd", 3);
  b.Add(Column::kMeta, "d", 2);
  ASSERT_OK(kv->Write(WriteOptions(), b));
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "odd"), 3);
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "d"), 2);

  // Counters work in every column and show up in iteration.
  b.Clear();
  b.Add(Column::kInodes, "i", 9);
  ASSERT_OK(kv->Write(WriteOptions(), b));
  KVs got = Scan(kv, Column::kInodes);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(DecodeCounter(got[0].second), 9);

  // Concurrent adders lose nothing.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([kv, t] {
      for (int i = 0; i < 500; ++i) {
        WriteBatch add;
        add.Add(Column::kMeta, "shared", t + 1);
        ASSERT_OK(kv->Write(WriteOptions(), add));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "shared"), 500 * (1 + 2 + 3 + 4));
}

TEST_P(KVStoreTest, SnapshotsIsolateLaterWrites) {
  KVStore* kv = store_.get();
  ASSERT_OK(kv->Put(Column::kEntries, "a", "1"));
  ASSERT_OK(kv->Put(Column::kEntries, "b", "2"));
  WriteBatch add;
  add.Add(Column::kMeta, "n", 10);
  ASSERT_OK(kv->Write(WriteOptions(), add));

  auto snap = kv->GetSnapshot();
  ASSERT_NE(snap, nullptr);
  // An iterator made now sees the state as of its creation.
  auto early = kv->NewIterator(Column::kEntries, IteratorOptions());

  ASSERT_OK(kv->Put(Column::kEntries, "a", "changed"));
  ASSERT_OK(kv->Delete(Column::kEntries, "b"));
  ASSERT_OK(kv->Put(Column::kEntries, "c", "new"));
  ASSERT_OK(kv->Write(WriteOptions(), add));

  EXPECT_EQ(Read(kv, Column::kEntries, "a", snap.get()), "1");
  EXPECT_EQ(Read(kv, Column::kEntries, "b", snap.get()), "2");
  EXPECT_EQ(Read(kv, Column::kEntries, "c", snap.get()), "<missing>");
  ReadOptions ro;
  ro.snapshot = snap.get();
  std::string v;
  ASSERT_OK(kv->Get(ro, Column::kMeta, "n", &v));
  EXPECT_EQ(DecodeCounter(v), 10);
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "n"), 20);

  IteratorOptions opts;
  opts.snapshot = snap.get();
  EXPECT_EQ(Scan(kv, Column::kEntries, opts), (KVs{{"a", "1"}, {"b", "2"}}));
  opts.upper_bound = "b";
  EXPECT_EQ(Scan(kv, Column::kEntries, opts), (KVs{{"a", "1"}}));
  KVs from_early;
  for (early->Seek(""); early->Valid(); early->Next()) {
    from_early.emplace_back(early->key(), early->value());
  }
  EXPECT_EQ(from_early, (KVs{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(Scan(kv, Column::kEntries), (KVs{{"a", "changed"}, {"c", "new"}}));
}

// Iterators stay consistent (a point-in-time view) while other threads
// write: keys "x<i>" and "y<i>" are always written together.
TEST_P(KVStoreTest, IteratorsAreSafeAndConsistentDuringWrites) {
  KVStore* kv = store_.get();
  constexpr int kScansDuringWrites = 20;
  std::atomic<bool> stop{false};
  std::atomic<int> scans{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      // Keep writing until the scanner has finished kScansDuringWrites scans,
      // so they really overlap the writes (the memory store can finish 1500
      // batches before the scanning thread first runs).
      for (int i = 0; i < 1500 || scans.load() < kScansDuringWrites; ++i) {
        WriteBatch b;
        const std::string id = std::to_string(t) + "/" + std::to_string(i);
        b.Put(Column::kEntries, "x" + id, id);
        b.Put(Column::kEntries, "y" + id, id);
        if (i >= 100) {  // keep the column from growing without bound
          const std::string old = std::to_string(t) + "/" + std::to_string(i - 100);
          b.Delete(Column::kEntries, "x" + old);
          b.Delete(Column::kEntries, "y" + old);
        }
        ASSERT_OK(kv->Write(WriteOptions(), b));
      }
    });
  }
  std::thread stopper([&] {
    for (auto& w : writers) w.join();
    stop = true;
  });
  int bad = 0;
  while (!stop) {
    auto it = kv->NewIterator(Column::kEntries, IteratorOptions());
    std::set<std::string> xs, ys;
    std::string prev;
    bool first = true;
    for (it->Seek(""); it->Valid(); it->Next()) {
      std::string k(it->key());
      if (!first && !(prev < k)) ++bad;
      first = false;
      prev = k;
      if (it->value() != k.substr(1)) ++bad;
      (k[0] == 'x' ? xs : ys).insert(k.substr(1));
    }
    if (!it->status().ok() || xs != ys) ++bad;
    ++scans;
  }
  stopper.join();
  EXPECT_GE(scans.load(), kScansDuringWrites);
  EXPECT_EQ(bad, 0);
}

TEST_P(KVStoreTest, ConcurrentWritersAndSync) {
  KVStore* kv = store_.get();
  constexpr int kThreads = 8;
  constexpr int kBatches = 150;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([kv, t] {
      for (int i = 0; i < kBatches; ++i) {
        WriteBatch b;
        const std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        b.Put(Column::kInodes, key, std::string(100, static_cast<char>('a' + t)));
        b.Add(Column::kMeta, "count", 1);
        WriteOptions wo;
        wo.sync = i % 10 == 0;  // some synchronous writes mixed in
        ASSERT_OK(kv->Write(wo, b));
        ASSERT_OK(kv->Sync());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ReadCounter(kv, Column::kMeta, "count"), kThreads * kBatches);
  EXPECT_EQ(Scan(kv, Column::kInodes).size(), static_cast<size_t>(kThreads * kBatches));
  EXPECT_OK(kv->Sync());
}

TEST_P(KVStoreTest, RejectsSnapshotsOfOtherStores) {
  std::unique_ptr<KVStore> other = NewMemoryStore();
  auto snap = other->GetSnapshot();
  ReadOptions ro;
  ro.snapshot = snap.get();
  std::string v;
  EXPECT_EQ(store_->Get(ro, Column::kMeta, "k", &v).posix_errno(), EINVAL);
  IteratorOptions io;
  io.snapshot = snap.get();
  auto it = store_->NewIterator(Column::kMeta, io);
  it->Seek("");
  EXPECT_FALSE(it->Valid());
  EXPECT_EQ(it->status().posix_errno(), EINVAL);
}

INSTANTIATE_TEST_SUITE_P(Stores, KVStoreTest, ::testing::ValuesIn(AllBackends()), BackendName());

// ---------------------------------------------------------------------------
// Child processes. The test binary re-executes itself (fork + exec, so the
// child does not inherit a half-copied multithreaded process) as
//   kv_store_test --kv_child <mode> <args...>

// Runs /proc/self/exe --kv_child args..., leaving `inherit_fd` (if >= 0) open
// in the child. Returns the child's pid, or -1.
pid_t SpawnChild(const std::vector<std::string>& args, int inherit_fd) {
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return -1;
  exe[n] = '\0';
  std::vector<std::string> all = {exe, "--kv_child"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    if (inherit_fd >= 0) fcntl(inherit_fd, F_SETFD, 0);
    execv(exe, argv.data());
    _exit(127);
  }
  return pid;
}

// A pipe whose ends are closed on destruction (and on exec).
struct Pipe {
  Pipe() {
    if (pipe2(fds, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2: " << std::strerror(errno);
  }
  ~Pipe() {
    CloseWrite();
    if (fds[0] >= 0) close(fds[0]);
  }
  void CloseWrite() {
    if (fds[1] >= 0) close(fds[1]);
    fds[1] = -1;
  }
  int fds[2] = {-1, -1};
};

// Waits for the child to exit; its wait status.
int Reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// ---- crash test workload ----
// Each batch, identified by a 64-bit id, writes 4 entries, 1 inode record,
// 1 block and adds to two counters; all derived from the id so the parent
// can check each batch is entirely present or entirely absent.
constexpr int kEntriesPerBatch = 4;

std::string IdHex(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

std::string BatchValue(uint64_t id, int part, size_t size) {
  std::string v = IdHex(id) + ":" + std::to_string(part) + ":";
  std::mt19937_64 rng(id * 31 + part);
  while (v.size() < size) v.push_back(static_cast<char>('a' + rng() % 26));
  return v;
}

size_t BlockSize(uint64_t id) { return 512 + (id * 2654435761u) % 8192; }

WriteBatch MakeCrashBatch(uint64_t id) {
  WriteBatch b;
  const std::string h = IdHex(id);
  for (int j = 0; j < kEntriesPerBatch; ++j) {
    b.Put(Column::kEntries, "crash/" + h + "/" + std::to_string(j), BatchValue(id, j, 40 + j * 30));
  }
  b.Put(Column::kInodes, "crash/" + h, BatchValue(id, 100, 64));
  b.Put(Column::kBlocks, "crash/" + h, BatchValue(id, 200, BlockSize(id)));
  b.Add(Column::kMeta, "crash/batches", 1);
  b.Add(Column::kMeta, "crash/idsum", static_cast<int64_t>(id));
  return b;
}

// One progress message: 'W' after Write returned, 'S' after the Sync that
// followed it returned. 9 bytes, below PIPE_BUF, so writes are atomic.
void Report(int fd, char kind, uint64_t id) {
  char msg[9];
  msg[0] = kind;
  std::memcpy(msg + 1, &id, 8);
  if (write(fd, msg, sizeof(msg)) != static_cast<ssize_t>(sizeof(msg))) _exit(4);
}

// --kv_child crash <backend> <path> <fd> <round> <threads>: writes batches
// forever (until killed) from several threads, reporting progress on fd.
int CrashChild(const std::string& backend, const std::string& path, int fd, uint64_t round,
               int threads) {
  std::unique_ptr<KVStore> kv;
  // Small write buffers: flushes happen during the run.
  Status s = OpenTestStore(backend, path, &kv, SmallBufferOptions(backend));
  if (!s.ok()) {
    std::fprintf(stderr, "crash child: %s\n", s.ToString().c_str());
    return 2;
  }
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (uint64_t seq = 0;; ++seq) {
        const uint64_t id = (round << 40) | (static_cast<uint64_t>(t) << 32) | seq;
        WriteOptions wo;
        wo.sync = seq % 16 == 15;
        Status ws = kv->Write(wo, MakeCrashBatch(id));
        if (!ws.ok()) {
          std::fprintf(stderr, "crash child: %s\n", ws.ToString().c_str());
          _exit(3);
        }
        Report(fd, 'W', id);
        if (!wo.sync) {
          Status ss = kv->Sync();
          if (!ss.ok()) {
            std::fprintf(stderr, "crash child: %s\n", ss.ToString().c_str());
            _exit(3);
          }
        }
        Report(fd, 'S', id);
      }
    });
  }
  for (auto& w : workers) w.join();
  return 0;
}

// --kv_child hold <backend> <path> <fd>: opens the store, writes one byte to
// fd and waits to be killed.
int HoldChild(const std::string& backend, const std::string& path, int fd) {
  std::unique_ptr<KVStore> kv;
  if (!OpenTestStore(backend, path, &kv).ok()) return 2;
  if (write(fd, "R", 1) != 1) return 3;
  for (;;) pause();
}

// --kv_child open_as <backend> <uid> <path>: drops to uid and tries to open
// the store. Exit 0 if that fails with EIO or EACCES naming the path, 1 if
// it opens, 2 on another error, 3 if the uid cannot be taken.
int OpenAsChild(const std::string& backend, uid_t uid, const std::string& path) {
  if (setgid(uid) != 0 || setuid(uid) != 0) return 3;
  std::unique_ptr<KVStore> kv;
  Status s = OpenTestStore(backend, path, &kv);
  if (s.ok()) return 1;
  std::fprintf(stderr, "open as %d: %s\n", static_cast<int>(uid), s.ToString().c_str());
  return (s.posix_errno() == EIO || s.posix_errno() == EACCES) &&
                 s.message().find(path) != std::string::npos
             ? 0
             : 2;
}

// ---------------------------------------------------------------------------
// Every persistent backend: persistence, options, path errors, crash
// recovery.

class PersistentStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string DBPath() const { return dir_.path() + "/db"; }
  const std::string& Backend() const { return GetParam(); }

  // A spec for this test's store: the backend under test, small caches.
  KVStoreSpec Spec(const std::string& path) const {
    KVStoreSpec spec;
    spec.path = path;
    spec.backend = Backend();
    return spec;
  }
  void Reopen(const KVOptions& extra = {}) {
    store_.reset();
    ASSERT_OK(OpenTestStore(Backend(), DBPath(), &store_, extra));
  }

  TempDir dir_;
  std::unique_ptr<KVStore> store_;
};

TEST_P(PersistentStoreTest, DataSurvivesReopen) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (int round = 0; round < 3; ++round) {
    WriteBatch b;
    for (int c = 0; c < kNumColumns; ++c) {
      b.Put(static_cast<Column>(c), "r" + std::to_string(round),
            ColumnName(static_cast<Column>(c)));
    }
    b.Add(Column::kMeta, "counter", 10 + round);
    b.Delete(Column::kInodes, "r" + std::to_string(round - 1));
    ASSERT_OK(store_->Write(WriteOptions(), b));
    ASSERT_OK(store_->Sync());
    ASSERT_NO_FATAL_FAILURE(Reopen());
    // Recovered data plus the counter added to across reopens.
    EXPECT_EQ(ReadCounter(store_.get(), Column::kMeta, "counter"),
              10 * (round + 1) + round * (round + 1) / 2);
    for (int r = 0; r <= round; ++r) {
      const std::string key = "r" + std::to_string(r);
      EXPECT_EQ(Read(store_.get(), Column::kBlocks, key), "blocks");
      EXPECT_EQ(Read(store_.get(), Column::kEntries, key), "entries");
      EXPECT_EQ(Read(store_.get(), Column::kInodes, key), r == round ? "inodes" : "<missing>");
    }
  }
  // The directory records its backend.
  EXPECT_EQ(RecordedKVBackend(DBPath()), Backend());
}

// Enough data to go through memtable flushes and compactions (where the
// backend has them), so that counters and range deletes meet on-disk data.
TEST_P(PersistentStoreTest, LargeDataAndRangeDeletesSurviveReopen) {
  const KVOptions small = SmallBufferOptions(Backend());
  ASSERT_NO_FATAL_FAILURE(Reopen(small));
  constexpr int kKeys = 3000;
  for (int i = 0; i < kKeys; ++i) {
    WriteBatch b;
    char key[16];
    std::snprintf(key, sizeof(key), "b%06d", i);
    b.Put(Column::kBlocks, key, BatchValue(i, 0, 1000));
    b.Put(Column::kEntries, key, BatchValue(i, 1, 50));
    b.Add(Column::kEntries, "counter" + std::to_string(i % 7), 1);
    ASSERT_OK(store_->Write(WriteOptions(), b));
  }
  WriteBatch del;
  del.DeleteRange(Column::kBlocks, "b001000", "b002000");
  ASSERT_OK(store_->Write(WriteOptions(), del));
  auto check = [&] {
    for (int i = 0; i < kKeys; i += 37) {
      char key[16];
      std::snprintf(key, sizeof(key), "b%06d", i);
      EXPECT_EQ(Read(store_.get(), Column::kBlocks, key),
                i >= 1000 && i < 2000 ? "<missing>" : BatchValue(i, 0, 1000));
      EXPECT_EQ(Read(store_.get(), Column::kEntries, key), BatchValue(i, 1, 50));
    }
    int64_t total = 0;
    for (int c = 0; c < 7; ++c) {
      total += ReadCounter(store_.get(), Column::kEntries, "counter" + std::to_string(c));
    }
    EXPECT_EQ(total, kKeys);
    IteratorOptions io;
    io.upper_bound = "c";
    EXPECT_EQ(Scan(store_.get(), Column::kBlocks, io).size(), static_cast<size_t>(kKeys - 1000));
  };
  check();
  ASSERT_NO_FATAL_FAILURE(Reopen(small));
  check();
}

TEST_P(PersistentStoreTest, CreateIfMissingFalseOnEmptyPathIsNotFound) {
  KVStoreSpec spec = Spec(DBPath());
  spec.create_if_missing = false;
  Status s = OpenKVStore(spec, &store_);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_EQ(store_, nullptr);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  store_.reset();
  ASSERT_OK(OpenKVStore(spec, &store_));
}

TEST_P(PersistentStoreTest, BadOptionsAreInvalidArgument) {
  KVStoreSpec spec = Spec("");
  EXPECT_EQ(OpenKVStore(spec, &store_).posix_errno(), EINVAL);
  spec = Spec(DBPath());
  spec.options["no_such_option"] = "1";
  Status s = OpenKVStore(spec, &store_);
  EXPECT_EQ(s.posix_errno(), EINVAL) << s.ToString();
  EXPECT_NE(s.message().find("no_such_option"), std::string::npos) << s.ToString();
  EXPECT_EQ(store_, nullptr);
}

TEST_P(PersistentStoreTest, PathThatIsAFileIsAnError) {
  const std::string file = dir_.path() + "/file";
  std::ofstream(file) << "not a database";
  for (const std::string& path : {file, file + "/db"}) {
    std::unique_ptr<KVStore> kv;
    Status s = OpenKVStore(Spec(path), &kv);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
    EXPECT_EQ(kv, nullptr);
  }
}

TEST_P(PersistentStoreTest, PathLockedInThisProcessIsAnError) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  std::unique_ptr<KVStore> second;
  Status s = OpenKVStore(Spec(DBPath()), &second);
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("lock"), std::string::npos) << s.ToString();
  EXPECT_EQ(second, nullptr);
  store_.reset();
  EXPECT_OK(OpenKVStore(Spec(DBPath()), &second));
}

TEST_P(PersistentStoreTest, PathLockedByAnotherProcessIsAnError) {
  Pipe ready;
  const pid_t pid =
      SpawnChild({"hold", Backend(), DBPath(), std::to_string(ready.fds[1])}, ready.fds[1]);
  ASSERT_GT(pid, 0);
  ready.CloseWrite();
  char c = 0;
  const ssize_t n = read(ready.fds[0], &c, 1);
  Status s;
  if (n == 1) s = OpenKVStore(Spec(DBPath()), &store_);
  kill(pid, SIGKILL);
  Reap(pid);
  ASSERT_EQ(n, 1) << "child failed to open the store";
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find(DBPath()), std::string::npos) << s.ToString();
  EXPECT_EQ(store_, nullptr);
  // The lock dies with its holder.
  EXPECT_OK(OpenKVStore(Spec(DBPath()), &store_));
}

TEST_P(PersistentStoreTest, PathWithoutPermissionIsAnError) {
  const std::string locked = dir_.path() + "/locked";
  ASSERT_EQ(mkdir(locked.c_str(), 0700), 0);
  const std::string path = locked + "/db";
  if (geteuid() == 0) {
    // Root ignores permissions: try as an unprivileged user.
    const pid_t pid = SpawnChild({"open_as", Backend(), "65534", path}, -1);
    ASSERT_GT(pid, 0);
    const int status = Reap(pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "see the child's message above";
  } else {
    ASSERT_EQ(chmod(locked.c_str(), 0), 0);
    Status s = OpenKVStore(Spec(path), &store_);
    chmod(locked.c_str(), 0700);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  }
}

// Kills a writer process at random points and checks after recovery that
// every batch it was told was written (let alone synced) is there, and that
// every batch is entirely present or entirely absent.
TEST_P(PersistentStoreTest, CrashRecoveryKeepsAcknowledgedBatchesWhole) {
  const unsigned seed = std::random_device()();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::set<uint64_t> written, synced;
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Pipe progress;
    const pid_t pid = SpawnChild(
        {"crash", Backend(), DBPath(), std::to_string(progress.fds[1]), std::to_string(round), "4"},
        progress.fds[1]);
    ASSERT_GT(pid, 0);
    progress.CloseWrite();

    std::string buf;
    auto drain = [&](int timeout_ms) {  // reads what is there; false at EOF
      pollfd p{progress.fds[0], POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return true;
      char chunk[4096];
      const ssize_t n = read(progress.fds[0], chunk, sizeof(chunk));
      if (n <= 0) return false;
      buf.append(chunk, n);
      return true;
    };
    // Run until the first acknowledgement, then a random while longer.
    const auto start = std::chrono::steady_clock::now();
    while (buf.empty() && std::chrono::steady_clock::now() - start < 30s) {
      if (!drain(100)) break;
    }
    const auto kill_at = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(std::uniform_int_distribution<>(0, 400)(rng));
    while (std::chrono::steady_clock::now() < kill_at) {
      if (!drain(5)) break;
    }
    kill(pid, SIGKILL);
    const int status = Reap(pid);
    while (drain(1000)) {
    }
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "writer died on its own, status " << status;
    ASSERT_EQ(buf.size() % 9, 0u);
    ASSERT_FALSE(buf.empty()) << "writer made no progress";
    for (size_t i = 0; i < buf.size(); i += 9) {
      uint64_t id;
      std::memcpy(&id, buf.data() + i + 1, 8);
      (buf[i] == 'S' ? synced : written).insert(id);
    }

    // Recover and check.
    ASSERT_NO_FATAL_FAILURE(Reopen());
    IteratorOptions crash_keys;
    crash_keys.upper_bound = "crash0";  // '0' follows '/'
    std::map<uint64_t, int> parts;      // id -> parts found intact
    std::set<uint64_t> present;
    int bad_values = 0;
    auto id_of = [](std::string_view key) {
      return std::stoull(std::string(key.substr(6, 16)), nullptr, 16);
    };
    for (auto& [k, v] : Scan(store_.get(), Column::kEntries, crash_keys, "crash/")) {
      const uint64_t id = id_of(k);
      const int j = std::stoi(k.substr(23));
      bad_values += v != BatchValue(id, j, 40 + j * 30);
      ++parts[id];
      present.insert(id);
    }
    for (auto& [k, v] : Scan(store_.get(), Column::kInodes, crash_keys, "crash/")) {
      const uint64_t id = id_of(k);
      bad_values += v != BatchValue(id, 100, 64);
      ++parts[id];
      present.insert(id);
    }
    for (auto& [k, v] : Scan(store_.get(), Column::kBlocks, crash_keys, "crash/")) {
      const uint64_t id = id_of(k);
      bad_values += v != BatchValue(id, 200, BlockSize(id));
      ++parts[id];
      present.insert(id);
    }
    EXPECT_EQ(bad_values, 0);
    int torn = 0;
    uint64_t idsum = 0;
    for (auto& [id, n] : parts) {
      torn += n != kEntriesPerBatch + 2;
      idsum += id;
    }
    EXPECT_EQ(torn, 0) << "batches partially present";
    EXPECT_EQ(ReadCounter(store_.get(), Column::kMeta, "crash/batches"),
              static_cast<int64_t>(present.size()));
    EXPECT_EQ(static_cast<uint64_t>(ReadCounter(store_.get(), Column::kMeta, "crash/idsum")),
              idsum);
    int lost_written = 0, lost_synced = 0;
    for (uint64_t id : written) lost_written += !present.count(id);
    for (uint64_t id : synced) lost_synced += !present.count(id);
    EXPECT_EQ(lost_synced, 0) << "of " << synced.size() << " synced batches";
    EXPECT_EQ(lost_written, 0) << "of " << written.size() << " written batches";
    RecordProperty("round" + std::to_string(round) + "_batches", static_cast<int>(present.size()));
    store_.reset();
    if (HasFailure()) break;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, PersistentStoreTest, ::testing::ValuesIn(PersistentBackends()),
                         BackendName());

// RocksDB: a scan with fill_cache false reads its blocks without keeping
// them in the block cache (what an export does), one with it true keeps them
// (block_cache_usage_bytes, one of Statistics()).
TEST(RocksDBStoreTest, ScansWithoutFillCacheLeaveTheBlockCacheAlone) {
  TempDir dir;
  std::unique_ptr<KVStore> kv;
  ASSERT_OK(OpenTestStore("rocksdb", dir.path() + "/db", &kv, {{"block_cache_bytes", "64M"}}));
  // 4 MiB of blocks that do not compress, in a table file (bulk loaded).
  constexpr int kValues = 256;
  constexpr size_t kValueBytes = 16 << 10;
  std::mt19937_64 random(42);
  {
    std::unique_ptr<BulkLoader> loader;
    ASSERT_OK(kv->NewBulkLoader(dir.path() + "/staging", &loader));
    for (int i = 0; i < kValues; ++i) {
      std::string value(kValueBytes, '\0');
      for (size_t j = 0; j < value.size(); j += 8) {
        const uint64_t r = random();
        std::memcpy(&value[j], &r, 8);
      }
      char key[16];
      std::snprintf(key, sizeof(key), "k%06d", i);
      ASSERT_OK(loader->Add(Column::kBlocks, key, value));
    }
    ASSERT_OK(loader->Commit());
  }
  auto cache_usage = [&] {
    for (const auto& [name, value] : kv->Statistics()) {
      if (name == "block_cache_usage_bytes") return value;
    }
    ADD_FAILURE() << "no block_cache_usage_bytes statistic";
    return uint64_t{0};
  };
  auto scanned_bytes = [&](bool fill_cache) {
    IteratorOptions io;
    io.fill_cache = fill_cache;
    uint64_t bytes = 0;
    for (const auto& [key, value] : Scan(kv.get(), Column::kBlocks, io)) bytes += value.size();
    return bytes;
  };
  const uint64_t before = cache_usage();
  EXPECT_EQ(scanned_bytes(/*fill_cache=*/false), kValues * kValueBytes);
  const uint64_t after_bypass = cache_usage();
  // At most the table's index and filter blocks came in.
  EXPECT_LT(after_bypass - before, uint64_t{512} << 10);
  EXPECT_EQ(scanned_bytes(/*fill_cache=*/true), kValues * kValueBytes);
  EXPECT_GT(cache_usage() - after_bypass, uint64_t{3} << 20);
}

// ---------------------------------------------------------------------------
// The plugin loader (kv_backend.h).

// Sets $KVFS_KV_PLUGIN_PATH for the life of the object.
class ScopedPluginPath {
 public:
  explicit ScopedPluginPath(const std::string& dirs) {
    setenv("KVFS_KV_PLUGIN_PATH", dirs.c_str(), 1);
  }
  ~ScopedPluginPath() { unsetenv("KVFS_KV_PLUGIN_PATH"); }
};

TEST(KVBackendTest, EveryBuiltPluginIsFoundByName) {
  std::vector<std::string> available = AvailableKVBackends();
  for (const std::string& name : PersistentBackends()) {
    EXPECT_NE(std::find(available.begin(), available.end(), name), available.end()) << name;
  }
  EXPECT_FALSE(PersistentBackends().empty());
}

TEST(KVBackendTest, UnknownBackendIsInvalidArgumentListingTheAvailableOnes) {
  TempDir dir;
  KVStoreSpec spec;
  spec.path = dir.path() + "/db";
  spec.backend = "nosuchstore";
  std::unique_ptr<KVStore> kv;
  Status s = OpenKVStore(spec, &kv);
  EXPECT_EQ(s.posix_errno(), EINVAL) << s.ToString();
  EXPECT_NE(s.message().find("nosuchstore"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(kDefaultKVBackend), std::string::npos) << s.ToString();
  EXPECT_EQ(kv, nullptr);
  spec.backend = "../rocksdb";
  EXPECT_EQ(OpenKVStore(spec, &kv).posix_errno(), EINVAL);
  EXPECT_EQ(RecordedKVBackend(spec.path), "");  // nothing was created
}

TEST(KVBackendTest, TheRecordedBackendIsUsedAndAnotherOneRefused) {
  TempDir dir;
  KVStoreSpec spec;
  spec.path = dir.path() + "/db";
  std::unique_ptr<KVStore> kv;
  ASSERT_OK(OpenKVStore(spec, &kv));  // no backend named: the default
  EXPECT_EQ(kv->Name(), kDefaultKVBackend);
  ASSERT_OK(kv->Put(Column::kMeta, "k", "v"));
  kv.reset();
  EXPECT_EQ(RecordedKVBackend(spec.path), kDefaultKVBackend);
  for (const std::string& other : {std::string("lmdb"), std::string("nosuchstore")}) {
    spec.backend = other;
    Status s = OpenKVStore(spec, &kv);
    EXPECT_EQ(s.posix_errno(), EINVAL) << s.ToString();
    EXPECT_NE(s.message().find(std::string("created by backend '") + kDefaultKVBackend),
              std::string::npos)
        << s.ToString();
  }
  spec.backend = "";
  ASSERT_OK(OpenKVStore(spec, &kv));
  EXPECT_EQ(Read(kv.get(), Column::kMeta, "k"), "v");
}

TEST(KVBackendTest, BrokenPluginsAreClearErrors) {
  // A file that is not a shared library.
  TempDir dir;
  std::ofstream(dir.path() + "/libkvfs-kv-garbage.so") << "not an ELF file";
  ScopedPluginPath path(dir.path() + ":" + KVFS_TEST_BAD_PLUGIN_DIR);
  TempDir db;
  KVStoreSpec spec;
  spec.path = db.path() + "/db";
  std::unique_ptr<KVStore> kv;
  struct Case {
    std::string backend, expect;
  };
  for (const Case& c : {Case{"garbage", "cannot load"}, Case{"badabi", "ABI 999"},
                        Case{"nosymbol", "is not a KVFS key/value backend"}}) {
    spec.backend = c.backend;
    Status s = OpenKVStore(spec, &kv);
    EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("libkvfs-kv-" + c.backend + ".so"), std::string::npos)
        << s.ToString();
    EXPECT_EQ(kv, nullptr);
  }
  // The good plugins are still found after the bad ones.
  spec.backend = kDefaultKVBackend;
  EXPECT_OK(OpenKVStore(spec, &kv));
}

TEST(KVBackendTest, ParseOptions) {
  KVOptions o;
  ASSERT_OK(ParseKVOptions(" block_cache_bytes = 64M , bloom_bits_per_key=0", &o));
  EXPECT_EQ(o, (KVOptions{{"block_cache_bytes", "64M"}, {"bloom_bits_per_key", "0"}}));
  ASSERT_OK(ParseKVOptions("", &o));
  EXPECT_TRUE(o.empty());
  EXPECT_EQ(ParseKVOptions("a=1,b", &o).posix_errno(), EINVAL);
  EXPECT_EQ(ParseKVOptions("=1", &o).posix_errno(), EINVAL);
  EXPECT_EQ(ParseKVOptions("a=1,a=2", &o).posix_errno(), EINVAL);

  KVStoreSpec spec;
  ASSERT_OK(ParseKVStoreSpec("/db", "lmdb", "map_size=2T", &spec));
  EXPECT_EQ(spec.path, "/db");
  EXPECT_EQ(spec.backend, "lmdb");
  EXPECT_EQ(spec.options, (KVOptions{{"map_size", "2T"}}));
  EXPECT_TRUE(spec.create_if_missing);
  EXPECT_EQ(ParseKVStoreSpec("/other", "", "bad", &spec).posix_errno(), EINVAL);
  EXPECT_EQ(spec.path, "/db");  // untouched on error
}

TEST(KVBackendTest, OptionReaderParsesAndReportsEveryProblem) {
  KVOptions given = {{"size", "3G"}, {"count", "12"}, {"flag", "off"}, {"name", "x"}};
  uint64_t size = 0;
  int64_t count = 0;
  bool flag = true;
  std::string name;
  uint64_t absent = 7;
  PluginOptionReader r("backend test", given);
  r.Size("size", &size);
  r.Int("count", 0, 100, &count);
  r.Bool("flag", &flag);
  r.String("name", &name);
  r.Size("absent", &absent);
  EXPECT_OK(r.Finish());
  EXPECT_EQ(size, 3ull << 30);
  EXPECT_EQ(count, 12);
  EXPECT_FALSE(flag);
  EXPECT_EQ(name, "x");
  EXPECT_EQ(absent, 7u);  // untouched

  KVOptions bad = {{"size", "12Q"}, {"count", "101"}, {"flag", "maybe"}, {"typo", "1"}};
  PluginOptionReader r2("backend test", bad);
  r2.Size("size", &size);
  r2.Int("count", 0, 100, &count);
  r2.Bool("flag", &flag);
  Status s = r2.Finish();
  EXPECT_EQ(s.posix_errno(), EINVAL);
  for (const char* part : {"size='12Q'", "count='101'", "flag='maybe'", "unknown option 'typo'"}) {
    EXPECT_NE(s.message().find(part), std::string::npos) << part << " in " << s.ToString();
  }
  EXPECT_EQ(size, 3ull << 30);  // bad values leave the default
}

// ---------------------------------------------------------------------------
// WriteQueue (write_queue.h).

TEST(WriteQueueTest, ConcurrentWritersShareGroupsAndKeepTheirOrder) {
  std::vector<std::string> applied;  // keys in the order applied
  std::mutex mu;
  WriteQueue queue([&](std::span<const WriteBatch* const> batches) {
    std::this_thread::sleep_for(5ms);  // a slow commit, so writers pile up
    std::lock_guard<std::mutex> lock(mu);
    for (const WriteBatch* b : batches) {
      for (const auto& op : b->ops()) applied.push_back(op.key);
    }
    return Status::OK();
  });
  constexpr int kThreads = 8, kPerThread = 20;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        WriteBatch b;
        b.Put(Column::kMeta, std::to_string(t) + "/" + std::to_string(1000 + i), "");
        EXPECT_OK(queue.Write(b));
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(applied.size(), static_cast<size_t>(kThreads * kPerThread));
  std::map<std::string, std::string> last;  // thread -> its last key applied
  for (const std::string& key : applied) {
    const std::string thread = key.substr(0, key.find('/'));
    EXPECT_LT(last[thread], key) << "writer's batches applied out of order";
    last[thread] = key;
  }
  EXPECT_LT(queue.Groups(), static_cast<uint64_t>(kThreads * kPerThread));
}

TEST(WriteQueueTest, OneFailingBatchDoesNotFailTheOthersInItsGroup) {
  std::atomic<int> applied_ok{0};
  WriteQueue queue([&](std::span<const WriteBatch* const> batches) {
    std::this_thread::sleep_for(2ms);
    for (const WriteBatch* b : batches) {
      if (b->ops()[0].key == "bad") return Status::IOError("bad batch");  // applies nothing
    }
    applied_ok += static_cast<int>(batches.size());
    return Status::OK();
  });
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        WriteBatch b;
        b.Put(Column::kMeta, t == 0 ? "bad" : "good", "");
        Status s = queue.Write(b);
        (s.ok() ? ok : failed)++;
        if (t == 0) {
          EXPECT_EQ(s.posix_errno(), EIO);
        } else {
          EXPECT_OK(s);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 30);
  EXPECT_EQ(ok.load(), 150);
  EXPECT_EQ(applied_ok.load(), 150);
}

}  // namespace

// Entry point of helper processes; returns the exit code.
int ChildMain(int argc, char** argv) {
  const std::string mode = argc > 2 ? argv[2] : "";
  if (mode == "crash" && argc == 8) {
    return CrashChild(argv[3], argv[4], std::atoi(argv[5]), std::strtoull(argv[6], nullptr, 10),
                      std::atoi(argv[7]));
  }
  if (mode == "hold" && argc == 6) return HoldChild(argv[3], argv[4], std::atoi(argv[5]));
  if (mode == "open_as" && argc == 6) {
    return OpenAsChild(argv[3], static_cast<uid_t>(std::atoi(argv[4])), argv[5]);
  }
  std::fprintf(stderr, "bad --kv_child arguments\n");
  return 64;
}

}  // namespace kvfs

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "--kv_child") return kvfs::ChildMain(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
