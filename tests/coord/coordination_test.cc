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
#include <mutex>
#include <set>
#include <thread>

#include "cache/tree_cache.h"
#include "coord/etcd_client.h"
#include "ingest/control_client.h"
#include "ingest/ingest.h"
#include "server/server_stack.h"
#include "store/store.h"
#include "tests/etcd/etcd_test_server.h"
#include "tests/fs/test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"

namespace kvfs::coord {
namespace {

using kvfs::testing::TempDir;

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

  // The keys under this test's prefix, straight from etcd.
  std::vector<std::string> EtcdKeys(const std::string& under) {
    EtcdClientOptions o;
    o.endpoints = endpoints_;
    std::unique_ptr<EtcdClient> client;
    EXPECT_OK(EtcdClient::Open(o, &client));
    std::vector<EtcdKeyValue> kvs;
    EXPECT_OK(client->List("/" + prefix_ + "/" + under, 0, false, &kvs));
    std::vector<std::string> keys;
    for (const EtcdKeyValue& kv : kvs) keys.push_back(kv.key);
    return keys;
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
    const std::string db = dir_.path() + "/db" + std::to_string(i);
    std::unique_ptr<FileSystem> fs;
    ASSERT_OK(ingest_test::OpenRocksFileSystem(db, &fs));
    cache::TreeCacheOptions o;
    o.refresh_seconds = 0;
    o.writeback_delay_seconds = 0;
    o.staging_dir = db + "/staging";
    ::mkdir(o.staging_dir.c_str(), 0755);
    o.owner = "cache " + std::to_string(i);
    o.coordination = shared[i];
    std::unique_ptr<store::PersistentStore> st;
    ASSERT_OK(store::OpenStore(store::StoreAt(dir_.path() + "/store"), &st));
    ASSERT_OK(cache::TreeCache::Open(std::move(fs), std::move(st), o, &caches[i]));
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
  EXPECT_EQ(EtcdKeys("ranges/"), (std::vector<std::string>{"/" + prefix_ + "/ranges/" + hex}));
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

}  // namespace
}  // namespace kvfs::coord
