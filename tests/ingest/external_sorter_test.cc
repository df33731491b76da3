// ExternalSorter: order, stability and bounded memory (spilled runs).
#include "ingest/external_sorter.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>

#include "tests/fs/test_util.h"

namespace kvfs::ingest {
namespace {

using kvfs::testing::TempDir;

struct Pair {
  std::string key, value;
};

// Adds `pairs` to a sorter with `budget` bytes and returns its output.
std::vector<Pair> SortAll(const std::string& dir, const std::vector<Pair>& pairs, size_t budget,
                          size_t* runs) {
  ExternalSorter sorter(dir, "t", budget);
  for (const Pair& p : pairs) EXPECT_OK(sorter.Add(p.key, p.value));
  *runs = sorter.runs();
  std::vector<Pair> out;
  EXPECT_OK(sorter.Finish([&](std::string_view k, std::string_view v) {
    out.push_back(Pair{std::string(k), std::string(v)});
    return Status::OK();
  }));
  return out;
}

std::vector<Pair> RandomPairs(size_t n, uint64_t seed, int key_space) {
  std::mt19937_64 rng(seed);
  std::vector<Pair> pairs;
  for (size_t i = 0; i < n; ++i) {
    std::string key = std::to_string(rng() % key_space);
    key.push_back('\0');  // binary keys
    pairs.push_back(Pair{key, "v" + std::to_string(i) + std::string(rng() % 50, 'x')});
  }
  return pairs;
}

// The expected output: sorted by key, equal keys in insertion order.
std::vector<Pair> Expected(std::vector<Pair> pairs) {
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const Pair& a, const Pair& b) { return a.key < b.key; });
  return pairs;
}

void ExpectSame(const std::vector<Pair>& want, const std::vector<Pair>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].key, got[i].key) << i;
    ASSERT_EQ(want[i].value, got[i].value) << i;
  }
}

TEST(ExternalSorter, InMemory) {
  TempDir dir("kvfs-sorter");
  auto pairs = RandomPairs(5000, 1, 1000);
  size_t runs;
  auto got = SortAll(dir.path(), pairs, 64 << 20, &runs);
  EXPECT_EQ(runs, 0u);
  ExpectSame(Expected(pairs), got);
}

TEST(ExternalSorter, SpillsAndMergesStably) {
  TempDir dir("kvfs-sorter");
  // Few distinct keys: many ties across runs.
  auto pairs = RandomPairs(20000, 2, 50);
  size_t runs;
  auto got = SortAll(dir.path(), pairs, 16 << 10, &runs);
  EXPECT_GT(runs, 10u);
  ExpectSame(Expected(pairs), got);
}

TEST(ExternalSorter, RemovesItsRunFiles) {
  TempDir dir("kvfs-sorter");
  {
    ExternalSorter sorter(dir.path(), "t", 1024);
    for (const Pair& p : RandomPairs(2000, 3, 100)) ASSERT_OK(sorter.Add(p.key, p.value));
    EXPECT_GT(sorter.runs(), 0u);
    EXPECT_FALSE(std::filesystem::is_empty(dir.path()));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(ExternalSorter, StopsAtTheCallbacksError) {
  TempDir dir("kvfs-sorter");
  ExternalSorter sorter(dir.path(), "t", 1024);
  for (const Pair& p : RandomPairs(1000, 4, 1000)) ASSERT_OK(sorter.Add(p.key, p.value));
  int calls = 0;
  Status s = sorter.Finish([&](std::string_view, std::string_view) {
    return ++calls == 10 ? Status::FromErrno(ENOSPC, "stop") : Status::OK();
  });
  EXPECT_EQ(s.posix_errno(), ENOSPC);
  EXPECT_EQ(calls, 10);
  EXPECT_FALSE(sorter.Add("k", "v").ok());  // spent
}

TEST(ExternalSorter, UnwritableDirectoryFailsCleanly) {
  ExternalSorter sorter("/nonexistent/kvfs-sorter", "t", 100);
  Status s;
  for (int i = 0; i < 100 && s.ok(); ++i) s = sorter.Add("key" + std::to_string(i), "value");
  EXPECT_EQ(s.posix_errno(), ENOENT) << s.ToString();
}

}  // namespace
}  // namespace kvfs::ingest
