// The cache manager (cache/tree_cache.h) in process, on RocksDB and a
// persistent store of real tarballs on each plugin (a directory, a bucket on
// radosgw: tests/store/test_store.h): stubs, loading on first touch (once),
// failed loads, LRU eviction under a quota, handles across evictions,
// write-back, restart, name claims between two caches, refresh. The same
// through NFS is cache_e2e_test.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "cache/tree_cache.h"
#include "common/fs/schema.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"
#include "tests/store/forwarding_store.h"
#include "tests/store/test_store.h"

namespace kvfs::cache {
namespace {

using ingest_test::File;
using ingest_test::OpenRocksFileSystem;
using ingest_test::RandomBytes;
using ingest_test::Spec;
using ingest_test::WriteTarball;
using kvfs::testing::FsckProblems;
using kvfs::testing::TempDir;

// Path (relative to a tree's top) -> contents.
using Contents = std::map<std::string, std::string>;

// A persistent store that counts the tarballs opened for reading and can
// make each read slow (so concurrent first touches overlap).
class CountingStore final : public store_test::ForwardingStore {
 public:
  explicit CountingStore(std::unique_ptr<ingest::PersistentStore> base)
      : ForwardingStore(std::move(base)) {}
  Status OpenRead(const std::string& name, std::unique_ptr<ingest::ObjectReader>* out) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++opened_[name];
    }
    std::this_thread::sleep_for(delay_);
    return ForwardingStore::OpenRead(name, out);
  }

  int opened(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    return opened_[name];
  }
  void set_delay(std::chrono::milliseconds d) { delay_ = d; }

 private:
  std::mutex mu_;
  std::map<std::string, int> opened_;
  std::chrono::milliseconds delay_{0};
};

// Reads every file below directory `dir` through fs.
Status ReadTree(FileSystem* fs, Ino dir, const std::string& prefix, Contents* out) {
  std::vector<DirEntry> entries;
  KVFS_RETURN_IF_ERROR(ListDirectory(fs, dir, &entries));
  for (const DirEntry& e : entries) {
    const std::string path = prefix.empty() ? e.name : prefix + "/" + e.name;
    if (e.attrs.type == FileType::kDirectory) {
      KVFS_RETURN_IF_ERROR(ReadTree(fs, e.attrs.ino, path, out));
    } else if (e.attrs.type == FileType::kRegular) {
      std::string data;
      KVFS_RETURN_IF_ERROR(kvfs::testing::ReadAll(fs, e.attrs.ino, &data));
      (*out)[path] = data;
    }
  }
  return Status::OK();
}

Status ReadTopTree(FileSystem* fs, const std::string& name, Contents* out) {
  Attributes top;
  KVFS_RETURN_IF_ERROR(fs->Lookup(kRootIno, name, &top));
  out->clear();
  return ReadTree(fs, top.ino, "", out);
}

std::string StateOf(TreeCache* cache, const std::string& name) {
  std::vector<CachedTree> trees;
  EXPECT_OK(cache->List(&trees));
  for (const CachedTree& t : trees) {
    if (t.name == name) return t.state;
  }
  return "absent";
}

class TreeCacheTest : public ::testing::TestWithParam<store_test::StoreKind> {
 protected:
  void SetUp() override {
    Status s = store_test::TestStore::Create(GetParam(), &t_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::string db(int i = 0) const { return dir_.path() + "/db" + std::to_string(i); }

  // Puts `data` as object `name` into the store (as another writer would).
  void Put(const std::string& name, const std::string& data) { ASSERT_OK(t_->Put(name, data)); }

  // Writes tarball NAME.tar of `files` files of `size` bytes in two
  // directories and returns its contents.
  Contents MakeTarball(const std::string& name, int files, size_t size, uint64_t seed) {
    Contents c;
    std::vector<Spec> members;
    for (int i = 0; i < files; ++i) {
      const std::string path = (i % 2 == 0 ? "even/f" : "odd/f") + std::to_string(i);
      c[path] = RandomBytes(size + i, seed * 1000 + i);
      members.push_back(File(name + "/" + path, c[path]));
    }
    const std::string local = dir_.path() + "/" + name + ".tar";
    WriteTarball(local, members);
    EXPECT_OK(t_->PutFile(name + ".tar", local));
    return c;
  }

  TreeCacheOptions Options(int i = 0) const {
    TreeCacheOptions o;
    o.refresh_seconds = 0;
    o.writeback_delay_seconds = 0;
    o.retry_seconds = 0;
    o.staging_dir = db(i) + "/ingest-staging";
    o.owner = "test cache " + std::to_string(i);
    o.log = [](const std::string& line) { std::fprintf(stderr, "cache log: %s\n", line.c_str()); };
    return o;
  }

  Status OpenCache(const TreeCacheOptions& o, std::unique_ptr<TreeCache>* out, int i = 0) {
    std::unique_ptr<FileSystem> fs;
    KVFS_RETURN_IF_ERROR(OpenRocksFileSystem(db(i), &fs));
    ::mkdir(o.staging_dir.c_str(), 0755);
    std::unique_ptr<ingest::PersistentStore> local;
    KVFS_RETURN_IF_ERROR(t_->Open(&local));
    auto counting = std::make_unique<CountingStore>(std::move(local));
    counting_ = counting.get();
    return TreeCache::Open(std::move(fs), std::move(counting), o, out);
  }

  TempDir dir_{"kvfs-cache"};
  std::unique_ptr<store_test::TestStore> t_;
  CountingStore* counting_ = nullptr;  // of the last cache opened
};

TEST_P(TreeCacheTest, TarballsAreListedAsStubsWithoutFetching) {
  for (int i = 0; i < 5; ++i) MakeTarball("t" + std::to_string(i), 4, 100, i);
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(Options(), &cache));
  std::vector<std::string> names;
  bool eof;
  ASSERT_OK(cache->ReadDir(
      kRootIno, kStartCookie,
      [&](const DirEntry& e) {
        EXPECT_EQ(e.attrs.type, FileType::kDirectory);
        names.push_back(e.name);
        return true;
      },
      &eof));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"t0", "t1", "t2", "t3", "t4"}));
  Attributes top;
  ASSERT_OK(cache->Lookup(kRootIno, "t2", &top));
  ASSERT_OK(cache->GetAttr(top.ino, &top));
  EXPECT_EQ(StateOf(cache.get(), "t2"), "unloaded");
  EXPECT_EQ(counting_->opened("t2.tar"), 0);
}

TEST_P(TreeCacheTest, FirstTouchLoadsAndLaterTouchesDoNot) {
  const Contents want = MakeTarball("data", 10, 3000, 1);
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(Options(), &cache));
  Contents got;
  ASSERT_OK(ReadTopTree(cache.get(), "data", &got));
  EXPECT_EQ(got, want);
  EXPECT_EQ(StateOf(cache.get(), "data"), "clean");
  ASSERT_OK(ReadTopTree(cache.get(), "data", &got));
  EXPECT_EQ(counting_->opened("data.tar"), 1);
  EXPECT_EQ(FsckProblems(cache.get(), DefaultNameHasher()), std::vector<std::string>{});
}

TEST_P(TreeCacheTest, ConcurrentFirstTouchesFetchOnce) {
  const Contents want = MakeTarball("shared", 20, 1000, 2);
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(Options(), &cache));
  counting_->set_delay(std::chrono::milliseconds(300));
  Attributes top;
  ASSERT_OK(cache->Lookup(kRootIno, "shared", &top));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      Attributes a;
      const std::string path = i % 2 == 0 ? "even" : "odd";
      if (cache->Lookup(top.ino, path, &a).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(counting_->opened("shared.tar"), 1);
  Contents got;
  ASSERT_OK(ReadTopTree(cache.get(), "shared", &got));
  EXPECT_EQ(got, want);
}

TEST_P(TreeCacheTest, CorruptTarballIsAnIoErrorAndIsRetried) {
  Put("broken.tar", std::string(10000, 'x'));
  TreeCacheOptions o = Options();
  o.retry_seconds = 3600;
  std::vector<std::string> lines;
  std::mutex lines_mu;
  o.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> l(lines_mu);
    lines.push_back(line);
  };
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(o, &cache));
  Attributes top, a;
  ASSERT_OK(cache->Lookup(kRootIno, "broken", &top));
  Status s = cache->Lookup(top.ino, "anything", &a);
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("broken.tar"), std::string::npos) << s.ToString();
  {
    std::lock_guard<std::mutex> l(lines_mu);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("broken"), std::string::npos);
  }
  // Remembered for retry_seconds: no new fetch.
  EXPECT_EQ(cache->Lookup(top.ino, "anything", &a).posix_errno(), EIO);
  EXPECT_EQ(counting_->opened("broken.tar"), 1);
  EXPECT_EQ(StateOf(cache.get(), "broken"), "unloaded");  // not cached as empty
  // Fixed in the store: the operator's load retries at once.
  const Contents want = MakeTarball("broken", 3, 10, 3);
  ASSERT_OK(cache->Load("broken"));
  Contents got;
  ASSERT_OK(ReadTopTree(cache.get(), "broken", &got));
  EXPECT_EQ(got, want);
}

TEST_P(TreeCacheTest, FailedLoadIsRetriedAtTheNextTouchAfterTheDelay) {
  Put("later.tar", "not a tarball");
  TreeCacheOptions o = Options();
  o.retry_seconds = 1;
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(o, &cache));
  Attributes top, a;
  ASSERT_OK(cache->Lookup(kRootIno, "later", &top));
  EXPECT_EQ(cache->Lookup(top.ino, "even", &a).posix_errno(), EIO);
  MakeTarball("later", 2, 10, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_OK(cache->Lookup(top.ino, "even", &a));
  EXPECT_EQ(counting_->opened("later.tar"), 2);
}

TEST_P(TreeCacheTest, QuotaEvictsLeastRecentlyUsedWhileAClientWalksEverything) {
  std::map<std::string, Contents> want;
  for (int i = 0; i < 8; ++i) {
    const std::string name = "q" + std::to_string(i);
    want[name] = MakeTarball(name, 16, 8000, 10 + i);  // about 130 KB each
  }
  TreeCacheOptions o = Options();
  o.quota_bytes = 400 * 1024;  // three trees at a time
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(o, &cache));
  StatFsInfo st;
  ASSERT_OK(cache->StatFs(&st));
  EXPECT_EQ(st.total_bytes, o.quota_bytes);
  for (int round = 0; round < 2; ++round) {
    for (const auto& [name, contents] : want) {
      Contents got;
      ASSERT_OK(ReadTopTree(cache.get(), name, &got));
      EXPECT_EQ(got, contents) << name;
      ASSERT_OK(cache->StatFs(&st));
      EXPECT_LE(st.used_bytes, o.quota_bytes) << name;
    }
  }
  int loaded = 0;
  std::vector<CachedTree> trees;
  ASSERT_OK(cache->List(&trees));
  for (const CachedTree& t : trees) loaded += t.state == "clean";
  EXPECT_GE(loaded, 1);
  EXPECT_LE(loaded, 3);
  // In pages of three: the same trees in the same order, and `more` on all
  // but the last page.
  std::vector<std::string> whole, paged;
  for (const CachedTree& t : trees) whole.push_back(t.name);
  ASSERT_EQ(whole.size(), 8u);
  std::string after;
  for (bool more = true; more;) {
    std::vector<CachedTree> page;
    ASSERT_OK(cache->ListPage(after, 3, &page, &more));
    ASSERT_FALSE(page.empty());
    EXPECT_EQ(page.size(), more ? 3u : 2u);
    for (const CachedTree& t : page) paged.push_back(t.name);
    after = page.back().name;
  }
  EXPECT_EQ(paged, whole);
  // The least recently used went first: the last one walked is loaded.
  EXPECT_EQ(StateOf(cache.get(), "q7"), "clean");
  EXPECT_EQ(StateOf(cache.get(), "q0"), "unloaded");
  EXPECT_EQ(counting_->opened("q0.tar"), 2);
  EXPECT_EQ(FsckProblems(cache.get(), DefaultNameHasher()), std::vector<std::string>{});
}

TEST_P(TreeCacheTest, CleanTreesAreEvictedBeforeDirtyOnes) {
  for (int i = 0; i < 4; ++i) MakeTarball("c" + std::to_string(i), 16, 8000, 20 + i);
  TreeCacheOptions o = Options();
  o.quota_bytes = 400 * 1024;  // three trees
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(o, &cache));
  Contents got;
  // c0 is used first (least recently) and changed; c1 and c2 stay clean.
  ASSERT_OK(ReadTopTree(cache.get(), "c0", &got));
  Attributes top, f;
  ASSERT_OK(cache->Lookup(kRootIno, "c0", &top));
  ASSERT_OK(cache->Create(top.ino, "mine", NewObject{}, true, &f));
  ASSERT_OK(ReadTopTree(cache.get(), "c1", &got));
  ASSERT_OK(ReadTopTree(cache.get(), "c2", &got));
  ASSERT_OK(ReadTopTree(cache.get(), "c3", &got));  // needs room: c1 goes, not c0
  EXPECT_EQ(StateOf(cache.get(), "c0"), "dirty");
  EXPECT_EQ(StateOf(cache.get(), "c1"), "unloaded");
  EXPECT_EQ(counting_->opened("c0.tar"), 1);
}

TEST_P(TreeCacheTest, HandlesSurviveEvictionOfAnUnchangedTree) {
  const Contents want = MakeTarball("h", 6, 5000, 5);
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(Options(), &cache));
  Attributes top, dir, file;
  ASSERT_OK(cache->Lookup(kRootIno, "h", &top));
  ASSERT_OK(cache->Lookup(top.ino, "odd", &dir));
  ASSERT_OK(cache->Lookup(dir.ino, "f3", &file));
  ASSERT_OK(cache->Drop("h"));
  EXPECT_EQ(StateOf(cache.get(), "h"), "unloaded");
  // The old handle of a file loads the tree again and names the same file.
  Attributes again;
  ASSERT_OK(cache->GetAttr(file.ino, &again));
  EXPECT_EQ(again.size, file.size);
  std::string data;
  ASSERT_OK(kvfs::testing::ReadAll(cache.get(), file.ino, &data));
  EXPECT_EQ(data, want.at("odd/f3"));
  ASSERT_OK(cache->Lookup(kRootIno, "h", &again));
  EXPECT_EQ(again.ino, top.ino);
  EXPECT_EQ(counting_->opened("h.tar"), 2);
}

TEST_P(TreeCacheTest, WriteBackThenEvictionThenReloadGivesIdenticalContents) {
  Contents want = MakeTarball("w", 4, 2000, 6);
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(Options(), &cache));
  // A change to a loaded tree, and a new top-level tree.
  Attributes top, f, fresh, g;
  ASSERT_OK(cache->Lookup(kRootIno, "w", &top));
  ASSERT_OK(cache->Create(top.ino, "added", NewObject{}, true, &f));
  ASSERT_OK(cache->Write(f.ino, 0, "new contents", Stability::kStable, &f));
  want["added"] = "new contents";
  EXPECT_EQ(StateOf(cache.get(), "w"), "dirty");
  ASSERT_OK(cache->Mkdir(kRootIno, "fresh", NewObject{0755, 0, 0}, &fresh));
  ASSERT_OK(cache->Create(fresh.ino, "g", NewObject{}, true, &g));
  ASSERT_OK(cache->Write(g.ino, 0, RandomBytes(70000, 9), Stability::kStable, &g));
  EXPECT_EQ(StateOf(cache.get(), "fresh"), "dirty");
  EXPECT_FALSE(t_->Exists("fresh.tar"));

  // Drop writes a dirty tree back first; flush writes one back on demand.
  ASSERT_OK(cache->Drop("w"));
  bool written;
  ASSERT_OK(cache->Flush("fresh", &written));
  EXPECT_TRUE(written);
  EXPECT_EQ(StateOf(cache.get(), "fresh"), "clean");
  ASSERT_TRUE(t_->Exists("fresh.tar"));
  ASSERT_OK(cache->Drop("fresh"));
  EXPECT_EQ(StateOf(cache.get(), "w"), "unloaded");
  EXPECT_EQ(StateOf(cache.get(), "fresh"), "unloaded");

  Contents got;
  ASSERT_OK(ReadTopTree(cache.get(), "w", &got));
  EXPECT_EQ(got, want);
  ASSERT_OK(ReadTopTree(cache.get(), "fresh", &got));
  EXPECT_EQ(got, (Contents{{"g", RandomBytes(70000, 9)}}));
  // Handles from before a write-back may go stale (the tarball numbers
  // afresh), never name another file.
  Attributes a;
  Status s = cache->GetAttr(g.ino, &a);
  EXPECT_TRUE(s.posix_errno() == ESTALE || (s.ok() && a.size == 70000)) << s.ToString();
}

TEST_P(TreeCacheTest, OpenOrBusyTreesAreNotDropped) {
  MakeTarball("o", 2, 100, 7);
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(Options(), &cache));
  Attributes top, dir, f;
  ASSERT_OK(cache->Lookup(kRootIno, "o", &top));
  ASSERT_OK(cache->Lookup(top.ino, "even", &dir));
  ASSERT_OK(cache->Lookup(dir.ino, "f0", &f));
  ASSERT_OK(cache->OpenFile(f.ino));
  EXPECT_EQ(cache->Drop("o").posix_errno(), EBUSY);
  EXPECT_EQ(StateOf(cache.get(), "o"), "clean");
  ASSERT_OK(cache->CloseFile(f.ino));
  ASSERT_OK(cache->Drop("o"));
}

TEST_P(TreeCacheTest, ChangesSurviveARestartAndAreWrittenBackThen) {
  MakeTarball("r", 2, 100, 8);
  Attributes top, f;
  {
    std::unique_ptr<TreeCache> cache;
    ASSERT_OK(OpenCache(Options(), &cache));
    ASSERT_OK(cache->Lookup(kRootIno, "r", &top));
    ASSERT_OK(cache->Create(top.ino, "kept", NewObject{}, true, &f));
    ASSERT_OK(cache->Write(f.ino, 0, "durable", Stability::kStable, &f));
  }  // no flush: the server stops (or crashes) with the tree dirty
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(Options(), &cache));
  EXPECT_EQ(StateOf(cache.get(), "r"), "dirty");
  ASSERT_OK(cache->FlushAll());
  ASSERT_OK(cache->Drop("r"));
  Contents got;
  ASSERT_OK(ReadTopTree(cache.get(), "r", &got));
  EXPECT_EQ(got.at("kept"), "durable");
}

TEST_P(TreeCacheTest, DelayedWriteBackHappensAfterTheLastChange) {
  TreeCacheOptions o = Options();
  o.writeback_delay_seconds = 1;
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(o, &cache));
  Attributes d, f;
  ASSERT_OK(cache->Mkdir(kRootIno, "later", NewObject{0755, 0, 0}, &d));
  ASSERT_OK(cache->Create(d.ino, "x", NewObject{}, true, &f));
  ASSERT_OK(cache->Write(f.ino, 0, "x", Stability::kStable, &f));
  for (int i = 0; i < 100 && !t_->Exists("later.tar"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(t_->Exists("later.tar"));
  for (int i = 0; i < 50 && StateOf(cache.get(), "later") != "clean"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(StateOf(cache.get(), "later"), "clean");
}

TEST_P(TreeCacheTest, TwoCachesRacingForOneNameOneWins) {
  std::unique_ptr<TreeCache> a, b;
  ASSERT_OK(OpenCache(Options(0), &a, 0));
  ASSERT_OK(OpenCache(Options(1), &b, 1));
  for (int round = 0; round < 20; ++round) {
    const std::string name = "race" + std::to_string(round);
    Status sa, sb;
    std::thread ta([&] {
      Attributes x;
      sa = a->Mkdir(kRootIno, name, NewObject{0755, 0, 0}, &x);
    });
    std::thread tb([&] {
      Attributes x;
      sb = b->Mkdir(kRootIno, name, NewObject{0755, 0, 0}, &x);
    });
    ta.join();
    tb.join();
    EXPECT_NE(sa.ok(), sb.ok()) << sa.ToString() << " / " << sb.ToString();
    const Status& lost = sa.ok() ? sb : sa;
    EXPECT_EQ(lost.posix_errno(), EEXIST) << lost.ToString();
  }
  // The winner's tree, once written back, appears on the other server.
  Attributes x;
  ASSERT_OK(a->Mkdir(kRootIno, "shown", NewObject{0755, 0, 0}, &x));
  EXPECT_EQ(b->Mkdir(kRootIno, "shown", NewObject{0755, 0, 0}, &x).posix_errno(), EEXIST);
  ASSERT_OK(a->FlushAll());
  ASSERT_OK(b->Refresh());
  ASSERT_OK(b->Lookup(kRootIno, "shown", &x));
  EXPECT_EQ(StateOf(b.get(), "shown"), "unloaded");
}

TEST_P(TreeCacheTest, AWriteBackNeverOverwritesATarballReplacedUnderIt) {
  MakeTarball("shared", 4, 100, 21);
  std::vector<std::string> log;
  std::mutex log_mu;
  TreeCacheOptions o = Options();
  o.server_name = "server-a";
  o.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> l(log_mu);
    log.push_back(line);
  };
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(o, &cache));
  Attributes top, f, after;
  ASSERT_OK(cache->Lookup(kRootIno, "shared", &top));
  ASSERT_OK(cache->Create(top.ino, "mine", NewObject{}, true, &f));
  ASSERT_OK(cache->Write(f.ino, 0, "this server's change", Stability::kStable, &after));
  // Meanwhile another writer (a server without coordination, an operator)
  // replaces the tarball.
  const Contents theirs = MakeTarball("shared", 3, 50, 22);
  std::string their_bytes;
  ASSERT_OK(t_->Get("shared.tar", &their_bytes));

  bool written = false;
  ASSERT_OK(cache->Flush("shared", &written));
  ASSERT_TRUE(written);
  // Their tarball is untouched; ours is beside it under a conflict name.
  std::string now;
  ASSERT_OK(t_->Get("shared.tar", &now));
  EXPECT_TRUE(now == their_bytes) << "the other writer's tarball was overwritten";
  std::vector<ingest::ObjectInfo> objects;
  ASSERT_OK(counting_->List(&objects));
  std::string conflict;
  for (const ingest::ObjectInfo& info : objects) {
    if (info.name.rfind("shared.conflict-server-a-", 0) == 0) conflict = info.name;
  }
  ASSERT_FALSE(conflict.empty());
  EXPECT_EQ(conflict.size(), std::string("shared.conflict-server-a-20261204T120000Z.tar").size())
      << conflict;
  EXPECT_EQ(StateOf(cache.get(), "shared"), "clean");
  {
    std::lock_guard<std::mutex> l(log_mu);
    bool logged = false;
    for (const std::string& line : log) {
      logged |= line.find("conflict: tarball shared.tar of 'shared'") != std::string::npos &&
                line.find(conflict) != std::string::npos;
    }
    EXPECT_TRUE(logged);
  }
  std::vector<CachedTree> trees;
  ASSERT_OK(cache->List(&trees));
  ASSERT_FALSE(trees.empty());
  EXPECT_EQ(trees[0].name, "shared");
  EXPECT_EQ(trees[0].conflict, conflict);

  // At the next refresh the tree is the other writer's version, and the
  // conflict copy is a tree of its own holding this server's version.
  ASSERT_OK(cache->Refresh());
  Contents got;
  ASSERT_OK(ReadTopTree(cache.get(), "shared", &got));
  EXPECT_EQ(got, theirs);
  const std::string conflict_tree = conflict.substr(0, conflict.size() - 4);
  ASSERT_OK(ReadTopTree(cache.get(), conflict_tree, &got));
  EXPECT_EQ(got["mine"], "this server's change");
  EXPECT_EQ(got.size(), 5u);

  // A change to a tree whose tarball nobody replaced goes over it as before.
  ASSERT_OK(cache->Lookup(kRootIno, "shared", &top));
  ASSERT_OK(cache->Create(top.ino, "second", NewObject{}, true, &f));
  ASSERT_OK(cache->Flush("shared", &written));
  ASSERT_TRUE(written);
  ASSERT_OK(counting_->List(&objects));
  int conflicts = 0;
  for (const ingest::ObjectInfo& info : objects) {
    conflicts += info.name.find(".conflict-") != std::string::npos;
  }
  EXPECT_EQ(conflicts, 1);
}

TEST_P(TreeCacheTest, RefreshAddsAndRemovesStubs) {
  MakeTarball("first", 1, 10, 11);
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(Options(), &cache));
  Attributes a;
  EXPECT_TRUE(cache->Lookup(kRootIno, "second", &a).IsNotFound());
  MakeTarball("second", 1, 10, 12);
  ASSERT_OK(cache->Refresh());
  ASSERT_OK(cache->Lookup(kRootIno, "second", &a));
  ASSERT_OK(t_->Remove("first.tar"));
  ASSERT_OK(cache->Refresh());
  EXPECT_TRUE(cache->Lookup(kRootIno, "first", &a).IsNotFound());
  EXPECT_EQ(StateOf(cache.get(), "first"), "absent");

  // A loaded tree whose tarball is replaced in the store is dropped, and
  // the next touch loads the new one.
  Contents got;
  ASSERT_OK(ReadTopTree(cache.get(), "second", &got));
  EXPECT_EQ(StateOf(cache.get(), "second"), "clean");
  const Contents replaced = MakeTarball("second", 3, 20, 14);
  ASSERT_OK(cache->Refresh());
  EXPECT_EQ(StateOf(cache.get(), "second"), "unloaded");
  ASSERT_OK(ReadTopTree(cache.get(), "second", &got));
  EXPECT_EQ(got, replaced);

  // A tree written back by this server stays loaded across refreshes.
  Attributes d, f;
  ASSERT_OK(cache->Mkdir(kRootIno, "made", NewObject{0755, 0, 0}, &d));
  ASSERT_OK(cache->Create(d.ino, "f", NewObject{}, true, &f));
  ASSERT_OK(cache->FlushAll());
  ASSERT_OK(cache->Refresh());
  EXPECT_EQ(StateOf(cache.get(), "made"), "clean");
  ASSERT_OK(cache->Lookup(d.ino, "f", &a));
}

TEST_P(TreeCacheTest, TheTopLevelIsTheStoresNamespace) {
  MakeTarball("t", 1, 10, 13);
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(Options(), &cache));
  Attributes a, d;
  EXPECT_EQ(cache->Create(kRootIno, "file", NewObject{}, true, &a).posix_errno(), EPERM);
  EXPECT_EQ(cache->Symlink(kRootIno, "l", "t", NewObject{}, &a).posix_errno(), EPERM);
  EXPECT_EQ(cache->Rename(kRootIno, "t", kRootIno, "u").posix_errno(), EXDEV);
  EXPECT_EQ(cache->Rmdir(kRootIno, "t").posix_errno(), EPERM);
  EXPECT_EQ(cache->Mkdir(kRootIno, "t", NewObject{}, &a).posix_errno(), EEXIST);
  // A new tree never written back can be removed, which gives its name back.
  ASSERT_OK(cache->Mkdir(kRootIno, "scratch", NewObject{0755, 0, 0}, &d));
  ASSERT_OK(cache->Rmdir(kRootIno, "scratch"));
  EXPECT_FALSE(t_->Exists(".kvfs/names/scratch"));
  ASSERT_OK(cache->Mkdir(kRootIno, "scratch", NewObject{0755, 0, 0}, &d));
}

// Faults of a bucket, injected by the test's proxy in front of radosgw.
class TreeCacheFaultTest : public TreeCacheTest {
 protected:
  // The cache's own log lines.
  TreeCacheOptions LoggingOptions() {
    TreeCacheOptions o = Options();
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> l(mu_);
      lines_.push_back(line);
    };
    return o;
  }
  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> l(mu_);
    return lines_;
  }

  std::mutex mu_;
  std::vector<std::string> lines_;
};

// A load the bucket refuses (403) or keeps failing (500, retried until the
// store gives up) leaves the tree unloaded: EIO, one log line with the
// server's error, and the next load works once the bucket does.
TEST_P(TreeCacheFaultTest, ALoadThatFailsLeavesTheTreeUnloaded) {
  const Contents want = MakeTarball("data", 10, 3000, 1);
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(LoggingOptions(), &cache));
  using A = s3_test::FaultRule::Action;
  for (int status : {403, 500}) {
    s3_test::FaultRule r;
    r.action = A::kRespond;
    r.method = "GET";
    r.target_contains = "data.tar";
    r.count = -1;
    r.status = status;
    r.code = status == 403 ? "AccessDenied" : "InternalError";
    t_->proxy()->AddRule(r);
    {
      std::lock_guard<std::mutex> l(mu_);
      lines_.clear();
    }
    Attributes top, a;
    ASSERT_OK(cache->Lookup(kRootIno, "data", &top));
    Status s = cache->Lookup(top.ino, "even", &a);
    EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
    EXPECT_EQ(StateOf(cache.get(), "data"), "unloaded");
    std::vector<std::string> lines = Lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find(r.code), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("loading tree 'data'"), std::string::npos) << lines[0];
    t_->proxy()->ClearRules();
  }
  ASSERT_OK(cache->Load("data"));
  Contents got;
  ASSERT_OK(ReadTopTree(cache.get(), "data", &got));
  EXPECT_EQ(got, want);
}

// A write-back the bucket refuses keeps the tree dirty and loaded (not
// evicted), loses nothing, and succeeds once the bucket takes it.
TEST_P(TreeCacheFaultTest, AWriteBackThatFailsKeepsTheTreeDirty) {
  std::unique_ptr<TreeCache> cache;
  ASSERT_OK(OpenCache(LoggingOptions(), &cache));
  Attributes d, f;
  ASSERT_OK(cache->Mkdir(kRootIno, "made", NewObject{0755, 0, 0}, &d));
  ASSERT_OK(cache->Create(d.ino, "f", NewObject{}, true, &f));
  ASSERT_OK(cache->Write(f.ino, 0, RandomBytes(100000, 3), Stability::kStable, &f));
  s3_test::FaultRule r;
  r.action = s3_test::FaultRule::Action::kRespond;
  r.method = "PUT";
  r.target_contains = "made.tar";
  r.count = -1;
  r.status = 403;
  r.code = "AccessDenied";
  t_->proxy()->AddRule(r);
  bool written = true;
  Status s = cache->Flush("made", &written);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("AccessDenied"), std::string::npos) << s.ToString();
  EXPECT_EQ(StateOf(cache.get(), "made"), "dirty");
  EXPECT_FALSE(cache->Drop("made").ok());  // written back first: fails, stays
  EXPECT_EQ(StateOf(cache.get(), "made"), "dirty");
  EXPECT_FALSE(t_->Exists("made.tar"));
  t_->proxy()->ClearRules();
  ASSERT_OK(cache->Flush("made", &written));
  EXPECT_TRUE(written);
  ASSERT_OK(cache->Drop("made"));
  Contents got;
  ASSERT_OK(ReadTopTree(cache.get(), "made", &got));
  EXPECT_EQ(got, (Contents{{"f", RandomBytes(100000, 3)}}));
}

INSTANTIATE_TEST_SUITE_P(Stores, TreeCacheFaultTest,
                         ::testing::Values(store_test::StoreKind::kRadosgw),
                         store_test::StoreKindName());

INSTANTIATE_TEST_SUITE_P(Stores, TreeCacheTest, ::testing::ValuesIn(store_test::PluginStoreKinds()),
                         store_test::StoreKindName());

}  // namespace
}  // namespace kvfs::cache
