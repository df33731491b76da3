// The core's whole-tree operations (TreeLifecycle::ReserveRange, PublishTree,
// AbandonRange, DropTree), the loading state of range records, their
// clean-up by FileSystem::Open, and what Fsck says about them.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/fs/fsck.h"
#include "common/fs/schema.h"
#include "common/fs/tree_lifecycle.h"
#include "common/kv/fault_injection_store.h"
#include "common/kv/memory_store.h"
#include "tests/ingest/ingest_test_util.h"

namespace kvfs {
namespace {

using ingest_test::DumpStore;
using ingest_test::KeysInRange;
using ingest_test::NewMemoryFileSystem;
using ingest_test::OpenRocksFileSystem;
using kvfs::testing::FsckProblems;
using kvfs::testing::ReadAll;
using kvfs::testing::TempDir;

const NameHasher kHasher = DefaultNameHasher();

uint64_t Bucket(std::string_view name) { return schema::BucketOf(kHasher.hash(name)); }

// Writes by hand (schema codecs, bulk loader) what a loader would for a
// tree holding files "f0".."f<n-1>" with `content` each, into `range`, and
// returns the LoadedTree for it. `staging` is for RocksDB stores.
LoadedTree LoadFiles(FileSystem* fs, uint64_t range, const std::string& name, int n,
                     const std::string& content, const std::string& staging = "") {
  std::unique_ptr<BulkLoader> loader;
  EXPECT_OK(fs->store()->NewBulkLoader(staging, &loader));
  const Ino top = schema::RangeOwnerIno(range);
  std::map<std::string, std::string> entries, inodes;
  for (int i = 0; i < n; ++i) {
    const std::string fname = "f" + std::to_string(i);
    schema::Entry e;
    e.name = fname;
    e.ino = schema::MakeIno(range, 2 + i);
    e.type = FileType::kRegular;
    e.record.type = FileType::kRegular;
    e.record.mode = 0640;
    e.record.nlink = 1;
    e.record.size = content.size();
    e.record.data = content;
    e.record.change = 1;
    schema::Bucket b;
    b.entries.push_back(e);
    entries[schema::EntryKey(top, Bucket(fname))] = schema::EncodeBucket(b);
    schema::InodeLocation loc;
    loc.parent = top;
    loc.bucket = Bucket(fname);
    inodes[schema::InodeKey(e.ino)] = schema::EncodeLocation(loc);
  }
  for (auto& [k, v] : entries) EXPECT_OK(loader->Add(Column::kEntries, k, v));
  for (auto& [k, v] : inodes) EXPECT_OK(loader->Add(Column::kInodes, k, v));
  EXPECT_OK(loader->Commit());
  LoadedTree t;
  t.range = range;
  t.name = name;
  t.attrs.type = FileType::kDirectory;
  t.attrs.mode = 0750;
  t.attrs.uid = 7;
  t.attrs.nlink = 2;
  t.attrs.size = n;
  t.attrs.mtime = Timespec{1700000000, 5};
  t.high_water = 2 + n;
  t.bytes = content.size() * n;
  t.inodes = 1 + n;
  return t;
}

TEST(RangeRecord, LoadingIsVersion2AndOthersKeepVersion1) {
  schema::RangeRecord r{schema::RangeOwnerIno(3), 4096, false};
  std::string v1 = schema::EncodeRangeRecord(r);
  EXPECT_EQ(v1.size(), 17u);
  EXPECT_EQ(v1[0], 1);
  r.loading = true;
  std::string v2 = schema::EncodeRangeRecord(r);
  EXPECT_EQ(v2.size(), 18u);
  EXPECT_EQ(v2[0], 2);
  schema::RangeRecord d;
  ASSERT_OK(schema::DecodeRangeRecord(v2, &d));
  EXPECT_TRUE(d.loading);
  EXPECT_EQ(d.high_water, 4096u);
  ASSERT_OK(schema::DecodeRangeRecord(v1, &d));
  EXPECT_FALSE(d.loading);
  v2.back() = 6;  // stub and filling
  ASSERT_OK(schema::DecodeRangeRecord(v2, &d));
  EXPECT_TRUE(d.stub && d.filling && !d.loading);
  EXPECT_EQ(schema::EncodeRangeRecord(d), v2);
  v2.back() = 8;  // unknown flag
  EXPECT_FALSE(schema::DecodeRangeRecord(v2, &d).ok());
  v2.back() = 1;
  v2[0] = 3;  // unknown version
  EXPECT_FALSE(schema::DecodeRangeRecord(v2, &d).ok());
}

TEST(WholeTrees, NothingIsVisibleBeforePublish) {
  auto fs = NewMemoryFileSystem();
  uint64_t range;
  ASSERT_OK(fs->trees()->ReserveRange(0, &range));
  EXPECT_EQ(range, 1u);
  LoadedTree t = LoadFiles(fs.get(), range, "t", 3, "hello");
  Attributes a;
  EXPECT_TRUE(fs->Lookup(kRootIno, "t", &a).IsNotFound());
  EXPECT_EQ(fs->GetAttr(schema::RangeOwnerIno(range), &a).posix_errno(), ESTALE);
  FsckReport report;
  ASSERT_OK(Fsck(fs->store(), kHasher, &report));
  EXPECT_TRUE(report.ok()) << report.problems.front();
  EXPECT_EQ(report.loading_ranges, 1u);
  EXPECT_EQ(report.files, 0u);

  uint64_t replaced = 99;
  ASSERT_OK(fs->trees()->PublishTree(t, &replaced));
  EXPECT_EQ(replaced, 0u);
  ASSERT_OK(fs->Lookup(kRootIno, "t", &a));
  EXPECT_EQ(a.ino, schema::RangeOwnerIno(range));
  EXPECT_EQ(a.mode, 0750u);
  EXPECT_EQ(a.uid, 7u);
  EXPECT_EQ(a.mtime, (Timespec{1700000000, 5}));
  EXPECT_EQ(a.parent, kRootIno);
  Attributes f;
  ASSERT_OK(fs->Lookup(a.ino, "f2", &f));
  std::string data;
  ASSERT_OK(ReadAll(fs.get(), f.ino, &data));
  EXPECT_EQ(data, "hello");
  Attributes root;
  ASSERT_OK(fs->GetAttr(kRootIno, &root));
  EXPECT_EQ(root.nlink, 3u);
  EXPECT_EQ(root.size, 1u);
  StatFsInfo st;
  ASSERT_OK(fs->StatFs(&st));
  EXPECT_EQ(st.used_bytes, 15u);
  EXPECT_EQ(st.used_inodes, 5u);  // root, t, 3 files
  EXPECT_EQ(FsckProblems(fs.get(), kHasher), std::vector<std::string>{});
  // The tree is an ordinary directory now: it grows from its high-water
  // mark.
  Attributes g;
  ASSERT_OK(fs->Create(a.ino, "new", NewObject{}, true, &g));
  EXPECT_EQ(schema::RangeOf(g.ino), range);
  EXPECT_GE(g.ino & schema::kLocalMask, 5u);
  EXPECT_EQ(FsckProblems(fs.get(), kHasher), std::vector<std::string>{});
  // A published range cannot be published or abandoned again.
  EXPECT_EQ(fs->trees()->PublishTree(t, nullptr).posix_errno(), EINVAL);
  EXPECT_EQ(fs->trees()->AbandonRange(range).posix_errno(), EINVAL);
}

TEST(WholeTrees, PublishRefusesAnExistingNameUnlessReplacing) {
  auto fs = NewMemoryFileSystem();
  Attributes old_top, old_file, file_in_root;
  ASSERT_OK(fs->Mkdir(kRootIno, "t", NewObject{}, &old_top));
  ASSERT_OK(fs->Create(old_top.ino, "old", NewObject{}, true, &old_file));
  ASSERT_OK(fs->Write(old_file.ino, 0, std::string(100000, 'o'), Stability::kStable, &old_file));
  ASSERT_OK(fs->Create(kRootIno, "plain", NewObject{}, true, &file_in_root));
  StatFsInfo before;
  ASSERT_OK(fs->StatFs(&before));

  uint64_t range;
  ASSERT_OK(fs->trees()->ReserveRange(0, &range));
  LoadedTree t = LoadFiles(fs.get(), range, "t", 2, "new");
  EXPECT_EQ(fs->trees()->PublishTree(t, nullptr).posix_errno(), EEXIST);
  LoadedTree p = t;
  p.name = "plain";
  p.replace = true;
  EXPECT_EQ(fs->trees()->PublishTree(p, nullptr).posix_errno(), EEXIST);

  uint64_t cookie_before;
  ASSERT_OK(fs->CookieOf(kRootIno, "t", &cookie_before));
  t.replace = true;
  uint64_t replaced = 0;
  ASSERT_OK(fs->trees()->PublishTree(t, &replaced));
  EXPECT_EQ(replaced, schema::RangeOf(old_top.ino));
  Attributes a;
  ASSERT_OK(fs->Lookup(kRootIno, "t", &a));
  EXPECT_EQ(a.ino, schema::RangeOwnerIno(range));
  EXPECT_EQ(fs->GetAttr(old_file.ino, &a).posix_errno(), ESTALE);
  EXPECT_EQ(fs->GetAttr(old_top.ino, &a).posix_errno(), ESTALE);
  EXPECT_EQ(KeysInRange(fs->store(), replaced), 0u);
  uint64_t cookie_after;
  ASSERT_OK(fs->CookieOf(kRootIno, "t", &cookie_after));
  EXPECT_EQ(cookie_after, cookie_before);  // same slot
  Attributes root;
  ASSERT_OK(fs->GetAttr(kRootIno, &root));
  EXPECT_EQ(root.size, 2u);
  EXPECT_EQ(root.nlink, 3u);
  StatFsInfo after;
  ASSERT_OK(fs->StatFs(&after));
  EXPECT_EQ(after.used_bytes, before.used_bytes - 100000 + 6);
  EXPECT_EQ(after.used_inodes, before.used_inodes - 2 + 3);
  EXPECT_EQ(FsckProblems(fs.get(), kHasher), std::vector<std::string>{});
}

TEST(WholeTrees, PublishChecksItsArguments) {
  auto fs = NewMemoryFileSystem();
  uint64_t range;
  ASSERT_OK(fs->trees()->ReserveRange(0, &range));
  LoadedTree t = LoadFiles(fs.get(), range, "t", 1, "x");
  LoadedTree bad = t;
  bad.attrs.type = FileType::kRegular;
  EXPECT_EQ(fs->trees()->PublishTree(bad, nullptr).posix_errno(), EINVAL);
  bad = t;
  bad.name = "a/b";
  EXPECT_EQ(fs->trees()->PublishTree(bad, nullptr).posix_errno(), EINVAL);
  bad = t;
  bad.range = range + 5;  // never reserved
  EXPECT_EQ(fs->trees()->PublishTree(bad, nullptr).posix_errno(), EINVAL);
  bad = t;
  bad.high_water = 1;
  EXPECT_EQ(fs->trees()->PublishTree(bad, nullptr).posix_errno(), EINVAL);
  ASSERT_OK(fs->trees()->PublishTree(t, nullptr));
}

TEST(WholeTrees, ReserveSkipsUsedRangesAndHonoursAtLeast) {
  auto fs = NewMemoryFileSystem();
  Attributes d;
  ASSERT_OK(fs->Mkdir(kRootIno, "a", NewObject{}, &d));  // range 1
  uint64_t r1, r2;
  ASSERT_OK(fs->trees()->ReserveRange(0, &r1));
  EXPECT_EQ(r1, 2u);
  ASSERT_OK(fs->trees()->ReserveRange(10, &r2));
  EXPECT_EQ(r2, 10u);
  ASSERT_OK(fs->Mkdir(kRootIno, "b", NewObject{}, &d));
  EXPECT_EQ(schema::RangeOf(d.ino), 11u);
  ASSERT_OK(fs->trees()->ReserveRange(5, &r2));
  EXPECT_EQ(r2, 12u);
}

TEST(WholeTrees, AbandonLeavesTheStoreAsItWas) {
  auto fs = NewMemoryFileSystem();
  Attributes d;
  ASSERT_OK(fs->Mkdir(kRootIno, "keep", NewObject{}, &d));
  const auto before = DumpStore(fs->store());
  uint64_t range;
  ASSERT_OK(fs->trees()->ReserveRange(0, &range));
  LoadFiles(fs.get(), range, "t", 50, std::string(5000, 'z'));
  EXPECT_GT(KeysInRange(fs->store(), range), 0u);
  ASSERT_OK(fs->trees()->AbandonRange(range));
  EXPECT_TRUE(DumpStore(fs->store()) == before) << "the store changed";
  EXPECT_EQ(fs->trees()->AbandonRange(range).posix_errno(), EINVAL);
}

// A crash between the bulk load and PublishTree: the next Open deletes the
// loading range, and fsck is clean.
TEST(WholeTrees, OpenDeletesLoadingRanges) {
  TempDir dir("kvfs-subtree");
  const std::string db = dir.path() + "/db";
  uint64_t range;
  {
    std::unique_ptr<FileSystem> fs;
    ASSERT_OK(OpenRocksFileSystem(db, &fs));
    Attributes d;
    ASSERT_OK(fs->Mkdir(kRootIno, "keep", NewObject{}, &d));
    ASSERT_OK(fs->trees()->ReserveRange(0, &range));
    LoadFiles(fs.get(), range, "t", 20, "data", dir.path() + "/staging");
    EXPECT_GT(KeysInRange(fs->store(), range), 0u);
  }
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(OpenRocksFileSystem(db, &fs));
  EXPECT_EQ(KeysInRange(fs->store(), range), 0u);
  std::string v;
  EXPECT_TRUE(fs->store()->Get(Column::kMeta, schema::RangeKey(range), &v).IsNotFound());
  FsckReport report;
  ASSERT_OK(Fsck(fs->store(), kHasher, &report));
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.loading_ranges, 0u);
  Attributes a;
  EXPECT_TRUE(fs->Lookup(kRootIno, "t", &a).IsNotFound());
  ASSERT_OK(fs->Lookup(kRootIno, "keep", &a));
}

TEST(WholeTrees, DropTreeFreesItsUsageWithOneBatch) {
  auto base = NewMemoryStore();
  auto* faults = new FaultInjectionStore(std::move(base));
  std::unique_ptr<FileSystem> fs;
  FileSystemOptions o;
  o.durable = false;
  ASSERT_OK(FileSystem::Open(o, std::unique_ptr<KVStore>(faults), &fs));
  StatFsInfo empty;
  ASSERT_OK(fs->StatFs(&empty));
  for (int files : {3, 300}) {
    Attributes top, sub, f;
    ASSERT_OK(fs->Mkdir(kRootIno, "t", NewObject{}, &top));
    ASSERT_OK(fs->Mkdir(top.ino, "sub", NewObject{}, &sub));
    for (int i = 0; i < files; ++i) {
      ASSERT_OK(
          fs->Create(i % 2 ? sub.ino : top.ino, "f" + std::to_string(i), NewObject{}, true, &f));
      ASSERT_OK(fs->Write(f.ino, 0, std::string(i * 1000, 'x'), Stability::kUnstable, &f));
    }
    ASSERT_OK(fs->OpenFile(f.ino));
    const Ino last_dir = (files - 1) % 2 ? sub.ino : top.ino;
    ASSERT_OK(fs->Unlink(last_dir, "f" + std::to_string(files - 1)));  // now an orphan
    const uint64_t writes = faults->CallCount(FaultInjectionStore::kWrite);
    uint64_t range = 0;
    ASSERT_OK(fs->trees()->DropTree("t", &range));
    // One batch whatever the tree's size.
    EXPECT_EQ(faults->CallCount(FaultInjectionStore::kWrite) - writes, 1u);
    EXPECT_EQ(range, schema::RangeOf(top.ino));
    EXPECT_EQ(KeysInRange(fs->store(), range), 0u);
    StatFsInfo st;
    ASSERT_OK(fs->StatFs(&st));
    EXPECT_EQ(st.used_bytes, empty.used_bytes);
    EXPECT_EQ(st.used_inodes, empty.used_inodes);
    Attributes a;
    EXPECT_EQ(fs->GetAttr(f.ino, &a).posix_errno(), ESTALE);
    EXPECT_OK(fs->CloseFile(f.ino));
    // The range number is never used again.
    std::string v;
    ASSERT_OK(fs->store()->Get(Column::kMeta, schema::RangeKey(range), &v));
    schema::RangeRecord r;
    ASSERT_OK(schema::DecodeRangeRecord(v, &r));
    EXPECT_EQ(r.owner, 0u);
    Attributes again;
    ASSERT_OK(fs->Mkdir(kRootIno, "again", NewObject{}, &again));
    EXPECT_GT(schema::RangeOf(again.ino), range);
    ASSERT_OK(fs->Rmdir(kRootIno, "again"));
    EXPECT_EQ(FsckProblems(fs.get(), kHasher), std::vector<std::string>{});
  }
}

TEST(WholeTrees, DropTreeRefusesWhatIsNotATree) {
  auto fs = NewMemoryFileSystem();
  Attributes a;
  ASSERT_OK(fs->Create(kRootIno, "file", NewObject{}, true, &a));
  EXPECT_EQ(fs->trees()->DropTree("file", nullptr).posix_errno(), EINVAL);
  EXPECT_EQ(fs->trees()->DropTree("missing", nullptr).posix_errno(), ENOENT);
  EXPECT_EQ(fs->trees()->DropTree("..", nullptr).posix_errno(), EINVAL);
}

TEST(Fsck, FlagsReferencesIntoLoadingAndDroppedRanges) {
  auto fs = NewMemoryFileSystem();
  uint64_t range;
  ASSERT_OK(fs->trees()->ReserveRange(0, &range));
  // A root entry naming the owner of a range that is still loading.
  Attributes d;
  ASSERT_OK(fs->Mkdir(kRootIno, "x", NewObject{}, &d));
  std::string v;
  ASSERT_OK(fs->store()->Get(Column::kEntries, schema::EntryKey(kRootIno, Bucket("x")), &v));
  schema::Bucket b;
  ASSERT_OK(schema::DecodeBucket(v, &b));
  b.entries.front().ino = schema::RangeOwnerIno(range);
  ASSERT_OK(fs->store()->Put(Column::kEntries, schema::EntryKey(kRootIno, Bucket("x")),
                             schema::EncodeBucket(b)));
  auto problems = FsckProblems(fs.get(), kHasher);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().find("still loading"), std::string::npos) << problems.front();

  // An inode left in a dropped range.
  auto fs2 = NewMemoryFileSystem();
  Attributes t, f;
  ASSERT_OK(fs2->Mkdir(kRootIno, "t", NewObject{}, &t));
  ASSERT_OK(fs2->Create(t.ino, "f", NewObject{}, true, &f));
  ASSERT_OK(fs2->store()->Get(Column::kInodes, schema::InodeKey(f.ino), &v));
  ASSERT_OK(fs2->trees()->DropTree("t", nullptr));
  ASSERT_OK(fs2->store()->Put(Column::kInodes, schema::InodeKey(f.ino), v));
  problems = FsckProblems(fs2.get(), kHasher);
  bool found = false;
  for (const auto& p : problems) found |= p.find("was dropped") != std::string::npos;
  EXPECT_TRUE(found) << ::testing::PrintToString(problems);
}

// Whole-tree operations wait for mutations in flight: trees are published,
// replaced and dropped while other threads work in another tree.
TEST(WholeTrees, ConcurrentWithOtherMutations) {
  TempDir dir("kvfs-subtree");
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(OpenRocksFileSystem(dir.path() + "/db", &fs));
  Attributes busy;
  ASSERT_OK(fs->Mkdir(kRootIno, "busy", NewObject{}, &busy));
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        Attributes f;
        const std::string name = "w" + std::to_string(w) + "-" + std::to_string(i % 50);
        Status s = fs->Create(busy.ino, name, NewObject{}, false, &f);
        if (s.ok()) s = fs->Write(f.ino, 0, std::string(i % 9000, 'd'), Stability::kUnstable, &f);
        if (s.ok() && i % 3 == 0) s = fs->Unlink(busy.ino, name);
        // Root-level churn contends with the root entry of the trees.
        Attributes d;
        if (s.ok()) s = fs->Mkdir(kRootIno, "d" + std::to_string(w), NewObject{}, &d);
        if (s.ok()) s = fs->Rmdir(kRootIno, "d" + std::to_string(w));
        if (!s.ok()) ++failures;
      }
    });
  }
  for (int round = 0; round < 30; ++round) {
    uint64_t range;
    ASSERT_OK(fs->trees()->ReserveRange(0, &range));
    LoadedTree t = LoadFiles(fs.get(), range, "tree", 5 + round, "r" + std::to_string(round),
                             dir.path() + "/staging");
    t.replace = true;
    ASSERT_OK(fs->trees()->PublishTree(t, nullptr));
    if (round % 5 == 4) ASSERT_OK(fs->trees()->DropTree("tree", nullptr));
  }
  stop = true;
  for (auto& t : workers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(FsckProblems(fs.get(), kHasher), std::vector<std::string>{});
}

// ---- Stubs (the cache manager's unloaded trees, docs/cache.md) ------------------------

uint64_t Usage(FileSystem* fs, bool inodes) {
  StatFsInfo st;
  EXPECT_OK(fs->StatFs(&st));
  return inodes ? st.used_inodes : st.used_bytes;
}

TEST(Stubs, FillAndResetKeepTheTopsInodeAndUsage) {
  TempDir dir("kvfs-stub");
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(OpenRocksFileSystem(dir.path() + "/db", &fs));
  const uint64_t inodes0 = Usage(fs.get(), true);
  StubTree a{"a", NewObject{0755, 0, 0}, Timespec{1600000000, 0}};
  StubTree b{"b", NewObject{0700, 5, 6}, Timespec{1600000001, 0}};
  std::vector<Ino> inos;
  ASSERT_OK(fs->trees()->AddStubs({a, b}, &inos));
  ASSERT_EQ(inos.size(), 2u);
  EXPECT_EQ(Usage(fs.get(), true), inodes0 + 2);
  const uint64_t stub_keys = KeysInRange(fs->store(), schema::RangeOf(inos[0]));
  Attributes top;
  ASSERT_OK(fs->Lookup(kRootIno, "b", &top));
  EXPECT_EQ(top.ino, inos[1]);
  EXPECT_EQ(top.mode, 0700u);
  EXPECT_EQ(top.uid, 5u);
  EXPECT_EQ(top.size, 0u);
  EXPECT_EQ(top.mtime, b.mtime);
  TreeState ts;
  ASSERT_OK(fs->trees()->ReadTreeState(inos[0], &ts));
  EXPECT_TRUE(ts.stub);
  EXPECT_FALSE(ts.filling);
  EXPECT_EQ(ts.inodes, 1u);

  uint64_t high_water;
  ASSERT_OK(fs->trees()->BeginFill(inos[0], &high_water));
  EXPECT_EQ(high_water, 2u);
  EXPECT_EQ(fs->trees()->BeginFill(inos[0], &high_water).posix_errno(), EINVAL);  // filling already
  LoadedTree t = LoadFiles(fs.get(), ts.range, "a", 3, "hello", dir.path() + "/staging");
  ASSERT_OK(fs->trees()->FinishFill(t));
  ASSERT_OK(fs->Lookup(kRootIno, "a", &top));
  EXPECT_EQ(top.ino, inos[0]);
  EXPECT_EQ(top.size, 3u);
  EXPECT_EQ(top.mode, 0750u);
  Attributes f;
  ASSERT_OK(fs->Lookup(inos[0], "f2", &f));
  std::string data;
  ASSERT_OK(ReadAll(fs.get(), f.ino, &data));
  EXPECT_EQ(data, "hello");
  ASSERT_OK(fs->trees()->ReadTreeState(inos[0], &ts));
  EXPECT_FALSE(ts.stub);
  EXPECT_EQ(ts.bytes, 15u);
  EXPECT_EQ(ts.inodes, 4u);
  EXPECT_EQ(Usage(fs.get(), true), inodes0 + 5);
  EXPECT_EQ(FsckProblems(fs.get(), kHasher), std::vector<std::string>{});
  // New objects in a filled tree are numbered above the fill.
  Attributes n;
  ASSERT_OK(fs->Create(inos[0], "new", NewObject{}, true, &n));
  EXPECT_GE(n.ino & schema::kLocalMask, 5u);

  const uint64_t change = top.change;
  ASSERT_OK(fs->trees()->ResetToStub(inos[0]));
  ASSERT_OK(fs->Lookup(kRootIno, "a", &top));
  EXPECT_EQ(top.ino, inos[0]);
  EXPECT_EQ(top.size, 0u);
  EXPECT_EQ(top.nlink, 2u);
  EXPECT_GT(top.change, change);
  EXPECT_TRUE(fs->Lookup(inos[0], "f2", &f).IsNotFound());
  EXPECT_EQ(fs->GetAttr(n.ino, &f).posix_errno(), ESTALE);
  // The top's index entry and usage counters (bytes now at 0) are all left.
  EXPECT_EQ(KeysInRange(fs->store(), ts.range), stub_keys + 1);
  ASSERT_OK(fs->trees()->ReadTreeState(inos[0], &ts));
  EXPECT_TRUE(ts.stub);
  EXPECT_EQ(ts.bytes, 0u);
  EXPECT_EQ(ts.inodes, 1u);
  EXPECT_EQ(Usage(fs.get(), true), inodes0 + 2);
  EXPECT_EQ(Usage(fs.get(), false), 0u);
  EXPECT_EQ(FsckProblems(fs.get(), kHasher), std::vector<std::string>{});
  // The mark stays: a later fill may reuse the same numbers on purpose, or
  // start above every number handed out.
  ASSERT_OK(fs->trees()->BeginFill(inos[0], &high_water));
  EXPECT_GT(high_water, n.ino & schema::kLocalMask);
}

TEST(Stubs, AddStubsIsAllOrNothing) {
  auto fs = NewMemoryFileSystem();
  Attributes d;
  ASSERT_OK(fs->Mkdir(kRootIno, "taken", NewObject{}, &d));
  const auto before = DumpStore(fs->store());
  std::vector<Ino> inos;
  EXPECT_EQ(fs->trees()->AddStubs({{"x", {}, {}}, {"taken", {}, {}}}, &inos).posix_errno(), EEXIST);
  EXPECT_EQ(fs->trees()->AddStubs({{"y", {}, {}}, {"y", {}, {}}}, &inos).posix_errno(), EEXIST);
  EXPECT_EQ(fs->trees()->AddStubs({{"a/b", {}, {}}}, &inos).posix_errno(), EINVAL);
  EXPECT_EQ(DumpStore(fs->store()), before);
}

// A stub in a range chosen elsewhere (one claimed for its tarball version:
// docs/coordination.md): that range, later fresh ranges above it, and a
// range in use refused with nothing created.
TEST(Stubs, AddStubsInAChosenRange) {
  auto fs = NewMemoryFileSystem();
  std::vector<Ino> inos;
  StubTree chosen{"chosen", NewObject{0755, 0, 0}, Timespec{1, 0}, 50};
  ASSERT_OK(fs->trees()->AddStubs({chosen}, &inos));
  EXPECT_EQ(inos, std::vector<Ino>{schema::MakeIno(50, 1)});
  TreeState ts;
  ASSERT_OK(fs->trees()->ReadTreeState(inos[0], &ts));
  EXPECT_TRUE(ts.stub);
  EXPECT_EQ(ts.range, 50u);
  Attributes d;
  ASSERT_OK(fs->Mkdir(kRootIno, "fresh", NewObject{}, &d));
  EXPECT_GT(schema::RangeOf(d.ino), 50u);
  // A range below the fresh ones that nobody used is fine too.
  ASSERT_OK(fs->trees()->AddStubs({{"low", {}, {}, 7}}, &inos));
  EXPECT_EQ(inos, std::vector<Ino>{schema::MakeIno(7, 1)});
  const auto before = DumpStore(fs->store());
  EXPECT_EQ(fs->trees()->AddStubs({{"x", {}, {}}, {"again", {}, {}, 50}}, &inos).posix_errno(),
            EEXIST);
  EXPECT_EQ(fs->trees()->AddStubs({{"y", {}, {}, 60}, {"z", {}, {}, 60}}, &inos).posix_errno(),
            EEXIST);
  EXPECT_EQ(fs->trees()->AddStubs({{"w", {}, {}, schema::RangeOf(d.ino)}}, &inos).posix_errno(),
            EEXIST);
  EXPECT_EQ(DumpStore(fs->store()), before);
}

TEST(Stubs, FillAndResetCheckTheirArguments) {
  auto fs = NewMemoryFileSystem();
  Attributes d, f;
  ASSERT_OK(fs->Mkdir(kRootIno, "plain", NewObject{}, &d));
  ASSERT_OK(fs->Create(d.ino, "file", NewObject{}, true, &f));
  uint64_t hw;
  EXPECT_EQ(fs->trees()->BeginFill(d.ino, &hw).posix_errno(), EINVAL);  // not a stub
  EXPECT_EQ(fs->trees()->BeginFill(f.ino, &hw).posix_errno(), EINVAL);  // not a top
  EXPECT_EQ(fs->trees()->BeginFill(kRootIno, &hw).posix_errno(), EINVAL);
  EXPECT_EQ(fs->trees()->ResetToStub(f.ino).posix_errno(), EINVAL);
  LoadedTree t;
  t.range = schema::RangeOf(d.ino);
  t.attrs.type = FileType::kDirectory;
  EXPECT_EQ(fs->trees()->FinishFill(t).posix_errno(), EINVAL);  // not filling
  // A plain top-level directory can be reset: that is how a tree is evicted.
  ASSERT_OK(fs->trees()->ResetToStub(d.ino));
  EXPECT_TRUE(fs->Lookup(d.ino, "file", &f).IsNotFound());
  TreeState ts;
  ASSERT_OK(fs->trees()->ReadTreeState(d.ino, &ts));
  EXPECT_TRUE(ts.stub);
}

TEST(Stubs, OpenEmptiesAnInterruptedFill) {
  TempDir dir("kvfs-stub");
  const std::string db = dir.path() + "/db";
  Ino top;
  uint64_t range, stub_keys;
  {
    std::unique_ptr<FileSystem> fs;
    ASSERT_OK(OpenRocksFileSystem(db, &fs));
    std::vector<Ino> inos;
    ASSERT_OK(fs->trees()->AddStubs({{"t", {}, {}}}, &inos));
    top = inos[0];
    range = schema::RangeOf(top);
    stub_keys = KeysInRange(fs->store(), range);
    uint64_t hw;
    ASSERT_OK(fs->trees()->BeginFill(top, &hw));
    LoadFiles(fs.get(), range, "t", 20, "data", dir.path() + "/staging");
    Attributes f;
    ASSERT_OK(fs->Lookup(top, "f3", &f));  // the loaded keys are there
  }  // closed as a crash leaves it: filling, keys loaded, never finished
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(OpenRocksFileSystem(db, &fs));
  EXPECT_EQ(KeysInRange(fs->store(), range), stub_keys);
  TreeState ts;
  ASSERT_OK(fs->trees()->ReadTreeState(top, &ts));
  EXPECT_TRUE(ts.stub);
  EXPECT_FALSE(ts.filling);
  EXPECT_EQ(ts.inodes, 1u);
  EXPECT_EQ(ts.bytes, 0u);
  Attributes a;
  ASSERT_OK(fs->Lookup(kRootIno, "t", &a));
  EXPECT_EQ(a.ino, top);
  EXPECT_EQ(a.size, 0u);
  EXPECT_EQ(FsckProblems(fs.get(), kHasher), std::vector<std::string>{});
}

}  // namespace
}  // namespace kvfs
