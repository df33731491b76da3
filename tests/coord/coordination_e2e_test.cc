// ganesha.nfsd + FSAL_KVFS with `coordination = "etcd://..."` in its FSAL
// block, over a directory store, NFSv3 and NFSv4 through libnfs, with a real
// etcd in the test's own private namespaces (tests/etcd/etcd-server.sh):
// top-level names are claimed in etcd (racing another server, one winner
// each), an etcd that does not answer at start-up means no export, and one
// lost during service fails top-level mkdirs with EIO while reads go on,
// until it is back.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "cache/tree_cache.h"
#include "coord/coordination.h"
#include "store/store.h"
#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/etcd/etcd_test_server.h"
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
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(ingest_test::OpenRocksFileSystem(dir_.path() + "/other-db", &fs));
  std::unique_ptr<store::PersistentStore> st;
  ASSERT_OK(store::OpenStore(store::StoreAt(store_dir_), &st));
  cache::TreeCacheOptions o;
  o.refresh_seconds = 0;
  o.writeback_delay_seconds = 0;
  o.staging_dir = dir_.path() + "/other-staging";
  ASSERT_EQ(::mkdir(o.staging_dir.c_str(), 0755), 0);
  o.owner = "other server";
  o.coordination = Open();
  std::unique_ptr<cache::TreeCache> other;
  ASSERT_OK(cache::TreeCache::Open(std::move(fs), std::move(st), o, &other));
  Attributes a;
  EXPECT_EQ(other->Mkdir(kRootIno, "mine", NewObject{0755, 0, 0}, &a).posix_errno(), EEXIST);
  for (int round = 0; round < 10; ++round) {
    const std::string name = "race" + std::to_string(round);
    Status other_status;
    std::thread t([&] { other_status = other->Mkdir(kRootIno, name, NewObject{0755, 0, 0}, &a); });
    const int nfs_rc = client.Mkdir("/" + name);
    t.join();
    EXPECT_NE(nfs_rc == 0, other_status.ok())
        << name << ": " << nfs_rc << " / " << other_status.ToString();
    if (nfs_rc != 0) {
      EXPECT_EQ(nfs_rc, -EEXIST) << client.LastError();
    }
    if (!other_status.ok()) {
      EXPECT_EQ(other_status.posix_errno(), EEXIST);
    }
  }
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

TEST_P(CoordinationE2E, EtcdLostDuringServiceFailsTopLevelMkdirsOnly) {
  ASSERT_OK(StartServer(url_));
  NfsClient client(GetParam());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  ASSERT_OK(etcd_.StopMember(0, "KILL"));
  EXPECT_EQ(client.Mkdir("/during"), -EIO) << client.LastError();
  // Everything that needs no claim goes on: a tree loads and reads, and
  // changes inside it are made.
  std::string data;
  ASSERT_EQ(client.ReadFile("/kept/a/f", &data), 0) << client.LastError();
  EXPECT_EQ(data, "hello");
  ASSERT_EQ(client.WriteFile("/kept/a/g", "new"), 0) << client.LastError();
  // The client's failovers are in the server's log.
  EXPECT_NE(server_->LogSinceStart().find("etcd: http://127.0.0.1:2379/v3/kv/txn failed"),
            std::string::npos)
      << server_->LogTail();

  ASSERT_OK(etcd_.StartMembers({0}));
  ASSERT_EQ(client.Mkdir("/during"), 0) << client.LastError();
  bool claimed = false;
  ASSERT_OK(Open()->IsNameClaimed("during", &claimed));
  EXPECT_TRUE(claimed);
}

INSTANTIATE_TEST_SUITE_P(Versions, CoordinationE2E,
                         ::testing::Values(NfsVersion::kV3, NfsVersion::kV4),
                         fsal_test::VersionName);

}  // namespace
}  // namespace kvfs::coord
