// Self-test of the e2e harness: GaneshaServer runs Debian's ganesha.nfsd with
// its in-memory FSAL (FSAL_MEM), NfsClient drives it over NFSv3 and NFSv4.
// Run through ci/run-in-namespace.sh (ctest does).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"

namespace kvfs::e2e {
namespace {

// Bytes that differ at every offset (catches misplaced chunks).
std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

TEST(HarnessNamespace, RunsInPrivateNamespaces) {
  Status s = GaneshaServer::CheckPrivateNamespace();
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(HarnessNamespace, RefusesToStartWithoutMarker) {
  const char* marker = std::getenv("KVFS_E2E_NAMESPACE");
  ASSERT_NE(marker, nullptr);
  const std::string saved = marker;
  unsetenv("KVFS_E2E_NAMESPACE");
  GaneshaServer server(MemServerOptions());
  Status s = server.Start();
  setenv("KVFS_E2E_NAMESPACE", saved.c_str(), 1);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.posix_errno(), EPERM);
  EXPECT_NE(s.message().find("run-in-namespace.sh"), std::string::npos) << s.ToString();
  EXPECT_FALSE(server.running());

  setenv("KVFS_E2E_NAMESPACE", "net:[1] pid:[2] mnt:[3]", 1);
  s = server.Start();
  setenv("KVFS_E2E_NAMESPACE", saved.c_str(), 1);
  EXPECT_EQ(s.posix_errno(), EPERM) << s.ToString();
}

TEST(HarnessClient, FailsCleanlyWithoutServerOrMount) {
  for (NfsVersion v : {NfsVersion::kV3, NfsVersion::kV4}) {
    NfsClient client(v);
    EXPECT_EQ(client.version(), v);
    EXPECT_FALSE(client.mounted());
    EXPECT_EQ(client.Mkdir("/d"), -ENOTCONN);
    std::string data;
    EXPECT_EQ(client.ReadFile("/f", &data), -ENOTCONN);
    // No server runs between tests: the mount fails at once.
    EXPECT_LT(client.Mount("/mem"), 0);
    EXPECT_NE(client.LastError(), "");
    EXPECT_FALSE(client.mounted());
  }
  NfsFile closed;
  char buf[4];
  EXPECT_EQ(closed.Pread(buf, sizeof(buf), 0), -EBADF);
  EXPECT_EQ(closed.Write("x"), -EBADF);
}

// One FSAL_MEM server per test, and a client mounted over the test's version.
class HarnessTest : public ::testing::TestWithParam<NfsVersion> {
 protected:
  void SetUp() override {
    GaneshaOptions opts = MemServerOptions("/mem");
    // Small READ/WRITE sizes, so whole-file I/O takes many RPCs.
    opts.exports[0].extra_config = "MaxRead = 65536; MaxWrite = 65536;";
    server_ = std::make_unique<GaneshaServer>(opts);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    client_ = std::make_unique<NfsClient>(GetParam());
    ASSERT_EQ(client_->Mount("/mem"), 0) << client_->LastError();
  }

  void TearDown() override {
    client_.reset();
    if (server_ != nullptr) {
      Status s = server_->Stop();
      EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << server_->LogTail();
    }
  }

  NfsClient& c() { return *client_; }

  std::unique_ptr<GaneshaServer> server_;
  std::unique_ptr<NfsClient> client_;
};

TEST_P(HarnessTest, FileLifecycle) {
  // Many READ/WRITEs (64 KiB each over v3, 3 KiB writes over v4); FSAL_MEM
  // keeps up to 1 MiB per file.
  const std::string data = Pattern(1000 * 1000 + 17, 1);
  if (GetParam() == NfsVersion::kV3) {
    EXPECT_EQ(c().WriteMax(), 65536u);
    EXPECT_EQ(c().ReadMax(), 65536u);
  }
  ASSERT_EQ(c().Mkdir("/d"), 0) << c().LastError();
  ASSERT_EQ(c().WriteFile("/d/f", data), 0) << c().LastError();

  NfsStat st{};
  ASSERT_EQ(c().Stat("/d/f", &st), 0) << c().LastError();
  EXPECT_TRUE(S_ISREG(st.nfs_mode));
  EXPECT_EQ(st.nfs_size, data.size());
  ASSERT_EQ(c().Stat("/d", &st), 0) << c().LastError();
  EXPECT_TRUE(S_ISDIR(st.nfs_mode));

  std::string back;
  ASSERT_EQ(c().ReadFile("/d/f", &back), 0) << c().LastError();
  EXPECT_TRUE(back == data) << "read back " << back.size() << " bytes";

  std::vector<std::string> names;
  ASSERT_EQ(c().ListDir("/d", &names), 0) << c().LastError();
  EXPECT_EQ(names, std::vector<std::string>({"f"}));

  ASSERT_EQ(c().Rename("/d/f", "/d/g"), 0) << c().LastError();
  EXPECT_EQ(c().Stat("/d/f", &st), -ENOENT);
  ASSERT_EQ(c().ListDir("/d", &names), 0);
  EXPECT_EQ(names, std::vector<std::string>({"g"}));
  ASSERT_EQ(c().ReadFile("/d/g", &back), 0) << c().LastError();
  EXPECT_TRUE(back == data);

  ASSERT_EQ(c().Unlink("/d/g"), 0) << c().LastError();
  EXPECT_EQ(c().Stat("/d/g", &st), -ENOENT);
  ASSERT_EQ(c().ListDir("/d", &names), 0);
  EXPECT_TRUE(names.empty());
  ASSERT_EQ(c().Rmdir("/d"), 0) << c().LastError();
  EXPECT_EQ(c().Stat("/d", &st), -ENOENT);
  ASSERT_EQ(c().ListDir("/", &names), 0);
  EXPECT_TRUE(names.empty());
}

TEST_P(HarnessTest, ErrorsAreNegativeErrno) {
  ASSERT_EQ(c().Mkdir("/d"), 0);
  ASSERT_EQ(c().WriteFile("/d/f", "x"), 0);
  EXPECT_EQ(c().Mkdir("/d"), -EEXIST);
  EXPECT_EQ(c().Rmdir("/d"), -ENOTEMPTY);
  EXPECT_EQ(c().Unlink("/nope"), -ENOENT);
  EXPECT_EQ(c().Rmdir("/nope"), -ENOENT);
  EXPECT_EQ(c().Mkdir("/nope/sub"), -ENOENT);
  NfsFile f;
  EXPECT_EQ(c().Open("/nope", O_RDONLY, &f), -ENOENT);
  EXPECT_EQ(c().Create("/d/f", O_RDWR | O_EXCL, 0644, &f), -EEXIST);
  EXPECT_FALSE(f.is_open());
  EXPECT_EQ(c().Rename("/nope", "/d/x"), -ENOENT);
  std::string data;
  EXPECT_EQ(c().ReadFile("/nope", &data), -ENOENT);
  EXPECT_NE(c().LastError(), "");
}

TEST_P(HarnessTest, OpenFileIo) {
  NfsFile f;
  ASSERT_EQ(c().Create("/f", O_RDWR, 0600, &f), 0) << c().LastError();
  EXPECT_EQ(f.Pwrite("world", 6), 5);
  EXPECT_EQ(f.Pwrite("hello ", 0), 6);
  char buf[32] = {};
  EXPECT_EQ(f.Pread(buf, sizeof(buf), 0), 11);
  EXPECT_EQ(std::string(buf, 11), "hello world");
  EXPECT_EQ(f.Pread(buf, sizeof(buf), 100), 0);
  EXPECT_EQ(f.Lseek(0, SEEK_END), 11);
  EXPECT_EQ(f.Write("!"), 1);
  EXPECT_EQ(f.Lseek(6, SEEK_SET), 6);
  EXPECT_EQ(f.Read(buf, 5), 5);
  EXPECT_EQ(std::string(buf, 5), "world");
  EXPECT_EQ(f.Fsync(), 0) << c().LastError();
  NfsStat st{};
  ASSERT_EQ(f.Fstat(&st), 0) << c().LastError();
  EXPECT_EQ(st.nfs_size, 12u);
  EXPECT_EQ(st.nfs_mode & 07777, 0600u);
  EXPECT_EQ(f.Ftruncate(5), 0) << c().LastError();
  ASSERT_EQ(f.Fstat(&st), 0);
  EXPECT_EQ(st.nfs_size, 5u);
  EXPECT_EQ(f.Close(), 0) << c().LastError();
  EXPECT_FALSE(f.is_open());
  EXPECT_EQ(f.Close(), 0);
  EXPECT_EQ(f.Fsync(), -EBADF);
  std::string data;
  ASSERT_EQ(c().ReadFile("/f", &data), 0);
  EXPECT_EQ(data, "hello");
}

TEST_P(HarnessTest, ManyEntriesListFully) {
  ASSERT_EQ(c().Mkdir("/many"), 0);
  std::vector<std::string> expected;
  for (int i = 0; i < 300; ++i) {
    std::string name = "file-with-a-longish-name-" + std::to_string(1000 + i);
    NfsFile f;
    ASSERT_EQ(c().Create("/many/" + name, O_WRONLY, 0644, &f), 0) << c().LastError();
    expected.push_back(name);
  }
  std::vector<std::string> names;
  ASSERT_EQ(c().ListDir("/many", &names), 0) << c().LastError();
  EXPECT_EQ(names, expected);
  std::vector<NfsDirEntry> entries;
  ASSERT_EQ(c().ReadDir("/many", &entries), 0);
  ASSERT_EQ(entries.size(), expected.size());
  for (const NfsDirEntry& e : entries) {
    EXPECT_TRUE(S_ISREG(e.mode)) << e.name;
    EXPECT_EQ(e.nlink, 1u) << e.name;
    // libnfs 4.0 reports no usable file ids over v4 (NfsClient gives 0).
    if (GetParam() == NfsVersion::kV3) {
      EXPECT_NE(e.inode, 0u) << e.name;
    }
  }
}

TEST_P(HarnessTest, PosixCreateAndRemoveSemantics) {
  // Re-creating an existing file truncates it, over v4 too.
  ASSERT_EQ(c().WriteFile("/f", "long content"), 0) << c().LastError();
  ASSERT_EQ(c().WriteFile("/f", "short", 0600), 0) << c().LastError();
  std::string data;
  ASSERT_EQ(c().ReadFile("/f", &data), 0);
  EXPECT_EQ(data, "short");
  // New files get the requested mode.
  NfsFile f;
  ASSERT_EQ(c().Open("/g", O_RDWR | O_CREAT, &f, 0751), 0) << c().LastError();
  NfsStat st{};
  ASSERT_EQ(f.Fstat(&st), 0);
  EXPECT_EQ(st.nfs_mode & 07777, 0751u);
  EXPECT_EQ(f.Close(), 0);
  ASSERT_EQ(c().Create("/h", O_WRONLY | O_EXCL, 0604, &f), 0) << c().LastError();
  ASSERT_EQ(c().Stat("/h", &st), 0);
  EXPECT_EQ(st.nfs_mode & 07777, 0604u);
  EXPECT_EQ(f.Close(), 0);
  // Removing the wrong type fails as on Linux.
  ASSERT_EQ(c().Mkdir("/d"), 0);
  EXPECT_EQ(c().Rmdir("/f"), -ENOTDIR);
  EXPECT_EQ(c().Unlink("/d"), -EISDIR);
  EXPECT_EQ(c().Stat("/f", &st), 0);
  EXPECT_EQ(c().Stat("/d", &st), 0);
}

TEST_P(HarnessTest, Attributes) {
  ASSERT_EQ(c().WriteFile("/f", "0123456789"), 0);
  NfsStat st{};

  EXPECT_EQ(c().Chmod("/f", 0640), 0) << c().LastError();
  ASSERT_EQ(c().Stat("/f", &st), 0);
  EXPECT_EQ(st.nfs_mode & 07777, 0640u);

  EXPECT_EQ(c().Chown("/f", 1234, 5678), 0) << c().LastError();
  ASSERT_EQ(c().Stat("/f", &st), 0);
  EXPECT_EQ(st.nfs_uid, 1234u);
  EXPECT_EQ(st.nfs_gid, 5678u);
  EXPECT_EQ(c().Chown("/f", -1, 42), 0) << c().LastError();
  ASSERT_EQ(c().Stat("/f", &st), 0);
  EXPECT_EQ(st.nfs_uid, 1234u);
  EXPECT_EQ(st.nfs_gid, 42u);

  struct timeval times[2] = {{1000000000, 0}, {1200000000, 0}};
  EXPECT_EQ(c().Utimes("/f", times), 0) << c().LastError();
  ASSERT_EQ(c().Stat("/f", &st), 0);
  EXPECT_EQ(st.nfs_atime, 1000000000u);
  EXPECT_EQ(st.nfs_mtime, 1200000000u);
  EXPECT_EQ(c().Utimes("/f", nullptr), 0) << c().LastError();
  ASSERT_EQ(c().Stat("/f", &st), 0);
  const uint64_t now = static_cast<uint64_t>(time(nullptr));
  EXPECT_NEAR(static_cast<double>(st.nfs_mtime), static_cast<double>(now), 5.0);

  EXPECT_EQ(c().Truncate("/f", 4), 0) << c().LastError();
  ASSERT_EQ(c().Stat("/f", &st), 0);
  EXPECT_EQ(st.nfs_size, 4u);

  EXPECT_EQ(c().Access("/f", R_OK | W_OK), 0) << c().LastError();

  NfsStatVfs vfs{};
  EXPECT_EQ(c().StatVfs("/", &vfs), 0) << c().LastError();
  EXPECT_GT(vfs.f_namemax, 0u);
}

TEST_P(HarnessTest, Links) {
  ASSERT_EQ(c().WriteFile("/f", "data"), 0);
  EXPECT_EQ(c().Symlink("f", "/s"), 0) << c().LastError();
  std::string target;
  EXPECT_EQ(c().Readlink("/s", &target), 0) << c().LastError();
  EXPECT_EQ(target, "f");
  NfsStat st{};
  EXPECT_EQ(c().Lstat("/s", &st), 0) << c().LastError();
  EXPECT_TRUE(S_ISLNK(st.nfs_mode));
  EXPECT_EQ(c().Stat("/s", &st), 0) << c().LastError();
  EXPECT_TRUE(S_ISREG(st.nfs_mode));

  EXPECT_EQ(c().Link("/f", "/h"), 0) << c().LastError();
  ASSERT_EQ(c().Stat("/f", &st), 0);
  EXPECT_EQ(st.nfs_nlink, 2u);
  std::string data;
  EXPECT_EQ(c().ReadFile("/h", &data), 0);
  EXPECT_EQ(data, "data");
}

INSTANTIATE_TEST_SUITE_P(Versions, HarnessTest, ::testing::Values(NfsVersion::kV3, NfsVersion::kV4),
                         [](const ::testing::TestParamInfo<NfsVersion>& info) {
                           return std::string(NfsVersionName(info.param));
                         });

TEST(HarnessServer, RestartAndKill9) {
  GaneshaServer server(MemServerOptions("/mem"));
  Status s = server.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  const pid_t first = server.pid();
  EXPECT_GT(first, 0);
  EXPECT_TRUE(server.running());

  // An NFSv3 client mounted before a restart carries on (libnfs reconnects;
  // FSAL_MEM's root handle survives, its contents do not).
  NfsClient v3(NfsVersion::kV3);
  ASSERT_EQ(v3.Mount("/mem"), 0) << v3.LastError();
  ASSERT_EQ(v3.Mkdir("/before"), 0);

  s = server.Restart();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(server.exit_description(), "");
  EXPECT_NE(server.pid(), first);
  std::vector<std::string> names;
  EXPECT_EQ(v3.ListDir("/", &names), 0) << v3.LastError();
  EXPECT_TRUE(names.empty());
  for (NfsVersion v : {NfsVersion::kV3, NfsVersion::kV4}) {
    NfsClient client(v);
    ASSERT_EQ(client.Mount("/mem"), 0) << NfsVersionName(v) << ": " << client.LastError();
    EXPECT_EQ(client.WriteFile("/after-restart", "x"), 0) << client.LastError();
  }

  ASSERT_TRUE(server.Kill9().ok());
  EXPECT_FALSE(server.running());
  // A dead server fails calls quickly instead of hanging the test.
  NfsStat st{};
  EXPECT_LT(v3.Stat("/", &st), 0);
  EXPECT_EQ(server.pid(), -1);
  EXPECT_NE(server.exit_description().find("signal 9"), std::string::npos)
      << server.exit_description();
  EXPECT_EQ(server.Kill9().posix_errno(), ESRCH);
  EXPECT_TRUE(server.Stop().ok());

  s = server.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (NfsVersion v : {NfsVersion::kV3, NfsVersion::kV4}) {
    NfsClient client(v);
    ASSERT_EQ(client.Mount("/mem"), 0) << NfsVersionName(v) << ": " << client.LastError();
    EXPECT_EQ(client.ListDir("/", &names), 0);
  }
  s = server.Stop();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(server.exit_description(), "exit status 0");
  EXPECT_NE(server.ReadLog().find("NFS EXIT: regular exit"), std::string::npos);
}

TEST(HarnessServer, StartFailureReportsLogQuickly) {
  GaneshaOptions opts = MemServerOptions("/mem");
  opts.exports[0].fsal_name = "NOSUCHFSAL";
  GaneshaServer server(opts);
  const auto t0 = std::chrono::steady_clock::now();
  Status s = server.Start();
  ASSERT_FALSE(s.ok());
  // Ganesha keeps running without the broken export; the harness notices
  // the config error in the log instead of waiting for start_timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_NE(s.message().find("Failed to load FSAL (NOSUCHFSAL)"), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.message().find("--- log"), std::string::npos) << s.ToString();
  EXPECT_FALSE(server.running());
}

TEST(HarnessServer, GeneratedConfigIsClean) {
  GaneshaOptions opts = MemServerOptions("/mem");
  GaneshaServer server(opts);
  Status s = server.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(server.ConfigDiagnostics(), "");
  EXPECT_NE(server.ConfigText().find("Plugins_Dir = \"" + server.plugins_dir()), std::string::npos);
  EXPECT_NE(server.ReadLog().find("ganesha.nfsd Starting"), std::string::npos);
  EXPECT_LT(server.last_start_duration(), std::chrono::seconds(10));

  // A misspelt parameter is only a warning for Ganesha; the harness shows it.
  opts.exports[0].extra_config = "Access_Typo = RW;";
  GaneshaServer typo(opts);
  ASSERT_TRUE(server.Stop().ok());
  s = typo.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(typo.ConfigDiagnostics().find("Unknown parameter (Access_Typo)"), std::string::npos)
      << typo.ConfigDiagnostics();
}

TEST(HarnessServer, PluginDirsRawExportsAndProbes) {
  // A directory holding FSAL modules, as a build tree would.
  char dir_template[] = "/tmp/kvfs-e2e-plugins-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  ASSERT_EQ(symlink((std::string(kSystemFsalDir) + "/libfsalmem.so").c_str(),
                    (dir + "/libfsalmem.so").c_str()),
            0);

  GaneshaOptions opts;
  opts.plugin_dirs = SplitPathList(":" + dir + ":");
  ASSERT_EQ(opts.plugin_dirs, std::vector<std::string>({dir}));
  GaneshaExport a;
  a.export_id = 1;
  a.path = "/a";
  a.fsal_name = "MEM";
  opts.exports.push_back(a);
  opts.raw_exports =
      "EXPORT { Export_Id = 2; Path = /b; Pseudo = /pseudo/b; Access_Type = RO;"
      " Squash = No_Root_Squash; FSAL { Name = MEM; } }";
  opts.probes = {{NfsVersion::kV3, "/b"}, {NfsVersion::kV4, "/pseudo/b"}};
  {
    GaneshaServer server(opts);
    Status s = server.Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    NfsClient v4(NfsVersion::kV4);
    ASSERT_EQ(v4.Mount("/pseudo/b"), 0) << v4.LastError();
    EXPECT_EQ(v4.Mkdir("/x"), -EROFS);
    NfsClient v3(NfsVersion::kV3);
    ASSERT_EQ(v3.Mount("/a"), 0) << v3.LastError();
    EXPECT_EQ(v3.Mkdir("/x"), 0) << v3.LastError();
  }
  unlink((dir + "/libfsalmem.so").c_str());
  rmdir(dir.c_str());
}

TEST(HarnessServer, SecondServerIsRefused) {
  GaneshaServer first(MemServerOptions("/mem"));
  Status s = first.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  GaneshaServer second(MemServerOptions("/mem"));
  s = second.Start();
  EXPECT_EQ(s.posix_errno(), EADDRINUSE) << s.ToString();
  EXPECT_TRUE(first.running());
}

}  // namespace
}  // namespace kvfs::e2e
