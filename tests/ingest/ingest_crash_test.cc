// Crash consistency of ingest: a child process ingests (or replaces) a tree
// through the same code path as kvfs-ingest without a server (RunRequest)
// and is killed with SIGKILL at a random moment. After reopening, fsck is
// clean, no loading range is left, the tree is either the old version or
// the new one entirely, dropped ranges hold no keys, and the staging
// directory is cleaned.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "common/fs/fsck.h"
#include "common/fs/schema.h"
#include "ingest/control_client.h"
#include "ingest/ingest.h"
#include "tests/ingest/ingest_test_util.h"

namespace kvfs::ingest {
namespace {

using ingest_test::CompareManifests;
using ingest_test::File;
using ingest_test::KeysInRange;
using ingest_test::Manifest;
using ingest_test::ManifestOptions;
using ingest_test::OpenRocksFileSystem;
using ingest_test::RandomBytes;
using ingest_test::ReadTarballManifest;
using ingest_test::ReadTreeManifest;
using ingest_test::Spec;
using ingest_test::WriteTarball;
using kvfs::testing::TempDir;

// A tree of ~2000 members and ~40 MB: ingesting it takes long enough to be
// killed in every phase (reading, sorting, loading, publishing).
void MakeVersion(const std::string& path, int version) {
  std::vector<Spec> m;
  for (int d = 0; d < 20; ++d) {
    for (int f = 0; f < 100; ++f) {
      const size_t size = (f % 10 == 0) ? 200000 : 300 + f * 17;
      m.push_back(File("t/d" + std::to_string(d) + "/f" + std::to_string(f),
                       RandomBytes(size, version * 100000 + d * 1000 + f)));
    }
  }
  m.push_back(File("t/version", std::to_string(version)));
  WriteTarball(path, m);
}

// Runs the ingest in a child; returns its pid.
pid_t StartIngest(const std::string& db, const std::string& tarball) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  Message req{{"op", "ingest"}, {"tarball", tarball}, {"name", "t"}, {"replace", "1"}};
  Message resp;
  bool via_server;
  Status s = RunRequest(KVStoreAt(db), req, &resp, &via_server);
  if (s.ok()) s = ResponseStatus(resp);
  _exit(s.ok() ? 0 : 3);
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

TEST(IngestCrash, KilledAtRandomMomentsLeavesOldOrNewTree) {
  TempDir dir("kvfs-ingest-crash");
  const std::string db = dir.path() + "/db";
  const std::string tarballs[2] = {dir.path() + "/v0.tar", dir.path() + "/v1.tar"};
  MakeVersion(tarballs[0], 0);
  MakeVersion(tarballs[1], 1);
  Manifest versions[2];
  for (int v = 0; v < 2; ++v) ASSERT_OK(ReadTarballManifest(tarballs[v], "t", &versions[v]));

  // A full run, to learn how long one takes.
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = StartIngest(db, tarballs[0]);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const double full = Seconds(std::chrono::steady_clock::now() - t0);
  std::cout << "one ingest takes " << full << " s\n";

  uint64_t seed = std::random_device()();
  std::cout << "seed " << seed << "\n";
  std::mt19937_64 rng(seed);
  int current = 0;  // the version the store holds
  int killed = 0, completed = 0;
  for (int round = 0; round < 16; ++round) {
    const int next = 1 - current;
    const double delay = std::uniform_real_distribution<double>(0, full * 1.1)(rng);
    pid = StartIngest(db, tarballs[next]);
    usleep(static_cast<useconds_t>(delay * 1e6));
    kill(pid, SIGKILL);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) {
      ASSERT_EQ(WEXITSTATUS(status), 0);
      ++completed;
    } else {
      ++killed;
    }

    std::unique_ptr<FileSystem> fs;
    ASSERT_OK(OpenRocksFileSystem(db, &fs));
    FsckReport report;
    ASSERT_OK(Fsck(fs->store(), DefaultNameHasher(), &report));
    ASSERT_TRUE(report.ok()) << "round " << round << ": " << report.problems.front();
    EXPECT_EQ(report.loading_ranges, 0u);
    Manifest now;
    ASSERT_OK(ReadTreeManifest(fs.get(), "t", &now));
    const bool is_next = CompareManifests(versions[next], now, ManifestOptions(), false).empty();
    const bool is_current =
        CompareManifests(versions[current], now, ManifestOptions(), false).empty();
    ASSERT_TRUE(is_next || is_current) << "round " << round << " after " << delay << " s";
    if (WIFEXITED(status)) {
      EXPECT_TRUE(is_next);
    }
    if (is_next) current = next;
    // Every range but the live one is empty.
    Attributes top;
    ASSERT_OK(fs->Lookup(kRootIno, "t", &top));
    for (uint64_t r = 1; r <= schema::RangeOf(top.ino) + 1; ++r) {
      if (r != schema::RangeOf(top.ino)) {
        EXPECT_EQ(KeysInRange(fs->store(), r), 0u) << r;
      }
    }
    StatFsInfo st;
    ASSERT_OK(fs->StatFs(&st));
    EXPECT_EQ(st.used_inodes, report.directories + report.files);
    fs.reset();
    // What a killed load left in the staging directory goes at the next
    // start.
    ASSERT_OK(CleanStagingDir(StagingDirFor(db)));
    EXPECT_TRUE(std::filesystem::is_empty(StagingDirFor(db)));
  }
  std::cout << killed << " killed, " << completed << " completed\n";
  EXPECT_GT(killed, 0);
}

}  // namespace
}  // namespace kvfs::ingest
