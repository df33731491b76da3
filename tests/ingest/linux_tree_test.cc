// Round trip of a real tree nobody here wrote: Debian's linux-source-6.1
// tarball (/usr/src/linux-source-6.1.tar.xz, from ci/install-deps.sh).
// Ingest it into RocksDB, check it against the tarball member by member
// (types, modes, owners, mtimes, sizes, contents, symlinks), fsck, export it
// as pax to a persistent store, compare again, evict it, load it back from
// the store, compare again, and evict it.
//
//   Full       the whole tarball (83,731 members, 1.3 GB; minutes: label long)
//   Subset     its first 8,000 members, rewritten into a new tarball with
//              libarchive (seconds: runs with the default tests)
//   SubsetThroughABucket   the same with the store in a bucket on radosgw
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/fs/fsck.h"
#include "ingest/ingest.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"
#include "tests/store/test_store.h"

namespace kvfs::ingest {
namespace {

using ingest_test::CompareManifests;
using ingest_test::KeysInRange;
using ingest_test::kLinuxSourceTarball;
using ingest_test::Manifest;
using ingest_test::ManifestOptions;
using ingest_test::OpenRocksFileSystem;
using ingest_test::ReadTarballManifest;
using ingest_test::ReadTreeManifest;
using kvfs::testing::TempDir;

constexpr char kName[] = "linux-source-6.1";

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void RoundTrip(const std::string& tarball, store_test::StoreKind kind) {
  ASSERT_TRUE(std::filesystem::exists(tarball))
      << tarball << " is missing: run ci/install-deps.sh (package linux-source-6.1)";
  TempDir dir("kvfs-linux");
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(OpenRocksFileSystem(dir.path() + "/db", &fs));
  StatFsInfo empty;
  ASSERT_OK(fs->StatFs(&empty));

  auto t0 = std::chrono::steady_clock::now();
  IngestOptions o;
  o.staging_dir = dir.path() + "/db/ingest-staging";
  o.name = kName;
  IngestStats stats;
  ASSERT_OK(IngestFile(fs.get(), tarball, o, &stats));
  std::cout << "ingest: " << Since(t0) << " s (build " << stats.build_seconds << ", load "
            << stats.load_seconds << ", publish " << stats.publish_seconds << "), "
            << stats.build.members << " members, " << stats.build.bytes << " bytes, "
            << stats.build.sort_runs << " sort runs\n";

  t0 = std::chrono::steady_clock::now();
  FsckReport report;
  ASSERT_OK(Fsck(fs->store(), DefaultNameHasher(), &report));
  ASSERT_TRUE(report.ok()) << report.problems.front();
  std::cout << "fsck: " << Since(t0) << " s\n";

  t0 = std::chrono::steady_clock::now();
  Manifest original, loaded, exported;
  ASSERT_OK(ReadTarballManifest(tarball, kName, &original));
  ASSERT_OK(ReadTreeManifest(fs.get(), kName, &loaded));
  ManifestOptions mo;
  mo.mtime_nsec = false;  // the Debian tarball keeps seconds
  EXPECT_EQ(CompareManifests(original, loaded, mo, false), std::vector<std::string>{});
  EXPECT_EQ(loaded.size(), stats.build.members - (original.count("") ? 0 : 0));
  std::cout << "compare: " << Since(t0) << " s, " << original.size() << " members\n";

  t0 = std::chrono::steady_clock::now();
  std::unique_ptr<store_test::TestStore> t;
  ASSERT_OK(store_test::TestStore::Create(kind, &t));
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(t->Open(&store));
  ExportStats es;
  ASSERT_OK(ExportTree(fs.get(), kName, store.get(), ExportOptions(), &es));
  std::cout << "export to " << t->url() << ": " << Since(t0) << " s, " << es.object_bytes
            << " bytes\n";
  std::string object;
  ASSERT_OK(t->Get(es.object, &object));
  EXPECT_EQ(object.size(), es.object_bytes);
  {
    std::ofstream copy(dir.path() + "/exported.tar", std::ios::binary);
    copy << object;
  }
  object.clear();
  ASSERT_OK(ReadTarballManifest(dir.path() + "/exported.tar", kName, &exported));
  EXPECT_EQ(CompareManifests(loaded, exported, ManifestOptions(), true),
            std::vector<std::string>{});
  EXPECT_EQ(CompareManifests(original, exported, mo, false), std::vector<std::string>{});

  EvictStats ev;
  ASSERT_OK(EvictTree(fs.get(), kName, &ev));
  EXPECT_EQ(KeysInRange(fs->store(), stats.range), 0u);

  // Loaded back from the store (streamed): the same tree.
  t0 = std::chrono::steady_clock::now();
  IngestStats again;
  o.name.clear();
  ASSERT_OK(IngestFromStore(fs.get(), store.get(), kName, o, &again));
  std::cout << "load from " << t->url() << ": " << Since(t0) << " s\n";
  Manifest reloaded;
  ASSERT_OK(ReadTreeManifest(fs.get(), kName, &reloaded));
  EXPECT_EQ(CompareManifests(loaded, reloaded, ManifestOptions(), true),
            std::vector<std::string>{});
  ASSERT_OK(EvictTree(fs.get(), kName, &ev));
  StatFsInfo after;
  ASSERT_OK(fs->StatFs(&after));
  EXPECT_EQ(after.used_bytes, empty.used_bytes);
  EXPECT_EQ(after.used_inodes, empty.used_inodes);
}

void SubsetRoundTrip(store_test::StoreKind kind) {
  TempDir dir("kvfs-linux-subset");
  const std::string subset = dir.path() + "/" + kName + ".tar";
  ASSERT_TRUE(std::filesystem::exists(kLinuxSourceTarball))
      << kLinuxSourceTarball << " is missing: run ci/install-deps.sh (package linux-source-6.1)";
  ASSERT_OK(ingest_test::CopyTarballPrefix(kLinuxSourceTarball, subset, 8000));
  RoundTrip(subset, kind);
}

TEST(LinuxTree, Subset) { SubsetRoundTrip(store_test::StoreKind::kPosix); }

TEST(LinuxTree, SubsetThroughABucket) { SubsetRoundTrip(store_test::StoreKind::kRadosgw); }

TEST(LinuxTree, Full) { RoundTrip(kLinuxSourceTarball, store_test::StoreKind::kPosix); }

}  // namespace
}  // namespace kvfs::ingest
