// Measures what loading RocksDB as a plugin costs: the same workload on a
// RocksDB store linked into this binary (OpenRocksDBStore, "direct") and on
// one opened by name through OpenKVStore (libkvfs-kv-rocksdb.so, "plugin").
//
// What it promises:
//   - Both variants get identical RocksDB options (block cache 64 MiB, the
//     rest default), a fresh store in a directory of their own under --dir,
//     and the same workload with the same random orders.
//   - The file system runs with durable=false, so per-operation fsyncs do
//     not hide CPU differences; the create phase ends with one Sync.
//   - Each round runs both variants, and the first of a round alternates
//     (direct+plugin, plugin+direct, ...): measured, whichever variant ran
//     second in a round was 10-25% slower on lookup, read and kv_get (the
//     first run's writeback and file deletion, machine drift), so an even
//     number of rounds (default 4) gives both variants each position equally
//     often. Each phase reports the median over the rounds.
//   - Every run (and the check below) is a fork of a parent that never
//     touched RocksDB, so each starts from the same process state (no heap,
//     caches or RocksDB threads left over); between runs the store is
//     deleted and sync() flushes what the run left dirty.
//   - Before measuring, it checks that the plugin store really is the
//     plugin's own copy of the RocksDB store code, not this binary's: its
//     type information lives in libkvfs-kv-rocksdb.so (the plugin is linked
//     with -Bsymbolic and loaded RTLD_LOCAL, so its calls bind to its own
//     copy even where symbols are exported), and that both stores report
//     Name() "rocksdb" and read back a write. Any failed operation or wrong
//     result aborts the run.
//
// Phases (timed separately):
//   create   N files of 1 KiB in 100 directories (Create + Write), then Sync
//   lookup   N Lookup + GetAttr, in random order
//   read     read every file (random order), checking its contents
//   readdir  list every directory, checking the entry count
//   kv_get   --gets Get calls on existing keys (inodes column) through the
//            KVStore interface, in random order
//
// Usage: kv_plugin_overhead_bench [--files N] [--rounds R] [--gets G] [--dir DIR]
// Defaults: 100000 files, 4 rounds, 1000000 gets, $TMPDIR or /tmp.
// Prints a table (median seconds per variant, ratio plugin/direct) and one
// JSON line per phase.
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <typeinfo>
#include <vector>

#include "bench/bench_program.h"
#include "common/fs/file_system.h"
#include "common/kv/kv_backend.h"
#include "common/kv/rocksdb/rocksdb_store.h"

namespace kvfs {
namespace {

using bench::Check;

constexpr size_t kDirs = 100;
constexpr size_t kFileBytes = 1024;
constexpr size_t kBlockCacheBytes = 64 << 20;
const char* const kPhases[] = {"create", "lookup", "read", "readdir", "kv_get"};
constexpr size_t kNumPhases = std::size(kPhases);

struct Config {
  size_t files = 100000;
  int rounds = 4;
  size_t gets = 1000000;
  std::filesystem::path dir;
};

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "check failed: %s\n", what);
    std::exit(1);
  }
}

class Timer {
 public:
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Opens a fresh store at `path`, directly or through the plugin loader.
std::unique_ptr<KVStore> OpenStore(bool plugin, const std::string& path) {
  std::unique_ptr<KVStore> store;
  if (plugin) {
    KVStoreSpec spec;
    spec.path = path;
    spec.backend = "rocksdb";
    spec.options["block_cache_bytes"] = std::to_string(kBlockCacheBytes);
    Check(OpenKVStore(spec, &store), "open (plugin)");
  } else {
    RocksDBOptions o;
    o.path = path;
    o.block_cache_bytes = kBlockCacheBytes;
    Check(OpenRocksDBStore(o, &store), "open (direct)");
  }
  return store;
}

// The file (this binary or a shared library) holding the code of the
// store's dynamic type, found from its type_info object.
std::string CodeFileOf(const KVStore& store) {
  const std::type_info& type = typeid(store);
  Dl_info info;
  if (dladdr(&type, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

// Confirms the two variants really run different copies of the store code:
// the direct store's type lives in this binary, the plugin's in the plugin.
void CheckVariants(const std::filesystem::path& base) {
  std::string where[2];
  for (int plugin = 0; plugin < 2; ++plugin) {
    auto path = base / (plugin ? "check-plugin" : "check-direct");
    {
      auto store = OpenStore(plugin, path.string());
      Require(store->Name() == "rocksdb", "store Name() is \"rocksdb\"");
      Check(store->Put(Column::kMeta, "k", "v"), "put");
      std::string v;
      Check(store->Get(Column::kMeta, "k", &v), "get");
      Require(v == "v", "value read back");
      where[plugin] = CodeFileOf(*store);
      std::printf("%-6s store: Name()=%s, code in %s\n", plugin ? "plugin" : "direct",
                  store->Name().c_str(), where[plugin].c_str());
    }
    std::filesystem::remove_all(path);
  }
  Require(where[0] != where[1], "direct and plugin stores run different copies of the code");
  Require(where[1].ends_with("/libkvfs-kv-rocksdb.so"), "plugin store code is in the plugin");
}

std::string FileName(size_t i) { return "f" + std::to_string(i); }

// Contents of file i: 1 KiB whose bytes depend on i, so reads can be checked.
std::string Contents(size_t i) { return std::string(kFileBytes, static_cast<char>('a' + i % 26)); }

// Runs `fn` in a child process and returns the `count` seconds it reports.
// Exits if the child fails.
std::vector<double> InChild(size_t count, const std::function<std::vector<double>()>& fn) {
  std::fflush(stdout);
  std::fflush(stderr);
  int fds[2];
  Require(pipe(fds) == 0, "pipe");
  pid_t pid = fork();
  Require(pid >= 0, "fork");
  if (pid == 0) {
    close(fds[0]);
    std::vector<double> t = fn();
    std::fflush(stdout);
    auto bytes = static_cast<ssize_t>(t.size() * sizeof(double));
    _exit(write(fds[1], t.data(), bytes) == bytes ? 0 : 1);
  }
  close(fds[1]);
  std::vector<double> t(count);
  size_t got = 0;
  char* buf = reinterpret_cast<char*>(t.data());
  for (ssize_t n; (n = read(fds[0], buf + got, count * sizeof(double) - got)) > 0;) got += n;
  close(fds[0]);
  int status = 0;
  Require(waitpid(pid, &status, 0) == pid, "waitpid");
  Require(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the run in the child process succeeded");
  Require(got == count * sizeof(double), "the child reported every phase");
  return t;
}

// Runs every phase once on a fresh store at `path`; seconds per phase.
std::vector<double> RunOnce(bool plugin, const Config& cfg, const std::filesystem::path& path) {
  std::vector<double> t(kNumPhases);
  FileSystemOptions fo;
  fo.durable = false;
  std::unique_ptr<FileSystem> fs;
  Check(FileSystem::Open(fo, OpenStore(plugin, path.string()), &fs), "fs open");

  // One top-level directory (one inode range) holding the 100 directories.
  Attributes top;
  Check(fs->Mkdir(kRootIno, "top", NewObject{0755, 0, 0}, &top), "mkdir top");
  std::vector<Ino> dirs(kDirs);
  for (size_t d = 0; d < kDirs; ++d) {
    Attributes a;
    Check(fs->Mkdir(top.ino, "d" + std::to_string(d), NewObject{0755, 0, 0}, &a), "mkdir");
    dirs[d] = a.ino;
  }
  std::vector<std::string> contents(26);
  for (size_t c = 0; c < contents.size(); ++c) contents[c] = Contents(c);
  // The same random order of files for every variant and round.
  std::vector<size_t> order(cfg.files);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));

  std::vector<Ino> inos(cfg.files);
  {
    Timer timer;
    for (size_t i = 0; i < cfg.files; ++i) {
      Attributes a;
      Check(fs->Create(dirs[i % kDirs], FileName(i), NewObject{0644, 0, 0}, true, &a), "create");
      Check(fs->Write(a.ino, 0, contents[i % 26], Stability::kUnstable, &a), "write");
      inos[i] = a.ino;
    }
    Check(fs->Sync(), "sync");
    t[0] = timer.Seconds();
  }
  {
    Timer timer;
    for (size_t i : order) {
      Attributes a, b;
      Check(fs->Lookup(dirs[i % kDirs], FileName(i), &a), "lookup");
      Check(fs->GetAttr(a.ino, &b), "getattr");
      Require(b.ino == inos[i] && b.size == kFileBytes, "lookup finds the file");
    }
    t[1] = timer.Seconds();
  }
  {
    Timer timer;
    std::string out;
    for (size_t i : order) {
      bool eof = false;
      Check(fs->Read(inos[i], 0, kFileBytes, &out, &eof), "read");
      Require(out == contents[i % 26], "file contents read back");
    }
    t[2] = timer.Seconds();
  }
  {
    Timer timer;
    size_t entries = 0;
    for (Ino dir : dirs) {
      bool eof = false;
      Check(fs->ReadDir(
                dir, kStartCookie,
                [&](const DirEntry&) {
                  ++entries;
                  return true;
                },
                &eof),
            "readdir");
      Require(eof, "readdir reaches the end");
    }
    Require(entries == cfg.files, "readdir lists every file");
    t[3] = timer.Seconds();
  }
  {
    // Every key of the inodes column (one per object), then random Gets.
    KVStore* store = fs->store();
    std::vector<std::string> keys;
    auto it = store->NewIterator(Column::kInodes, IteratorOptions());
    for (it->Seek(""); it->Valid(); it->Next()) keys.emplace_back(it->key());
    Check(it->status(), "iterate");
    it.reset();
    Require(keys.size() >= cfg.files, "inodes column holds every file");
    std::mt19937_64 rng(7);
    std::vector<uint32_t> picks(cfg.gets);
    for (auto& p : picks) p = static_cast<uint32_t>(rng() % keys.size());
    Timer timer;
    std::string value;
    size_t bytes = 0;
    for (uint32_t p : picks) {
      Check(store->Get(Column::kInodes, keys[p], &value), "get");
      bytes += value.size();
    }
    t[4] = timer.Seconds();
    Require(bytes > 0, "gets return values");
  }
  return t;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string JsonList(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.4f", i ? "," : "", v[i]);
    s += buf;
  }
  return s + "]";
}

void Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--files N] [--rounds R] [--gets G] [--dir DIR]\n", argv0);
  std::exit(2);
}

Config ParseArgs(int argc, char** argv) {
  Config cfg;
  const char* tmp = std::getenv("TMPDIR");
  cfg.dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) Usage(argv[0]);
    const char* value = argv[++i];
    if (arg == "--files") {
      cfg.files = std::strtoul(value, nullptr, 10);
    } else if (arg == "--rounds") {
      cfg.rounds = std::atoi(value);
    } else if (arg == "--gets") {
      cfg.gets = std::strtoul(value, nullptr, 10);
    } else if (arg == "--dir") {
      cfg.dir = value;
    } else {
      Usage(argv[0]);
    }
  }
  if (cfg.files == 0 || cfg.rounds <= 0) Usage(argv[0]);
  return cfg;
}

int Main(int argc, char** argv) {
  Config cfg = ParseArgs(argc, argv);
  std::filesystem::create_directories(cfg.dir);
  std::string templ = (cfg.dir / "kv_plugin_overhead.XXXXXX").string();
  Require(mkdtemp(templ.data()) != nullptr, "mkdtemp under --dir");
  std::filesystem::path base = templ;

  std::printf("files=%zu x %zu B in %zu dirs, gets=%zu, rounds=%d, dir=%s\n", cfg.files, kFileBytes,
              kDirs, cfg.gets, cfg.rounds, base.c_str());
  InChild(0, [&] {
    CheckVariants(base);
    return std::vector<double>();
  });

  // times[variant][phase] = seconds of each round; variant 0 direct, 1 plugin.
  std::vector<double> times[2][kNumPhases];
  for (int r = 0; r < cfg.rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      int plugin = (r + k) % 2;  // direct first in odd rounds, plugin first in even ones
      auto path = base / ((plugin ? "plugin" : "direct") + std::to_string(r));
      std::vector<double> t = InChild(kNumPhases, [&] { return RunOnce(plugin, cfg, path); });
      std::filesystem::remove_all(path);
      sync();
      std::printf("round %d %-6s", r + 1, plugin ? "plugin" : "direct");
      for (size_t p = 0; p < kNumPhases; ++p) {
        std::printf("  %s %.3f", kPhases[p], t[p]);
        times[plugin][p].push_back(t[p]);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  std::filesystem::remove_all(base);

  std::printf("\n| phase | direct s | plugin s | plugin/direct |\n|---|---|---|---|\n");
  for (size_t p = 0; p < kNumPhases; ++p) {
    double d = Median(times[0][p]), g = Median(times[1][p]);
    std::printf("| %s | %.3f | %.3f | %.3f |\n", kPhases[p], d, g, g / d);
  }
  std::printf("\n");
  for (size_t p = 0; p < kNumPhases; ++p) {
    double d = Median(times[0][p]), g = Median(times[1][p]);
    std::printf(
        "{\"bench\":\"kv_plugin_overhead\",\"phase\":\"%s\",\"files\":%zu,\"gets\":%zu,"
        "\"rounds\":%d,\"direct_s\":%.4f,\"plugin_s\":%.4f,\"ratio\":%.4f,"
        "\"direct_rounds\":%s,\"plugin_rounds\":%s}\n",
        kPhases[p], cfg.files, cfg.gets, cfg.rounds, d, g, g / d, JsonList(times[0][p]).c_str(),
        JsonList(times[1][p]).c_str());
  }
  return 0;
}

}  // namespace
}  // namespace kvfs

int main(int argc, char** argv) { return kvfs::Main(argc, argv); }
