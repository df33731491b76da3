// The core's inode-location cache (common/fs/location_cache.h): it saves
// key/value reads, and it stays exact when records move (rename, hard
// links, unlink, whole-tree drops), alone and under concurrent mutations.
#include "common/fs/location_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "common/fs/file_system.h"
#include "common/fs/tree_lifecycle.h"
#include "common/kv/fault_injection_store.h"
#include "common/kv/memory_store.h"
#include "tests/status_assertions.h"

namespace kvfs {
namespace {

using Op = FaultInjectionStore::Operation;

struct Counted {
  std::unique_ptr<KVStore> memory = NewMemoryStore();
  FaultInjectionStore* counter = nullptr;
  std::unique_ptr<FileSystem> fs;

  explicit Counted(size_t cache_entries) {
    FileSystemOptions o;
    o.location_cache_entries = cache_entries;
    auto store = std::make_unique<FaultInjectionStore>(memory.get());
    counter = store.get();
    Status s = FileSystem::Open(o, std::move(store), &fs);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
};

// What one untarred file costs through NFS (docs/benchmarks.md, "Where
// KVFS's time goes"): CREATE, a FILE_SYNC WRITE, SETATTRs of mode, owner
// and times, and the GETATTRs Ganesha's MDCACHE sends after each change.
struct PerFile {
  double gets = 0, batches = 0, syncs = 0;
};
PerFile UntarFiles(Counted* c, int files) {
  FileSystem* fs = c->fs.get();
  Attributes top, dir, a;
  EXPECT_OK(fs->Mkdir(kRootIno, "top", NewObject{0755, 0, 0}, &top));
  EXPECT_OK(fs->Mkdir(top.ino, "dir", NewObject{0755, 0, 0}, &dir));
  const uint64_t gets0 = c->counter->CallCount(Op::kGet);
  const uint64_t writes0 = c->counter->CallCount(Op::kWrite);
  const uint64_t syncs0 = c->counter->CallCount(Op::kSync);
  const std::string data(8192, 'x');
  for (int i = 0; i < files; ++i) {
    EXPECT_TRUE(fs->Lookup(dir.ino, "f" + std::to_string(i), &a).IsNotFound());
    EXPECT_OK(fs->Create(dir.ino, "f" + std::to_string(i), NewObject{0600, 0, 0}, true, &a));
    const Ino ino = a.ino;
    EXPECT_OK(fs->GetAttr(ino, &a));
    EXPECT_OK(fs->Write(ino, 0, data, Stability::kStable, &a));
    EXPECT_OK(fs->GetAttr(ino, &a));
    SetAttrRequest mode, owner, times;
    mode.mode = 0644;
    owner.uid = 1000;
    owner.gid = 1000;
    times.mtime = Timespec{1700000000, 0};
    times.atime = Timespec{1700000000, 0};
    for (const SetAttrRequest* r : {&mode, &owner, &times}) {
      EXPECT_OK(fs->SetAttr(ino, *r, &a));
      EXPECT_OK(fs->GetAttr(ino, &a));
    }
    EXPECT_OK(fs->GetAttr(ino, &a));
  }
  PerFile p;
  p.gets = double(c->counter->CallCount(Op::kGet) - gets0) / files;
  p.batches = double(c->counter->CallCount(Op::kWrite) - writes0) / files;
  p.syncs = double(c->counter->CallCount(Op::kSync) - syncs0) / files;
  return p;
}

TEST(LocationCacheTest, SavesReadsPerUntarredFile) {
  Counted off(0), on(1 << 20);
  const PerFile before = UntarFiles(&off, 200);
  const PerFile after = UntarFiles(&on, 200);
  std::printf("per file: key/value reads %.2f -> %.2f, batches %.2f -> %.2f, syncs %.2f -> %.2f\n",
              before.gets, after.gets, before.batches, after.batches, before.syncs, after.syncs);
  EXPECT_LT(after.gets, before.gets);
  EXPECT_EQ(after.batches, before.batches);
  EXPECT_EQ(after.syncs, before.syncs);  // durability unchanged

  // A cached inode's attributes cost one read: its entry bucket.
  Attributes a;
  ASSERT_OK(on.fs->Lookup(kRootIno, "top", &a));
  const uint64_t g0 = on.counter->CallCount(Op::kGet);
  ASSERT_OK(on.fs->GetAttr(a.ino, &a));
  EXPECT_EQ(on.counter->CallCount(Op::kGet) - g0, 1u);
}

// Every way a record moves, each checked through a mutation, which trusts
// the cached location to pick its locks and find the record (a stale one
// fails it), and through GetAttr (which must name the right parent).
TEST(LocationCacheTest, FollowsRecordsThatMove) {
  Counted c(1 << 20);
  FileSystem* fs = c.fs.get();
  Attributes top, d1, d2, f, a;
  ASSERT_OK(fs->Mkdir(kRootIno, "top", NewObject{0755, 0, 0}, &top));
  ASSERT_OK(fs->Mkdir(top.ino, "d1", NewObject{0755, 0, 0}, &d1));
  ASSERT_OK(fs->Mkdir(top.ino, "d2", NewObject{0755, 0, 0}, &d2));
  ASSERT_OK(fs->Create(d1.ino, "f", NewObject{0644, 0, 0}, true, &f));
  ASSERT_OK(fs->GetAttr(f.ino, &a));
  EXPECT_EQ(a.parent, d1.ino);

  SetAttrRequest touch;
  touch.mtime_now = true;
  ASSERT_OK(fs->Rename(d1.ino, "f", d2.ino, "g"));  // another directory
  ASSERT_OK(fs->SetAttr(f.ino, touch, &a));
  ASSERT_OK(fs->GetAttr(f.ino, &a));
  EXPECT_EQ(a.parent, d2.ino);
  ASSERT_OK(fs->Rename(d2.ino, "g", d2.ino, "h"));  // another bucket
  ASSERT_OK(fs->SetAttr(f.ino, touch, &a));
  ASSERT_OK(fs->GetAttr(f.ino, &a));
  EXPECT_EQ(a.parent, d2.ino);

  ASSERT_OK(fs->Link(f.ino, d1.ino, "link", &a));  // record detached
  ASSERT_OK(fs->GetAttr(f.ino, &a));
  EXPECT_EQ(a.nlink, 2u);
  SetAttrRequest mode;
  mode.mode = 0600;
  ASSERT_OK(fs->SetAttr(f.ino, mode, &a));
  ASSERT_OK(fs->Unlink(d2.ino, "h"));
  ASSERT_OK(fs->SetAttr(f.ino, touch, &a));
  ASSERT_OK(fs->GetAttr(f.ino, &a));
  EXPECT_EQ(a.nlink, 1u);
  EXPECT_EQ(a.mode & 07777, 0600u);
  ASSERT_OK(fs->Unlink(d1.ino, "link"));
  EXPECT_EQ(fs->GetAttr(f.ino, &a).posix_errno(), ESTALE);

  // A whole tree dropped (range deletes): its inodes are gone.
  Attributes g;
  ASSERT_OK(fs->Create(d1.ino, "g", NewObject{0644, 0, 0}, true, &g));
  ASSERT_OK(fs->GetAttr(g.ino, &a));
  uint64_t range;
  ASSERT_OK(fs->trees()->DropTree("top", &range));
  EXPECT_EQ(fs->GetAttr(g.ino, &a).posix_errno(), ESTALE);
  EXPECT_EQ(fs->GetAttr(d1.ino, &a).posix_errno(), ESTALE);
}

// Readers racing with renames (which fill the cache while locations change)
// never leave a location the store no longer holds, and never see a file
// that is always somewhere as gone: every GetAttr answers, with one of the
// two parents it moves between.
TEST(LocationCacheTest, ExactUnderConcurrentRenames) {
  Counted c(1 << 20);
  FileSystem* fs = c.fs.get();
  Attributes top, d1, d2, a;
  ASSERT_OK(fs->Mkdir(kRootIno, "top", NewObject{0755, 0, 0}, &top));
  ASSERT_OK(fs->Mkdir(top.ino, "d1", NewObject{0755, 0, 0}, &d1));
  ASSERT_OK(fs->Mkdir(top.ino, "d2", NewObject{0755, 0, 0}, &d2));
  constexpr int kFiles = 16;
  std::vector<Ino> inos;
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_OK(fs->Create(d1.ino, "f" + std::to_string(i), NewObject{0644, 0, 0}, true, &a));
    inos.push_back(a.ino);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      Attributes r;
      while (!stop) {
        for (Ino ino : inos) {
          Status s = fs->GetAttr(ino, &r);
          if (!s.ok() || (r.parent != d1.ino && r.parent != d2.ino)) {
            ++failures;
          }
        }
      }
    });
  }
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < kFiles; ++i) {
      const std::string name = "f" + std::to_string(i);
      const bool there = round % 2 == 0;
      ASSERT_OK(fs->Rename(there ? d1.ino : d2.ino, name, there ? d2.ino : d1.ino, name));
    }
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(failures.load(), 0);
  SetAttrRequest touch;
  touch.mtime_now = true;
  for (Ino ino : inos) {
    ASSERT_OK(fs->SetAttr(ino, touch, &a));  // trusts the cached location
    ASSERT_OK(fs->GetAttr(ino, &a));
    EXPECT_EQ(a.parent, d1.ino);
  }
}

}  // namespace
}  // namespace kvfs
