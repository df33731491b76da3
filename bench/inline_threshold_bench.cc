// Measures the inline threshold: how small-file contents stored inside the
// directory entry (inline) versus in the blocks column change the cost of
// writing a tree, listing it with attributes (readdirplus), reading every
// file back from a freshly opened store, and the store's size on disk.
//
// Usage: inline_threshold_bench [FILES] [DIR]
// Prints one table row per threshold (and two other block sizes), with
// ratios against threshold 4096 with 64 KiB blocks.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_program.h"
#include "bench/host_probe.h"
#include "common/fs/file_system.h"
#include "common/kv/rocksdb/rocksdb_store.h"

namespace kvfs {
namespace {

using bench::Check;
using bench::SecondsSince;

using bench::DiskUsage;
using bench::DropPageCache;

struct Result {
  bool cold = false;
  uint32_t threshold = 0;
  uint32_t block_size = 0;
  double write_s = 0, list_s = 0, read_s = 0;
  uint64_t disk_bytes = 0;
};

Result RunOne(uint32_t threshold, uint32_t block_size, const std::vector<size_t>& sizes,
              const std::filesystem::path& base) {
  const size_t kDirs = 20;
  auto path = base / ("t" + std::to_string(threshold) + "b" + std::to_string(block_size));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(base);
  FileSystemOptions fo;
  fo.inline_threshold = threshold;
  fo.block_size = block_size;
  fo.durable = false;
  RocksDBOptions ro;
  ro.path = path.string();
  Result r;
  r.threshold = threshold;
  r.block_size = block_size;
  {
    std::unique_ptr<KVStore> store;
    Check(OpenRocksDBStore(ro, &store), "open");
    std::unique_ptr<FileSystem> fs;
    Check(FileSystem::Open(fo, std::move(store), &fs), "fs open");
    Attributes top;
    Check(fs->Mkdir(kRootIno, "top", NewObject{0755, 0, 0}, &top), "mkdir");
    std::vector<Ino> dirs;
    for (size_t d = 0; d < kDirs; ++d) {
      Attributes a;
      Check(fs->Mkdir(top.ino, "d" + std::to_string(d), NewObject{0755, 0, 0}, &a), "mkdir");
      dirs.push_back(a.ino);
    }
    // Incompressible contents: random bytes, a different window per file.
    std::string data(1 << 20, '\0');
    std::mt19937_64 rng(threshold);
    for (auto& c : data) c = static_cast<char>(rng());
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < sizes.size(); ++i) {
      Attributes a;
      Check(fs->Create(dirs[i % kDirs], "f" + std::to_string(i), NewObject{0644, 0, 0}, true, &a),
            "create");
      size_t window = (i * 4099) % (data.size() - 65536);
      Check(fs->Write(a.ino, 0, std::string_view(data).substr(window, sizes[i]),
                      Stability::kUnstable, &a),
            "write");
    }
    Check(fs->Sync(), "sync");
    r.write_s = SecondsSince(t0);
  }
  // Reopen with a dropped page cache: nothing cached anywhere (needs root;
  // without it the reads are warm in the OS cache and the row says so).
  bool cold = DropPageCache();
  r.cold = cold;
  {
    std::unique_ptr<KVStore> store;
    Check(OpenRocksDBStore(ro, &store), "reopen");
    std::unique_ptr<FileSystem> fs;
    Check(FileSystem::Open(fo, std::move(store), &fs), "fs reopen");
    Attributes top;
    Check(fs->Lookup(kRootIno, "top", &top), "lookup");
    std::vector<Attributes> files;
    auto t1 = std::chrono::steady_clock::now();
    for (size_t d = 0; d < kDirs; ++d) {
      Attributes dir;
      Check(fs->Lookup(top.ino, "d" + std::to_string(d), &dir), "lookup");
      bool eof;
      Check(fs->ReadDir(
                dir.ino, kStartCookie,
                [&](const DirEntry& e) {
                  files.push_back(e.attrs);
                  return true;
                },
                &eof),
            "readdir");
    }
    r.list_s = SecondsSince(t1);
    auto t2 = std::chrono::steady_clock::now();
    uint64_t bytes = 0;
    std::string out;
    for (const auto& f : files) {
      bool eof;
      Check(fs->Read(f.ino, 0, f.size, &out, &eof), "read");
      bytes += out.size();
    }
    r.read_s = SecondsSince(t2);
    uint64_t want = 0;
    for (const auto& f : files) want += f.size;
    if (files.size() != sizes.size() || bytes != want) std::exit(1);
  }
  r.disk_bytes = DiskUsage(path.string());
  std::filesystem::remove_all(path);
  return r;
}

}  // namespace
}  // namespace kvfs

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 40000;
  std::filesystem::path base = argc > 2 ? argv[2] : "/tmp/kvfs_inline_bench";
  // File sizes like a source tree: log-normal, median 4 KB, 1 B .. 64 KB.
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> dist(std::log(4000.0), 1.2);
  std::vector<size_t> sizes(n);
  uint64_t total = 0;
  for (auto& s : sizes) {
    s = std::clamp<size_t>(static_cast<size_t>(dist(rng)), 1, 65536);
    total += s;
  }
  std::printf("files=%zu bytes=%lu (median ~4 KB, max 64 KB)\n\n", n,
              static_cast<unsigned long>(total));
  std::vector<kvfs::Result> results;
  for (uint32_t t : {0u, 1024u, 4096u, 16384u, 65536u}) {
    results.push_back(kvfs::RunOne(t, 65536, sizes, base));
  }
  // Block size, at the chosen threshold.
  for (uint32_t bs : {16384u, 262144u}) results.push_back(kvfs::RunOne(4096, bs, sizes, base));
  const kvfs::Result* ref = nullptr;
  for (auto& r : results)
    if (r.threshold == 4096 && r.block_size == 65536) ref = &r;
  std::printf(
      "| inline threshold | block size | write+sync s | cold list (readdirplus) s | cold read all "
      "s | disk MB |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (auto& r : results) {
    std::printf("| %u%s | %u | %.2f (%.2fx) | %.3f (%.2fx) | %.2f (%.2fx) | %.1f (%.2fx) |\n",
                r.threshold, r.cold ? "" : " (warm)", r.block_size, r.write_s,
                r.write_s / ref->write_s, r.list_s, r.list_s / ref->list_s, r.read_s,
                r.read_s / ref->read_s, r.disk_bytes / 1e6,
                static_cast<double>(r.disk_bytes) / ref->disk_bytes);
  }
  return 0;
}
