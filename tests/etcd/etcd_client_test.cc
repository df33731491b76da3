// The etcd client (coord/etcd_client.h) against the real etcd of the
// fixture (tests/etcd/etcd-fixture.sh): keys, prefixes, create-if-absent
// races, leases, etcd's own errors, and endpoints that do not answer.
#include "coord/etcd_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "tests/etcd/etcd_test_server.h"
#include "tests/status_assertions.h"

namespace kvfs::coord {
namespace {

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_test::JoinSharedEtcd(&endpoints_));
    EtcdClientOptions o;
    o.endpoints = endpoints_;
    ASSERT_OK(EtcdClient::Open(o, &client_));
    // Keys of this test only: the fixture's etcd outlives every test.
    prefix_ = std::string("/kvfs-test/") +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
              std::to_string(::getpid()) + "/";
  }

  std::vector<std::string> endpoints_;
  std::unique_ptr<EtcdClient> client_;
  std::string prefix_;
};

TEST_F(EtcdClientTest, PutGetDelete) {
  const std::string key = prefix_ + "k";
  EtcdKeyValue kv;
  Status s = client_->Get(key, &kv);
  EXPECT_EQ(s.posix_errno(), ENOENT) << s.ToString();

  // Values are bytes, NUL and 0xff included.
  const std::string value("v\0\xff\x01 end", 9);
  ASSERT_OK(client_->Put(key, value));
  ASSERT_OK(client_->Get(key, &kv));
  EXPECT_EQ(kv.key, key);
  EXPECT_EQ(kv.value, value);
  EXPECT_EQ(kv.version, 1);
  EXPECT_GT(kv.create_revision, 0);
  EXPECT_EQ(kv.mod_revision, kv.create_revision);

  ASSERT_OK(client_->Put(key, "second"));
  EtcdKeyValue kv2;
  ASSERT_OK(client_->Get(key, &kv2));
  EXPECT_EQ(kv2.value, "second");
  EXPECT_EQ(kv2.version, 2);
  EXPECT_EQ(kv2.create_revision, kv.create_revision);
  EXPECT_GT(kv2.mod_revision, kv.mod_revision);

  int64_t deleted = -1;
  ASSERT_OK(client_->Delete(key, &deleted));
  EXPECT_EQ(deleted, 1);
  ASSERT_OK(client_->Delete(key, &deleted));
  EXPECT_EQ(deleted, 0);
  EXPECT_EQ(client_->Get(key, &kv).posix_errno(), ENOENT);
}

TEST_F(EtcdClientTest, ListIsSortedLimitedAndStaysInsideThePrefix) {
  // Neighbours that must not show up: the prefix's next sibling.
  ASSERT_OK(client_->Put(prefix_.substr(0, prefix_.size() - 1) + "0", "outside"));
  ASSERT_OK(client_->Put(prefix_ + "\xff\xff", "last"));
  for (const char* name : {"b", "a", "c"}) ASSERT_OK(client_->Put(prefix_ + name, name));

  std::vector<EtcdKeyValue> all;
  ASSERT_OK(client_->List(prefix_, 0, false, &all));
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].value, "a");
  EXPECT_EQ(all[1].value, "b");
  EXPECT_EQ(all[2].value, "c");
  EXPECT_EQ(all[3].value, "last");

  std::vector<EtcdKeyValue> top;
  ASSERT_OK(client_->List(prefix_, 2, true, &top));
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].value, "last");
  EXPECT_EQ(top[1].value, "c");

  std::vector<EtcdKeyValue> none;
  ASSERT_OK(client_->List(prefix_ + "zz", 0, false, &none));
  EXPECT_TRUE(none.empty());
}

TEST_F(EtcdClientTest, CreateIfAbsentHasExactlyOneWinner) {
  const std::string key = prefix_ + "claim";
  constexpr int kThreads = 8;
  std::atomic<int> winners{0};
  std::mutex mu;
  std::vector<std::string> seen;  // what each loser found
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      bool created = false;
      EtcdKeyValue existing;
      Status s = client_->CreateIfAbsent(key, "owner-" + std::to_string(t), 0, &created, &existing);
      if (!s.ok()) {
        ++errors;
        return;
      }
      if (created) {
        ++winners;
      } else {
        std::lock_guard<std::mutex> l(mu);
        seen.push_back(existing.value);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  ASSERT_EQ(winners.load(), 1);
  EtcdKeyValue kv;
  ASSERT_OK(client_->Get(key, &kv));
  ASSERT_EQ(seen.size(), size_t(kThreads - 1));
  for (const std::string& v : seen) EXPECT_EQ(v, kv.value);
  EXPECT_EQ(kv.version, 1);  // written once
}

TEST_F(EtcdClientTest, KeysOnALeaseGoWithItAndKeepAliveRenewsIt) {
  int64_t lease = 0, ttl = 0;
  ASSERT_OK(client_->LeaseGrant(30, &lease, &ttl));
  EXPECT_EQ(ttl, 30);
  bool created = false;
  ASSERT_OK(client_->CreateIfAbsent(prefix_ + "owned", "me", lease, &created, nullptr));
  ASSERT_TRUE(created);
  EtcdKeyValue kv;
  ASSERT_OK(client_->Get(prefix_ + "owned", &kv));
  EXPECT_EQ(kv.lease, lease);

  int64_t left = 0;
  ASSERT_OK(client_->LeaseKeepAlive(lease, &left));
  EXPECT_EQ(left, 30);  // renewed for the whole TTL

  ASSERT_OK(client_->LeaseRevoke(lease));
  EXPECT_EQ(client_->Get(prefix_ + "owned", &kv).posix_errno(), ENOENT);
  Status s = client_->LeaseKeepAlive(lease, &left);
  EXPECT_EQ(s.posix_errno(), ENOENT) << s.ToString();
  s = client_->LeaseRevoke(lease);
  EXPECT_EQ(s.posix_errno(), ENOENT) << s.ToString();
  EXPECT_NE(s.message().find("lease not found"), std::string::npos) << s.message();
}

TEST_F(EtcdClientTest, ALeaseNotKeptAliveExpiresWithItsKeys) {
  int64_t lease = 0;
  ASSERT_OK(client_->LeaseGrant(2, &lease));
  ASSERT_OK(client_->Put(prefix_ + "ephemeral", "x", lease));
  // etcd deletes the key once the TTL has run out; wait for that, bounded.
  EtcdKeyValue kv;
  Status s;
  for (int i = 0; i < 600; ++i) {
    s = client_->Get(prefix_ + "ephemeral", &kv);
    if (s.IsNotFound()) break;
    ASSERT_OK(s);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(s.IsNotFound()) << "the key outlived its lease by a minute";
  EXPECT_EQ(client_->LeaseKeepAlive(lease).posix_errno(), ENOENT);
}

TEST_F(EtcdClientTest, EtcdsOwnErrorsComeBackAtOnce) {
  // A lease that does not exist: etcd's answer, not a retry on another member.
  Status s = client_->Put(prefix_ + "k", "v", /*lease=*/123456789);
  EXPECT_EQ(s.posix_errno(), ENOENT) << s.ToString();
  EXPECT_NE(s.message().find("requested lease not found"), std::string::npos) << s.message();
  // A request over etcd's 1.5 MiB limit.
  s = client_->Put(prefix_ + "big", std::string(2 << 20, 'x'));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.posix_errno(), EHOSTUNREACH) << s.ToString();
  int64_t id;
  EXPECT_EQ(client_->LeaseGrant(0, &id).posix_errno(), EINVAL);
}

TEST_F(EtcdClientTest, UnreachableEndpointsAreNamedAndSkipped) {
  // Nothing listens on port 1 (or 2) of this namespace's loopback.
  EtcdClientOptions o;
  o.endpoints = {"http://127.0.0.1:1", "http://127.0.0.1:2"};
  o.rounds = 2;
  o.backoff_ms = 10;
  std::unique_ptr<EtcdClient> dead;
  ASSERT_OK(EtcdClient::Open(o, &dead));
  Status s = dead->Put(prefix_ + "k", "v");
  EXPECT_EQ(s.posix_errno(), EHOSTUNREACH) << s.ToString();
  EXPECT_NE(s.message().find("etcd unreachable at http://127.0.0.1:1 ("), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("http://127.0.0.1:2 ("), std::string::npos) << s.message();

  // A dead member first, then the real one: the request fails over, says so
  // in the log, and the next request goes straight to the member that
  // answered.
  std::mutex mu;
  std::vector<std::string> log;
  o.endpoints = {"http://127.0.0.1:1", endpoints_[0]};
  o.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> l(mu);
    log.push_back(line);
  };
  std::unique_ptr<EtcdClient> half;
  ASSERT_OK(EtcdClient::Open(o, &half));
  ASSERT_OK(half->Put(prefix_ + "k", "v"));
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("http://127.0.0.1:1/v3/kv/put failed"), std::string::npos) << log[0];
  EtcdKeyValue kv;
  ASSERT_OK(half->Get(prefix_ + "k", &kv));
  EXPECT_EQ(kv.value, "v");
  EXPECT_EQ(log.size(), 1u);
}

TEST(EtcdClientOptionsTest, BadOptionsAndEndpoints) {
  std::unique_ptr<EtcdClient> c;
  EtcdClientOptions o;
  EXPECT_EQ(EtcdClient::Open(o, &c).posix_errno(), EINVAL);
  o.endpoints = {"127.0.0.1:2379"};
  Status s = EtcdClient::Open(o, &c);
  EXPECT_EQ(s.posix_errno(), EINVAL);
  EXPECT_NE(s.message().find("'127.0.0.1:2379'"), std::string::npos) << s.message();

  std::vector<std::string> e;
  ASSERT_OK(ParseEtcdEndpoints("a:1,b,c:65535", &e));
  EXPECT_EQ(e, (std::vector<std::string>{"http://a:1", "http://b:2379", "http://c:65535"}));
  EXPECT_EQ(ParseEtcdEndpoints("a:0", &e).posix_errno(), EINVAL);
  EXPECT_EQ(ParseEtcdEndpoints("a:70000", &e).posix_errno(), EINVAL);
  EXPECT_EQ(ParseEtcdEndpoints("a:x", &e).posix_errno(), EINVAL);
  EXPECT_EQ(ParseEtcdEndpoints("a,,b", &e).posix_errno(), EINVAL);
  EXPECT_EQ(ParseEtcdEndpoints("", &e).posix_errno(), EINVAL);
}

}  // namespace
}  // namespace kvfs::coord
