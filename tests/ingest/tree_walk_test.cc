// TreeWalk (ingest/tree_walk.h): every entry of a tree, in export order, in
// batches; the contents it read are the file's; a store that fails at any
// call ends the walk with that error after a prefix of the entries, never a
// hang or a wrong entry; a walk given up early stops.
#include "ingest/tree_walk.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/kv/fault_injection_store.h"
#include "common/kv/memory_store.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"

namespace kvfs::ingest {
namespace {

using ingest_test::NewMemoryFileSystem;
using Walked = std::vector<std::pair<std::string, Ino>>;

bool WantsContents(const Attributes& a) { return a.type == FileType::kRegular && a.nlink == 1; }

// The export order, written out plainly: a directory, its non-directories
// as listed, then each subdirectory.
void ExpectedOrder(FileSystem* fs, const Attributes& dir, const std::string& path, Walked* out) {
  out->emplace_back(path, dir.ino);
  std::vector<DirEntry> entries;
  ASSERT_OK(ListDirectory(fs, dir.ino, &entries));
  for (const DirEntry& e : entries) {
    if (e.attrs.type != FileType::kDirectory) out->emplace_back(path + e.name, e.attrs.ino);
  }
  for (const DirEntry& e : entries) {
    if (e.attrs.type == FileType::kDirectory) ExpectedOrder(fs, e.attrs, path + e.name + "/", out);
  }
}

// Contents of `size` bytes that differ from file to file.
std::string ContentsOf(int i, size_t size) {
  std::string s(size, '\0');
  for (size_t j = 0; j < size; ++j) s[j] = static_cast<char>('a' + (i * 7 + j / 100) % 26);
  return s;
}

// Tree "t": 40 directories (some nested) of 30 files each, of 0 bytes to
// beyond TreeWalk::kMaxReadBytes, plus a symlink and a file with two names.
void MakeTree(FileSystem* fs, Attributes* top) {
  ASSERT_OK(fs->Mkdir(kRootIno, "t", NewObject{}, top));
  Ino parent = top->ino;
  int n = 0;
  for (int d = 0; d < 40; ++d) {
    Attributes dir;
    ASSERT_OK(
        fs->Mkdir(d % 4 == 0 ? top->ino : parent, "d" + std::to_string(d), NewObject{}, &dir));
    parent = dir.ino;
    for (int f = 0; f < 30; ++f, ++n) {
      Attributes a;
      ASSERT_OK(fs->Create(dir.ino, "f" + std::to_string(f), NewObject{}, true, &a));
      const size_t size = n % 97 == 0 ? TreeWalk::kMaxReadBytes + 1 : (n * 997) % 20000;
      ASSERT_OK(fs->Write(a.ino, 0, ContentsOf(n, size), Stability::kUnstable, &a));
    }
  }
  Attributes link, file;
  ASSERT_OK(fs->Symlink(top->ino, "link", "d0/f0", NewObject{}, &link));
  ASSERT_OK(fs->Create(top->ino, "two-names", NewObject{}, true, &file));
  ASSERT_OK(fs->Write(file.ino, 0, "shared", Stability::kUnstable, &file));
  ASSERT_OK(fs->Link(file.ino, parent, "second-name", &file));
}

// Whatever the caller's speed (a slow caller leaves the reading to the
// walk, a fast one reads batches itself), every entry comes in export
// order, and each small file the walk was told to read comes with its
// contents.
TEST(TreeWalkTest, EveryEntryInExportOrderWithTheContentsOfTheSmallFiles) {
  auto fs = NewMemoryFileSystem();
  Attributes top;
  ASSERT_NO_FATAL_FAILURE(MakeTree(fs.get(), &top));
  Walked expected;
  ASSERT_NO_FATAL_FAILURE(ExpectedOrder(fs.get(), top, "t/", &expected));

  for (int pause_ms : {0, 2}) {
    SCOPED_TRACE("caller pausing " + std::to_string(pause_ms) + " ms per batch");
    TreeWalk walk(fs.get(), top, "t", WantsContents);
    Walked walked;
    WalkBatch batch;
    size_t read = 0;
    for (;;) {
      ASSERT_OK(walk.Next(&batch));
      if (batch.entries.empty()) break;
      for (const WalkEntry& e : batch.entries) {
        walked.emplace_back(e.path, e.attrs.ino);
        const Attributes& a = e.attrs;
        EXPECT_EQ(e.read, WantsContents(a) && a.size > 0 && a.size <= TreeWalk::kMaxReadBytes)
            << e.path;
        if (!e.read) continue;
        ++read;
        ASSERT_OK(e.read_status);
        std::string data;
        bool eof = false;
        ASSERT_OK(fs->Read(a.ino, 0, a.size, &data, &eof));
        EXPECT_EQ(batch.ContentsOf(e), data) << e.path;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
    EXPECT_EQ(walked, expected);
    EXPECT_GT(read, 1000u);
    // The end stays the end.
    ASSERT_OK(walk.Next(&batch));
    EXPECT_TRUE(batch.entries.empty());
  }
}

TEST(TreeWalkTest, AFailingStoreEndsTheWalkWithItsErrorAfterAPrefix) {
  auto* faults = new FaultInjectionStore(NewMemoryStore());
  std::unique_ptr<FileSystem> fs;
  FileSystemOptions o;
  o.durable = false;
  ASSERT_OK(FileSystem::Open(o, std::unique_ptr<KVStore>(faults), &fs));
  Attributes top;
  ASSERT_NO_FATAL_FAILURE(MakeTree(fs.get(), &top));
  Walked expected;
  ASSERT_NO_FATAL_FAILURE(ExpectedOrder(fs.get(), top, "t/", &expected));

  // Every call from the k-th on fails: listings and the walk's reads alike.
  for (uint64_t k : {0, 1, 2, 5, 20, 60, 150, 400}) {
    SCOPED_TRACE("failing from call " + std::to_string(k));
    faults->FailAfter(FaultInjectionStore::kAllOperations, k);
    Walked walked;
    Status end;
    {
      TreeWalk walk(fs.get(), top, "t", WantsContents);
      WalkBatch batch;
      for (;;) {
        end = walk.Next(&batch);
        if (!end.ok() || batch.entries.empty()) break;
        for (const WalkEntry& e : batch.entries) {
          walked.emplace_back(e.path, e.attrs.ino);
          // A read that failed says so.
          if (!e.read) continue;
          if (e.read_status.ok()) {
            EXPECT_EQ(batch.ContentsOf(e).size(), e.attrs.size);
          } else {
            EXPECT_EQ(e.read_status.posix_errno(), EIO);
          }
        }
      }
    }
    faults->Heal();
    EXPECT_EQ(end.posix_errno(), EIO) << end.ToString();
    ASSERT_LT(walked.size(), expected.size());
    EXPECT_EQ(walked, Walked(expected.begin(), expected.begin() + walked.size()));
  }
}

TEST(TreeWalkTest, AWalkGivenUpEarlyStops) {
  auto fs = NewMemoryFileSystem();
  Attributes top;
  ASSERT_NO_FATAL_FAILURE(MakeTree(fs.get(), &top));
  for (int taken : {0, 1, 3}) {
    TreeWalk walk(fs.get(), top, "t", WantsContents);
    WalkBatch batch;
    for (int i = 0; i < taken; ++i) {
      ASSERT_OK(walk.Next(&batch));
      EXPECT_FALSE(batch.entries.empty());
    }
    // The destructor returns although the walk is blocked with full batches.
  }
}

}  // namespace
}  // namespace kvfs::ingest
