// untar_ops_bench: what one untarred file costs the core, side by side in
// one run (docs/benchmarks.md, "Issue 17"), in three configurations:
//   location cache off   without the inode-location cache (before issue 17);
//   location cache on    with it: the server's configuration;
//   no syncs             with it, but FileSystemOptions::durable off: nothing
//                        waits for a WAL sync. Not a server mode (NFS's
//                        stable replies need the syncs); it measures what
//                        durability itself costs.
// Each of THREADS threads creates FILES / THREADS files in a
// directory of its own with the FSAL call sequence Ganesha makes for one
// file of an NFS untar: LOOKUP (a miss), CREATE, a FILE_SYNC WRITE of 8 KiB,
// SETATTRs of mode, owner and times, and a GETATTR after each change (what
// MDCACHE asks for) plus one. (Through NFS the first SETATTR was libnfs's
// truncate after an O_TRUNC create, which nfs_bench_client no longer makes:
// this sequence is kept so that the figures in docs/benchmarks.md compare.)
// Every mutation is durable (group commit), as in the server. Counts
// key/value reads, write batches and syncs per file (a counting wrapper
// around the store), the process's CPU per file, and its context switches
// per file (threads blocking and being woken: waiting for a sync, a lock, a
// write group).
// WRITE=unstable writes UNSTABLE and commits twice instead (FSAL commit2 is
// called twice per file in an NFSv3 untar: docs/benchmarks.md), which is
// where Fsync's skipping of covered commits shows.
//
//   untar_ops_bench DIR [FILES=20000] [THREADS=8] [ROUNDS=2] [WRITE=file_sync|unstable]
//
// DIR is emptied first; each round opens a fresh RocksDB store in it for
// each configuration, alternating them.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_program.h"
#include "bench/fresh_store.h"
#include "common/fs/file_system.h"
#include "common/kv/fault_injection_store.h"

namespace kvfs {
namespace {

using bench::Check;

bool unstable_writes = false;  // WRITE=unstable

void OneFile(FileSystem* fs, Ino dir, const std::string& name, const std::string& data) {
  Attributes a;
  Status miss = fs->Lookup(dir, name, &a);
  if (!miss.IsNotFound()) Check(miss.ok() ? Status::IOError("exists") : miss, "lookup " + name);
  Check(fs->Create(dir, name, NewObject{0600, 0, 0}, true, &a), "create " + name);
  const Ino ino = a.ino;
  Check(fs->GetAttr(ino, &a), "getattr");
  Check(fs->Write(ino, 0, data, unstable_writes ? Stability::kUnstable : Stability::kStable, &a),
        "write");
  Check(fs->GetAttr(ino, &a), "getattr");
  if (unstable_writes) {
    Check(fs->Fsync(ino), "commit");
    Check(fs->Fsync(ino), "commit");
  }
  SetAttrRequest mode, owner, times;
  mode.mode = 0644;
  owner.uid = 1000;
  owner.gid = 1000;
  times.mtime = times.atime = Timespec{1700000000, 0};
  for (const SetAttrRequest* r : {&mode, &owner, &times}) {
    Check(fs->SetAttr(ino, *r, &a), "setattr");
    Check(fs->GetAttr(ino, &a), "getattr");
  }
  Check(fs->GetAttr(ino, &a), "getattr");
}

// One configuration of the core, a row of the output table.
struct Config {
  const char* name;
  size_t location_cache_entries;
  bool durable;
};

void Run(const std::string& dir, const Config& config, int files, int threads) {
  auto counting = std::make_unique<FaultInjectionStore>(bench::OpenFreshRocksDB(dir));
  FaultInjectionStore* counter = counting.get();
  FileSystemOptions o;
  o.location_cache_entries = config.location_cache_entries;
  o.durable = config.durable;
  std::unique_ptr<FileSystem> fs;
  Check(FileSystem::Open(o, std::move(counting), &fs), "open file system");
  Attributes top;
  Check(fs->Mkdir(kRootIno, "top", NewObject{0755, 0, 0}, &top), "mkdir");
  std::vector<Ino> dirs(threads);
  for (int t = 0; t < threads; ++t) {
    Attributes d;
    Check(fs->Mkdir(top.ino, "d" + std::to_string(t), NewObject{0755, 0, 0}, &d), "mkdir");
    dirs[t] = d.ino;
  }
  using Op = FaultInjectionStore::Operation;
  const uint64_t gets = counter->CallCount(Op::kGet), batches = counter->CallCount(Op::kWrite),
                 syncs = counter->CallCount(Op::kSync);
  const double cpu = bench::ThisProcessCpuSeconds();
  const long switches = bench::ThisProcessContextSwitches();
  const auto start = std::chrono::steady_clock::now();
  const std::string data(8192, 'x');
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = t; i < files; i += threads) {
        OneFile(fs.get(), dirs[t], "f" + std::to_string(i), data);
      }
    });
  }
  for (auto& w : workers) w.join();
  const double wall = bench::SecondsSince(start);
  const double per = 1.0 / files;
  std::printf("| %s | %d | %.2f | %.1f | %.1f | %.2f | %.2f | %.2f |\n", config.name, files, wall,
              (bench::ThisProcessCpuSeconds() - cpu) * 1e6 * per,
              static_cast<double>(bench::ThisProcessContextSwitches() - switches) * per,
              (counter->CallCount(Op::kGet) - gets) * per,
              (counter->CallCount(Op::kWrite) - batches) * per,
              (counter->CallCount(Op::kSync) - syncs) * per);
  std::fflush(stdout);
}

}  // namespace
}  // namespace kvfs

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: untar_ops_bench DIR [FILES] [THREADS] [ROUNDS] [file_sync|unstable]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int files = argc > 2 ? std::atoi(argv[2]) : 20000;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 8;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 2;
  kvfs::unstable_writes = argc > 5 && std::string(argv[5]) == "unstable";
  std::printf(
      "| core | files | wall s | CPU us per file | context switches per file |"
      " key/value reads per file | write batches per file | syncs per file |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|\n");
  const size_t cache = kvfs::FileSystemOptions().location_cache_entries;
  const kvfs::Config configs[] = {{"location cache off (before)", 0, true},
                                  {"location cache on (the server)", cache, true},
                                  {"no syncs (not a server mode)", cache, false}};
  for (int r = 0; r < rounds; ++r) {
    for (const kvfs::Config& c : configs) kvfs::Run(dir, c, files, threads);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
