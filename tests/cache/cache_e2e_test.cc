// End to end: ganesha.nfsd with FSAL_KVFS exporting a persistent store of
// real tarballs through the cache manager (docs/cache.md), driven by libnfs
// clients over NFSv3 and NFSv4, and by `kvfs cache` over the server's control
// socket, on each store plugin (a directory; a bucket on radosgw, reached
// through the test's proxy: tests/store/test_store.h):
//   - the root lists every tarball; a quota smaller than the store forces
//     evictions while a client walks all of it and checks every byte;
//   - write-back, eviction and reload give identical contents;
//   - concurrent first touches of one tree by several clients;
//   - a corrupt tarball is an I/O error with a log line, and loads once fixed;
//   - a name created by another server sharing the store is refused (EEXIST);
//   - kill -9 during a load and during a write-back loses nothing and leaves
//     no partial tarball.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cache/tree_cache.h"
#include "tests/cache/other_server.h"
#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/fsal/fsal_test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"
#include "tests/store/test_store.h"

namespace kvfs::fsal_test {
namespace {

using e2e::GaneshaServer;
using e2e::NfsClient;
using e2e::NfsDirEntry;
using e2e::NfsFile;
using e2e::NfsStat;
using e2e::NfsStatVfs;
using e2e::NfsVersion;
using ingest_test::File;
using ingest_test::RandomBytes;
using ingest_test::RunCommand;
using ingest_test::Spec;
using ingest_test::WriteTarball;

// Path below the export root -> contents.
using Contents = std::map<std::string, std::string>;

// Reads every regular file below `dir` through the client into *out.
int WalkAndRead(NfsClient* client, const std::string& dir, Contents* out) {
  std::vector<NfsDirEntry> entries;
  if (int rc = client->ReadDir(dir, &entries); rc != 0) return rc;
  for (const NfsDirEntry& e : entries) {
    if (e.name == "." || e.name == "..") continue;
    const std::string path = dir + "/" + e.name;
    if (S_ISDIR(e.mode)) {
      if (int rc = WalkAndRead(client, path, out); rc != 0) return rc;
    } else {
      std::string data;
      if (int rc = client->ReadFile(path, &data); rc != 0) return rc;
      (*out)[path] = std::move(data);
    }
  }
  return 0;
}

using Param = std::tuple<NfsVersion, store_test::StoreKind>;

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  return VersionName(::testing::TestParamInfo<NfsVersion>(std::get<0>(info.param), info.index)) +
         "_" + store_test::KindName(std::get<1>(info.param));
}

class CacheE2E : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    Status s = store_test::TestStore::Create(std::get<1>(GetParam()), &t_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    export_.db_path = dir_.path() + "/db";
  }

  NfsVersion version() const { return std::get<0>(GetParam()); }

  // Tarball NAME.tar in the store: `files` files of 1-16 KiB in nested
  // directories. Adds them to want_ (as the client will see them).
  void MakeTarball(const std::string& name, int files, uint64_t seed) {
    std::vector<Spec> members;
    for (int i = 0; i < files; ++i) {
      const std::string path =
          "d" + std::to_string(i % 3) + "/s" + std::to_string(i % 2) + "/f" + std::to_string(i);
      const std::string data =
          RandomBytes(1024 + (seed * 7919 + i * 104729) % (15 * 1024), seed * 100000 + i);
      members.push_back(File(name + "/" + path, data));
      want_["/" + name + "/" + path] = data;
    }
    const std::string local = dir_.path() + "/" + name + ".tar";
    WriteTarball(local, members);
    ASSERT_OK(t_->PutFile(name + ".tar", local));
  }

  // Starts the server with the cache manager's settings in `cache_config`.
  void StartServer(const std::string& cache_config) {
    export_.fsal_extra = t_->FsalConfig() + cache_config;
    e2e::GaneshaOptions opts = KvfsServerOptions({export_});
    opts.extra_config += extra_config_;
    server_ = std::make_unique<GaneshaServer>(opts);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // `kvfs cache --db DB <args>`; its output.
  std::string Cache(const std::string& args, int want_exit = 0) {
    std::string out;
    EXPECT_EQ(RunCommand(std::string(KVFS_TOOL_BIN) + " cache --db " + export_.db_path + " " + args,
                         &out),
              want_exit)
        << out;
    return out;
  }

  // The state column of `kvfs cache list` for tree `name`.
  std::string StateOf(const std::string& name) {
    const std::string out = Cache("list");
    size_t at = out.find("\n" + name + " ");
    if (at == std::string::npos) return "absent";
    std::string rest = out.substr(at + 1 + name.size());
    size_t b = rest.find_first_not_of(' ');
    return rest.substr(b, rest.find(' ', b) - b);
  }

  TempDir dir_;
  std::string extra_config_;  // appended to ganesha.conf
  std::unique_ptr<store_test::TestStore> t_;
  KvfsExport export_;
  std::unique_ptr<GaneshaServer> server_;
  Contents want_;
};

TEST_P(CacheE2E, AClientWalksAStoreLargerThanTheQuota) {
  constexpr int kTrees = 24;
  for (int t = 0; t < kTrees; ++t) MakeTarball("tree" + std::to_string(t), 24, t + 1);
  uint64_t total = 0;
  for (const auto& [path, data] : want_) total += data.size();
  const uint64_t quota = total / 4;  // about six trees at a time
  StartServer("cache_quota_bytes = " + std::to_string(quota) +
              ";\ncache_refresh_seconds = 0;\ncache_writeback_delay_seconds = 0;\n");

  NfsClient client(version());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  std::vector<std::string> names;
  ASSERT_EQ(client.ListDir("/", &names), 0) << client.LastError();
  EXPECT_EQ(names.size(), static_cast<size_t>(kTrees));
  EXPECT_EQ(StateOf("tree3"), "unloaded");
  NfsStatVfs vfs;
  ASSERT_EQ(client.StatVfs("/", &vfs), 0);
  EXPECT_LE(vfs.f_blocks * vfs.f_frsize, quota);  // whole blocks
  EXPECT_GT(vfs.f_blocks * vfs.f_frsize + vfs.f_frsize, quota);

  Contents got;
  for (const std::string& name : names) {
    ASSERT_EQ(WalkAndRead(&client, "/" + name, &got), 0) << name << ": " << client.LastError();
  }
  EXPECT_EQ(got.size(), want_.size());
  EXPECT_TRUE(got == want_) << "contents differ";

  int unloaded = 0, clean = 0;
  for (const std::string& name : names) {
    const std::string state = StateOf(name);
    unloaded += state == "unloaded";
    clean += state == "clean";
  }
  EXPECT_GT(unloaded, kTrees / 2) << Cache("list");
  EXPECT_GE(clean, 1) << Cache("list");
  const std::string quota_line = Cache("quota");
  EXPECT_NE(quota_line.find("of " + std::to_string(quota)), std::string::npos) << quota_line;
  EXPECT_NE(quota_line.find("store " + t_->url()), std::string::npos) << quota_line;
  ASSERT_EQ(client.StatVfs("/", &vfs), 0);
  EXPECT_LE((vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize, quota);

  // A second walk reloads what was evicted, byte for byte.
  got.clear();
  for (const std::string& name : names) {
    ASSERT_EQ(WalkAndRead(&client, "/" + name, &got), 0) << name << ": " << client.LastError();
  }
  EXPECT_TRUE(got == want_) << "contents differ on the second walk";
}

TEST_P(CacheE2E, AWriteBackOverAnotherWritersTarballGoesToAConflictName) {
  MakeTarball("doc", 4, 3);
  StartServer("cache_refresh_seconds = 0;\ncache_writeback_delay_seconds = 0;\n");
  NfsClient client(version());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  ASSERT_EQ(client.WriteFile("/doc/mine", "this server's change"), 0) << client.LastError();
  // Another writer (an operator, a server without coordination) replaces
  // the tarball meanwhile.
  MakeTarball("doc", 2, 9);
  std::string theirs, now;
  ASSERT_OK(t_->Get("doc.tar", &theirs));
  Cache("flush doc");
  ASSERT_OK(t_->Get("doc.tar", &now));
  EXPECT_TRUE(now == theirs) << "the other writer's tarball was overwritten";
  const std::string list = Cache("list");
  EXPECT_NE(list.find("conflict: the tarball changed in the store since this server loaded it; "
                      "its changes were written as doc.conflict-"),
            std::string::npos)
      << list;
  EXPECT_NE(server_->LogSinceStart().find("conflict: tarball doc.tar of 'doc'"), std::string::npos)
      << server_->LogTail();
  // Both versions are trees after a refresh.
  Cache("refresh");
  std::vector<std::string> names;
  ASSERT_EQ(client.ListDir("/", &names), 0) << client.LastError();
  std::string conflict;
  for (const std::string& n : names) {
    if (n.rfind("doc.conflict-", 0) == 0) conflict = n;
  }
  ASSERT_FALSE(conflict.empty()) << list;
  std::string data;
  ASSERT_EQ(client.ReadFile("/" + conflict + "/mine", &data), 0) << client.LastError();
  EXPECT_EQ(data, "this server's change");
  EXPECT_EQ(client.ReadFile("/doc/mine", &data), -ENOENT);
}

TEST_P(CacheE2E, WriteBackEvictionAndReloadGiveIdenticalContents) {
  MakeTarball("base", 10, 50);
  StartServer("cache_refresh_seconds = 0;\ncache_writeback_delay_seconds = 0;\n");
  NfsClient client(version());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();

  // A new top-level tree and a change to a tarball's tree.
  ASSERT_EQ(client.Mkdir("/made"), 0) << client.LastError();
  ASSERT_EQ(client.Mkdir("/made/sub"), 0) << client.LastError();
  Contents mine;
  for (int i = 0; i < 30; ++i) {
    const std::string path = "/made/sub/n" + std::to_string(i);
    mine[path] = Pattern(500 + i * 997, i);
    ASSERT_EQ(client.WriteFile(path, mine[path]), 0) << client.LastError();
  }
  ASSERT_EQ(client.WriteFile("/base/d0/added", "added through NFS"), 0) << client.LastError();
  want_["/base/d0/added"] = "added through NFS";
  ASSERT_EQ(client.Unlink("/base/d1/s1/f1"), 0) << client.LastError();
  want_.erase("/base/d1/s1/f1");
  EXPECT_EQ(StateOf("made"), "dirty");
  EXPECT_EQ(StateOf("base"), "dirty");
  EXPECT_FALSE(t_->Exists("made.tar"));

  EXPECT_NE(Cache("flush made").find("wrote back made"), std::string::npos);
  ASSERT_TRUE(t_->Exists("made.tar"));
  Cache("drop made");
  Cache("drop base");  // dirty: written back first
  EXPECT_EQ(StateOf("made"), "unloaded");
  EXPECT_EQ(StateOf("base"), "unloaded");

  Contents got;
  ASSERT_EQ(WalkAndRead(&client, "/made", &got), 0) << client.LastError();
  EXPECT_TRUE(got == mine);
  got.clear();
  ASSERT_EQ(WalkAndRead(&client, "/base", &got), 0) << client.LastError();
  EXPECT_TRUE(got == want_);
  EXPECT_EQ(StateOf("base"), "clean");

  // And after a server restart, from the persistent store alone.
  server_.reset();
  std::filesystem::remove_all(export_.db_path);
  StartServer("cache_refresh_seconds = 0;\n");
  NfsClient again(version());
  ASSERT_EQ(again.Mount("/kvfs"), 0) << again.LastError();
  got.clear();
  ASSERT_EQ(WalkAndRead(&again, "/made", &got), 0) << again.LastError();
  EXPECT_TRUE(got == mine);
}

TEST_P(CacheE2E, ConcurrentFirstTouchesAllSucceed) {
  MakeTarball("hot", 300, 77);
  StartServer("cache_refresh_seconds = 0;\n");
  constexpr int kClients = 4;
  std::vector<Contents> got(kClients);
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      NfsClient c(version());
      if (c.Mount("/kvfs") != 0) {
        errors[i] = "mount: " + c.LastError();
        return;
      }
      if (WalkAndRead(&c, "/hot", &got[i]) != 0) errors[i] = c.LastError();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(errors[i], "") << "client " << i;
    EXPECT_TRUE(got[i] == want_) << "client " << i;
  }
  EXPECT_EQ(StateOf("hot"), "clean");
}

TEST_P(CacheE2E, ACorruptTarballIsAnIoErrorUntilFixed) {
  ASSERT_OK(t_->Put("bad.tar", std::string(20000, '\x42')));
  MakeTarball("good", 3, 9);
  StartServer("cache_refresh_seconds = 0;\ncache_retry_seconds = 0;\n");
  NfsClient client(version());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  std::vector<std::string> names;
  EXPECT_EQ(client.ListDir("/bad", &names), -EIO) << client.LastError();
  const std::string log = server_->LogSinceStart();
  EXPECT_NE(log.find("KVFS cache: Input/output error: loading tree 'bad' from bad.tar"),
            std::string::npos)
      << log;
  EXPECT_NE(Cache("list").find("last load failed"), std::string::npos);
  EXPECT_EQ(StateOf("bad"), "unloaded");  // not cached as empty
  Contents got;
  ASSERT_EQ(WalkAndRead(&client, "/good", &got), 0) << client.LastError();

  // Fixed in the store: the next touch loads it.
  want_.clear();
  MakeTarball("bad", 5, 10);
  got.clear();
  ASSERT_EQ(WalkAndRead(&client, "/bad", &got), 0) << client.LastError();
  EXPECT_TRUE(got == want_);
}

TEST_P(CacheE2E, ANameTakenByAnotherServerIsRefused) {
  StartServer("cache_refresh_seconds = 0;\n");
  NfsClient client(version());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();

  // The other server: its own key/value store, the same persistent store.
  std::unique_ptr<ingest::PersistentStore> store;
  ASSERT_OK(t_->Open(&store));
  std::unique_ptr<cache::TreeCache> other;
  ASSERT_OK(cache_test::OpenOtherServer(dir_.path() + "/other", std::move(store), nullptr, &other));

  Attributes a;
  ASSERT_OK(other->Mkdir(kRootIno, "taken", NewObject{0755, 0, 0}, &a));
  EXPECT_EQ(client.Mkdir("/taken"), -EEXIST) << client.LastError();
  ASSERT_EQ(client.Mkdir("/mine"), 0) << client.LastError();
  EXPECT_EQ(other->Mkdir(kRootIno, "mine", NewObject{0755, 0, 0}, &a).posix_errno(), EEXIST);
  cache_test::ExpectOneMkdirWinsEachName(
      other.get(), [&](const std::string& path) { return client.Mkdir(path); });
}

TEST_P(CacheE2E, AKilledServerLosesNothing) {
  MakeTarball("kept", 20, 30);
  // A tree big enough that its load takes a while, to be killed during it.
  std::vector<Spec> big;
  Contents big_want;
  for (int i = 0; i < 200; ++i) {
    const std::string path = "dir" + std::to_string(i % 10) + "/big" + std::to_string(i);
    big_want["/big/" + path] = RandomBytes(200000 + i, 5000 + i);
    big.push_back(File("big/" + path, big_want["/big/" + path]));
  }
  WriteTarball(dir_.path() + "/big.tar", big);
  ASSERT_OK(t_->PutFile("big.tar", dir_.path() + "/big.tar"));
  StartServer("cache_refresh_seconds = 0;\ncache_writeback_delay_seconds = 0;\n");
  {
    NfsClient client(version());
    ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
    ASSERT_EQ(client.WriteFile("/kept/d0/new", "acknowledged"), 0) << client.LastError();
    want_["/kept/d0/new"] = "acknowledged";
    ASSERT_EQ(client.Mkdir("/fresh"), 0) << client.LastError();
    ASSERT_EQ(client.WriteFile("/fresh/f", "also acknowledged"), 0) << client.LastError();
    // A load in progress when the server dies.
    std::thread toucher([&] {
      NfsClient c(version());
      std::vector<std::string> names;
      if (c.Mount("/kvfs") == 0) c.ListDir("/big", &names);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Status s = server_->Kill9();
    ASSERT_TRUE(s.ok()) << s.ToString();
    toucher.join();
  }
  Status s = server_->Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  // Changes acknowledged before the kill are there, and still to be written back.
  EXPECT_EQ(StateOf("kept"), "dirty");
  EXPECT_EQ(StateOf("fresh"), "dirty");
  const std::string big_state = StateOf("big");
  EXPECT_TRUE(big_state == "unloaded" || big_state == "clean") << big_state;
  Cache("flush");
  Cache("drop kept");
  Cache("drop fresh");
  NfsClient client(version());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  Contents got;
  ASSERT_EQ(WalkAndRead(&client, "/kept", &got), 0) << client.LastError();
  EXPECT_TRUE(got == want_);
  std::string data;
  ASSERT_EQ(client.ReadFile("/fresh/f", &data), 0) << client.LastError();
  EXPECT_EQ(data, "also acknowledged");
  got.clear();
  ASSERT_EQ(WalkAndRead(&client, "/big", &got), 0) << client.LastError();
  EXPECT_TRUE(got == big_want);
  s = server_->Stop();
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::string out;
  EXPECT_EQ(RunCommand(std::string(KVFS_TOOL_BIN) + " fsck --db " + export_.db_path, &out), 0)
      << out;
}

// kill -9 of the server while it writes a changed tree back: the tarball in
// the store is the old one, whole, or the new one, whole (never a part: in
// a bucket the object appears only when its upload completes, and the
// upload is held at its second part until the kill); after the restart the
// change is there and still dirty, the unfinished upload is aborted, and the
// write-back succeeds.
TEST_P(CacheE2E, AKillDuringAWriteBackLosesNothing) {
  MakeTarball("wb", 10, 60);
  std::string old_tarball;
  ASSERT_OK(t_->Get("wb.tar", &old_tarball));
  const std::string settings = "cache_refresh_seconds = 0;\ncache_writeback_delay_seconds = 0;\n" +
                               std::string(t_->is_s3() ? "s3_part_size = \"5M\";\n" : "");
  StartServer(settings);
  {
    NfsClient client(version());
    ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
    ASSERT_EQ(client.Mkdir("/wb/new"), 0) << client.LastError();
    for (int i = 0; i < 24; ++i) {  // 12 MiB: three parts of 5 MiB
      const std::string path = "/wb/new/n" + std::to_string(i);
      want_[path] = RandomBytes(512 * 1024, 7000 + i);
      ASSERT_EQ(client.WriteFile(path, want_[path]), 0) << client.LastError();
    }
  }
  EXPECT_EQ(StateOf("wb"), "dirty");
  if (t_->is_s3()) {
    s3_test::FaultRule hold;
    hold.action = s3_test::FaultRule::Action::kHold;
    hold.method = "PUT";
    hold.target_contains = "partNumber=2";
    t_->proxy()->AddRule(hold);
  }
  std::thread flusher([&] {
    std::string out;
    RunCommand(std::string(KVFS_TOOL_BIN) + " cache --db " + export_.db_path + " flush wb", &out);
  });
  if (t_->is_s3()) {
    ASSERT_TRUE(t_->proxy()->WaitHeld(1));
  } else {
    // The write-back's temporary file exists: it is under way.
    const std::string tmp = t_->url() + "/.kvfs/tmp";
    for (int i = 0; i < 60000 && std::filesystem::is_empty(tmp); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  Status s = server_->Kill9();
  ASSERT_TRUE(s.ok()) << s.ToString();
  flusher.join();
  if (t_->is_s3()) {
    t_->proxy()->ClearRules();
    t_->proxy()->ReleaseHeld();
  }
  std::string after;
  ASSERT_OK(t_->Get("wb.tar", &after));
  if (t_->is_s3()) {
    EXPECT_TRUE(after == old_tarball) << "the tarball changed: " << after.size() << " bytes";
    EXPECT_EQ(t_->UnfinishedUploads(), 1);
  } else {
    // (The rename may have come first: then it is the whole new one.)
    EXPECT_TRUE(after == old_tarball || after.size() > 12u << 20) << after.size() << " bytes";
  }

  server_.reset();
  StartServer(settings + (t_->is_s3() ? "s3_stale_upload_seconds = \"0\";\n" : ""));
  if (after == old_tarball) {
    EXPECT_EQ(StateOf("wb"), "dirty");
  }
  EXPECT_EQ(t_->UnfinishedUploads(), 0);
  Cache("flush wb");
  EXPECT_EQ(StateOf("wb"), "clean");
  Cache("drop wb");
  NfsClient client(version());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  Contents got;
  ASSERT_EQ(WalkAndRead(&client, "/wb", &got), 0) << client.LastError();
  EXPECT_EQ(got.size(), want_.size());
  EXPECT_TRUE(got == want_);
}

// Stateless READs and WRITEs (NFSv3, and NFSv4's anonymous stateid) do not
// count against Ganesha's open-file limit: KVFS has no descriptors. With the
// limit at 200 (1% of RLIMIT_NOFILE), a client reads and rewrites all 600
// files of a tree. Before, each file "opened" its global fd, and from the
// 200th on the server answered JUKEBOX (EAGAIN) to READ and WRITE (in the
// benchmarks it stayed wedged there; docs/fsal.md, "Open files").
TEST_P(CacheE2E, StatelessIoIsNotLimitedByGaneshasOpenFileCount) {
  MakeTarball("many", 600, 40);
  extra_config_ =
      "MDCACHE {\n  FD_Limit_Percent = 1;\n  FD_HWMark_Percent = 1;\n  FD_LWMark_Percent = 0;\n}\n";
  StartServer("cache_refresh_seconds = 0;\n");
  NfsClient client(version());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  Contents got;
  ASSERT_EQ(WalkAndRead(&client, "/many", &got), 0) << client.LastError();
  EXPECT_TRUE(got == want_);
  if (version() == NfsVersion::kV3) {  // NFSv4 I/O goes through OPEN states
    for (const auto& [path, data] : want_) {
      NfsFile f;
      ASSERT_EQ(client.Open(path, O_WRONLY, &f), 0) << path << ": " << client.LastError();
      ASSERT_EQ(f.Pwrite("rewritten", 0), 9) << path << ": " << client.LastError();
    }
  }
  EXPECT_EQ(server_->LogSinceStart().find("FD Hard Limit"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(VersionsAndStores, CacheE2E,
                         ::testing::Combine(::testing::Values(NfsVersion::kV3, NfsVersion::kV4),
                                            ::testing::ValuesIn(store_test::PluginStoreKinds())),
                         ParamName);

}  // namespace
}  // namespace kvfs::fsal_test
