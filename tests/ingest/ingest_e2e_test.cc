// End to end: trees are ingested, replaced and evicted with the kvfs-ingest
// and kvfs-evict commands while ganesha.nfsd (FSAL_KVFS) serves the same
// store and NFS clients (libnfs) read through it. The commands reach the
// server over its control socket; the clients see each change without a
// server restart (the FSAL invalidates Ganesha's cached root), and a reader
// keeps being served during the loads.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/fsal/fsal_test_util.h"
#include "tests/ingest/ingest_test_util.h"

namespace kvfs::fsal_test {
namespace {

using e2e::GaneshaServer;
using e2e::NfsClient;
using e2e::NfsStat;
using e2e::NfsStatVfs;
using e2e::NfsVersion;
using ingest_test::File;
using ingest_test::RandomBytes;
using ingest_test::RunCommand;
using ingest_test::Symlink;
using ingest_test::WriteTarball;

class IngestE2E : public ::testing::TestWithParam<NfsVersion> {};

TEST_P(IngestE2E, ClientsSeeTreesComeAndGoWithoutARestart) {
  TempDir dir;
  KvfsExport e;
  e.db_path = dir.path() + "/db";
  GaneshaServer server(KvfsServerOptions({e}));
  Status s = server.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();

  NfsClient client(GetParam());
  ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
  const std::string busy = Pattern(300000, 1);
  ASSERT_EQ(client.Mkdir("/busy"), 0);
  ASSERT_EQ(client.WriteFile("/busy/data", busy), 0);
  std::vector<std::string> names;
  ASSERT_EQ(client.ListDir("/", &names), 0);  // Ganesha caches the root now
  EXPECT_EQ(names, std::vector<std::string>{"busy"});

  // A reader that keeps going through every load.
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, failures{0};
  std::string reader_error;
  std::thread reader([&] {
    NfsClient c(GetParam());
    if (c.Mount("/kvfs") != 0) {
      reader_error = "mount: " + c.LastError();
      ++failures;
      return;
    }
    while (!stop) {
      std::string back;
      if (c.ReadFile("/busy/data", &back) != 0 || back != busy) {
        reader_error = c.LastError();
        ++failures;
      }
      ++reads;
    }
  });

  // Ingest through the server.
  const std::string tarball = dir.path() + "/proj.tar.gz";
  const std::string big = RandomBytes(3 << 20, 7);
  std::vector<ingest_test::Spec> members;
  members.push_back(File("proj/README", "version 1\n"));
  members.push_back(File("proj/src/big.bin", big));
  members.push_back(Symlink("proj/latest", "src/big.bin"));
  for (int i = 0; i < 2000; ++i) {
    members.push_back(File("proj/many/f" + std::to_string(i), std::to_string(i)));
  }
  WriteTarball(tarball, members, ingest_test::TarFormat::kPax, ingest::Compression::kGzip);
  std::string out;
  ASSERT_EQ(RunCommand(std::string(KVFS_INGEST_BIN) + " --db " + e.db_path + " " + tarball, &out),
            0)
      << out;
  EXPECT_NE(out.find("[via server]"), std::string::npos) << out;

  ASSERT_EQ(client.ListDir("/", &names), 0) << client.LastError();
  EXPECT_EQ(names, (std::vector<std::string>{"busy", "proj"}));
  std::string back;
  ASSERT_EQ(client.ReadFile("/proj/README", &back), 0) << client.LastError();
  EXPECT_EQ(back, "version 1\n");
  ASSERT_EQ(client.ReadFile("/proj/src/big.bin", &back), 0) << client.LastError();
  EXPECT_TRUE(back == big);
  std::string target;
  ASSERT_EQ(client.Readlink("/proj/latest", &target), 0);
  EXPECT_EQ(target, "src/big.bin");
  ASSERT_EQ(client.ListDir("/proj/many", &names), 0);
  EXPECT_EQ(names.size(), 2000u);
  NfsStatVfs vfs_with;
  ASSERT_EQ(client.StatVfs("/", &vfs_with), 0);

  // Replace it: the same path now reads the new contents.
  WriteTarball(tarball, {File("proj/README", "version 2\n")}, ingest_test::TarFormat::kPax,
               ingest::Compression::kGzip);
  ASSERT_EQ(
      RunCommand(std::string(KVFS_INGEST_BIN) + " --replace --db " + e.db_path + " " + tarball,
                 &out),
      0)
      << out;
  ASSERT_EQ(client.ReadFile("/proj/README", &back), 0) << client.LastError();
  EXPECT_EQ(back, "version 2\n");
  NfsStat st;
  EXPECT_EQ(client.Stat("/proj/src/big.bin", &st), -ENOENT);

  // Evict it: gone from the listing, and the space is free again.
  ASSERT_EQ(RunCommand(std::string(KVFS_EVICT_BIN) + " --db " + e.db_path + " proj", &out), 0)
      << out;
  ASSERT_EQ(client.ListDir("/", &names), 0);
  EXPECT_EQ(names, std::vector<std::string>{"busy"});
  EXPECT_EQ(client.Stat("/proj/README", &st), -ENOENT);
  NfsStatVfs vfs_without;
  ASSERT_EQ(client.StatVfs("/", &vfs_without), 0);
  EXPECT_GT(vfs_without.f_bfree * vfs_without.f_bsize, vfs_with.f_bfree * vfs_with.f_bsize);

  stop = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0) << reader_error;
  EXPECT_GT(reads.load(), 3);
  EXPECT_EQ(server.LogSinceStart().find("cannot reach this server"), std::string::npos);
  EXPECT_TRUE(server.Stop().ok());
}

INSTANTIATE_TEST_SUITE_P(Versions, IngestE2E, ::testing::Values(NfsVersion::kV3, NfsVersion::kV4),
                         VersionName);

}  // namespace
}  // namespace kvfs::fsal_test
