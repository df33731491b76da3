// untar_ops_bench: what one untarred file costs the core, side by side in
// one run (docs/benchmarks.md, "Issue 17"), in five configurations:
//   location cache off   without the inode-location cache (before issue 17);
//   location cache on    with it: the server's configuration;
//   no syncs             with it, but FileSystemOptions::durable off: nothing
//                        waits for a WAL sync. Not a server mode (NFS's
//                        stable replies need the syncs); it measures what
//                        durability itself costs.
//   store alone          the key/value calls the server's configuration made
//                        (recorded once, before the rounds), replayed on a
//                        fresh RocksDB store by the same threads in the same
//                        order, syncs included, with no file system around
//                        them: the store's share of the core's cost;
//   ext4 system calls    the same sequence as system calls on ext4 (the
//                        store's file system): fstatat, openat(O_CREAT |
//                        O_EXCL), pwrite, fsync where the core syncs data,
//                        fchmod, fchown, futimens and an fstat for each
//                        GETATTR. What FSAL_VFS's FSAL work rests on, without
//                        its open_by_handle_at and credential switches.
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
// each configuration, alternating them (ext4's files go to DIR too).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
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
using bench::Die;

bool unstable_writes = false;  // WRITE=unstable

// Every configuration writes files of this size, so that their rows compare.
constexpr size_t kFileBytes = 8192;

// Calls fn(name) for the names of thread t's files: f<i> for every i below
// `files` that is t modulo `threads`.
template <typename Fn>
void ForThreadFiles(int t, int files, int threads, Fn fn) {
  for (int i = t; i < files; i += threads) fn("f" + std::to_string(i));
}

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

// OneFile's sequence as system calls on a local file system (the "ext4
// system calls" configuration): a GETATTR is an fstat, a COMMIT or a
// FILE_SYNC write an fsync, as FSAL_VFS makes them.
void OneFileSyscalls(int dirfd, const std::string& name, const std::string& data) {
  struct stat st;
  auto must = [&](bool ok, const char* what) {
    if (!ok) Die(std::string(what) + " " + name + ": " + std::strerror(errno));
  };
  must(fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT, "lookup");
  const int fd = openat(dirfd, name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  must(fd >= 0, "create");
  must(fstat(fd, &st) == 0, "getattr");
  must(pwrite(fd, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()), "write");
  if (!unstable_writes) must(fsync(fd) == 0, "write sync");
  must(fstat(fd, &st) == 0, "getattr");
  if (unstable_writes) {
    must(fsync(fd) == 0, "commit");
    must(fsync(fd) == 0, "commit");
  }
  must(fchmod(fd, 0644) == 0, "chmod");
  must(fstat(fd, &st) == 0, "getattr");
  must(fchown(fd, 1000, 1000) == 0, "chown");
  must(fstat(fd, &st) == 0, "getattr");
  const timespec times[2] = {{1700000000, 0}, {1700000000, 0}};
  must(futimens(fd, times) == 0, "utimens");
  must(fstat(fd, &st) == 0, "getattr");
  must(fstat(fd, &st) == 0, "getattr");
  must(close(fd) == 0, "close");
}

// One key/value call the core made, to be replayed on a bare store.
struct StoreCall {
  enum Kind { kGet, kWrite, kSync } kind;
  Column column = Column::kMeta;  // kGet
  std::string key;                // kGet
  WriteBatch batch;               // kWrite
};
using CallLog = std::vector<StoreCall>;

// Forwards every call to a store and appends the Gets, Writes and Syncs
// made on a thread to that thread's log, if it has one
// (RecordOnThisThread). Calls it cannot replay (iterators, snapshots) are
// counted instead, so that a replay that would leave work out is noticed.
class RecordingStore final : public KVStore {
 public:
  explicit RecordingStore(std::unique_ptr<KVStore> base) : base_(std::move(base)) {}

  // Calls made on this thread from now on go to `log` (nullptr: nowhere).
  static void RecordOnThisThread(CallLog* log) { log_ = log; }
  // Recorded-thread calls that were not recorded (iterators, snapshots).
  uint64_t Unrecorded() const { return unrecorded_; }

  using KVStore::Get;
  Status Get(const ReadOptions& opts, Column c, std::string_view key, std::string* value) override {
    if (log_ != nullptr) log_->push_back({StoreCall::kGet, c, std::string(key), {}});
    return base_->Get(opts, c, key, value);
  }
  Status Write(const WriteOptions& opts, const WriteBatch& batch) override {
    if (log_ != nullptr) log_->push_back({StoreCall::kWrite, Column::kMeta, {}, batch});
    return base_->Write(opts, batch);
  }
  std::unique_ptr<Iterator> NewIterator(Column c, const IteratorOptions& opts) override {
    if (log_ != nullptr) ++unrecorded_;
    return base_->NewIterator(c, opts);
  }
  std::unique_ptr<Snapshot> GetSnapshot() override {
    if (log_ != nullptr) ++unrecorded_;
    return base_->GetSnapshot();
  }
  Status Sync() override {
    if (log_ != nullptr) log_->push_back({StoreCall::kSync, Column::kMeta, {}, {}});
    return base_->Sync();
  }
  std::string Name() const override { return "recording " + base_->Name(); }

 private:
  static thread_local CallLog* log_;
  const std::unique_ptr<KVStore> base_;
  std::atomic<uint64_t> unrecorded_{0};
};

thread_local CallLog* RecordingStore::log_ = nullptr;

// Makes the calls of `log` on `store`, in order. A Get may miss (the
// core's lookups do); any other error ends the benchmark.
void Replay(KVStore* store, const CallLog& log) {
  std::string value;
  for (const StoreCall& call : log) {
    switch (call.kind) {
      case StoreCall::kGet: {
        const Status s = store->Get(call.column, call.key, &value);
        if (!s.ok() && !s.IsNotFound()) Check(s, "replayed get");
        break;
      }
      case StoreCall::kWrite:
        Check(store->Write(WriteOptions(), call.batch), "replayed write");
        break;
      case StoreCall::kSync:
        Check(store->Sync(), "replayed sync");
        break;
    }
  }
}

// What the server's configuration asked of the store: the setup's calls
// (the directories), then each worker thread's.
struct Recording {
  CallLog setup;
  std::vector<CallLog> threads;
};

// One configuration of the benchmark, a row of the output table.
struct Config {
  enum Kind { kCore, kStoreAlone, kSyscalls };
  const char* name;
  Kind kind;
  size_t location_cache_entries;  // kCore
  bool durable;                   // kCore
};

// Per-file counts of the store calls a configuration made.
struct StoreCounts {
  double gets = 0, batches = 0, syncs = 0;
};

// Runs fn(t) on threads t = 0 .. threads - 1 and waits for them.
void OnThreads(int threads, const std::function<void(int t)>& fn) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back(fn, t);
  for (auto& w : workers) w.join();
}

// Runs `work` on `threads` threads (OnThreads) and prints the row: wall
// time, CPU and context switches per file, and the store calls per file that
// `counts` returns.
void Measure(const char* name, int files, int threads, const std::function<void(int t)>& work,
             const std::function<StoreCounts()>& counts) {
  const StoreCounts before = counts();
  const double cpu = bench::ThisProcessCpuSeconds();
  const long switches = bench::ThisProcessContextSwitches();
  const auto start = std::chrono::steady_clock::now();
  OnThreads(threads, work);
  const double wall = bench::SecondsSince(start);
  const StoreCounts after = counts();
  const double per = 1.0 / files;
  std::printf("| %s | %d | %.2f | %.1f | %.1f | %.2f | %.2f | %.2f |\n", name, files, wall,
              (bench::ThisProcessCpuSeconds() - cpu) * 1e6 * per,
              static_cast<double>(bench::ThisProcessContextSwitches() - switches) * per,
              (after.gets - before.gets) * per, (after.batches - before.batches) * per,
              (after.syncs - before.syncs) * per);
  std::fflush(stdout);
}

// Store call counts of a counting wrapper.
StoreCounts CountsOf(const FaultInjectionStore& counter) {
  using Op = FaultInjectionStore::Operation;
  return StoreCounts{static_cast<double>(counter.CallCount(Op::kGet)),
                     static_cast<double>(counter.CallCount(Op::kWrite)),
                     static_cast<double>(counter.CallCount(Op::kSync))};
}

// The core on a fresh store in `dir`. With `record`, the store calls are
// recorded there (the setup's and each thread's) and nothing is printed.
void RunCore(const std::string& dir, const Config& config, int files, int threads,
             Recording* record) {
  // Only the recording run pays for the recorder's layer.
  std::unique_ptr<KVStore> store = bench::OpenFreshRocksDB(dir);
  RecordingStore* recorder = nullptr;
  if (record != nullptr) {
    auto recording = std::make_unique<RecordingStore>(std::move(store));
    recorder = recording.get();
    store = std::move(recording);
  }
  auto counting = std::make_unique<FaultInjectionStore>(std::move(store));
  FaultInjectionStore* counter = counting.get();
  FileSystemOptions o;
  o.location_cache_entries = config.location_cache_entries;
  o.durable = config.durable;
  std::unique_ptr<FileSystem> fs;
  Check(FileSystem::Open(o, std::move(counting), &fs), "open file system");
  if (record != nullptr) RecordingStore::RecordOnThisThread(&record->setup);
  Attributes top;
  Check(fs->Mkdir(kRootIno, "top", NewObject{0755, 0, 0}, &top), "mkdir");
  std::vector<Ino> dirs(threads);
  for (int t = 0; t < threads; ++t) {
    Attributes d;
    Check(fs->Mkdir(top.ino, "d" + std::to_string(t), NewObject{0755, 0, 0}, &d), "mkdir");
    dirs[t] = d.ino;
  }
  RecordingStore::RecordOnThisThread(nullptr);
  const std::string data(kFileBytes, 'x');
  auto thread_files = [&](int t) {
    ForThreadFiles(t, files, threads,
                   [&](const std::string& name) { OneFile(fs.get(), dirs[t], name, data); });
  };
  if (record == nullptr) {
    Measure(config.name, files, threads, thread_files, [counter] { return CountsOf(*counter); });
    return;
  }
  record->threads.assign(threads, CallLog());
  OnThreads(threads, [&](int t) {
    RecordingStore::RecordOnThisThread(&record->threads[t]);
    thread_files(t);
    RecordingStore::RecordOnThisThread(nullptr);
  });
  if (recorder->Unrecorded() != 0) {
    Die("the core made " + std::to_string(recorder->Unrecorded()) +
        " iterator or snapshot calls, which the store-alone replay would leave out");
  }
}

// The recorded store calls replayed on a fresh store in `dir`, thread t
// making thread t's calls. Each thread's log is its files' calls in order,
// so the row's per-file figures divide by the same file count.
void RunStoreAlone(const std::string& dir, const Config& config, int files, int threads,
                   const Recording& recording) {
  FaultInjectionStore counter(bench::OpenFreshRocksDB(dir));
  Replay(&counter, recording.setup);
  Measure(
      config.name, files, threads, [&](int t) { Replay(&counter, recording.threads[t]); },
      [&] { return CountsOf(counter); });
}

// OneFileSyscalls in a directory of `dir` per thread.
void RunSyscalls(const std::string& dir, const Config& config, int files, int threads) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) Die("remove " + dir + ": " + ec.message());
  std::vector<int> dirfds(threads);
  for (int t = 0; t < threads; ++t) {
    const std::string d = dir + "/d" + std::to_string(t);
    std::filesystem::create_directories(d, ec);
    if (ec) Die("mkdir " + d + ": " + ec.message());
    dirfds[t] = open(d.c_str(), O_RDONLY | O_DIRECTORY);
    if (dirfds[t] < 0) Die("open " + d + ": " + std::strerror(errno));
  }
  const std::string data(kFileBytes, 'x');
  Measure(
      config.name, files, threads,
      [&](int t) {
        ForThreadFiles(t, files, threads,
                       [&](const std::string& name) { OneFileSyscalls(dirfds[t], name, data); });
      },
      [] { return StoreCounts(); });
  for (int fd : dirfds) close(fd);
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
  using kvfs::Config;
  const size_t cache = kvfs::FileSystemOptions().location_cache_entries;
  const Config configs[] = {
      {"location cache off (before)", Config::kCore, 0, true},
      {"location cache on (the server)", Config::kCore, cache, true},
      {"no syncs (not a server mode)", Config::kCore, cache, false},
      {"store alone (the server's key/value calls)", Config::kStoreAlone, 0, false},
      {"ext4 system calls", Config::kSyscalls, 0, false}};
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!ec) std::filesystem::create_directories(dir, ec);
  if (ec) kvfs::bench::Die("cannot empty or create " + dir + ": " + ec.message());
  kvfs::Recording recording;
  kvfs::RunCore(dir + "/store", configs[1], files, threads, &recording);
  std::printf(
      "| core | files | wall s | CPU us per file | context switches per file |"
      " key/value reads per file | write batches per file | syncs per file |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int r = 0; r < rounds; ++r) {
    for (const Config& c : configs) {
      switch (c.kind) {
        case Config::kCore:
          kvfs::RunCore(dir + "/store", c, files, threads, nullptr);
          break;
        case Config::kStoreAlone:
          kvfs::RunStoreAlone(dir + "/store", c, files, threads, recording);
          break;
        case Config::kSyscalls:
          kvfs::RunSyscalls(dir + "/ext4", c, files, threads);
          break;
      }
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
