// The server's memory stays bounded by its configuration under the biggest
// single workloads a client can ask for: ganesha.nfsd with FSAL_KVFS under a
// 2 GiB data limit (RLIMIT_DATA), with the sample configuration's MDCACHE
// limits (without them the listing below grows the server to 2 GiB), over a
// persistent store holding
//   - a tree with a directory of 1,000,000 entries: loaded on first touch (a
//     million-file load), listed whole over NFSv3 and NFSv4;
//   - a tree with a directory of 100,000 files, removed entry by entry by
//     four clients at once (rm -rf).
// The daemon must survive all of it; its peak resident and data sizes are
// printed (docs/limits.md keeps the numbers).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
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
using e2e::NfsVersion;
using ingest_test::File;
using ingest_test::Spec;
using ingest_test::TarFormat;
using ingest_test::WriteTarball;

constexpr uint64_t kDataLimit = 2ull << 30;
constexpr int kHugeEntries = 1000000;
constexpr int kRemovedEntries = 100000;
constexpr int kRemovers = 4;

std::string Name(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "f%07d", i);
  return buf;
}

// "VmHWM" (peak resident) and "VmData" of process `pid`, in bytes.
uint64_t ProcStatus(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) << 10;
  }
  return 0;
}

TEST(Memory, MillionEntryDirectoryAndMassRemoval) {
  TempDir dir;
  const std::string store = dir.path() + "/store";
  ASSERT_EQ(::mkdir(store.c_str(), 0755), 0);
  {
    std::vector<Spec> huge;
    huge.reserve(kHugeEntries);
    for (int i = 0; i < kHugeEntries; ++i) huge.push_back(File("huge/d/" + Name(i), ""));
    WriteTarball(store + "/huge.tar.zst", huge, TarFormat::kUstar, ingest::Compression::kZstd);
    std::vector<Spec> many;
    for (int i = 0; i < kRemovedEntries; ++i) {
      many.push_back(File("many/d/" + Name(i), std::string(100 + i % 900, 'x')));
    }
    WriteTarball(store + "/many.tar.zst", many, TarFormat::kUstar, ingest::Compression::kZstd);
  }

  KvfsExport e;
  e.db_path = dir.path() + "/db";
  e.fsal_extra = "persistent_store = \"" + store + "\";";
  e2e::GaneshaOptions opts = KvfsServerOptions({e});
  opts.data_limit_bytes = kDataLimit;
  // The sample configuration's limits (config/ganesha.conf).
  opts.extra_config = SampleMdcacheBlock();
  ASSERT_NE(opts.extra_config.find("Chunks_HWMark"), std::string::npos) << opts.extra_config;
  GaneshaServer server(opts);
  Status s = server.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();

  // The first touch loads the million-entry tree (the LOOKUP waits for the
  // load: a minute is allowed); then both protocols list the directory whole.
  e2e::NfsClientOptions patient;
  patient.timeout_ms = 120000;
  for (NfsVersion v : {NfsVersion::kV3, NfsVersion::kV4}) {
    NfsClient c(v, patient);
    ASSERT_EQ(c.Mount("/kvfs"), 0) << c.LastError();
    std::vector<std::string> names;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(c.ListDir("/huge/d", &names), 0) << c.LastError();
    std::printf("%s: listed %zu names in %.1f s\n", e2e::NfsVersionName(v), names.size(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    size_t files = 0;
    for (const std::string& n : names) files += n != "." && n != "..";
    EXPECT_EQ(files, static_cast<size_t>(kHugeEntries)) << e2e::NfsVersionName(v);
    ASSERT_TRUE(server.running()) << server.exit_description() << "\n" << server.LogTail();
  }

  // rm -rf of a 100,000-entry directory by four clients at once.
  std::atomic<int> failures{0};
  std::vector<std::thread> removers;
  for (int r = 0; r < kRemovers; ++r) {
    removers.emplace_back([&, r] {
      NfsClient c(r % 2 == 0 ? NfsVersion::kV3 : NfsVersion::kV4);
      if (c.Mount("/kvfs") != 0) {
        ++failures;
        return;
      }
      for (int i = r; i < kRemovedEntries; i += kRemovers) {
        if (c.Unlink("/many/d/" + Name(i)) != 0) ++failures;
      }
    });
  }
  for (std::thread& t : removers) t.join();
  EXPECT_EQ(failures.load(), 0);
  NfsClient c(NfsVersion::kV3);
  ASSERT_EQ(c.Mount("/kvfs"), 0);
  EXPECT_EQ(c.Rmdir("/many/d"), 0) << c.LastError();

  ASSERT_TRUE(server.running()) << server.exit_description() << "\n" << server.LogTail();
  std::printf("ganesha.nfsd peak resident %llu MiB, data %llu MiB (limit %llu MiB)\n",
              static_cast<unsigned long long>(ProcStatus(server.pid(), "VmHWM") >> 20),
              static_cast<unsigned long long>(ProcStatus(server.pid(), "VmData") >> 20),
              static_cast<unsigned long long>(kDataLimit >> 20));
  EXPECT_TRUE(server.Stop().ok()) << server.LogTail();
}

}  // namespace
}  // namespace kvfs::fsal_test
