// One directory of 1,000,000 entries on RocksDB: created, listed with
// cookies across many pages (each page a fresh ReadDir call, as NFS does),
// and looked up. Labelled "long" in CTest. KVFS_HUGE_DIR_ENTRIES overrides
// the count for quick local runs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include "common/fs/file_system.h"
#include "common/fs/fsck.h"
#include "common/kv/kv_backend.h"

namespace kvfs {
namespace {

TEST(HugeDirectoryTest, MillionEntriesCreateListLookup) {
  size_t n = 1000000;
  if (const char* env = std::getenv("KVFS_HUGE_DIR_ENTRIES")) n = std::strtoul(env, nullptr, 10);
  auto dir = std::filesystem::temp_directory_path() / ("kvfs_huge_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  {
    KVStoreSpec spec;
    spec.path = dir.string();
    spec.backend = "rocksdb";
    std::unique_ptr<KVStore> store;
    ASSERT_TRUE(OpenKVStore(spec, &store).ok());
    FileSystemOptions fo;
    fo.durable = false;  // one Sync at the end: this test is about size, not durability
    std::unique_ptr<FileSystem> fs;
    ASSERT_TRUE(FileSystem::Open(fo, std::move(store), &fs).ok());

    Attributes top, d;
    ASSERT_TRUE(fs->Mkdir(kRootIno, "top", NewObject{0755, 0, 0}, &top).ok());
    ASSERT_TRUE(fs->Mkdir(top.ino, "huge", NewObject{0755, 0, 0}, &d).ok());
    auto t0 = std::chrono::steady_clock::now();
    std::vector<Ino> inos(n);
    for (size_t i = 0; i < n; ++i) {
      Attributes a;
      Status s = fs->Create(d.ino, "entry_" + std::to_string(i), NewObject{0644, 0, 0}, true, &a);
      ASSERT_TRUE(s.ok()) << i << ": " << s.ToString();
      inos[i] = a.ino;
    }
    ASSERT_TRUE(fs->Sync().ok());
    auto t1 = std::chrono::steady_clock::now();

    // List in pages of 1000 entries, resuming from the last cookie.
    std::vector<bool> seen(n, false);
    size_t total = 0, pages = 0;
    uint64_t cookie = kStartCookie;
    bool eof = false;
    while (!eof) {
      size_t in_page = 0;
      ASSERT_TRUE(fs->ReadDir(
                        d.ino, cookie,
                        [&](const DirEntry& e) {
                          size_t i = std::strtoul(e.name.c_str() + 6, nullptr, 10);
                          EXPECT_LT(i, n);
                          EXPECT_FALSE(seen[i]) << "entry repeated: " << e.name;
                          EXPECT_EQ(e.attrs.ino, inos[i]);
                          seen[i] = true;
                          cookie = e.cookie;
                          ++total;
                          return ++in_page < 1000;
                        },
                        &eof)
                      .ok());
      ++pages;
    }
    EXPECT_EQ(total, n);
    EXPECT_GE(pages, n / 1000);
    auto t2 = std::chrono::steady_clock::now();

    std::mt19937_64 rng(7);
    for (int k = 0; k < 100000; ++k) {
      size_t i = rng() % n;
      Attributes a;
      ASSERT_TRUE(fs->Lookup(d.ino, "entry_" + std::to_string(i), &a).ok());
      ASSERT_EQ(a.ino, inos[i]);
    }
    Attributes missing;
    EXPECT_EQ(fs->Lookup(d.ino, "entry_" + std::to_string(n), &missing).posix_errno(), ENOENT);
    auto t3 = std::chrono::steady_clock::now();
    Attributes da;
    ASSERT_TRUE(fs->GetAttr(d.ino, &da).ok());
    EXPECT_EQ(da.size, n);

    FsckReport report;
    ASSERT_TRUE(Fsck(fs->store(), fo.name_hasher, &report).ok());
    EXPECT_TRUE(report.ok()) << report.problems.size() << " problems, first: "
                             << (report.problems.empty() ? "" : report.problems[0]);
    EXPECT_EQ(report.files, n);
    auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    std::printf("entries=%zu create=%.1fs list=%.1fs (%zu pages) 100k lookups=%.1fs\n", n,
                secs(t0, t1), secs(t1, t2), pages, secs(t2, t3));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvfs
