// The etcd client (coord/etcd_client.h) while etcd fails for real: a
// three-member cluster of this test's own (tests/etcd/etcd-server.sh, in the
// private namespaces ci/run-in-namespace.sh makes), members killed with
// SIGKILL and restarted. Requests fail over while a quorum lives, fail with an
// error naming every endpoint while none answers, and work again, with every
// acknowledged write, once the members are back.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "coord/coordination.h"
#include "coord/etcd_client.h"
#include "tests/etcd/etcd_test_server.h"
#include "tests/status_assertions.h"

namespace kvfs::coord {
namespace {

class EtcdRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("KVFS_E2E_NAMESPACE"), nullptr)
        << "run through ci/run-in-namespace.sh (ctest does): this test starts etcd on "
           "fixed loopback ports";
    char tmpl[] = "/tmp/kvfs-etcd-restart-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_OK(etcd_test::EtcdCluster::Start(dir_, 3, &cluster_));
  }
  void TearDown() override {
    EXPECT_OK(cluster_.Stop());
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }

  std::unique_ptr<EtcdClient> Client(int rounds, int backoff_ms = 50) {
    EtcdClientOptions o;
    o.endpoints = cluster_.endpoints();
    o.request_timeout_ms = 3000;
    o.rounds = rounds;
    o.backoff_ms = backoff_ms;
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> l(mu_);
      log_.push_back(line);
    };
    std::unique_ptr<EtcdClient> c;
    EXPECT_OK(EtcdClient::Open(o, &c));
    return c;
  }

  std::string dir_;
  etcd_test::EtcdCluster cluster_;
  std::mutex mu_;
  std::vector<std::string> log_;
};

TEST_F(EtcdRestartTest, MembersKilledAndRestarted) {
  ASSERT_EQ(cluster_.endpoints().size(), 3u);
  // Enough rounds to outlast an election after a member dies.
  std::unique_ptr<EtcdClient> c = Client(20);
  ASSERT_OK(c->Put("/k/before", "1"));

  // The member the client talks to dies: the next request goes elsewhere
  // (logged), and a claim made now is still exclusive.
  ASSERT_OK(cluster_.StopMember(0, "KILL"));
  ASSERT_OK(c->Put("/k/one-down", "2"));
  {
    std::lock_guard<std::mutex> l(mu_);
    ASSERT_FALSE(log_.empty());
    EXPECT_NE(log_[0].find(cluster_.endpoints()[0]), std::string::npos) << log_[0];
  }
  bool created = false;
  ASSERT_OK(c->CreateIfAbsent("/k/claim", "a", 0, &created, nullptr));
  EXPECT_TRUE(created);
  ASSERT_OK(c->CreateIfAbsent("/k/claim", "b", 0, &created, nullptr));
  EXPECT_FALSE(created);

  // Every member down: a clear error naming each endpoint, after the rounds.
  ASSERT_OK(cluster_.StopMember(1, "KILL"));
  ASSERT_OK(cluster_.StopMember(2, "KILL"));
  std::unique_ptr<EtcdClient> quick = Client(2);
  Status s = quick->Put("/k/none", "3");
  EXPECT_EQ(s.posix_errno(), EHOSTUNREACH) << s.ToString();
  for (const std::string& e : cluster_.endpoints()) {
    EXPECT_NE(s.message().find(e + " ("), std::string::npos) << s.message();
  }
  EtcdKeyValue kv;
  EXPECT_FALSE(quick->Get("/k/before", &kv).ok());

  // Back: the same client works again, and nothing acknowledged was lost.
  ASSERT_OK(cluster_.StartMembers({0, 1, 2}));
  ASSERT_OK(c->Get("/k/before", &kv));
  EXPECT_EQ(kv.value, "1");
  ASSERT_OK(c->Get("/k/one-down", &kv));
  EXPECT_EQ(kv.value, "2");
  ASSERT_OK(c->Get("/k/claim", &kv));
  EXPECT_EQ(kv.value, "a");
  EXPECT_EQ(c->Get("/k/none", &kv).posix_errno(), ENOENT);
  ASSERT_OK(quick->Put("/k/after", "4"));
}

TEST_F(EtcdRestartTest, ALeaseSurvivesAMemberButNotItsTtl) {
  std::unique_ptr<EtcdClient> c = Client(20);
  int64_t lease = 0;
  ASSERT_OK(c->LeaseGrant(60, &lease));
  ASSERT_OK(c->Put("/owner", "me", lease));
  // A member (maybe the leader) dies: the lease is the cluster's, not the
  // member's, and can still be kept alive.
  ASSERT_OK(cluster_.StopMember(0, "KILL"));
  int64_t ttl = 0;
  ASSERT_OK(c->LeaseKeepAlive(lease, &ttl));
  EXPECT_GT(ttl, 0);
  EtcdKeyValue kv;
  ASSERT_OK(c->Get("/owner", &kv));
  EXPECT_EQ(kv.lease, lease);
  ASSERT_OK(cluster_.StartMembers({0}));
  ASSERT_OK(c->LeaseRevoke(lease));
  EXPECT_EQ(c->Get("/owner", &kv).posix_errno(), ENOENT);
}

TEST_F(EtcdRestartTest, ClaimsFailCleanlyWhileEtcdIsDownAndWorkWhenItIsBack) {
  std::string hosts;
  for (const std::string& e : cluster_.endpoints()) {
    hosts += (hosts.empty() ? "" : ",") + e.substr(std::string("http://").size());
  }
  CoordinationOptions o;
  o.rounds = 2;
  o.request_timeout_ms = 2000;
  std::unique_ptr<Coordination> c;
  ASSERT_OK(OpenCoordination("etcd://" + hosts + "/t", nullptr, o, &c));
  ASSERT_OK(c->ClaimName("before", "me"));
  for (int i = 0; i < 3; ++i) ASSERT_OK(cluster_.StopMember(i, "KILL"));
  // EIO (NFS3ERR_IO / NFS4ERR_IO to a client), naming the coordination.
  Status s = c->ClaimName("during", "me");
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("coordination etcd://" + hosts + "/t: etcd unreachable at"),
            std::string::npos)
      << s.message();
  bool claimed = false;
  EXPECT_EQ(c->IsNameClaimed("before", &claimed).posix_errno(), EIO);
  // A server does not start without its coordination.
  std::unique_ptr<Coordination> late;
  EXPECT_EQ(OpenCoordination("etcd://" + hosts + "/t", nullptr, o, &late).posix_errno(), EIO);

  ASSERT_OK(cluster_.StartMembers({0, 1, 2}));
  ASSERT_OK(c->ClaimName("during", "me"));
  EXPECT_EQ(c->ClaimName("before", "other").posix_errno(), EEXIST);
  ASSERT_OK(c->IsNameClaimed("before", &claimed));
  EXPECT_TRUE(claimed);
}

// A watch (EtcdClient::Watch) gets every key put under its prefix, in
// order, and nothing else; when the member it streams from dies it goes on
// at another from the next revision, so that nothing put meanwhile is
// missed; it returns once told to stop.
TEST_F(EtcdRestartTest, AWatchGoesOnAtAnotherMemberWithoutMissingAPut) {
  std::unique_ptr<EtcdClient> c = Client(20);
  // The watch waits 3 s before it moves to another member: the puts made
  // meanwhile come before its new stream starts, which must still see them.
  std::unique_ptr<EtcdClient> watcher = Client(20, 3000);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> seen;
  std::atomic<bool> stop{false}, watched{false};
  std::thread t([&] {
    EXPECT_OK(watcher->Watch(
        "/w/",
        [&](const EtcdKeyValue* kv) {
          ASSERT_NE(kv, nullptr);
          std::lock_guard<std::mutex> l(mu);
          seen.push_back(kv->key + "=" + kv->value);
          cv.notify_all();
        },
        [&] { return stop.load(); }));
    watched = true;
  });
  // Stops and joins the watch however the test ends.
  struct Joiner {
    std::atomic<bool>* stop;
    std::thread* t;
    ~Joiner() {
      *stop = true;
      if (t->joinable()) t->join();
    }
  } joiner{&stop, &t};
  // Waits until `n` puts were seen (a deadline, not a timing claim).
  auto wait_for = [&](size_t n) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(60), [&] { return seen.size() >= n; });
  };
  // The watch starts "from now": put until the first put is seen.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int i = 0;; ++i) {
    ASSERT_OK(c->Put("/w/start", std::to_string(i)));
    std::unique_lock<std::mutex> l(mu);
    if (cv.wait_for(l, std::chrono::milliseconds(200), [&] { return !seen.empty(); })) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the watch never started";
  }
  {
    std::lock_guard<std::mutex> l(mu);
    seen.clear();
  }
  ASSERT_OK(c->Put("/w/a", "1"));
  ASSERT_OK(c->Put("/other", "not watched"));
  ASSERT_OK(c->Put("/w/b", "2"));
  ASSERT_TRUE(wait_for(2));
  // Every member in turn dies and returns (the one streaming among them);
  // keys put while the watch is moving are all seen.
  for (int m = 0; m < 3; ++m) {
    ASSERT_OK(cluster_.StopMember(m, "KILL"));
    ASSERT_OK(c->Put("/w/down-" + std::to_string(m), "3"));
    ASSERT_OK(cluster_.StartMembers({m}));
    ASSERT_OK(c->Put("/w/up-" + std::to_string(m), "4"));
  }
  EXPECT_TRUE(wait_for(8));
  stop = true;
  t.join();
  EXPECT_TRUE(watched);
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(seen,
            (std::vector<std::string>{"/w/a=1", "/w/b=2", "/w/down-0=3", "/w/up-0=4", "/w/down-1=3",
                                      "/w/up-1=4", "/w/down-2=3", "/w/up-2=4"}));
}

}  // namespace
}  // namespace kvfs::coord
