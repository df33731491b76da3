// bigdir_core_bench: how the core's CPU per create grows while one directory
// fills to FILES entries, with the inode-location cache off and on, side by
// side in one run (docs/benchmarks.md, "Issue 17"). It separates the core
// from Ganesha in the 1M-entry directory target ("the last 100K creates no
// slower than 1.1x the second 100K").
//
// Each create is what Ganesha asks of the FSAL for an NFS CREATE: a LOOKUP
// (a miss), CREATE, and a GETATTR of the file and of the directory. One
// thread, durable off: a WAL sync costs the same at any directory size, and
// without the syncs the growth is not hidden behind them. Prints the
// process's CPU per create (RocksDB's background compaction included) in each
// tenth of the run, and the last tenth over the second.
//
//   bigdir_core_bench DIR [FILES=1000000] [ROUNDS=2]
//
// DIR is emptied first; each round opens a fresh RocksDB store in it for each
// configuration, alternating them.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "bench/bench_program.h"
#include "bench/fresh_store.h"
#include "common/fs/file_system.h"

namespace kvfs {
namespace {

using bench::Check;

void Run(const std::string& dir, const char* name, size_t location_cache_entries, int files) {
  std::unique_ptr<KVStore> store = bench::OpenFreshRocksDB(dir);
  FileSystemOptions o;
  o.location_cache_entries = location_cache_entries;
  o.durable = false;
  std::unique_ptr<FileSystem> fs;
  Check(FileSystem::Open(o, std::move(store), &fs), "open file system");
  Attributes big;
  Check(fs->Mkdir(kRootIno, "big", NewObject{0755, 0, 0}, &big), "mkdir");

  const int tenth = files / 10;
  double tenths_us[10];
  const auto start = std::chrono::steady_clock::now();
  double cpu = bench::ThisProcessCpuSeconds();
  for (int i = 0; i < tenth * 10; ++i) {
    const std::string file = "f" + std::to_string(i);
    Attributes a;
    Status miss = fs->Lookup(big.ino, file, &a);
    if (!miss.IsNotFound()) Check(miss.ok() ? Status::IOError("exists") : miss, "lookup " + file);
    Check(fs->Create(big.ino, file, NewObject{0644, 0, 0}, true, &a), "create " + file);
    Check(fs->GetAttr(a.ino, &a), "getattr " + file);
    Check(fs->GetAttr(big.ino, &a), "getattr of the directory");
    if ((i + 1) % tenth == 0) {
      const double now = bench::ThisProcessCpuSeconds();
      tenths_us[i / tenth] = (now - cpu) * 1e6 / tenth;
      cpu = now;
    }
  }
  const double wall = bench::SecondsSince(start);
  std::printf("| %s | %d | %.1f |", name, tenth * 10, wall);
  for (double us : tenths_us) std::printf(" %.1f", us);
  std::printf(" | %.2f |\n", tenths_us[9] / tenths_us[1]);
  std::fflush(stdout);
}

}  // namespace
}  // namespace kvfs

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bigdir_core_bench DIR [FILES] [ROUNDS]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int files = argc > 2 ? std::atoi(argv[2]) : 1000000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 2;
  if (files < 10) kvfs::bench::Die("FILES must be at least 10");
  std::printf(
      "| location cache | files | wall s | CPU us per create, each tenth | last / 2nd |\n"
      "|---|---:|---:|---|---:|\n");
  const size_t cache = kvfs::FileSystemOptions().location_cache_entries;
  for (int r = 0; r < rounds; ++r) {
    kvfs::Run(dir, "off", 0, files);
    kvfs::Run(dir, "on (the server)", cache, files);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
