// The local-directory PersistentStore: listing, atomic writes, deletes,
// tarball names, and exclusive range claims raced by several processes.
#include "ingest/persistent_store.h"
#include "store/store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "tests/fs/test_util.h"

namespace kvfs::ingest {
namespace {

using kvfs::testing::TempDir;

std::string ReadObject(PersistentStore* store, const std::string& name) {
  std::unique_ptr<ObjectReader> r;
  Status s = store->OpenRead(name, &r);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return "";
  std::string out, buf(7, '\0');  // small reads: exercise the loop
  for (;;) {
    size_t got = 0;
    EXPECT_OK(r->Read(buf.data(), buf.size(), &got));
    if (got == 0) break;
    out.append(buf.data(), got);
  }
  EXPECT_EQ(r->size(), out.size());
  return out;
}

TEST(LocalStore, WritesAreInvisibleUntilCommitted) {
  TempDir dir("kvfs-store");
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(kvfs::store::OpenStore(kvfs::store::StoreAt(dir.path()), &store));
  std::unique_ptr<ObjectWriter> w;
  ASSERT_OK(store->OpenWrite("a.tar", &w));
  ASSERT_OK(w->Append("hello "));
  ASSERT_OK(w->Append("world"));
  EXPECT_EQ(w->size(), 11u);
  ObjectInfo info;
  EXPECT_TRUE(store->Stat("a.tar", &info).IsNotFound());
  std::vector<ObjectInfo> list;
  ASSERT_OK(store->List(&list));
  EXPECT_TRUE(list.empty());
  ASSERT_OK(w->Commit());
  ASSERT_OK(store->Stat("a.tar", &info));
  EXPECT_EQ(info.size, 11u);
  EXPECT_EQ(ReadObject(store.get(), "a.tar"), "hello world");

  // A second version replaces the first at once; an abandoned one vanishes.
  ASSERT_OK(store->OpenWrite("a.tar", &w));
  ASSERT_OK(w->Append("v2"));
  EXPECT_EQ(ReadObject(store.get(), "a.tar"), "hello world");
  ASSERT_OK(w->Commit());
  EXPECT_EQ(ReadObject(store.get(), "a.tar"), "v2");
  ASSERT_OK(store->OpenWrite("a.tar", &w));
  ASSERT_OK(w->Append("never"));
  w.reset();
  EXPECT_EQ(ReadObject(store.get(), "a.tar"), "v2");
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/.kvfs/tmp"));
}

TEST(LocalStore, ListsObjectsOnly) {
  TempDir dir("kvfs-store");
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(kvfs::store::OpenStore(kvfs::store::StoreAt(dir.path()), &store));
  for (const char* name : {"b.tar.gz", "a.tar", "c.tar.zst"}) {
    std::ofstream(dir.path() + "/" + name) << name;
  }
  std::filesystem::create_directory(dir.path() + "/subdir");
  std::ofstream(dir.path() + "/.hidden") << "x";
  std::vector<ObjectInfo> list;
  ASSERT_OK(store->List(&list));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].name, "a.tar");
  EXPECT_EQ(list[1].name, "b.tar.gz");
  EXPECT_EQ(list[1].size, 8u);
  EXPECT_EQ(list[2].name, "c.tar.zst");
  ASSERT_OK(store->Delete("a.tar"));
  EXPECT_TRUE(store->Delete("a.tar").IsNotFound());
  EXPECT_EQ(store->OpenWrite("../x", nullptr).posix_errno(), EINVAL);
  EXPECT_EQ(store->OpenWrite(".kvfs", nullptr).posix_errno(), EINVAL);
  std::unique_ptr<ObjectReader> r;
  EXPECT_TRUE(store->OpenRead("missing.tar", &r).IsNotFound());
}

TEST(LocalStore, RefusesAMissingDirectory) {
  std::unique_ptr<PersistentStore> store;
  EXPECT_TRUE(
      kvfs::store::OpenStore(kvfs::store::StoreAt("/nonexistent/kvfs-store"), &store).IsNotFound());
  EXPECT_EQ(kvfs::store::OpenStore(kvfs::store::StoreAt("/etc/hostname"), &store).posix_errno(),
            ENOTDIR);
}

TEST(TarballNames, SuffixesAndCompression) {
  std::string name;
  Compression c;
  EXPECT_TRUE(TreeNameOf("linux-6.1.tar.xz", &name, &c));
  EXPECT_EQ(name, "linux-6.1");
  EXPECT_EQ(c, Compression::kXz);
  EXPECT_TRUE(TreeNameOf("a.tgz", &name, &c));
  EXPECT_EQ(name, "a");
  EXPECT_EQ(c, Compression::kGzip);
  EXPECT_TRUE(TreeNameOf("a.b.tar.zst", &name, &c));
  EXPECT_EQ(name, "a.b");
  EXPECT_EQ(c, Compression::kZstd);
  EXPECT_TRUE(TreeNameOf("x.tar", &name, &c));
  EXPECT_EQ(c, Compression::kNone);
  EXPECT_FALSE(TreeNameOf(".tar", &name));
  EXPECT_FALSE(TreeNameOf("x.zip", &name));
  EXPECT_FALSE(TreeNameOf("x.gz", &name));
  for (Compression k :
       {Compression::kNone, Compression::kGzip, Compression::kZstd, Compression::kXz}) {
    EXPECT_TRUE(TreeNameOf("t" + std::string(TarballSuffix(k)), &name, &c));
    EXPECT_EQ(c, k);
  }
  EXPECT_TRUE(ParseCompression("zstd", &c));
  EXPECT_EQ(c, Compression::kZstd);
  EXPECT_FALSE(ParseCompression("lzma", &c));
}

TEST(RangeClaims, ExclusiveAndDurable) {
  TempDir dir("kvfs-store");
  std::unique_ptr<PersistentStore> a, b;
  ASSERT_OK(kvfs::store::OpenStore(kvfs::store::StoreAt(dir.path()), &a));
  ASSERT_OK(kvfs::store::OpenStore(kvfs::store::StoreAt(dir.path()), &b));
  uint64_t highest;
  ASSERT_OK(a->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, 0u);
  ASSERT_OK(a->ClaimRange(7, "writer a"));
  EXPECT_EQ(b->ClaimRange(7, "writer b").posix_errno(), EEXIST);
  ASSERT_OK(b->ClaimRange(12, "writer b"));
  ASSERT_OK(a->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, 12u);
  std::ifstream note(dir.path() + "/.kvfs/ranges/0000000007");
  std::string line;
  std::getline(note, line);
  EXPECT_EQ(line, "writer a");
}

// Several processes claim "the next range" as fast as they can: every
// range is claimed by exactly one of them.
TEST(RangeClaims, RacingProcessesGetDistinctRanges) {
  TempDir dir("kvfs-store");
  constexpr int kProcs = 4, kClaims = 100;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::unique_ptr<PersistentStore> store;
      if (!kvfs::store::OpenStore(kvfs::store::StoreAt(dir.path()), &store).ok()) _exit(1);
      std::ofstream out(dir.path() + "/won-" + std::to_string(p));
      for (int got = 0; got < kClaims;) {
        uint64_t highest;
        if (!store->HighestClaimedRange(&highest).ok()) _exit(2);
        Status s = store->ClaimRange(highest + 1, "p" + std::to_string(p));
        if (s.ok()) {
          out << highest + 1 << "\n";
          ++got;
        } else if (s.posix_errno() != EEXIST) {
          _exit(3);
        }
      }
      out.close();
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  std::set<uint64_t> all;
  for (int p = 0; p < kProcs; ++p) {
    std::ifstream in(dir.path() + "/won-" + std::to_string(p));
    uint64_t r;
    int n = 0;
    while (in >> r) {
      EXPECT_TRUE(all.insert(r).second) << "range " << r << " claimed twice";
      ++n;
    }
    EXPECT_EQ(n, kClaims);
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kProcs * kClaims));
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kProcs * kClaims));
}

}  // namespace
}  // namespace kvfs::ingest
