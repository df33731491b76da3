// Coordination through etcd (coord/coordination.h, docs/coordination.md)
// against the real etcd of the fixture (tests/etcd/etcd-fixture.sh): the
// claims themselves, racing claimers, bad URLs and an etcd that does not
// answer; then their users: two cache managers (two key/value stores sharing
// one directory store) racing to create the same top-level names, ingests
// racing for inode ranges, and a ServerStack opened with `coordination`. The
// claims must be in etcd and not in the persistent store.
#include "coord/coordination.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <ostream>
#include <set>
#include <thread>

#include "cache/tree_cache.h"
#include "common/fs/schema.h"
#include "coord/etcd_client.h"
#include "ingest/control_client.h"
#include "ingest/ingest.h"
#include "server/server_stack.h"
#include "store/store.h"
#include "tests/etcd/etcd_test_server.h"
#include "tests/fs/test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"
#include "tests/store/forwarding_store.h"

namespace kvfs::coord {
namespace {

using kvfs::testing::TempDir;

// The store below, counting the Stats made through it.
class StatCountingStore final : public store_test::ForwardingStore {
 public:
  StatCountingStore(std::unique_ptr<store::PersistentStore> base, std::atomic<int>* stats)
      : ForwardingStore(std::move(base)), stats_(stats) {}
  Status Stat(const std::string& name, store::ObjectInfo* out) override {
    stats_->fetch_add(1);
    return ForwardingStore::Stat(name, out);
  }

 private:
  std::atomic<int>* const stats_;
};

class CoordinationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_test::JoinSharedEtcd(&endpoints_));
    // A prefix of this test only: the fixture's etcd outlives every test.
    prefix_ = std::string("kvfs-test/") +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
              std::to_string(::getpid());
    ::mkdir((dir_.path() + "/store").c_str(), 0755);
    ASSERT_OK(store::OpenStore(store::StoreAt(dir_.path() + "/store"), &store_));
  }

  // etcd://127.0.0.1:2379/<prefix>
  std::string Url() const {
    std::string hosts;
    for (const std::string& e : endpoints_) {
      hosts += (hosts.empty() ? "" : ",") + e.substr(std::string("http://").size());
    }
    return "etcd://" + hosts + "/" + prefix_;
  }

  std::unique_ptr<Coordination> Open() {
    std::unique_ptr<Coordination> c;
    EXPECT_OK(OpenCoordination(Url(), nullptr, CoordinationOptions(), &c));
    return c;
  }

  // A client of the fixture's etcd.
  std::unique_ptr<EtcdClient> Client() {
    EtcdClientOptions o;
    o.endpoints = endpoints_;
    std::unique_ptr<EtcdClient> client;
    EXPECT_OK(EtcdClient::Open(o, &client));
    return client;
  }

  // The keys under this test's prefix, straight from etcd.
  std::vector<std::string> EtcdKeys(const std::string& under) {
    std::unique_ptr<EtcdClient> client = Client();
    std::vector<EtcdKeyValue> kvs;
    EXPECT_OK(client->List("/" + prefix_ + "/" + under, 0, false, &kvs));
    std::vector<std::string> keys;
    for (const EtcdKeyValue& kv : kvs) keys.push_back(kv.key);
    return keys;
  }

  // A cache manager ("server" i) on a RocksDB store of its own over the
  // shared directory store, claiming through `coordination`; counts its
  // Stats of the store in *stats if given.
  std::unique_ptr<cache::TreeCache> OpenCache(int i, std::shared_ptr<Coordination> coordination,
                                              std::atomic<int>* stats = nullptr) {
    const std::string db = dir_.path() + "/db" + std::to_string(i);
    std::unique_ptr<FileSystem> fs;
    EXPECT_OK(ingest_test::OpenRocksFileSystem(db, &fs));
    cache::TreeCacheOptions o;
    o.refresh_seconds = 0;
    o.writeback_delay_seconds = 0;
    o.staging_dir = db + "/staging";
    ::mkdir(o.staging_dir.c_str(), 0755);
    o.owner = "cache " + std::to_string(i);
    o.coordination = std::move(coordination);
    std::unique_ptr<store::PersistentStore> st;
    EXPECT_OK(store::OpenStore(store::StoreAt(dir_.path() + "/store"), &st));
    if (stats != nullptr) st = std::make_unique<StatCountingStore>(std::move(st), stats);
    std::unique_ptr<cache::TreeCache> cache;
    EXPECT_OK(cache::TreeCache::Open(std::move(fs), std::move(st), o, &cache));
    return cache;
  }

  TempDir dir_{"kvfs-coord"};
  std::vector<std::string> endpoints_;
  std::string prefix_;
  std::unique_ptr<store::PersistentStore> store_;
};

TEST_F(CoordinationTest, ClaimsOfRangesAndNames) {
  std::unique_ptr<Coordination> c = Open();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Describe(), Url());
  uint64_t highest = 99;
  ASSERT_OK(c->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, 0u);
  ASSERT_OK(c->ClaimRange(7, "server a tree=x"));
  ASSERT_OK(c->ClaimRange(300, "server a tree=y"));
  ASSERT_OK(c->ClaimRange(0x1234567890ull, "server a tree=z"));
  Status s = c->ClaimRange(300, "server b");
  EXPECT_EQ(s.posix_errno(), EEXIST) << s.ToString();
  EXPECT_NE(s.message().find("by server a tree=y"), std::string::npos) << s.message();
  ASSERT_OK(c->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, 0x1234567890ull);
  EXPECT_EQ(EtcdKeys("ranges/"),
            (std::vector<std::string>{"/" + prefix_ + "/ranges/0000000000000007",
                                      "/" + prefix_ + "/ranges/000000000000012c",
                                      "/" + prefix_ + "/ranges/0000001234567890"}));

  bool claimed = true;
  ASSERT_OK(c->IsNameClaimed("tree", &claimed));
  EXPECT_FALSE(claimed);
  ASSERT_OK(c->ClaimName("tree", "server a"));
  EXPECT_EQ(c->ClaimName("tree", "server a").posix_errno(), EEXIST);
  ASSERT_OK(c->IsNameClaimed("tree", &claimed));
  EXPECT_TRUE(claimed);
  ASSERT_OK(c->ReleaseName("tree"));
  EXPECT_EQ(c->ReleaseName("tree").posix_errno(), ENOENT);
  ASSERT_OK(c->IsNameClaimed("tree", &claimed));
  EXPECT_FALSE(claimed);
  ASSERT_OK(c->ClaimName("tree", "server b"));
  EXPECT_EQ(c->ClaimName("a/b", "x").posix_errno(), EINVAL);
  EXPECT_EQ(c->ClaimName(".hidden", "x").posix_errno(), EINVAL);

  // Nothing of it is in the persistent store.
  ASSERT_OK(store_->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, 0u);
  ASSERT_OK(store_->IsNameClaimed("tree", &claimed));
  EXPECT_FALSE(claimed);

  // Another prefix is another namespace of claims.
  std::unique_ptr<Coordination> other;
  ASSERT_OK(OpenCoordination(Url() + "-other", nullptr, CoordinationOptions(), &other));
  ASSERT_OK(other->ClaimRange(300, "elsewhere"));
  ASSERT_OK(other->ClaimName("tree", "elsewhere"));
}

TEST_F(CoordinationTest, RacingClaimersGetEachClaimOnce) {
  constexpr int kClaimers = 4, kRanges = 40;
  std::vector<std::unique_ptr<Coordination>> cs;
  for (int i = 0; i < kClaimers; ++i) cs.push_back(Open());
  std::vector<std::vector<uint64_t>> won(kClaimers);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClaimers; ++i) {
    threads.emplace_back([&, i] {
      for (uint64_t r = 1; r <= kRanges; ++r) {
        Status s = cs[i]->ClaimRange(r, "claimer " + std::to_string(i));
        if (s.ok()) {
          won[i].push_back(r);
        } else if (s.posix_errno() != EEXIST) {
          ++errors;
        }
        s = cs[i]->ClaimName("n" + std::to_string(r), "claimer " + std::to_string(i));
        if (!s.ok() && s.posix_errno() != EEXIST) ++errors;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<uint64_t> all;
  size_t total = 0;
  for (const auto& w : won) {
    total += w.size();
    all.insert(w.begin(), w.end());
  }
  EXPECT_EQ(total, size_t(kRanges));  // no range won twice
  EXPECT_EQ(all.size(), size_t(kRanges));
  EXPECT_EQ(EtcdKeys("names/").size(), size_t(kRanges));
}

TEST_F(CoordinationTest, BadUrlsAndAnEtcdThatDoesNotAnswer) {
  std::unique_ptr<Coordination> c;
  CoordinationOptions o;
  for (const char* url : {"http://127.0.0.1:2379", "etcd://", "etcd://h:99999/p", "etcd://a,,b/p",
                          "etcd://h:2379//p"}) {
    Status s = OpenCoordination(url, store_.get(), o, &c);
    EXPECT_EQ(s.posix_errno(), EINVAL) << url << ": " << s.ToString();
  }
  EXPECT_EQ(OpenCoordination("", nullptr, o, &c).posix_errno(), EINVAL);
  // None: the store's own claims.
  ASSERT_OK(OpenCoordination("", store_.get(), o, &c));
  ASSERT_OK(c->ClaimName("in-store", "me"));
  bool claimed = false;
  ASSERT_OK(store_->IsNameClaimed("in-store", &claimed));
  EXPECT_TRUE(claimed);

  // Nothing listens on port 1: the open fails, naming the URL and endpoint.
  o.rounds = 1;
  Status s = OpenCoordination("etcd://127.0.0.1:1/x", nullptr, o, &c);
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("coordination etcd://127.0.0.1:1/x: etcd unreachable at "
                             "http://127.0.0.1:1 ("),
            std::string::npos)
      << s.message();
}

TEST_F(CoordinationTest, TwoCacheManagersRacingForTopLevelNamesThroughEtcd) {
  std::shared_ptr<Coordination> shared[2] = {Open(), Open()};
  std::unique_ptr<cache::TreeCache> caches[2];
  for (int i = 0; i < 2; ++i) {
    caches[i] = OpenCache(i, shared[i]);
    ASSERT_NE(caches[i], nullptr);
  }
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    const std::string name = "race" + std::to_string(round);
    Status s[2];
    std::thread t[2];
    for (int i = 0; i < 2; ++i) {
      t[i] = std::thread([&, i] {
        Attributes a;
        s[i] = caches[i]->Mkdir(kRootIno, name, NewObject{0755, 0, 0}, &a);
      });
    }
    t[0].join();
    t[1].join();
    ASSERT_NE(s[0].ok(), s[1].ok()) << s[0].ToString() << " / " << s[1].ToString();
    const Status& lost = s[0].ok() ? s[1] : s[0];
    EXPECT_EQ(lost.posix_errno(), EEXIST) << lost.ToString();
    EXPECT_NE(lost.message().find("claimed in " + Url()), std::string::npos) << lost.message();
  }
  // The claims are etcd's; the store holds none.
  EXPECT_EQ(EtcdKeys("names/").size(), size_t(kRounds));
  bool claimed = true;
  ASSERT_OK(store_->IsNameClaimed("race0", &claimed));
  EXPECT_FALSE(claimed);

  // A new empty tree removed gives its claim back, in etcd.
  Attributes a;
  ASSERT_OK(caches[0]->Mkdir(kRootIno, "fleeting", NewObject{0755, 0, 0}, &a));
  ASSERT_OK(shared[1]->IsNameClaimed("fleeting", &claimed));
  EXPECT_TRUE(claimed);
  ASSERT_OK(caches[0]->Rmdir(kRootIno, "fleeting"));
  ASSERT_OK(shared[1]->IsNameClaimed("fleeting", &claimed));
  EXPECT_FALSE(claimed);
  ASSERT_OK(caches[1]->Mkdir(kRootIno, "fleeting", NewObject{0755, 0, 0}, &a));
}

// Every path below `top` of `fs` (recursively, loading what it must) with
// its inode number and, for files, contents.
struct Walked {
  Ino ino = 0;
  std::string data;
  bool operator==(const Walked&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const Walked& w) {
    return os << "ino " << w.ino << " '" << w.data << "'";
  }
};
Status Walk(FileSystem* fs, Ino dir, const std::string& path, std::map<std::string, Walked>* out) {
  std::vector<DirEntry> entries;
  KVFS_RETURN_IF_ERROR(ListDirectory(fs, dir, &entries));
  for (const DirEntry& e : entries) {
    if (e.name == "." || e.name == "..") continue;
    Walked w;
    w.ino = e.attrs.ino;
    const std::string p = path + "/" + e.name;
    if (e.attrs.type == FileType::kRegular) {
      KVFS_RETURN_IF_ERROR(kvfs::testing::ReadAll(fs, e.attrs.ino, &w.data));
    }
    (*out)[p] = w;
    if (e.attrs.type == FileType::kDirectory) KVFS_RETURN_IF_ERROR(Walk(fs, e.attrs.ino, p, out));
  }
  return Status::OK();
}

std::map<std::string, Walked> WalkTree(FileSystem* fs, const std::string& tree) {
  std::map<std::string, Walked> out;
  Attributes top;
  Status s = fs->Lookup(kRootIno, tree, &top);
  EXPECT_OK(s);
  if (!s.ok()) return out;
  out[tree] = Walked{top.ino, ""};
  EXPECT_OK(Walk(fs, top.ino, tree, &out));
  return out;
}

// Writes a tarball into the store directory atomically (another writer, an
// operator replacing it).
void PutTarball(const std::string& store_dir, const std::string& name,
                const std::vector<ingest_test::Spec>& members) {
  ingest_test::WriteTarball(store_dir + "/.tmp-" + name, members);
  ASSERT_EQ(::rename((store_dir + "/.tmp-" + name).c_str(), (store_dir + "/" + name).c_str()), 0);
}

TEST_F(CoordinationTest, EveryServerNumbersATarballVersionTheSame) {
  const std::string store_dir = dir_.path() + "/store";
  using ingest_test::Dir;
  using ingest_test::File;
  using ingest_test::Symlink;
  const std::vector<ingest_test::Spec> v1 = {
      Dir("alpha/src"), File("alpha/src/a.c", "int a;"), File("alpha/README", "v1 readme"),
      Symlink("alpha/link", "README"), File("alpha/src/b.c", "int b;")};
  PutTarball(store_dir, "beta.tar", {File("beta/x", "x1"), File("beta/d/y", "y1")});
  // Server B sees beta first, then alpha: without numbering by version its
  // stubs would take other ranges than A's (which sees both at once).
  std::shared_ptr<Coordination> shared[2] = {Open(), Open()};
  std::unique_ptr<cache::TreeCache> b = OpenCache(1, shared[1]);
  ASSERT_NE(b, nullptr);
  PutTarball(store_dir, "alpha.tar", v1);
  ASSERT_OK(b->Refresh());
  std::unique_ptr<cache::TreeCache> a = OpenCache(0, shared[0]);
  ASSERT_NE(a, nullptr);

  // The same numbers for every path, on both, whichever loads first; the
  // same bytes through either server for a number handed out by the other.
  const auto alpha_a = WalkTree(a.get(), "alpha");
  const auto beta_b = WalkTree(b.get(), "beta");
  const auto alpha_b = WalkTree(b.get(), "alpha");
  const auto beta_a = WalkTree(a.get(), "beta");
  ASSERT_EQ(alpha_a.size(), 6u);
  EXPECT_EQ(alpha_a, alpha_b);
  EXPECT_EQ(beta_a, beta_b);
  EXPECT_EQ(alpha_a.at("alpha/src/a.c").data, "int a;");
  std::string data;
  bool eof = false;
  ASSERT_OK(b->Read(alpha_a.at("alpha/README").ino, 0, 100, &data, &eof));
  EXPECT_EQ(data, "v1 readme");
  // Evicted and loaded again: still the same numbers.
  ASSERT_OK(b->Drop("alpha"));
  EXPECT_EQ(WalkTree(b.get(), "alpha"), alpha_a);
  // The version's range is recorded in etcd (and claimed as a range).
  const std::vector<std::string> versions = EtcdKeys("versions/");
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].rfind("/" + prefix_ + "/versions/alpha.tar/", 0), 0u) << versions[0];
  EXPECT_EQ(EtcdKeys("ranges/").size(), 2u);

  // An operator replaces alpha: a new version, new numbers, the same on
  // both; every handle of the old version is stale, on both.
  PutTarball(store_dir, "alpha.tar",
             {Dir("alpha/src"), File("alpha/src/a.c", "int a2;"), File("alpha/NEW", "new"),
              File("alpha/README", "v2 readme")});
  ASSERT_OK(a->Refresh());
  ASSERT_OK(b->Refresh());
  const auto alpha2_b = WalkTree(b.get(), "alpha");
  const auto alpha2_a = WalkTree(a.get(), "alpha");
  EXPECT_EQ(alpha2_a, alpha2_b);
  EXPECT_EQ(alpha2_a.at("alpha/README").data, "v2 readme");
  for (const auto& [path, w] : alpha_a) {
    auto it = alpha2_a.find(path);
    if (it != alpha2_a.end()) {
      EXPECT_NE(it->second.ino, w.ino) << path;
    }
    Attributes attrs;
    EXPECT_EQ(a->GetAttr(w.ino, &attrs).posix_errno(), ESTALE) << path;
    EXPECT_EQ(b->GetAttr(w.ino, &attrs).posix_errno(), ESTALE) << path;
    data.clear();
    EXPECT_EQ(b->Read(w.ino, 0, 100, &data, &eof).posix_errno(), ESTALE) << path;
  }

  // A new tree made on A lives in a claimed range; written back, every
  // server (A too, once it loads the tarball again) numbers it the same, and
  // the numbers A handed out before are stale elsewhere, never another file.
  Attributes top;
  ASSERT_OK(a->Mkdir(kRootIno, "gamma", NewObject{0755, 0, 0}, &top));
  EXPECT_EQ(EtcdKeys("ranges/").size(), 4u);
  Attributes f;
  ASSERT_OK(a->Create(top.ino, "f", NewObject{0644, 0, 0}, true, &f));
  Attributes after;
  ASSERT_OK(a->Write(f.ino, 0, "gamma data", Stability::kStable, &after));
  const auto gamma_live = WalkTree(a.get(), "gamma");
  bool written = false;
  ASSERT_OK(a->Flush("gamma", &written));
  ASSERT_TRUE(written);
  ASSERT_OK(b->Refresh());
  const auto gamma_b = WalkTree(b.get(), "gamma");
  EXPECT_EQ(gamma_b.at("gamma/f").data, "gamma data");
  Attributes attrs;
  for (const auto& [path, w] : gamma_live) {
    EXPECT_EQ(b->GetAttr(w.ino, &attrs).posix_errno(), ESTALE) << path;
  }
  ASSERT_OK(a->Drop("gamma"));
  EXPECT_EQ(WalkTree(a.get(), "gamma"), gamma_b);

  // Restarted, both still agree (the numbers are etcd's, not the caches').
  a.reset();
  a = OpenCache(0, Open());
  ASSERT_NE(a, nullptr);
  ASSERT_OK(a->Drop("alpha"));
  EXPECT_EQ(WalkTree(a.get(), "alpha"), alpha2_b);
}

// Another server's write-back reaches a server through the version watch as
// one look at the new tarball (a Stat), not a listing of the whole store: a
// tarball put into the store behind both servers' backs stays unseen by the
// watching server until it lists the store (refresh_seconds is 0 here).
// While the tree is in use there, the server waits for it without asking
// the store again.
TEST_F(CoordinationTest, AWriteBackElsewhereIsLookedAtAloneNotThroughAListing) {
  const std::string store_dir = dir_.path() + "/store";
  PutTarball(store_dir, "alpha.tar", {ingest_test::File("alpha/README", "v1 readme")});
  std::unique_ptr<cache::TreeCache> a = OpenCache(0, Open());
  std::atomic<int> b_stats{0};
  std::unique_ptr<cache::TreeCache> b = OpenCache(1, Open(), &b_stats);
  ASSERT_TRUE(a && b);
  const auto alpha_b = WalkTree(b.get(), "alpha");
  ASSERT_EQ(alpha_b.at("alpha/README").data, "v1 readme");
  PutTarball(store_dir, "zeta.tar", {ingest_test::File("zeta/z", "z")});

  // A changes alpha and writes it back.
  Attributes top, readme, after;
  ASSERT_OK(a->Lookup(kRootIno, "alpha", &top));
  ASSERT_OK(a->Lookup(top.ino, "README", &readme));
  ASSERT_OK(a->Write(readme.ino, 0, "v2", Stability::kStable, &after));
  bool written = false;
  ASSERT_OK(a->Flush("alpha", &written));
  ASSERT_TRUE(written);

  // B drops its copy of the old version without being asked to refresh.
  const Ino old_readme = alpha_b.at("alpha/README").ino;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Attributes attrs;
  while (b->GetAttr(old_readme, &attrs).ok()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "B never saw A's write-back";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(b->GetAttr(old_readme, &attrs).posix_errno(), ESTALE);
  const auto alpha2_b = WalkTree(b.get(), "alpha");
  EXPECT_EQ(alpha2_b.at("alpha/README").data, "v2 readme");
  // Without listing the store: zeta comes with B's next refresh, not before.
  EXPECT_EQ(b->Lookup(kRootIno, "zeta", &attrs).posix_errno(), ENOENT);
  ASSERT_OK(b->Refresh());
  EXPECT_EQ(WalkTree(b.get(), "zeta").at("zeta/z").data, "z");

  // A file of alpha open on B when the next write-back arrives: B serves the
  // old version while the file is open and drops it once it is closed,
  // still without a refresh.
  const Ino open_readme = alpha2_b.at("alpha/README").ino;
  ASSERT_OK(b->OpenFile(open_readme));
  ASSERT_OK(a->Write(readme.ino, 0, "v3", Stability::kStable, &after));
  ASSERT_OK(a->Flush("alpha", &written));
  ASSERT_TRUE(written);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the watch's event handled meanwhile
  // B looked at the new tarball when the event came, and not again since
  // (it checks every second whether the tree is free).
  const int stats_while_open = b_stats.load();
  EXPECT_GE(stats_while_open, 1);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(b_stats.load(), stats_while_open);
  std::string data;
  bool eof = false;
  ASSERT_OK(b->Read(open_readme, 0, 100, &data, &eof));
  EXPECT_EQ(data, "v2 readme");
  ASSERT_OK(b->CloseFile(open_readme));
  while (b->GetAttr(open_readme, &attrs).ok()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline + std::chrono::seconds(30))
        << "B kept the old version after the file was closed";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(WalkTree(b.get(), "alpha").at("alpha/README").data, "v3 readme");
}

TEST_F(CoordinationTest, OneWriterPerTreeUnderALease) {
  const std::string store_dir = dir_.path() + "/store";
  PutTarball(store_dir, "owned.tar", {ingest_test::File("owned/f", "original")});
  // B, which dies below, has a short lease, so that its trees are free
  // soon; A the default one (a slow renewal on a busy machine must not cost
  // it its trees).
  auto coordination = [&](int lease_seconds) {
    CoordinationOptions co;
    co.lease_seconds = lease_seconds;
    std::unique_ptr<Coordination> c;
    EXPECT_OK(OpenCoordination(Url(), nullptr, co, &c));
    return std::shared_ptr<Coordination>(std::move(c));
  };
  std::unique_ptr<cache::TreeCache> a = OpenCache(0, coordination(10));
  std::unique_ptr<cache::TreeCache> b = OpenCache(1, coordination(3));
  ASSERT_TRUE(a && b);
  auto create = [](cache::TreeCache* c, const std::string& name) {
    Attributes top, f;
    Status s = c->Lookup(kRootIno, "owned", &top);
    if (s.ok()) s = c->Create(top.ino, name, NewObject{0644, 0, 0}, true, &f);
    return s;
  };
  auto read = [](cache::TreeCache* c, const std::string& name, std::string* data) {
    Attributes top, f;
    KVFS_RETURN_IF_ERROR(c->Lookup(kRootIno, "owned", &top));
    KVFS_RETURN_IF_ERROR(c->Lookup(top.ino, name, &f));
    bool eof = false;
    data->clear();
    return c->Read(f.ino, 0, 100, data, &eof);
  };
  auto version = [&] {
    std::unique_ptr<store::PersistentStore> st;
    EXPECT_OK(store::OpenStore(store::StoreAt(store_dir), &st));
    store::ObjectInfo info;
    EXPECT_OK(st->Stat("owned.tar", &info));
    return info.version;
  };

  // A changes the tree, so it owns it: B reads it but gets EROFS naming A
  // for a change.
  ASSERT_OK(create(a.get(), "by-a"));
  EXPECT_EQ(EtcdKeys("owners/"), std::vector<std::string>{"/" + prefix_ + "/owners/owned"});
  Status s = create(b.get(), "by-b");
  EXPECT_EQ(s.posix_errno(), EROFS) << s.ToString();
  EXPECT_NE(s.message().find("cache 0"), std::string::npos) << s.message();
  std::string data;
  ASSERT_OK(read(b.get(), "f", &data));
  EXPECT_EQ(data, "original");

  // A writes it back and evicts it, which gives it up: now B may change it
  // (it owns it) and A may not.
  ASSERT_OK(a->Drop("owned"));
  EXPECT_EQ(EtcdKeys("owners/"), std::vector<std::string>{});
  ASSERT_OK(b->Refresh());
  ASSERT_OK(read(b.get(), "by-a", &data));
  ASSERT_OK(create(b.get(), "by-b"));
  EXPECT_EQ(create(a.get(), "by-a2").posix_errno(), EROFS);

  // B dies without giving the tree up (its lease is not revoked): A gets
  // EROFS until B's lease expires, then takes the tree over.
  b.reset();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    s = create(a.get(), "by-a2");
    if (s.ok()) break;
    ASSERT_EQ(s.posix_errno(), EROFS) << s.ToString();
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "B's lease never expired";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  // B returns with its change (durable in its own store, still dirty): it
  // cannot write it back while A owns the tree; once A gives it up, B's
  // write-back keeps A's version and writes B's beside it.
  b = OpenCache(1, coordination(3));
  ASSERT_NE(b, nullptr);
  bool written = false;
  EXPECT_EQ(b->Flush("owned", &written).posix_errno(), EROFS);
  ASSERT_OK(a->Drop("owned"));
  ASSERT_OK(b->Flush("owned", &written));
  EXPECT_TRUE(written);
  ASSERT_OK(b->Refresh());
  std::vector<cache::CachedTree> trees;
  ASSERT_OK(b->List(&trees));
  std::string conflict;
  for (const cache::CachedTree& t : trees) {
    if (t.name.rfind("owned.conflict-", 0) == 0) conflict = t.name;
  }
  ASSERT_FALSE(conflict.empty());
  Attributes top, f;
  ASSERT_OK(b->Lookup(kRootIno, conflict, &top));
  EXPECT_OK(b->Lookup(top.ino, "by-b", &f));
  ASSERT_OK(b->Drop("owned"));
  ASSERT_OK(b->Refresh());
  ASSERT_OK(read(b.get(), "by-a2", &data));

  // The owner's lease is lost (revoked behind its back) while it has
  // changes: its write-back does not commit, the store keeps the last
  // version; with a new lease it writes again.
  ASSERT_OK(a->Refresh());
  ASSERT_OK(create(a.get(), "by-a3"));
  std::unique_ptr<EtcdClient> client = Client();
  EtcdKeyValue owner;
  ASSERT_OK(client->Get("/" + prefix_ + "/owners/owned", &owner));
  ASSERT_NE(owner.lease, 0);
  const uint64_t before = version();
  ASSERT_OK(client->LeaseRevoke(owner.lease));
  s = a->Flush("owned", &written);
  EXPECT_EQ(s.posix_errno(), EROFS) << s.ToString();
  EXPECT_EQ(version(), before) << "a write-back committed without the lease";
  ASSERT_OK(create(a.get(), "by-a4"));
  ASSERT_OK(a->Flush("owned", &written));
  EXPECT_TRUE(written);
  EXPECT_NE(version(), before);
}

TEST_F(CoordinationTest, IngestsClaimTheirRangesInEtcd) {
  constexpr int kWriters = 3, kTrees = 4;
  for (int t = 0; t < kTrees; ++t) {
    ingest_test::WriteTarball(dir_.path() + "/t" + std::to_string(t) + ".tar",
                              {ingest_test::File("t" + std::to_string(t) + "/f", "data")});
  }
  std::vector<std::set<uint64_t>> ranges(kWriters);
  std::vector<Status> results(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      // Each writer its own store, its own client: as separate servers.
      std::unique_ptr<FileSystem> fs = ingest_test::NewMemoryFileSystem();
      std::unique_ptr<Coordination> c;
      Status s = OpenCoordination(Url(), nullptr, CoordinationOptions(), &c);
      for (int t = 0; s.ok() && t < kTrees; ++t) {
        ingest::IngestOptions o;
        o.staging_dir = dir_.path() + "/staging-" + std::to_string(w);
        ::mkdir(o.staging_dir.c_str(), 0755);
        o.claims = c.get();
        o.claim_owner = "writer " + std::to_string(w);
        ingest::IngestStats st;
        s = ingest::IngestFile(fs.get(), dir_.path() + "/t" + std::to_string(t) + ".tar", o, &st);
        ranges[w].insert(st.range);
      }
      results[w] = s;
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<uint64_t> all;
  for (int w = 0; w < kWriters; ++w) {
    ASSERT_OK(results[w]);
    EXPECT_EQ(ranges[w].size(), size_t(kTrees));
    all.insert(ranges[w].begin(), ranges[w].end());
  }
  EXPECT_EQ(all.size(), size_t(kWriters * kTrees)) << "two writers loaded into one range";
  EXPECT_EQ(EtcdKeys("ranges/").size(), size_t(kWriters * kTrees));
  uint64_t highest = 0;
  ASSERT_OK(Open()->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, *all.rbegin());
}

TEST_F(CoordinationTest, AServerStackClaimsThroughItsCoordination) {
  server::ServerStackOptions o;
  o.db_path = dir_.path() + "/db";
  o.persistent_store = dir_.path() + "/store";
  o.cache_refresh_seconds = 0;
  o.coordination = Url();
  std::unique_ptr<server::ServerStack> stack;
  ASSERT_OK(server::ServerStack::Open(o, &stack));
  Attributes a;
  ASSERT_OK(stack->fs()->Mkdir(kRootIno, "new-tree", NewObject{0755, 0, 0}, &a));
  EXPECT_EQ(EtcdKeys("names/"), (std::vector<std::string>{"/" + prefix_ + "/names/new-tree"}));
  bool claimed = true;
  ASSERT_OK(store_->IsNameClaimed("new-tree", &claimed));
  EXPECT_FALSE(claimed);

  // An ingest through the server's control socket that names no
  // coordination claims its range in the server's.
  ingest_test::WriteTarball(dir_.path() + "/store/loaded.tar",
                            {ingest_test::File("loaded/f", "data")});
  ingest::Message req{{"op", "ingest"},
                      {"store", dir_.path() + "/store"},
                      {"object", "loaded.tar"},
                      {"name", "loaded-copy"}},
      resp;
  ASSERT_OK(ingest::CallControlServer(ingest::ControlSocketPath(stack->db_path()), req, &resp));
  ASSERT_EQ(resp["errno"], "0") << resp["message"];
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", std::stoull(resp["range"]));
  // (The first range is new-tree's: a new tree lives in a claimed range.)
  EXPECT_EQ(EtcdKeys("ranges/"),
            (std::vector<std::string>{"/" + prefix_ + "/ranges/0000000000000001",
                                      "/" + prefix_ + "/ranges/" + hex}));
  EXPECT_EQ(a.ino, schema::RangeOwnerIno(1));
  uint64_t highest = 0;
  ASSERT_OK(store_->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, 0u);
  stack.reset();

  // Without an answering etcd nothing is served.
  o.coordination = "etcd://127.0.0.1:1/x";
  Status s = server::ServerStack::Open(o, &stack);
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("http://127.0.0.1:1"), std::string::npos) << s.message();
  // Coordination coordinates servers sharing a persistent store.
  o.persistent_store.clear();
  o.coordination = Url();
  EXPECT_EQ(server::ServerStack::Open(o, &stack).posix_errno(), EINVAL);
}

// The lease length is a setting (ServerStackOptions::coordination_lease_seconds,
// `coordination_lease`, `--coordination-lease`): the lease a server's trees
// live under has that TTL in etcd; values out of 2..3600 open nothing.
TEST_F(CoordinationTest, AServerStacksLeaseHasItsSetLength) {
  ingest_test::WriteTarball(dir_.path() + "/store/tree.tar", {ingest_test::File("tree/f", "x")});
  server::ServerStackOptions o;
  o.db_path = dir_.path() + "/db";
  o.persistent_store = dir_.path() + "/store";
  o.cache_refresh_seconds = 0;
  o.cache_writeback_delay_seconds = 0;
  o.coordination = Url();
  o.coordination_lease_seconds = 3;
  std::unique_ptr<server::ServerStack> stack;
  ASSERT_OK(server::ServerStack::Open(o, &stack));
  Attributes top, f;
  ASSERT_OK(stack->fs()->Lookup(kRootIno, "tree", &top));
  ASSERT_OK(stack->fs()->Create(top.ino, "g", NewObject{0644, 0, 0}, true, &f));

  std::unique_ptr<EtcdClient> client = Client();
  EtcdKeyValue owner;
  ASSERT_OK(client->Get("/" + prefix_ + "/owners/tree", &owner));
  ASSERT_NE(owner.lease, 0);
  int64_t ttl = 0;
  ASSERT_OK(client->LeaseKeepAlive(owner.lease, &ttl));
  EXPECT_EQ(ttl, 3);
  stack.reset();

  for (int bad : {-1, 0, 1, 3601}) {
    o.coordination_lease_seconds = bad;
    Status s = server::ServerStack::Open(o, &stack);
    EXPECT_EQ(s.posix_errno(), EINVAL) << bad << ": " << s.ToString();
    EXPECT_NE(s.message().find("coordination lease of " + std::to_string(bad) +
                               " s is out of range: 2 to 3600 seconds"),
              std::string::npos)
        << s.message();
  }
  CoordinationOptions co;
  co.lease_seconds = 1;
  std::unique_ptr<Coordination> c;
  EXPECT_EQ(OpenCoordination(Url(), nullptr, co, &c).posix_errno(), EINVAL);
}

}  // namespace
}  // namespace kvfs::coord
