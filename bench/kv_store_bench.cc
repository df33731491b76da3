// The direct (no NFS) half of the key/value store evaluation
// (bench/kv_stores.sh, docs/kv-stores.md): runs the same file system
// workloads on one backend and prints one JSON line per phase.
//
// Usage: kv_store_bench --backend=NAME --dir=DIR --tarball=FILE.tar
//                       [--medium=LABEL] [--hugedir=N] [--threads=T]
//                       [--lookups=N] [--file-bytes=B|MIN-MAX]
//                       [--phases=ingest,stat,read,hugedir,reopen,evict]
//
// Phases, each on the store in DIR/db (created fresh):
//   ingest   kvfs-ingest's code path (IngestFile) loads the tarball as /linux
//   stat     after a restart (store closed, page cache dropped): GetAttr of
//            every entry of the tree, found by walking it with ReadDir
//   read     after another restart: every file read whole; the xxh3 sum of
//            all contents is printed so runs on different backends can be
//            compared
//   hugedir  T threads create N files (of --file-bytes bytes, default 0, or
//            MIN-MAX: a size drawn per file, seeded by its number; each
//            written in the same durable step) in one directory with the
//            server's durability (every create durable, group commit), then
//            one thread lists it (ReadDir pages) and looks up --lookups
//            random names
//   reopen   the store closed and opened again (the backend settles: RocksDB
//            flushes what its write-ahead log held), for the settled size
//   evict    the ingested tree dropped again (kvfs-evict's code path: range
//            deletes, emulated key by key where the backend lacks them)
// Each line carries the seconds, the bytes this process wrote to the block
// device during the phase (/proc/self/io write_bytes: 0 on tmpfs), the
// store's size on disk and the process's peak resident memory so far.
// Dropping the page cache needs root; without it the restarts are warm and
// the lines say "cold": false.
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_program.h"
#include "bench/host_probe.h"
#include "common/fs/file_system.h"
#include "common/kv/kv_backend.h"
#include "ingest/ingest.h"

namespace kvfs::bench {
namespace {

struct Flags {
  std::string backend = "rocksdb";
  std::string dir;
  std::string tarball;
  std::string medium = "disk";
  uint64_t hugedir = 1000000;
  int threads = 32;
  uint64_t lookups = 100000;
  // Size of each hugedir file: drawn uniformly from [min, max] per file.
  uint64_t file_bytes_min = 0;
  uint64_t file_bytes_max = 0;
  std::string phases = "ingest,stat,read,hugedir,reopen,evict";

  // True if `phase` is in --phases.
  bool Runs(const std::string& phase) const {
    return ("," + phases + ",").find("," + phase + ",") != std::string::npos;
  }
};

// A number from /proc/self/<file>'s line "<key> <value>...".
uint64_t ProcValue(const char* file, const std::string& key) {
  std::ifstream in(std::string("/proc/self/") + file);
  std::string k;
  uint64_t v = 0;
  while (in >> k) {
    if (k == key) {
      in >> v;
      return v;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

// Times one phase and prints its JSON line.
class Phase {
 public:
  Phase(const Flags& flags, const char* name) : flags_(flags), name_(name) {
    io_before_ = ProcValue("io", "write_bytes:");
    start_ = std::chrono::steady_clock::now();
  }
  // Ends the phase: `items` done, `bytes` of contents, extra JSON fields.
  void End(uint64_t items, uint64_t bytes, bool cold, const std::string& extra = "") {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    uint64_t written = ProcValue("io", "write_bytes:") - io_before_;
    std::printf(
        "{\"backend\": \"%s\", \"medium\": \"%s\", \"phase\": \"%s\", \"items\": %llu, "
        "\"bytes\": %llu, \"seconds\": %.3f, \"items_per_s\": %.1f, \"cold\": %s, "
        "\"disk_write_bytes\": %llu, \"store_bytes\": %llu, \"peak_rss_kb\": %llu%s}\n",
        flags_.backend.c_str(), flags_.medium.c_str(), name_,
        static_cast<unsigned long long>(items), static_cast<unsigned long long>(bytes), s,
        s > 0 ? items / s : 0.0, cold ? "true" : "false", static_cast<unsigned long long>(written),
        static_cast<unsigned long long>(DiskUsage(flags_.dir + "/db")),
        static_cast<unsigned long long>(ProcValue("status", "VmHWM:")), extra.c_str());
    std::fflush(stdout);
  }

 private:
  const Flags& flags_;
  const char* name_;
  uint64_t io_before_ = 0;
  std::chrono::steady_clock::time_point start_;
};

std::unique_ptr<FileSystem> OpenFs(const Flags& flags) {
  KVStoreSpec spec;
  spec.path = flags.dir + "/db";
  spec.backend = flags.backend;
  std::unique_ptr<KVStore> store;
  Check(OpenKVStore(spec, &store), "open " + spec.path);
  std::unique_ptr<FileSystem> fs;
  Check(FileSystem::Open(FileSystemOptions(), std::move(store), &fs), "open file system");
  return fs;
}

// Every entry below `top` (directories first), by ReadDir.
std::vector<Attributes> Walk(FileSystem* fs, Ino top) {
  std::vector<Attributes> all;
  std::deque<Ino> dirs = {top};
  while (!dirs.empty()) {
    Ino d = dirs.front();
    dirs.pop_front();
    uint64_t cookie = kFirstCookie;
    bool eof = false;
    while (!eof) {
      Check(fs->ReadDir(
                d, cookie,
                [&](const DirEntry& e) {
                  cookie = e.cookie;
                  all.push_back(e.attrs);
                  if (e.attrs.type == FileType::kDirectory) dirs.push_back(e.attrs.ino);
                  return true;
                },
                &eof),
            "readdir");
    }
  }
  return all;
}

Ino TreeRoot(FileSystem* fs) {
  Attributes a;
  Check(fs->Lookup(kRootIno, "linux", &a), "lookup /linux");
  return a.ino;
}

void IngestPhase(const Flags& flags) {
  auto fs = OpenFs(flags);
  ingest::IngestOptions o;
  o.name = "linux";
  o.staging_dir = flags.dir + "/db/staging";
  ingest::IngestStats st;
  Phase p(flags, "ingest");
  Check(ingest::IngestFile(fs.get(), flags.tarball, o, &st), "ingest " + flags.tarball);
  Check(fs->Sync(), "sync");
  p.End(st.build.members, st.build.bytes, false,
        ", \"archive_bytes\": " + std::to_string(st.archive_bytes));
}

void StatPhase(const Flags& flags) {
  bool cold = DropPageCache();
  auto fs = OpenFs(flags);
  Phase p(flags, "stat");
  std::vector<Attributes> all = Walk(fs.get(), TreeRoot(fs.get()));
  for (const Attributes& e : all) {
    Attributes a;
    Check(fs->GetAttr(e.ino, &a), "getattr");
  }
  p.End(all.size(), 0, cold);
}

void ReadPhase(const Flags& flags) {
  bool cold = DropPageCache();
  auto fs = OpenFs(flags);
  Phase p(flags, "read");
  uint64_t files = 0, bytes = 0, sum = 0;
  std::string buf;
  for (const Attributes& e : Walk(fs.get(), TreeRoot(fs.get()))) {
    if (e.type != FileType::kRegular) continue;
    ++files;
    uint64_t off = 0;
    XXH3_state_t* h = XXH3_createState();
    XXH3_64bits_reset(h);
    for (bool eof = e.size == 0; !eof;) {
      Check(fs->Read(e.ino, off, 1 << 20, &buf, &eof), "read");
      XXH3_64bits_update(h, buf.data(), buf.size());
      off += buf.size();
      if (buf.empty()) break;
    }
    sum += XXH3_64bits_digest(h);  // order-independent over files
    XXH3_freeState(h);
    bytes += off;
  }
  char extra[64];
  std::snprintf(extra, sizeof(extra), ", \"xxh3_sum\": \"%016llx\"",
                static_cast<unsigned long long>(sum));
  p.End(files, bytes, cold, extra);
}

void EvictPhase(const Flags& flags) {
  auto fs = OpenFs(flags);
  ingest::EvictStats st;
  Phase p(flags, "evict");
  Check(ingest::EvictTree(fs.get(), "linux", &st), "evict /linux");
  p.End(static_cast<uint64_t>(st.inodes), static_cast<uint64_t>(st.bytes), false);
}

// Deterministic, moderately compressible contents of file i (words of a
// small vocabulary, as in text files).
std::string Contents(uint64_t i, uint64_t size) {
  static const char* const kWords[] = {"alpha ", "beta ", "gamma ", "delta ", "kvfs ",
                                       "store ", "tree ", "file ",  "data\n", "0x1f "};
  std::mt19937_64 rng(i);
  std::string s;
  while (s.size() < size) s += kWords[rng() % 10];
  s.resize(size);
  return s;
}

void HugeDirPhases(const Flags& flags) {
  auto fs = OpenFs(flags);
  Attributes dir;
  Check(fs->Mkdir(kRootIno, "huge", NewObject{0755, 0, 0}, &dir), "mkdir /huge");
  auto name = [](uint64_t i) {
    char b[32];
    std::snprintf(b, sizeof(b), "file-%08llu", static_cast<unsigned long long>(i));
    return std::string(b);
  };
  {
    Phase p(flags, "hugedir_create");
    std::atomic<uint64_t> next{0};
    std::atomic<uint64_t> bytes{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < flags.threads; ++t) {
      threads.emplace_back([&] {
        for (uint64_t i; (i = next++) < flags.hugedir;) {
          Attributes a;
          Check(fs->Create(dir.ino, name(i), NewObject{0644, 0, 0}, true, &a), "create");
          const uint64_t size =
              flags.file_bytes_min +
              std::mt19937_64(~i)() % (flags.file_bytes_max - flags.file_bytes_min + 1);
          if (size > 0) {
            Check(fs->Write(a.ino, 0, Contents(i, size), Stability::kStable, &a), "write");
            bytes += size;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    p.End(flags.hugedir, bytes, false, ", \"threads\": " + std::to_string(flags.threads));
  }
  {
    Phase p(flags, "hugedir_list");
    uint64_t n = 0, cookie = kFirstCookie;
    bool eof = false;
    while (!eof) {
      Check(fs->ReadDir(
                dir.ino, cookie,
                [&](const DirEntry& e) {
                  cookie = e.cookie;
                  ++n;
                  return true;
                },
                &eof),
            "readdir /huge");
    }
    if (n != flags.hugedir) Die("listed " + std::to_string(n) + " entries");
    p.End(n, 0, false);
  }
  {
    Phase p(flags, "hugedir_lookup");
    std::mt19937_64 rng(42);
    for (uint64_t i = 0; i < flags.lookups; ++i) {
      Attributes a;
      Check(fs->Lookup(dir.ino, name(rng() % flags.hugedir), &a), "lookup");
    }
    p.End(flags.lookups, 0, false);
  }
}

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      std::string prefix = std::string("--") + name + "=";
      return a.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("backend")) {
      flags.backend = v;
    } else if (const char* v = value("dir")) {
      flags.dir = v;
    } else if (const char* v = value("tarball")) {
      flags.tarball = v;
    } else if (const char* v = value("medium")) {
      flags.medium = v;
    } else if (const char* v = value("hugedir")) {
      flags.hugedir = std::strtoull(v, nullptr, 10);
    } else if (const char* v = value("file-bytes")) {
      char* end;
      flags.file_bytes_min = flags.file_bytes_max = std::strtoull(v, &end, 10);
      if (*end == '-') flags.file_bytes_max = std::strtoull(end + 1, &end, 10);
      if (*end != '\0' || flags.file_bytes_max < flags.file_bytes_min) {
        Die(std::string("--file-bytes is B or MIN-MAX, not ") + v);
      }
    } else if (const char* v = value("phases")) {
      flags.phases = v;
    } else if (const char* v = value("threads")) {
      flags.threads = std::atoi(v);
    } else if (const char* v = value("lookups")) {
      flags.lookups = std::strtoull(v, nullptr, 10);
    } else {
      Die("unknown argument " + a +
          " (usage: --backend=NAME --dir=DIR --tarball=FILE [--medium=L] [--hugedir=N] "
          "[--threads=T] [--lookups=N] [--file-bytes=B|MIN-MAX] [--phases=...])");
    }
  }
  const bool tree =
      flags.Runs("ingest") || flags.Runs("stat") || flags.Runs("read") || flags.Runs("evict");
  if (flags.dir.empty() || (tree && flags.tarball.empty()) || flags.threads < 1 ||
      flags.hugedir == 0) {
    Die("--dir is required, --tarball too for the tree phases; --threads and --hugedir must be "
        "positive");
  }
  std::filesystem::remove_all(flags.dir + "/db");
  std::filesystem::create_directories(flags.dir);
  if (flags.Runs("ingest")) IngestPhase(flags);
  if (flags.Runs("stat")) StatPhase(flags);
  if (flags.Runs("read")) ReadPhase(flags);
  if (flags.Runs("hugedir")) HugeDirPhases(flags);
  if (flags.Runs("reopen")) {
    Phase p(flags, "reopen");
    OpenFs(flags).reset();
    p.End(0, 0, false);
  }
  if (flags.Runs("evict")) EvictPhase(flags);
  return 0;
}

}  // namespace
}  // namespace kvfs::bench

int main(int argc, char** argv) { return kvfs::bench::Main(argc, argv); }
