// cache_listing_bench: how quickly the cache manager shows a persistent store
// of many tarballs (docs/cache.md), against listing the store's directory
// with plain POSIX calls in the same run.
//
//   cache_listing_bench --dir=DIR [--tarballs=100000] [--rounds=3]
//
// Makes DIR/store with N tarball objects (empty files: a listing never opens
// them) and times, per round:
//   posix_list     readdir + stat of the N objects (the baseline: what any
//                  listing of the store costs)
//   store_list     PersistentStore::List (the same, sorted)
//   first_open     TreeCache::Open on a fresh RocksDB store: adds N stubs
//   refresh        Refresh with nothing changed (the periodic listing)
//   root_readdir   ReadDir of the root through the cache: N entries with
//                  their attributes (what an NFS READDIRPLUS of the export's
//                  root reads)
//   reopen         TreeCache::Open of the existing store (a server restart)
// and prints one JSON line per phase and round, then the ratios of the
// medians: refresh / posix_list and root_readdir / posix_list.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_cache.h"
#include "bench/bench_program.h"
#include "cache/tree_cache.h"
#include "common/kv/kv_backend.h"
#include "store/store.h"

namespace kvfs {
namespace {

using bench::Die;
using bench::SecondsSince;

using Clock = std::chrono::steady_clock;

// readdir + stat of every entry of `dir`; the number of entries.
size_t PosixList(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) Die("opendir " + dir, Status::FromErrno(errno, dir));
  size_t n = 0;
  while (struct dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) ++n;
  }
  closedir(d);
  return n;
}

Status OpenCache(const std::string& dir, std::unique_ptr<cache::TreeCache>* out) {
  std::unique_ptr<ingest::PersistentStore> store;
  KVFS_RETURN_IF_ERROR(kvfs::store::OpenStore(kvfs::store::StoreAt(dir + "/store"), &store));
  return bench::OpenBenchCache(dir, std::move(store), out);
}

void Report(std::map<std::string, std::vector<double>>* times, const std::string& phase,
            size_t entries, double seconds, int round) {
  (*times)[phase].push_back(seconds);
  std::printf(
      "{\"phase\": \"%s\", \"round\": %d, \"entries\": %zu, \"seconds\": %.4f, "
      "\"entries_per_second\": %.0f}\n",
      phase.c_str(), round, entries, seconds, entries / seconds);
  std::fflush(stdout);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Main(int argc, char** argv) {
  std::string dir;
  size_t n = 100000;
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.starts_with("--dir=")) {
      dir = a.substr(6);
    } else if (a.starts_with("--tarballs=")) {
      n = std::strtoull(a.c_str() + 11, nullptr, 10);
    } else if (a.starts_with("--rounds=")) {
      rounds = std::atoi(a.c_str() + 9);
    } else {
      std::fprintf(stderr, "usage: cache_listing_bench --dir=DIR [--tarballs=N] [--rounds=R]\n");
      return 2;
    }
  }
  if (dir.empty() || n == 0 || rounds < 1) {
    std::fprintf(stderr, "usage: cache_listing_bench --dir=DIR [--tarballs=N] [--rounds=R]\n");
    return 2;
  }
  const std::string store = dir + "/store";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(store);
  for (size_t i = 0; i < n; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "/run-%07zu.tar", i);
    int fd = open((store + name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) Die("create", Status::FromErrno(errno, name));
    close(fd);
  }
  std::map<std::string, std::vector<double>> times;
  for (int round = 0; round < rounds; ++round) {
    std::filesystem::remove_all(dir + "/db");
    Clock::time_point t0 = Clock::now();
    size_t listed = PosixList(store);
    Report(&times, "posix_list", listed, SecondsSince(t0), round);

    std::unique_ptr<ingest::PersistentStore> ps;
    if (Status s = kvfs::store::OpenStore(kvfs::store::StoreAt(store), &ps); !s.ok())
      Die("store", s);
    std::vector<ingest::ObjectInfo> objects;
    t0 = Clock::now();
    if (Status s = ps->List(&objects); !s.ok()) Die("list", s);
    Report(&times, "store_list", objects.size(), SecondsSince(t0), round);

    std::unique_ptr<cache::TreeCache> cache;
    t0 = Clock::now();
    if (Status s = OpenCache(dir, &cache); !s.ok()) Die("open", s);
    Report(&times, "first_open", n, SecondsSince(t0), round);

    t0 = Clock::now();
    if (Status s = cache->Refresh(); !s.ok()) Die("refresh", s);
    Report(&times, "refresh", n, SecondsSince(t0), round);

    size_t entries = 0;
    uint64_t cookie = kStartCookie;
    t0 = Clock::now();
    for (bool eof = false; !eof;) {
      Status s = cache->ReadDir(
          kRootIno, cookie,
          [&](const DirEntry& e) {
            cookie = e.cookie;
            ++entries;
            return true;
          },
          &eof);
      if (!s.ok()) Die("readdir", s);
    }
    Report(&times, "root_readdir", entries, SecondsSince(t0), round);
    if (entries != n) Die("readdir", Status::IOError("listed " + std::to_string(entries)));

    cache.reset();
    t0 = Clock::now();
    if (Status s = OpenCache(dir, &cache); !s.ok()) Die("reopen", s);
    Report(&times, "reopen", n, SecondsSince(t0), round);
  }
  const double posix = Median(times["posix_list"]);
  std::printf(
      "{\"tarballs\": %zu, \"refresh_over_posix_list\": %.2f, "
      "\"root_readdir_over_posix_list\": %.2f, \"first_open_over_posix_list\": %.2f, "
      "\"reopen_over_posix_list\": %.2f}\n",
      n, Median(times["refresh"]) / posix, Median(times["root_readdir"]) / posix,
      Median(times["first_open"]) / posix, Median(times["reopen"]) / posix);
  return 0;
}

}  // namespace
}  // namespace kvfs

int main(int argc, char** argv) { return kvfs::Main(argc, argv); }
