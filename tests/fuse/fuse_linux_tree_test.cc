// Debian's Linux source tree through a kvfs-fuse mount and back, with the
// tools users have: GNU tar extracts /usr/src/linux-source-6.1.tar.xz into
// the mount (as root: owners, modes, times) and into a local directory;
// `diff -r` finds no difference and every attribute matches (types, modes,
// owners, sizes, mtimes to the nanosecond, symlink targets, hard links);
// tar packs the mounted tree again and every member equals the original's.
// The store is fsck'ed after unmounting. (ctest runs this in private
// namespaces: it mounts.)
//
//   Full     the whole tarball (83,731 members, 1.3 GB)
//   Subset   its first 8,000 members (seconds)
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <set>
#include <string>

#include "tests/fs/test_util.h"
#include "tests/fuse/fuse_test_util.h"
#include "tests/ingest/ingest_test_util.h"

namespace kvfs::fuse_test {
namespace {

using ingest_test::kLinuxSourceTarball;

using ingest_test::CompareManifests;
using ingest_test::Manifest;
using ingest_test::ManifestOptions;
using ingest_test::ReadDirectoryManifest;
using ingest_test::ReadTarballManifest;
using ingest_test::RunCommand;
using kvfs::testing::TempDir;

constexpr char kTop[] = "linux-source-6.1";

void RoundTrip(const std::string& tarball, TempDir& dir) {
  const std::string db = dir.path() + "/db", mnt = dir.path() + "/mnt";
  const std::string local = dir.path() + "/local";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(local.c_str(), 0755), 0);
  KvfsFuse fuse({"--db", db}, mnt);
  ASSERT_OK(fuse.Start());

  std::string out;
  ASSERT_EQ(RunCommand("tar -xf " + tarball + " -C " + mnt, &out), 0) << out;
  ASSERT_EQ(RunCommand("tar -xf " + tarball + " -C " + local, &out), 0) << out;
  const std::string tree = mnt + "/" + kTop;
  EXPECT_EQ(RunCommand("diff -r --no-dereference " + local + "/" + kTop + " " + tree, &out), 0)
      << out.substr(0, 4000);

  // Every attribute, against the local copy (the same tar, the same clock
  // rules) and against the tarball itself.
  Manifest original, on_disk, mounted, packed;
  ASSERT_OK(ReadTarballManifest(tarball, kTop, &original));
  ASSERT_OK(ReadDirectoryManifest(local + "/" + kTop, &on_disk));
  ASSERT_OK(ReadDirectoryManifest(tree, &mounted));
  EXPECT_EQ(mounted.size(), on_disk.size());
  // GNU tar sets a directory's times when it leaves it, and the tarball
  // lists ".../perf/" before ".../perf-security.rst" before ".../perf/x":
  // tar leaves perf/ and comes back, which leaves the time of extraction on
  // perf/, on any file system. Those directories (the ones whose local copy
  // lacks the tarball's mtime) have no mtime to compare.
  std::set<std::string> quirks;
  for (auto& [path, e] : on_disk) {
    auto it = original.find(path);
    if (e.type != FileType::kDirectory || it == original.end() ||
        it->second.mtime.sec == e.mtime.sec || mounted.count(path) == 0) {
      continue;
    }
    e.mtime = mounted[path].mtime = it->second.mtime;
    quirks.insert(path);
  }
  std::cout << original.size() << " members, " << quirks.size()
            << " directories with GNU tar's extraction time\n";
  EXPECT_EQ(CompareManifests(on_disk, mounted, ManifestOptions(), /*strict=*/true),
            std::vector<std::string>{});
  ManifestOptions seconds;
  seconds.mtime_nsec = false;  // the Debian tarball keeps seconds
  EXPECT_EQ(CompareManifests(original, mounted, seconds, /*strict=*/false),
            std::vector<std::string>{});

  // Packed again from the mount, member by member.
  const std::string back = dir.path() + "/back.tar";
  ASSERT_EQ(RunCommand("tar -cf " + back + " -C " + mnt + " " + kTop, &out), 0) << out;
  ASSERT_OK(ReadTarballManifest(back, kTop, &packed));
  for (const std::string& path : quirks) {
    if (packed.count(path)) packed[path].mtime = mounted[path].mtime;
  }
  EXPECT_EQ(CompareManifests(original, packed, seconds, /*strict=*/false),
            std::vector<std::string>{});
  EXPECT_EQ(CompareManifests(mounted, packed, seconds, /*strict=*/true),
            std::vector<std::string>{});

  ASSERT_OK(fuse.Stop());
  EXPECT_EQ(RunCommand(std::string(KVFS_TOOL_BIN) + " fsck --db " + db, &out), 0) << out;
}

TEST(FuseLinuxTree, Subset) {
  ASSERT_TRUE(std::filesystem::exists(kLinuxSourceTarball))
      << kLinuxSourceTarball << " is missing: run ci/install-deps.sh (package linux-source-6.1)";
  TempDir dir("kvfs-fuse-linux-subset");
  const std::string subset = dir.path() + "/" + kTop + ".tar";
  ASSERT_OK(ingest_test::CopyTarballPrefix(kLinuxSourceTarball, subset, 8000));
  RoundTrip(subset, dir);
}

TEST(FuseLinuxTree, Full) {
  ASSERT_TRUE(std::filesystem::exists(kLinuxSourceTarball))
      << kLinuxSourceTarball << " is missing: run ci/install-deps.sh (package linux-source-6.1)";
  TempDir dir("kvfs-fuse-linux");
  RoundTrip(kLinuxSourceTarball, dir);
}

}  // namespace
}  // namespace kvfs::fuse_test
