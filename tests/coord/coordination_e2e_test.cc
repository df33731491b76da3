// ganesha.nfsd + FSAL_KVFS with `coordination = "etcd://..."` in its FSAL
// block, over a directory store, NFSv3 and NFSv4 through libnfs, with a real
// etcd in the test's own private namespaces (tests/etcd/etcd-server.sh):
// top-level names are claimed in etcd (racing another server, one winner
// each), an etcd that does not answer at start-up means no export, and one
// lost during service fails top-level mkdirs and changes of trees this server
// does not own yet with EIO while reads go on, until it is back. Then two ganesha.nfsd over one
// store and one etcd, in the same namespace on 127.0.0.2 and 127.0.0.3 (NFSv4): a client's handles
// from server A read the same bytes on server B, a replaced tarball's old
// handles are stale on both, a tree is written on one server at a time
// (EROFS on the other), and clients racing to create the same top-level name
// on A and B get one winner.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "cache/tree_cache.h"
#include "coord/coordination.h"
#include "coord/etcd_client.h"
#include "store/store.h"
#include "tests/cache/other_server.h"
#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/etcd/etcd_test_server.h"
#include "tests/file_contents.h"
#include "tests/fsal/fsal_test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"

namespace kvfs::coord {
namespace {

using e2e::GaneshaServer;
using e2e::NfsClient;
using e2e::NfsVersion;
using fsal_test::KvfsExport;
using fsal_test::KvfsServerOptions;
using kvfs::testing::TempDir;

class CoordinationE2E : public ::testing::TestWithParam<NfsVersion> {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_test::EtcdCluster::Start(dir_.path() + "/etcd", 1, &etcd_));
    store_dir_ = dir_.path() + "/store";
    ASSERT_EQ(::mkdir(store_dir_.c_str(), 0755), 0);
    url_ = "etcd://127.0.0.1:2379/e2e";
    ingest_test::WriteTarball(store_dir_ + "/kept.tar", {ingest_test::File("kept/a/f", "hello")});
  }

  Status StartServer(const std::string& coordination) {
    KvfsExport e;
    e.db_path = dir_.path() + "/db";
    e.fsal_extra = "persistent_store = \"" + store_dir_ +
                   "\";\ncache_refresh_seconds = 0;\ncoordination = \"" + coordination + "\";\n";
    server_ = std::make_unique<GaneshaServer>(KvfsServerOptions({e}));
    return server_->Start();
  }

  std::unique_ptr<Coordination> Open() {
    std::unique_ptr<Coordination> c;
    EXPECT_OK(OpenCoordination(url_, nullptr, CoordinationOptions(), &c));
    return c;
  }

  TempDir dir_{"kvfs-coord-e2e"};
  etcd_test::EtcdCluster etcd_;
  std::string store_dir_, url_;
  std::unique_ptr<GaneshaServer> server_;
};

TEST_P(CoordinationE2E, TopLevelNamesAreClaimedInEtcd) {
  ASSERT_OK(StartServer(url_));
  NfsClient client(GetParam());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  ASSERT_EQ(client.Mkdir("/mine"), 0) << client.LastError();
  std::unique_ptr<Coordination> c = Open();
  bool claimed = false;
  ASSERT_OK(c->IsNameClaimed("mine", &claimed));
  EXPECT_TRUE(claimed);
  EXPECT_FALSE(std::filesystem::exists(store_dir_ + "/.kvfs/names/mine"));

  // Another server (a cache manager in this process, its own key/value
  // store, the same store and etcd) racing the NFS client for names.
  std::unique_ptr<store::PersistentStore> st;
  ASSERT_OK(store::OpenStore(store::StoreAt(store_dir_), &st));
  std::unique_ptr<cache::TreeCache> other;
  ASSERT_OK(cache_test::OpenOtherServer(dir_.path() + "/other", std::move(st), Open(), &other));
  Attributes a;
  EXPECT_EQ(other->Mkdir(kRootIno, "mine", NewObject{0755, 0, 0}, &a).posix_errno(), EEXIST);
  cache_test::ExpectOneMkdirWinsEachName(
      other.get(), [&](const std::string& path) { return client.Mkdir(path); });
}

TEST_P(CoordinationE2E, NoExportWithoutAnAnsweringEtcd) {
  Status s = StartServer("etcd://127.0.0.1:1/e2e");
  ASSERT_FALSE(s.ok()) << "the export came up without its coordination";
  const std::string log = server_->LogSinceStart();
  EXPECT_NE(log.find("coordination etcd://127.0.0.1:1/e2e: etcd unreachable at "
                     "http://127.0.0.1:1 ("),
            std::string::npos)
      << log;
}

TEST_P(CoordinationE2E, EtcdLostDuringServiceFailsOnlyWhatNeedsIt) {
  ASSERT_OK(StartServer(url_));
  NfsClient client(GetParam());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  ASSERT_OK(etcd_.StopMember(0, "KILL"));
  EXPECT_EQ(client.Mkdir("/during"), -EIO) << client.LastError();
  // Everything that needs no claim goes on: a tree loads and reads. A
  // change inside it needs the tree's ownership, which cannot be taken
  // now: EIO, cleanly.
  std::string data;
  ASSERT_EQ(client.ReadFile("/kept/a/f", &data), 0) << client.LastError();
  EXPECT_EQ(data, "hello");
  EXPECT_EQ(client.WriteFile("/kept/a/g", "new"), -EIO) << client.LastError();
  // The client's failovers are in the server's log.
  EXPECT_NE(server_->LogSinceStart().find("etcd: http://127.0.0.1:2379/v3/kv/txn failed"),
            std::string::npos)
      << server_->LogTail();

  ASSERT_OK(etcd_.StartMembers({0}));
  ASSERT_EQ(client.Mkdir("/during"), 0) << client.LastError();
  ASSERT_EQ(client.WriteFile("/kept/a/g", "new"), 0) << client.LastError();
  bool claimed = false;
  ASSERT_OK(Open()->IsNameClaimed("during", &claimed));
  EXPECT_TRUE(claimed);
}

// Two servers (ganesha.nfsd + FSAL_KVFS, each its own key/value store) over
// one directory store and one etcd, on 127.0.0.2 and 127.0.0.3, with a short
// lease (coordination_lease) so that the tests waiting for one to run out
// wait little.
class TwoServersE2E : public ::testing::Test {
 protected:
  static constexpr int kLeaseSeconds = 3;

  // etcd with `members` (1 or 3) members.
  explicit TwoServersE2E(int members = 1) : members_(members) {}

  void SetUp() override {
    ASSERT_OK(etcd_test::EtcdCluster::Start(dir_.path() + "/etcd", members_, &etcd_));
    for (const std::string& e : etcd_.endpoints()) {
      hosts_ += (hosts_.empty() ? "" : ",") + e.substr(std::string("http://").size());
    }
    store_dir_ = dir_.path() + "/store";
    ASSERT_EQ(::mkdir(store_dir_.c_str(), 0755), 0);
  }

  void StartServers() {
    for (int i = 0; i < 2; ++i) StartServer(i);
  }

  void StartServer(int i) {
    {
      KvfsExport e;
      e.db_path = dir_.path() + "/db" + std::to_string(i);
      e.fsal_extra = "persistent_store = \"" + store_dir_ +
                     "\";\ncache_refresh_seconds = 0;\ncache_writeback_delay_seconds = 0;\n"
                     "coordination = \"etcd://" +
                     hosts_ + "/two\";\ncoordination_lease = " + std::to_string(kLeaseSeconds) +
                     ";\n";
      e2e::GaneshaOptions opts = KvfsServerOptions({e});
      opts.bind_addr = i == 0 ? "127.0.0.2" : "127.0.0.3";
      opts.nfsv3 = false;
      servers_[i] = std::make_unique<GaneshaServer>(opts);
      Status s = servers_[i]->Start();
      ASSERT_TRUE(s.ok()) << s.ToString();
      db_[i] = e.db_path;
    }
  }

  // `timeout_ms`: while etcd has no quorum, a change that needs it waits for
  // the coordination's rounds (3 x 5 s) before it fails.
  std::unique_ptr<NfsClient> Client(int i, int timeout_ms = 10000) {
    e2e::NfsClientOptions o;
    o.server = servers_[i]->address();
    o.timeout_ms = timeout_ms;
    auto c = std::make_unique<NfsClient>(NfsVersion::kV4, o);
    EXPECT_EQ(c->Mount("/kvfs"), 0) << c->LastError();
    return c;
  }

  // `kvfs cache --db <server i's db> <args>`: its output; its exit status
  // must be `want_exit`.
  std::string Cache(int i, const std::string& args, int want_exit = 0) {
    std::string out;
    EXPECT_EQ(ingest_test::RunCommand(
                  std::string(KVFS_TOOL_BIN) + " cache --db " + db_[i] + " " + args, &out),
              want_exit)
        << out;
    return out;
  }

  // Every file below `dir` through `client`: path -> {handle, contents}.
  struct Seen {
    std::string handle, data;
  };
  void Walk(NfsClient* client, const std::string& dir, std::map<std::string, Seen>* out) {
    std::vector<e2e::NfsDirEntry> entries;
    ASSERT_EQ(client->ReadDir(dir, &entries), 0) << dir << ": " << client->LastError();
    for (const e2e::NfsDirEntry& e : entries) {
      if (e.name == "." || e.name == "..") continue;
      const std::string p = dir + "/" + e.name;
      if (S_ISDIR(e.mode)) {
        Walk(client, p, out);
        continue;
      }
      e2e::NfsFile f;
      ASSERT_EQ(client->Open(p, O_RDONLY, &f), 0) << p << ": " << client->LastError();
      Seen seen;
      seen.handle = f.Handle();
      ASSERT_EQ(f.Close(), 0) << p << ": " << client->LastError();
      ASSERT_EQ(client->ReadFile(p, &seen.data), 0) << p << ": " << client->LastError();
      (*out)[p] = seen;
    }
  }

  const int members_;
  TempDir dir_{"kvfs-two-servers"};
  etcd_test::EtcdCluster etcd_;
  std::string hosts_;  // "127.0.0.1:2379[,...]"
  std::string store_dir_;
  std::string db_[2];
  std::unique_ptr<GaneshaServer> servers_[2];
};

std::vector<ingest_test::Spec> TreeVersion(int version) {
  std::vector<ingest_test::Spec> members;
  for (int d = 0; d < 4; ++d) {
    for (int f = 0; f < 6; ++f) {
      const std::string path = "tree/d" + std::to_string(d) + "/f" + std::to_string(f);
      members.push_back(ingest_test::File(
          path, "v" + std::to_string(version) + " " + path + " " +
                    ingest_test::RandomBytes(size_t(100 + 3000 * f), 7 * d + f + 100 * version)));
    }
  }
  return members;
}

TEST_F(TwoServersE2E, HandlesOfOneServerWorkOnTheOther) {
  ingest_test::WriteTarball(store_dir_ + "/tree.tar", TreeVersion(1));
  StartServer(0);
  // B lists another tarball first: the local order of stubs differs between
  // the servers (without numbering by version, so would their ranges).
  ingest_test::WriteTarball(store_dir_ + "/aaa.tar", {ingest_test::File("aaa/x", "x")});
  StartServer(1);
  Cache(0, "refresh");
  auto a = Client(0);
  auto b = Client(1);

  // A client walks the tree through A, then presents A's handles to B
  // (which has not loaded the tree yet): the same bytes.
  std::map<std::string, Seen> via_a;
  Walk(a.get(), "/tree", &via_a);
  ASSERT_EQ(via_a.size(), 24u);
  for (const auto& [path, seen] : via_a) {
    std::string data;
    ASSERT_EQ(b->ReadByHandle(seen.handle, 0, 1 << 20, &data), 0) << path << ": " << b->LastError();
    EXPECT_EQ(data, seen.data) << path;
  }
  // And B hands out the very same handles for the same paths.
  std::map<std::string, Seen> via_b;
  Walk(b.get(), "/tree", &via_b);
  ASSERT_EQ(via_b.size(), via_a.size());
  for (const auto& [path, seen] : via_a) {
    EXPECT_EQ(via_b[path].handle, seen.handle) << path;
    EXPECT_EQ(via_b[path].data, seen.data) << path;
  }

  // The tarball is replaced in the store: once both listed the store again,
  // the old handles are stale on both (never another file), and the new
  // version's handles work across them.
  ingest_test::WriteTarball(store_dir_ + "/.next", TreeVersion(2));
  ASSERT_EQ(::rename((store_dir_ + "/.next").c_str(), (store_dir_ + "/tree.tar").c_str()), 0);
  Cache(0, "refresh");
  Cache(1, "refresh");
  for (const auto& [path, seen] : via_a) {
    std::string data;
    EXPECT_EQ(b->ReadByHandle(seen.handle, 0, 1 << 20, &data), -ESTALE) << path << ": " << data;
    EXPECT_EQ(a->ReadByHandle(seen.handle, 0, 1 << 20, &data), -ESTALE) << path << ": " << data;
  }
  std::map<std::string, Seen> v2_via_b;
  Walk(b.get(), "/tree", &v2_via_b);
  ASSERT_EQ(v2_via_b.size(), 24u);
  for (const auto& [path, seen] : v2_via_b) {
    EXPECT_EQ(seen.data.substr(0, 3), "v2 ") << path;
    std::string data;
    ASSERT_EQ(a->ReadByHandle(seen.handle, 0, 1 << 20, &data), 0) << path << ": " << a->LastError();
    EXPECT_EQ(data, seen.data) << path;
  }
}

TEST_F(TwoServersE2E, OneServerWritesATreeTheOtherServesItReadOnly) {
  ingest_test::WriteTarball(store_dir_ + "/tree.tar", TreeVersion(1));
  StartServers();
  auto a = Client(0);
  auto b = Client(1);
  ASSERT_EQ(a->WriteFile("/tree/d0/by-a", "written on A"), 0) << a->LastError();
  EXPECT_EQ(b->WriteFile("/tree/d0/by-b", "written on B"), -EROFS) << b->LastError();
  EXPECT_EQ(b->Mkdir("/tree/d9"), -EROFS) << b->LastError();
  std::string data;
  ASSERT_EQ(b->ReadFile("/tree/d1/f1", &data), 0) << b->LastError();
  // A writes the tree back and drops it, giving it up: B sees A's change
  // and may write now, A may not.
  Cache(0, "drop tree");
  Cache(1, "refresh");
  ASSERT_EQ(b->ReadFile("/tree/d0/by-a", &data), 0) << b->LastError();
  EXPECT_EQ(data, "written on A");
  ASSERT_EQ(b->WriteFile("/tree/d0/by-b", "written on B"), 0) << b->LastError();
  EXPECT_EQ(a->WriteFile("/tree/d0/by-a2", "again"), -EROFS) << a->LastError();
}

TEST_F(TwoServersE2E, AKilledOwnersTreeIsTakenOverAfterItsLeaseAndItsChangeIsKept) {
  ingest_test::WriteTarball(store_dir_ + "/tree.tar", TreeVersion(1));
  StartServers();
  {
    auto a = Client(0);
    ASSERT_EQ(a->WriteFile("/tree/d0/by-a", "A's change"), 0) << a->LastError();
  }
  // A dies holding the tree: B gets EROFS until A's lease (3 s) expires,
  // then takes it over.
  ASSERT_OK(servers_[0]->Kill9());
  auto b = Client(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  int rc;
  while ((rc = b->WriteFile("/tree/d0/by-b", "B's change")) != 0) {
    ASSERT_EQ(rc, -EROFS) << b->LastError();
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "A's lease never expired";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // A returns with its change (in its own key/value store): it cannot write
  // it back while B owns the tree; once B gave it up, A's write-back keeps
  // B's version and writes A's beside it. Nothing is lost.
  ASSERT_OK(servers_[0]->Start());
  EXPECT_NE(Cache(0, "flush tree", 2).find("Read-only file system"), std::string::npos);
  Cache(1, "drop tree");
  Cache(0, "flush tree");
  Cache(0, "refresh");
  auto a = Client(0);
  std::string data;
  ASSERT_EQ(a->ReadFile("/tree/d0/by-b", &data), 0) << a->LastError();
  EXPECT_EQ(data, "B's change");
  std::vector<std::string> names;
  ASSERT_EQ(a->ListDir("/", &names), 0) << a->LastError();
  std::string conflict;
  for (const std::string& n : names) {
    if (n.rfind("tree.conflict-", 0) == 0) conflict = n;
  }
  ASSERT_FALSE(conflict.empty());
  ASSERT_EQ(a->ReadFile("/" + conflict + "/d0/by-a", &data), 0) << a->LastError();
  EXPECT_EQ(data, "A's change");
}

// A write-back on A reaches B through etcd's watch of the version records,
// not through a refresh of B (both refresh only on demand here): B drops its
// loaded copy of the old version (its handles become ESTALE) and serves the
// new one.
TEST_F(TwoServersE2E, AWriteBackOnOneServerReachesTheOtherWithoutARefresh) {
  ingest_test::WriteTarball(store_dir_ + "/tree.tar", TreeVersion(1));
  StartServers();
  auto a = Client(0);
  auto b = Client(1);
  e2e::NfsFile f;
  ASSERT_EQ(b->Open("/tree/d0/f0", O_RDONLY, &f), 0) << b->LastError();
  const std::string old_handle = f.Handle();
  ASSERT_EQ(f.Close(), 0) << b->LastError();
  std::string data;
  ASSERT_EQ(b->ReadByHandle(old_handle, 0, 1 << 20, &data), 0) << b->LastError();

  ASSERT_EQ(a->WriteFile("/tree/d0/by-a", "written on A"), 0) << a->LastError();
  Cache(0, "flush tree");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int rc;
  while ((rc = b->ReadFile("/tree/d0/by-a", &data)) != 0) {
    // Not there yet, or B is moving the tree to the new version's range
    // while the client looks it up.
    ASSERT_TRUE(rc == -ENOENT || rc == -ESTALE) << b->LastError();
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "B never saw A's write-back";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(data, "written on A");
  EXPECT_EQ(b->ReadByHandle(old_handle, 0, 1 << 20, &data), -ESTALE) << data;
}

TEST_F(TwoServersE2E, ClientsOfTwoServersRacingForATopLevelNameGetOneWinner) {
  StartServers();
  auto a = Client(0);
  auto b = Client(1);
  for (int round = 0; round < 8; ++round) {
    const std::string name = "/race" + std::to_string(round);
    int rc_b = 0;
    std::thread t([&] { rc_b = b->Mkdir(name); });
    const int rc_a = a->Mkdir(name);
    t.join();
    EXPECT_NE(rc_a == 0, rc_b == 0) << name << ": A " << rc_a << ", B " << rc_b;
    EXPECT_EQ(std::min(rc_a, rc_b), -EEXIST) << name << ": A " << rc_a << ", B " << rc_b;
  }
}

// The same two servers over a three-member etcd cluster whose members are
// killed (SIGKILL, by the pids tests/etcd/etcd-server.sh started) and
// restarted while server A owns and writes a tree.
class EtcdClusterFailsE2E : public TwoServersE2E {
 protected:
  EtcdClusterFailsE2E() : TwoServersE2E(3) {}

  // Every file of the persistent store: relative path -> contents.
  std::map<std::string, std::string> StoreFiles() {
    std::map<std::string, std::string> files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(store_dir_)) {
      if (!e.is_regular_file()) continue;
      files[e.path().lexically_relative(store_dir_).string()] =
          kvfs::testing::ReadFileContents(e.path());
    }
    return files;
  }

  // The owner key of `tree` in etcd (ENOENT if nobody owns it).
  Status Owner(const std::string& tree, EtcdKeyValue* kv) {
    EtcdClientOptions o;
    o.endpoints = etcd_.endpoints();
    o.log = [](const std::string&) {};
    std::unique_ptr<EtcdClient> client;
    KVFS_RETURN_IF_ERROR(EtcdClient::Open(o, &client));
    return client->Get("/two/owners/" + tree, kv);
  }
};

TEST_F(EtcdClusterFailsE2E, AnOwnerWritesThroughAMembersDeathStopsWithoutQuorumAndLosesNothing) {
  ingest_test::WriteTarball(store_dir_ + "/tree.tar", TreeVersion(1));
  StartServers();
  // Clients mount again after each long wait (libnfs does not renew its
  // NFSv4 lease with the server on its own).
  auto a = Client(0, 60000);
  auto b = Client(1, 60000);
  std::map<std::string, std::string> acknowledged;  // path -> contents A acknowledged
  auto write_on_a = [&](const std::string& path, const std::string& data) {
    const int rc = a->WriteFile(path, data);
    if (rc == 0) acknowledged[path] = data;
    return rc;
  };
  ASSERT_EQ(write_on_a("/tree/d0/first", "before any failure"), 0) << a->LastError();
  EtcdKeyValue owner;
  ASSERT_OK(Owner("tree", &owner));
  const int64_t lease = owner.lease;
  ASSERT_NE(lease, 0);
  {
    // Its length is the export's coordination_lease.
    EtcdClientOptions o;
    o.endpoints = etcd_.endpoints();
    std::unique_ptr<EtcdClient> client;
    ASSERT_OK(EtcdClient::Open(o, &client));
    int64_t ttl = 0;
    ASSERT_OK(client->LeaseKeepAlive(lease, &ttl));
    EXPECT_EQ(ttl, kLeaseSeconds);
  }

  // (a) The leader dies: A's keep-alives go to the other members; A goes on
  // writing for several lease lengths, keeps the tree and writes back; B
  // still gets EROFS. (The election can outlast what A may count on of a
  // 3 s lease: A then takes a new lease and, its old one being its own, the
  // tree with it. Either way every write succeeds.)
  int leader = -1;
  ASSERT_OK(etcd_.Leader(&leader));
  ASSERT_OK(etcd_.StopMember(leader, "KILL"));
  for (int i = 0; i < 4 * kLeaseSeconds; ++i) {
    ASSERT_EQ(write_on_a("/tree/d1/one-down-" + std::to_string(i),
                         "member " + std::to_string(leader) + " down, write " + std::to_string(i)),
              0)
        << a->LastError();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_OK(Owner("tree", &owner));
  EXPECT_NE(owner.value.find(" pid=" + std::to_string(servers_[0]->pid()) + " "), std::string::npos)
      << owner.value;
  if (owner.lease != lease) std::printf("A's lease was renewed late: it took a new one\n");
  EXPECT_EQ(b->WriteFile("/tree/d0/by-b", "B"), -EROFS) << b->LastError();
  Cache(0, "flush tree");

  // (b) A second member dies: no quorum. A's change acknowledged now is in
  // its own database; once its lease has run out (it cannot be renewed),
  // changes fail cleanly with EIO, and nothing is written back: the store
  // does not change.
  ASSERT_EQ(write_on_a("/tree/d2/acknowledged", "acknowledged before the quorum was lost"), 0)
      << a->LastError();
  const int second = (leader + 1) % 3;
  ASSERT_OK(etcd_.StopMember(second, "KILL"));
  const std::map<std::string, std::string> before = StoreFiles();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (int i = 0;; ++i) {
    const int rc = write_on_a("/tree/d2/no-quorum-" + std::to_string(i), "while the lease lasts");
    if (rc == -EIO) break;
    ASSERT_EQ(rc, 0) << a->LastError();
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "A's lease never ran out";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const std::string flush = Cache(0, "flush tree", 2);
  EXPECT_NE(flush.find("etcd unreachable"), std::string::npos) << flush;
  // Another server cannot take the tree either.
  b = Client(1, 60000);
  EXPECT_EQ(b->WriteFile("/tree/d0/by-b", "B"), -EIO) << b->LastError();
  EXPECT_TRUE(StoreFiles() == before) << "the store changed while etcd had no quorum";
  // Reads go on.
  a = Client(0, 60000);
  std::string data;
  ASSERT_EQ(a->ReadFile("/tree/d2/acknowledged", &data), 0) << a->LastError();
  EXPECT_EQ(data, acknowledged["/tree/d2/acknowledged"]);

  // (c) The members return: A takes its tree again and writes back every
  // change it acknowledged; B reads them all, and the tree is A's again.
  ASSERT_OK(etcd_.StartMembers({leader, second}));
  Cache(0, "flush tree");
  EXPECT_FALSE(StoreFiles() == before) << "nothing was written back";
  Cache(1, "refresh");
  b = Client(1, 60000);
  for (const auto& [path, contents] : acknowledged) {
    ASSERT_EQ(b->ReadFile(path, &data), 0) << path << ": " << b->LastError();
    EXPECT_EQ(data, contents) << path;
  }
  EXPECT_EQ(b->WriteFile("/tree/d0/by-b", "B"), -EROFS) << b->LastError();
  ASSERT_EQ(write_on_a("/tree/d0/after", "after the members returned"), 0) << a->LastError();
}

INSTANTIATE_TEST_SUITE_P(Versions, CoordinationE2E,
                         ::testing::Values(NfsVersion::kV3, NfsVersion::kV4),
                         fsal_test::VersionName);

}  // namespace
}  // namespace kvfs::coord
