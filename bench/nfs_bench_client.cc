// nfs_bench_client: what users do to a file server, timed per phase, over
// NFS (libnfs's asynchronous API, many requests in flight) or on a local
// directory with plain POSIX calls (the local-file-system baseline).
//
// Phases (each prints one JSON line: target, phase, files, bytes, seconds):
//   untar   every entry of a tarball (read with libarchive into memory
//           first, untimed): mkdir, create with mode (O_CREAT | O_EXCL,
//           as GNU tar and bsdtar open the files they extract), write,
//           COMMIT, chown, chmod, times (directories' times last, as tar
//           does);
//   read    walk the tree (READDIRPLUS) and read every file, checksumming
//           all contents (XXH3) against the tarball's; with --cold, the
//           server is restarted and the page cache dropped first;
//   stat    lstat of every entry, in tarball order;
//   lookup  lstat of random paths (seeded; 1 in 10 does not exist);
//   bigdir_create / bigdir_list
//           create --bigdir empty files in one directory, then list it.
// A phase that read back anything wrong (missing file, wrong checksum, wrong
// type or size) sets "ok": false and the exit status to 1.
//
// Targets: --posix=DIR (local), or --server=kvfs|mem|vfs: the client starts
// ganesha.nfsd with that FSAL (through the tests/e2e harness, so it must run
// inside ci/run-in-namespace.sh) with its data under --work=DIR.
//
// Corpora: --tarball=FILE (.tar, .tar.xz, ...), optionally --max-files=N
// (the first N entries, parents included), or --generate=N:SEED (one
// directory of N files, sizes uniform in 1..64 KiB). --write-tar=FILE writes
// the corpus as an uncompressed tarball and exits (for tar xf baselines and
// to cache subsets).
//
// See docs/benchmarks.md ("NFS benchmarks").
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/bench_program.h"
#include "bench/host_probe.h"
#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/fsal/fsal_test_util.h"

namespace kvfs::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One entry of a corpus.
struct Entry {
  enum Type { kDir, kFile, kSymlink };
  // Path relative to the root, without leading or trailing '/'.
  std::string path;
  Type type = kFile;
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime = 0;
  // File contents or symlink target.
  std::string data;
  // XXH3 of data, and its size (files; kept when data is not).
  uint64_t hash = 0;
  uint64_t size = 0;
  // Depth: number of '/' in path.
  int depth = 0;
};

// A tree to untar: entries in tarball order, parents before children.
struct Corpus {
  std::vector<Entry> entries;
  // Index of each path in entries.
  std::unordered_map<std::string, size_t> by_path;
  uint64_t file_count = 0;
  uint64_t file_bytes = 0;

  // Appends e (and any missing parent directory before it); without
  // keep_data, a file's contents are dropped once hashed (a client that
  // only reads needs the hash and size, not 1.4 GB of the linux tree).
  void Add(Entry e, bool keep_data = true) {
    if (e.path.empty() || by_path.count(e.path)) return;
    size_t slash = e.path.rfind('/');
    if (slash != std::string::npos && !by_path.count(e.path.substr(0, slash))) {
      Entry parent;
      parent.path = e.path.substr(0, slash);
      parent.type = Entry::kDir;
      parent.mode = 0755;
      parent.mtime = e.mtime;
      Add(std::move(parent));
    }
    e.depth = static_cast<int>(std::count(e.path.begin(), e.path.end(), '/'));
    if (e.type == Entry::kFile) {
      e.hash = XXH3_64bits(e.data.data(), e.data.size());
      e.size = e.data.size();
      ++file_count;
      file_bytes += e.data.size();
      if (!keep_data) std::string().swap(e.data);
    }
    by_path[e.path] = entries.size();
    entries.push_back(std::move(e));
  }
};

// Normalizes a tar member name ("./a/b/" -> "a/b").
std::string NormalizePath(std::string p) {
  while (p.rfind("./", 0) == 0) p.erase(0, 2);
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  return p == "." ? "" : p;
}

// Reads a tarball (any format libarchive knows) into a corpus; stops after
// max_files entries (0: all). Hard links and special files are skipped.
// Without keep_data only the files' hashes and sizes are kept.
Corpus LoadTarball(const std::string& file, size_t max_files, bool keep_data = true) {
  Corpus corpus;
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  if (archive_read_open_filename(a, file.c_str(), 1 << 20) != ARCHIVE_OK) {
    Die("cannot open " + file + ": " + archive_error_string(a));
  }
  struct archive_entry* ae;
  while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
    if (max_files != 0 && corpus.entries.size() >= max_files) break;
    Entry e;
    e.path = NormalizePath(archive_entry_pathname(ae));
    if (e.path.empty() || archive_entry_hardlink(ae) != nullptr) continue;
    mode_t type = archive_entry_filetype(ae);
    e.mode = archive_entry_perm(ae);
    e.uid = static_cast<uint32_t>(archive_entry_uid(ae));
    e.gid = static_cast<uint32_t>(archive_entry_gid(ae));
    e.mtime = archive_entry_mtime(ae);
    if (type == AE_IFDIR) {
      e.type = Entry::kDir;
    } else if (type == AE_IFLNK) {
      e.type = Entry::kSymlink;
      e.data = archive_entry_symlink(ae);
    } else if (type == AE_IFREG) {
      e.type = Entry::kFile;
      e.data.resize(archive_entry_size(ae));
      la_ssize_t n = archive_read_data(a, e.data.data(), e.data.size());
      if (n != static_cast<la_ssize_t>(e.data.size())) Die("short read in " + file);
    } else {
      continue;
    }
    corpus.Add(std::move(e), keep_data);
  }
  archive_read_free(a);
  return corpus;
}

// One directory "gen" of n files, sizes uniform in 1..64 KiB, contents and
// sizes determined by seed.
Corpus Generate(size_t n, uint64_t seed) {
  Corpus corpus;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> size(1, 64 << 10);
  Entry dir;
  dir.path = "gen";
  dir.type = Entry::kDir;
  dir.mode = 0755;
  dir.mtime = 1700000000;
  corpus.Add(dir);
  for (size_t i = 0; i < n; ++i) {
    Entry e;
    char name[32];
    std::snprintf(name, sizeof(name), "gen/f%08zu", i);
    e.path = name;
    e.mtime = 1700000000 + static_cast<int64_t>(i);
    e.data.resize(size(rng));
    for (size_t off = 0; off < e.data.size(); off += 8) {
      uint64_t v = rng();
      std::memcpy(e.data.data() + off, &v, std::min<size_t>(8, e.data.size() - off));
    }
    corpus.Add(std::move(e));
  }
  return corpus;
}

// Writes the corpus as an uncompressed POSIX tarball.
void WriteTarball(const Corpus& corpus, const std::string& file) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, file.c_str()) != ARCHIVE_OK) {
    Die("cannot write " + file + ": " + archive_error_string(a));
  }
  struct archive_entry* ae = archive_entry_new();
  for (const Entry& e : corpus.entries) {
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_perm(ae, e.mode);
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.gid);
    archive_entry_set_mtime(ae, e.mtime, 0);
    if (e.type == Entry::kDir) {
      archive_entry_set_filetype(ae, AE_IFDIR);
    } else if (e.type == Entry::kSymlink) {
      archive_entry_set_filetype(ae, AE_IFLNK);
      archive_entry_set_symlink(ae, e.data.c_str());
    } else {
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
    }
    if (archive_write_header(a, ae) != ARCHIVE_OK) Die(archive_error_string(a));
    if (e.type == Entry::kFile && !e.data.empty() &&
        archive_write_data(a, e.data.data(), e.data.size()) < 0) {
      Die(archive_error_string(a));
    }
  }
  archive_entry_free(ae);
  if (archive_write_close(a) != ARCHIVE_OK) Die(archive_error_string(a));
  archive_write_free(a);
}

// The result of one phase.
struct PhaseResult {
  explicit PhaseResult(std::string name) : phase(std::move(name)) {}

  std::string phase;
  uint64_t files = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  // Failed operations and wrong read-backs.
  uint64_t errors = 0;
  std::string first_error;
  // Calls retried after NFS3ERR_JUKEBOX.
  uint64_t retries = 0;
  // Extra "key": value pairs (already formatted JSON).
  std::string extra;

  // Records a failure (keeps the first message).
  void Fail(const std::string& what) {
    if (errors++ == 0) first_error = what;
  }
};

// Escapes s for a JSON string.
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Settings shared by the phases.
struct Options {
  std::string target;  // label in the output
  std::string corpus_name;
  int inflight = 32;
  uint64_t bigdir = 0;
  uint64_t lookups = 0;
  uint64_t seed = 1;
  // FSAL_MEM keeps only this many bytes of a file (0: no limit); larger
  // files are not checksummed.
  uint64_t truncates_beyond = 0;
  // --tree=NAME: the corpus is tarball NAME.tar as the cache manager
  // serves it, top-level directory NAME, where a leading member component
  // NAME stands for the top itself (docs/cache.md); "": the export's root.
  std::string tree;
  // --share=I/N: the read phase opens its share of the files by path (the
  // i-th regular file when i % N == I) instead of walking the tree, so that
  // N clients read disjoint shares.
  bool by_share = false;
  uint64_t share_index = 0;
  uint64_t share_count = 1;
};

// Prints one result line.
void Report(const Options& opt, const PhaseResult& r) {
  std::printf(
      "{\"target\": %s, \"corpus\": %s, \"phase\": %s, \"files\": %llu, \"bytes\": %llu, "
      "\"seconds\": %.4f, \"files_per_s\": %.1f, \"errors\": %llu, \"retries\": %llu, "
      "\"ok\": %s%s%s%s}\n",
      JsonString(opt.target).c_str(), JsonString(opt.corpus_name).c_str(),
      JsonString(r.phase).c_str(), static_cast<unsigned long long>(r.files),
      static_cast<unsigned long long>(r.bytes), r.seconds,
      r.seconds > 0 ? static_cast<double>(r.files) / r.seconds : 0.0,
      static_cast<unsigned long long>(r.errors), static_cast<unsigned long long>(r.retries),
      r.errors == 0 ? "true" : "false", r.first_error.empty() ? "" : ", \"first_error\": ",
      r.first_error.empty() ? "" : JsonString(r.first_error).c_str(), r.extra.c_str());
  std::fflush(stdout);
}

// Random lookup paths: existing entries, and one in ten a missing name.
std::vector<std::pair<std::string, bool>> LookupPaths(const Corpus& c, uint64_t n, uint64_t seed) {
  std::vector<std::pair<std::string, bool>> out;
  std::mt19937_64 rng(seed);
  for (uint64_t i = 0; i < n && !c.entries.empty(); ++i) {
    const Entry& e = c.entries[rng() % c.entries.size()];
    bool missing = rng() % 10 == 0;
    out.emplace_back(missing ? e.path + ".missing" : e.path, !missing);
  }
  return out;
}

// Name of the i-th file of the big directory.
std::string BigDirName(uint64_t i) {
  char name[40];
  std::snprintf(name, sizeof(name), "bigdir/file-%09llu", static_cast<unsigned long long>(i));
  return name;
}

// Formats the big directory's per-decile creation times as an extra field.
std::string DecileField(const std::vector<double>& marks) {
  std::string s = ", \"decile_seconds\": [";
  for (size_t i = 1; i < marks.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%s%.4f", i > 1 ? ", " : "", marks[i] - marks[i - 1]);
    s += buf;
  }
  return s + "]";
}

// ---------------------------------------------------------------------------
// NFS: an event loop over one libnfs context with up to `inflight` tasks.

// Continuation of an asynchronous libnfs call: (status, data).
using Cont = std::function<void(int, void*)>;

// libnfs callback: runs and frees the continuation.
void Trampoline(int err, struct nfs_context*, void* data, void* priv) {
  std::unique_ptr<Cont> cont(static_cast<Cont*>(priv));
  (*cont)(err, data);
}

// Runs tasks over one libnfs context, at most `inflight` at a time. A task
// gets a `done` callback that it must call exactly once.
class AsyncPool {
 public:
  // A unit of work; calls done() when finished.
  using Task = std::function<void(std::function<void()> done)>;

  AsyncPool(struct nfs_context* nfs, int inflight) : nfs_(nfs), inflight_(inflight) {}

  // Queues a task (also from inside another task).
  void Add(Task t) { queue_.push_back(std::move(t)); }

  // Queues a task to start after `ms` milliseconds: a retry after
  // NFS3ERR_JUKEBOX (the server's "try again later"), as the kernel's
  // client does (it waits 5 s; 50 ms here).
  void AddLater(Task t, int ms = 50) {
    later_.emplace_back(Clock::now() + std::chrono::milliseconds(ms), std::move(t));
  }

  // Issues an asynchronous call: issue(cb, private) must return the libnfs
  // *_async result; cont runs with the call's status and data (also when the
  // call could not be queued).
  template <typename F>
  void Call(F&& issue, Cont cont) {
    auto* c = new Cont(std::move(cont));
    int rc = issue(&Trampoline, static_cast<void*>(c));
    if (rc != 0) {
      std::unique_ptr<Cont> owned(c);
      (*owned)(rc < 0 ? rc : -EIO, nullptr);
    }
  }

  // Runs until every queued task (and every task they queue) is done; false
  // (with failure() saying why) if the connection failed, or if the server
  // stalled for kStall: no reply at all while calls were outstanding, or
  // retries pending without a break (only "try again later"). Ganesha at its
  // open-file limit can wedge either way; that ends the phase, not the run.
  bool Run() {
    Fill();
    Clock::time_point last_reply = Clock::now();
    while (active_ > 0 || !later_.empty()) {
      struct pollfd pfd = {nfs_get_fd(nfs_), static_cast<short>(nfs_which_events(nfs_)), 0};
      int n = poll(&pfd, 1, later_.empty() ? 100 : 5);
      if (n < 0 && errno != EINTR) {
        failure_ = std::string("poll: ") + std::strerror(errno);
        return false;
      }
      if (nfs_service(nfs_, n > 0 ? pfd.revents : 0) < 0) {
        failure_ = std::string("connection failed: ") + nfs_get_error(nfs_);
        return false;
      }
      const Clock::time_point now = Clock::now();
      if (n > 0 && (pfd.revents & POLLIN)) last_reply = now;
      if (later_.empty()) {
        retrying_since_.reset();
      } else if (!retrying_since_) {
        retrying_since_ = now;
      }
      if (now - last_reply > kStall) return GiveUp("nothing");
      if (retrying_since_ && now - *retrying_since_ > kStall) {
        return GiveUp("only NFS3ERR_JUKEBOX");
      }
      Fill();
    }
    return true;
  }

  // Why Run() returned false.
  const std::string& failure() const { return failure_; }

 private:
  // Run()'s answer to a server that answered `what` for kStall.
  bool GiveUp(const char* what) {
    failure_ = std::string("gave up: the server answered ") + what + " for " +
               std::to_string(kStall.count()) + " s (Ganesha's open-file limit?)";
    return false;
  }

  void Fill() {
    Clock::time_point now = Clock::now();
    for (auto it = later_.begin(); it != later_.end();) {
      if (it->first > now) {
        ++it;
        continue;
      }
      queue_.push_back(std::move(it->second));
      it = later_.erase(it);
    }
    while (active_ < inflight_ && !queue_.empty()) {
      Task t = std::move(queue_.front());
      queue_.pop_front();
      ++active_;
      t([this] { --active_; });
    }
  }

  struct nfs_context* nfs_;
  int inflight_;
  int active_ = 0;
  std::deque<Task> queue_;
  std::deque<std::pair<Clock::time_point, Task>> later_;
  static constexpr std::chrono::seconds kStall{120};
  // Since when retries have been pending without a break, if they are.
  std::optional<Clock::time_point> retrying_since_;
  std::string failure_;
};

// The phases over NFS on one mounted client.
class NfsPhases {
 public:
  NfsPhases(e2e::NfsClient* client, const Corpus& corpus, const Options& opt)
      : client_(client), nfs_(client->context()), corpus_(corpus), opt_(opt) {
    v4_ = client->version() == e2e::NfsVersion::kV4;
  }

  // Creates every entry of the corpus under the export's root.
  PhaseResult Untar() {
    PhaseResult r("untar");
    Clock::time_point start = Clock::now();
    // Directories level by level (a parent must exist before its children).
    int max_depth = 0;
    for (const Entry& e : corpus_.entries) max_depth = std::max(max_depth, e.depth);
    for (int d = 0; d <= max_depth; ++d) {
      AsyncPool pool(nfs_, opt_.inflight);
      for (const Entry& e : corpus_.entries) {
        if (e.type == Entry::kDir && e.depth == d) pool.Add(MakeDirTask(pool, e, &r));
      }
      if (!pool.Run()) r.Fail(pool.failure());
    }
    AsyncPool pool(nfs_, opt_.inflight);
    for (const Entry& e : corpus_.entries) {
      if (e.type == Entry::kFile) pool.Add(MakeFileTask(pool, e, &r));
      if (e.type == Entry::kSymlink) pool.Add(MakeSymlinkTask(pool, e, &r));
    }
    if (!pool.Run()) r.Fail(pool.failure());
    // Directory times last (creating children changes them), deepest first.
    // (libnfs 4.0's v4 utimes of a directory fails like chown: NFS4ERR_ISDIR.)
    AsyncPool times(nfs_, opt_.inflight);
    for (const Entry& e : corpus_.entries) {
      if (e.type == Entry::kDir && !v4_) times.Add(MakeTimesTask(times, e, &r));
    }
    if (!times.Run()) r.Fail(times.failure());
    r.seconds = SecondsSince(start);
    r.files = corpus_.file_count;
    r.bytes = corpus_.file_bytes;
    return r;
  }

  // Walks the tree with READDIRPLUS and reads every file, comparing
  // checksums with the corpus.
  PhaseResult Read() {
    if (opt_.by_share) return ReadShare();
    PhaseResult r("read");
    Clock::time_point start = Clock::now();
    AsyncPool pool(nfs_, opt_.inflight);
    std::set<std::string> seen;
    pool.Add(MakeListTask(pool, "", &r, &seen));
    if (!pool.Run()) r.Fail(pool.failure());
    r.seconds = SecondsSince(start);
    uint64_t missing = 0;
    for (const Entry& e : corpus_.entries) {
      if (e.type == Entry::kFile && !seen.count(e.path)) ++missing;
    }
    if (missing > 0) r.Fail(std::to_string(missing) + " files not found by the walk");
    return r;
  }

  // Opens this client's share of the files by path (--share) and reads
  // each, comparing checksums with the corpus.
  PhaseResult ReadShare() {
    PhaseResult r("read");
    Clock::time_point start = Clock::now();
    AsyncPool pool(nfs_, opt_.inflight);
    std::set<std::string> seen;
    uint64_t ordinal = 0, share = 0;
    for (const Entry& e : corpus_.entries) {
      if (e.type != Entry::kFile || ordinal++ % opt_.share_count != opt_.share_index) continue;
      ++share;
      pool.Add(MakeReadTask(pool, e.path, e.size, &r, &seen));
    }
    if (!pool.Run()) r.Fail(pool.failure());
    r.seconds = SecondsSince(start);
    if (r.files != share) {
      r.Fail("read " + std::to_string(r.files) + " of the share's " + std::to_string(share) +
             " files");
    }
    return r;
  }

  // lstat of every entry, in corpus order; checks type and size.
  PhaseResult Stat() {
    PhaseResult r("stat");
    Clock::time_point start = Clock::now();
    AsyncPool pool(nfs_, opt_.inflight);
    for (const Entry& e : corpus_.entries) {
      pool.Add([this, &pool, &e, &r](std::function<void()> done) {
        pool.Call(
            [&](nfs_cb cb, void* p) { return nfs_lstat64_async(nfs_, Abs(e.path).c_str(), cb, p); },
            [this, &e, &r, done](int rc, void* data) {
              if (rc < 0) {
                r.Fail("lstat " + e.path + ": " + nfs_get_error(nfs_));
              } else {
                CheckStat(e, *static_cast<struct nfs_stat_64*>(data), &r);
                ++r.files;
              }
              done();
            });
      });
    }
    if (!pool.Run()) r.Fail(pool.failure());
    r.seconds = SecondsSince(start);
    return r;
  }

  // lstat of random paths; one in ten must fail with ENOENT.
  PhaseResult Lookup() {
    PhaseResult r("lookup");
    std::vector<std::pair<std::string, bool>> paths = LookupPaths(corpus_, opt_.lookups, opt_.seed);
    Clock::time_point start = Clock::now();
    AsyncPool pool(nfs_, opt_.inflight);
    // Not a structured binding: clang 14 cannot capture those in lambdas.
    for (const auto& entry : paths) {
      const std::string& path = entry.first;
      const bool exists = entry.second;
      pool.Add([this, &pool, &path, exists, &r](std::function<void()> done) {
        pool.Call(
            [&](nfs_cb cb, void* p) { return nfs_lstat64_async(nfs_, Abs(path).c_str(), cb, p); },
            [&path, exists, &r, done](int rc, void*) {
              if ((rc == 0) != exists || (rc < 0 && rc != -ENOENT)) {
                r.Fail("lookup " + path + ": " + std::to_string(rc));
              }
              ++r.files;
              done();
            });
      });
    }
    if (!pool.Run()) r.Fail(pool.failure());
    r.seconds = SecondsSince(start);
    return r;
  }

  // Creates opt.bigdir empty files in one directory, then lists it.
  std::vector<PhaseResult> BigDir() {
    PhaseResult c("bigdir_create");
    Clock::time_point start = Clock::now();
    if (client_->Mkdir("/bigdir", 0755) != 0) c.Fail("mkdir /bigdir: " + client_->LastError());
    std::vector<double> marks{0};
    uint64_t n = opt_.bigdir;
    AsyncPool pool(nfs_, opt_.inflight);
    std::function<AsyncPool::Task(uint64_t)> make = [&](uint64_t i) -> AsyncPool::Task {
      return [this, &pool, &make, i, n, &c, &marks, start](std::function<void()> done) {
        pool.Call(
            [&](nfs_cb cb, void* p) {
              return nfs_open2_async(nfs_, Abs(BigDirName(i)).c_str(), O_CREAT | O_WRONLY, 0644, cb,
                                     p);
            },
            [this, &pool, &make, i, n, &c, &marks, start, done](int rc, void* data) {
              if (Jukebox(rc)) {
                ++c.retries;
                pool.AddLater(make(i));
                return done();
              }
              if (rc < 0) {
                c.Fail("create " + BigDirName(i) + ": " + nfs_get_error(nfs_));
                return done();
              }
              CloseFile(pool, static_cast<struct nfsfh*>(data), &c, [&c, n, &marks, start, done] {
                ++c.files;
                if (c.files * 10 / n != (c.files - 1) * 10 / n) {
                  marks.push_back(SecondsSince(start));
                }
                done();
              });
            });
      };
    };
    for (uint64_t i = 0; i < n; ++i) pool.Add(make(i));
    if (!pool.Run()) c.Fail(pool.failure());
    c.seconds = SecondsSince(start);
    if (marks.size() == 11) c.extra = DecileField(marks);

    PhaseResult l("bigdir_list");
    start = Clock::now();
    std::vector<e2e::NfsDirEntry> entries;
    if (int rc = client_->ReadDir("/bigdir", &entries); rc != 0) {
      l.Fail("readdir /bigdir: " + client_->LastError());
    }
    l.seconds = SecondsSince(start);
    l.files = entries.size();
    if (entries.size() != n) l.Fail("listed " + std::to_string(entries.size()) + " entries");
    return {c, l};
  }

 private:
  std::string Abs(const std::string& path) const {
    if (opt_.tree.empty()) return "/" + path;
    const std::string alias = opt_.tree + "/";
    return "/" + alias + (path.rfind(alias, 0) == 0 ? path.substr(alias.size()) : path);
  }

  // True if a call failed with NFS3ERR_JUKEBOX ("try again later"). libnfs
  // 4.0 passes -EAGAIN for some calls and another code for READ (its message
  // still names the status).
  bool Jukebox(int rc) const {
    if (rc >= 0) return false;
    const char* err = nfs_get_error(nfs_);
    return rc == -EAGAIN || (err != nullptr && std::strstr(err, "JUKEBOX") != nullptr);
  }

  // Largest piece one write call carries.
  size_t WriteChunk() const {
    if (v4_) return e2e::kNfsV4WriteChunk;
    uint64_t max = client_->WriteMax();
    return max == 0 ? (1 << 20) : std::min<uint64_t>(max, 1 << 20);
  }

  void CheckStat(const Entry& e, const struct nfs_stat_64& st, PhaseResult* r) {
    uint64_t type = st.nfs_mode & S_IFMT;
    bool ok = (e.type == Entry::kDir && type == S_IFDIR) ||
              (e.type == Entry::kSymlink && type == S_IFLNK) ||
              (e.type == Entry::kFile && type == S_IFREG && st.nfs_size == e.size);
    if (!ok) r->Fail("wrong type or size: " + e.path);
  }

  // mkdir + chown (+ chmod over v4, where libnfs may ignore the mode).
  AsyncPool::Task MakeDirTask(AsyncPool& pool, const Entry& e, PhaseResult* r) {
    return [this, &pool, &e, r](std::function<void()> done) {
      pool.Call(
          [&](nfs_cb cb, void* p) {
            return nfs_mkdir2_async(nfs_, Abs(e.path).c_str(), static_cast<int>(e.mode), cb, p);
          },
          [this, &pool, &e, r, done](int rc, void*) {
            if (rc < 0) {
              r->Fail("mkdir " + e.path + ": " + nfs_get_error(nfs_));
              return done();
            }
            // libnfs 4.0's v4 chown/lchown of a directory fails (it OPENs the
            // object: NFS4ERR_ISDIR), so directories keep the creator's ids.
            if (v4_) return done();
            pool.Call(
                [&](nfs_cb cb, void* p) {
                  // (libnfs 4.0's v4 lchown fails on directories: NFS4ERR_ISDIR.)
                  return nfs_chown_async(nfs_, Abs(e.path).c_str(), static_cast<int>(e.uid),
                                         static_cast<int>(e.gid), cb, p);
                },
                [this, &e, r, done](int rc2, void*) {
                  if (rc2 < 0) r->Fail("chown " + e.path + ": " + nfs_get_error(nfs_));
                  done();
                });
          });
    };
  }

  // Sets a directory's (or any entry's) times.
  AsyncPool::Task MakeTimesTask(AsyncPool& pool, const Entry& e, PhaseResult* r) {
    return [this, &pool, &e, r](std::function<void()> done) {
      struct timeval tv[2] = {{e.mtime, 0}, {e.mtime, 0}};
      pool.Call([&](nfs_cb cb,
                    void* p) { return nfs_utimes_async(nfs_, Abs(e.path).c_str(), tv, cb, p); },
                [this, &e, r, done](int rc, void*) {
                  if (rc < 0) r->Fail("utimes " + e.path + ": " + nfs_get_error(nfs_));
                  done();
                });
    };
  }

  AsyncPool::Task MakeSymlinkTask(AsyncPool& pool, const Entry& e, PhaseResult* r) {
    return [this, &pool, &e, r](std::function<void()> done) {
      pool.Call(
          [&](nfs_cb cb, void* p) {
            return nfs_symlink_async(nfs_, e.data.c_str(), Abs(e.path).c_str(), cb, p);
          },
          [this, &e, r, done](int rc, void*) {
            if (rc < 0) r->Fail("symlink " + e.path + ": " + nfs_get_error(nfs_));
            done();
          });
    };
  }

  // create(mode) -> write... -> COMMIT -> chown -> chmod (v4) -> close ->
  // utimes. O_EXCL, not O_TRUNC, as tar opens the files it extracts: with
  // O_TRUNC libnfs follows the CREATE with a SETATTR of size 0, which no
  // kernel client sends for a file it has just created. A retry (after a
  // JUKEBOX, which may come after the CREATE) truncates instead.
  AsyncPool::Task MakeFileTask(AsyncPool& pool, const Entry& e, PhaseResult* r,
                               bool retry = false) {
    return [this, &pool, &e, r, retry](std::function<void()> done) {
      const int flags = O_CREAT | O_WRONLY | (retry ? O_TRUNC : O_EXCL);
      pool.Call(
          [&](nfs_cb cb, void* p) {
            return nfs_open2_async(nfs_, Abs(e.path).c_str(), flags, static_cast<int>(e.mode), cb,
                                   p);
          },
          [this, &pool, &e, r, done](int rc, void* data) {
            if (Jukebox(rc)) {
              ++r->retries;
              pool.AddLater(MakeFileTask(pool, e, r, /*retry=*/true));
              return done();
            }
            if (rc < 0) {
              r->Fail("create " + e.path + ": " + nfs_get_error(nfs_));
              return done();
            }
            WriteFrom(pool, static_cast<struct nfsfh*>(data), e, 0, r, done);
          });
    };
  }

  void WriteFrom(AsyncPool& pool, struct nfsfh* fh, const Entry& e, size_t off, PhaseResult* r,
                 std::function<void()> done) {
    if (off >= e.data.size()) return Finish(pool, fh, e, r, done);
    size_t n = std::min(WriteChunk(), e.data.size() - off);
    pool.Call(
        [&](nfs_cb cb, void* p) {
          return nfs_pwrite_async(nfs_, fh, off, n, e.data.data() + off, cb, p);
        },
        [this, &pool, fh, &e, off, r, done](int rc, void*) {
          if (Jukebox(rc)) {  // JUKEBOX: Ganesha's open-file limit; again later
            ++r->retries;
            return pool.AddLater([this, &pool, fh, &e, off, r, done](std::function<void()> again) {
              again();
              WriteFrom(pool, fh, e, off, r, done);
            });
          }
          if (rc <= 0) {
            r->Fail("write " + e.path + ": " + nfs_get_error(nfs_));
            return CloseFile(pool, fh, r, done);
          }
          WriteFrom(pool, fh, e, off + static_cast<size_t>(rc), r, done);
        });
  }

  void Finish(AsyncPool& pool, struct nfsfh* fh, const Entry& e, PhaseResult* r,
              std::function<void()> done) {
    pool.Call([&](nfs_cb cb, void* p) { return nfs_fsync_async(nfs_, fh, cb, p); },
              [this, &pool, fh, &e, r, done](int rc, void*) {
                if (rc < 0) r->Fail("commit " + e.path + ": " + nfs_get_error(nfs_));
                pool.Call(
                    [&](nfs_cb cb, void* p) {
                      return nfs_fchown_async(nfs_, fh, static_cast<int>(e.uid),
                                              static_cast<int>(e.gid), cb, p);
                    },
                    [this, &pool, fh, &e, r, done](int rc2, void*) {
                      if (rc2 < 0) r->Fail("chown " + e.path + ": " + nfs_get_error(nfs_));
                      auto close_and_times = [this, &pool, fh, &e, r, done] {
                        CloseFile(pool, fh, r,
                                  [this, &pool, &e, r, done] { MakeTimesTask(pool, e, r)(done); });
                      };
                      if (!v4_) return close_and_times();
                      pool.Call(
                          [&](nfs_cb cb, void* p) {
                            return nfs_fchmod_async(nfs_, fh, static_cast<int>(e.mode), cb, p);
                          },
                          [this, &e, r, close_and_times](int rc3, void*) {
                            if (rc3 < 0) r->Fail("chmod " + e.path + ": " + nfs_get_error(nfs_));
                            close_and_times();
                          });
                    });
              });
  }

  void CloseFile(AsyncPool& pool, struct nfsfh* fh, PhaseResult* r, std::function<void()> next) {
    pool.Call([&](nfs_cb cb, void* p) { return nfs_close_async(nfs_, fh, cb, p); },
              [this, r, next](int rc, void*) {
                if (rc < 0) r->Fail(std::string("close: ") + nfs_get_error(nfs_));
                next();
              });
  }

  // Lists dir (relative path, "" for the root), queueing its subdirectories
  // and files.
  AsyncPool::Task MakeListTask(AsyncPool& pool, std::string dir, PhaseResult* r,
                               std::set<std::string>* seen) {
    return [this, &pool, dir, r, seen](std::function<void()> done) {
      pool.Call(
          [&](nfs_cb cb, void* p) { return nfs_opendir_async(nfs_, Abs(dir).c_str(), cb, p); },
          [this, &pool, dir, r, seen, done](int rc, void* data) {
            if (rc < 0) {
              r->Fail("opendir " + dir + ": " + nfs_get_error(nfs_));
              return done();
            }
            auto* d = static_cast<struct nfsdir*>(data);
            while (struct nfsdirent* de = nfs_readdir(nfs_, d)) {
              std::string name = de->name;
              if (name == "." || name == "..") continue;
              std::string path = dir.empty() ? name : dir + "/" + name;
              if (de->type == NF3DIR || (de->mode & S_IFMT) == S_IFDIR) {
                if (dir.empty() && path == "bigdir") continue;
                pool.Add(MakeListTask(pool, path, r, seen));
              } else if (de->type == NF3REG || (de->mode & S_IFMT) == S_IFREG) {
                pool.Add(MakeReadTask(pool, path, de->size, r, seen));
              }
            }
            nfs_closedir(nfs_, d);
            done();
          });
    };
  }

  // State of one file being read.
  struct Reading {
    std::string path;
    struct nfsfh* fh = nullptr;
    uint64_t offset = 0;
    XXH3_state_t hash;
  };

  AsyncPool::Task MakeReadTask(AsyncPool& pool, std::string path, uint64_t size, PhaseResult* r,
                               std::set<std::string>* seen) {
    return [this, &pool, path, size, r, seen](std::function<void()> done) {
      seen->insert(path);
      auto st = std::make_shared<Reading>();
      st->path = path;
      XXH3_64bits_reset(&st->hash);
      pool.Call(
          [&](nfs_cb cb, void* p) {
            return nfs_open2_async(nfs_, Abs(path).c_str(), O_RDONLY, 0, cb, p);
          },
          [this, &pool, st, r, seen, size, done](int rc, void* data) {
            if (Jukebox(rc)) {
              ++r->retries;
              seen->erase(st->path);
              pool.AddLater(MakeReadTask(pool, st->path, size, r, seen));
              return done();
            }
            if (rc < 0) {
              r->Fail("open " + st->path + ": " + nfs_get_error(nfs_));
              return done();
            }
            st->fh = static_cast<struct nfsfh*>(data);
            ReadFrom(pool, st, r, done);
          });
    };
  }

  void ReadFrom(AsyncPool& pool, std::shared_ptr<Reading> st, PhaseResult* r,
                std::function<void()> done) {
    pool.Call([&](nfs_cb cb,
                  void* p) { return nfs_pread_async(nfs_, st->fh, st->offset, 1 << 20, cb, p); },
              [this, &pool, st, r, done](int rc, void* data) {
                if (Jukebox(rc)) {  // JUKEBOX: Ganesha's open-file limit; again later
                  ++r->retries;
                  return pool.AddLater([this, &pool, st, r, done](std::function<void()> again) {
                    again();
                    ReadFrom(pool, st, r, done);
                  });
                }
                if (rc < 0) {
                  r->Fail("read " + st->path + ": " + nfs_get_error(nfs_));
                  return CloseFile(pool, st->fh, r, done);
                }
                if (rc > 0) {
                  XXH3_64bits_update(&st->hash, data, static_cast<size_t>(rc));
                  st->offset += static_cast<uint64_t>(rc);
                  r->bytes += static_cast<uint64_t>(rc);
                  return ReadFrom(pool, st, r, done);
                }
                Verify(st->path, st->offset, XXH3_64bits_digest(&st->hash), r);
                CloseFile(pool, st->fh, r, done);
              });
  }

  void Verify(const std::string& path, uint64_t size, uint64_t hash, PhaseResult* r) {
    ++r->files;
    auto it = corpus_.by_path.find(path);
    if (it == corpus_.by_path.end()) return r->Fail("unexpected file " + path);
    const Entry& e = corpus_.entries[it->second];
    if (opt_.truncates_beyond != 0 && e.size > opt_.truncates_beyond) return;
    if (size != e.size || hash != e.hash) r->Fail("wrong contents: " + path);
  }

  e2e::NfsClient* client_;
  struct nfs_context* nfs_;
  const Corpus& corpus_;
  const Options& opt_;
  bool v4_ = false;
};

// ---------------------------------------------------------------------------
// POSIX: the same phases on a local directory, one call at a time.

class PosixPhases {
 public:
  PosixPhases(std::string root, const Corpus& corpus, const Options& opt)
      : root_(std::move(root)), corpus_(corpus), opt_(opt) {}

  PhaseResult Untar() {
    PhaseResult r("untar");
    Clock::time_point start = Clock::now();
    for (const Entry& e : corpus_.entries) {
      std::string p = Abs(e.path);
      if (e.type == Entry::kDir) {
        if (mkdir(p.c_str(), e.mode) != 0) r.Fail("mkdir " + p + ": " + strerror(errno));
        if (lchown(p.c_str(), e.uid, e.gid) != 0) r.Fail("chown " + p);
      } else if (e.type == Entry::kSymlink) {
        if (symlink(e.data.c_str(), p.c_str()) != 0) r.Fail("symlink " + p);
      } else {
        int fd = open(p.c_str(), O_CREAT | O_WRONLY | O_EXCL, e.mode);
        if (fd < 0) {
          r.Fail("create " + p + ": " + strerror(errno));
          continue;
        }
        if (write(fd, e.data.data(), e.data.size()) != static_cast<ssize_t>(e.data.size())) {
          r.Fail("write " + p);
        }
        if (fchown(fd, e.uid, e.gid) != 0 || fchmod(fd, e.mode) != 0) r.Fail("setattr " + p);
        struct timespec ts[2] = {{e.mtime, 0}, {e.mtime, 0}};
        if (futimens(fd, ts) != 0) r.Fail("utimens " + p);
        close(fd);
      }
    }
    for (auto it = corpus_.entries.rbegin(); it != corpus_.entries.rend(); ++it) {
      if (it->type != Entry::kDir) continue;
      struct timespec ts[2] = {{it->mtime, 0}, {it->mtime, 0}};
      utimensat(AT_FDCWD, Abs(it->path).c_str(), ts, AT_SYMLINK_NOFOLLOW);
    }
    sync();  // as `tar xf && sync`: everything on disk before the clock stops
    r.seconds = SecondsSince(start);
    r.files = corpus_.file_count;
    r.bytes = corpus_.file_bytes;
    return r;
  }

  PhaseResult Read() {
    PhaseResult r("read");
    Clock::time_point start = Clock::now();
    std::string buf(1 << 20, '\0');
    std::vector<std::string> dirs{""};
    while (!dirs.empty()) {
      std::string dir = std::move(dirs.back());
      dirs.pop_back();
      DIR* d = opendir(Abs(dir).c_str());
      if (d == nullptr) {
        r.Fail("opendir " + dir);
        continue;
      }
      while (struct dirent* de = readdir(d)) {
        std::string name = de->d_name;
        if (name == "." || name == "..") continue;
        std::string path = dir.empty() ? name : dir + "/" + name;
        if (de->d_type == DT_DIR) {
          if (path != "bigdir") dirs.push_back(path);
        } else if (de->d_type == DT_REG) {
          ReadOne(path, &buf, &r);
        }
      }
      closedir(d);
    }
    r.seconds = SecondsSince(start);
    if (r.files != corpus_.file_count) {
      r.Fail("read " + std::to_string(r.files) + " of " + std::to_string(corpus_.file_count));
    }
    return r;
  }

  PhaseResult Stat() {
    PhaseResult r("stat");
    Clock::time_point start = Clock::now();
    for (const Entry& e : corpus_.entries) {
      struct stat st;
      if (lstat(Abs(e.path).c_str(), &st) != 0) {
        r.Fail("lstat " + e.path);
        continue;
      }
      ++r.files;
    }
    r.seconds = SecondsSince(start);
    return r;
  }

  PhaseResult Lookup() {
    PhaseResult r("lookup");
    std::vector<std::pair<std::string, bool>> paths = LookupPaths(corpus_, opt_.lookups, opt_.seed);
    Clock::time_point start = Clock::now();
    for (const auto& [path, exists] : paths) {
      struct stat st;
      if ((lstat(Abs(path).c_str(), &st) == 0) != exists) r.Fail("lookup " + path);
      ++r.files;
    }
    r.seconds = SecondsSince(start);
    return r;
  }

  std::vector<PhaseResult> BigDir() {
    PhaseResult c("bigdir_create");
    Clock::time_point start = Clock::now();
    mkdir(Abs("bigdir").c_str(), 0755);
    std::vector<double> marks{0};
    for (uint64_t i = 0; i < opt_.bigdir; ++i) {
      int fd = open(Abs(BigDirName(i)).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
      if (fd < 0) {
        c.Fail("create " + BigDirName(i));
      } else {
        close(fd);
      }
      ++c.files;
      if (c.files * 10 / opt_.bigdir != (c.files - 1) * 10 / opt_.bigdir) {
        marks.push_back(SecondsSince(start));
      }
    }
    c.seconds = SecondsSince(start);
    if (marks.size() == 11) c.extra = DecileField(marks);
    PhaseResult l("bigdir_list");
    start = Clock::now();
    DIR* d = opendir(Abs("bigdir").c_str());
    while (d != nullptr && readdir(d) != nullptr) ++l.files;
    if (d != nullptr) closedir(d);
    l.files -= std::min<uint64_t>(l.files, 2);
    l.seconds = SecondsSince(start);
    if (l.files != opt_.bigdir) l.Fail("listed " + std::to_string(l.files));
    return {c, l};
  }

 private:
  std::string Abs(const std::string& path) const { return root_ + "/" + path; }

  void ReadOne(const std::string& path, std::string* buf, PhaseResult* r) {
    int fd = open(Abs(path).c_str(), O_RDONLY);
    if (fd < 0) return r->Fail("open " + path);
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    uint64_t size = 0;
    ssize_t n;
    while ((n = read(fd, buf->data(), buf->size())) > 0) {
      XXH3_64bits_update(&st, buf->data(), static_cast<size_t>(n));
      size += static_cast<uint64_t>(n);
    }
    close(fd);
    r->bytes += size;
    ++r->files;
    auto it = corpus_.by_path.find(path);
    if (it == corpus_.by_path.end()) return r->Fail("unexpected file " + path);
    const Entry& e = corpus_.entries[it->second];
    if (size != e.size || XXH3_64bits_digest(&st) != e.hash) {
      r->Fail("wrong contents: " + path);
    }
  }

  std::string root_;
  const Corpus& corpus_;
  const Options& opt_;
};

// Records a CPU profile of one process (perf record -g) while alive.
class PerfRecorder {
 public:
  // Starts `perf record -g -p pid -o file`; does nothing if file is empty.
  PerfRecorder(pid_t pid, const std::string& file) {
    if (file.empty()) return;
    pid_ = fork();
    if (pid_ == 0) {
      std::string p = std::to_string(pid);
      execlp("perf", "perf", "record", "-q", "-g", "-F", "999", "-p", p.c_str(), "-o", file.c_str(),
             static_cast<char*>(nullptr));
      _exit(127);
    }
    usleep(300000);  // perf attaches
  }
  PerfRecorder(const PerfRecorder&) = delete;
  PerfRecorder& operator=(const PerfRecorder&) = delete;
  // Stops perf (SIGINT) and waits for it to write its data.
  ~PerfRecorder() {
    if (pid_ <= 0) return;
    kill(pid_, SIGINT);
    int status;
    waitpid(pid_, &status, 0);
  }

 private:
  pid_t pid_ = -1;
};

// Writes dirty pages and drops the page cache (needs root).
void DropCaches() {
  if (!DropPageCache()) Die("cannot drop the page cache (needs root)");
}

// Command-line flags.
struct Flags {
  std::string posix_dir;
  std::string server;      // kvfs, mem, vfs
  std::string kv_backend;  // --kv-backend: KVFS's key/value backend ("": default)
  std::string work;
  std::string fsal_dir = KVFS_E2E_FSAL_DIRS;
  std::string tarball;
  std::string generate;
  std::string write_tar;
  std::string phases = "untar,read,stat,lookup,bigdir";
  std::string label;
  // Directory for perf.data files of the untar and read phases (NFS only).
  std::string perf_dir;
  // Text appended to the server's ganesha.conf (--ganesha-config=FILE), the
  // same for every target of a run (e.g. MDCACHE settings).
  std::string ganesha_config;
  size_t max_files = 0;
  int version = 3;
  bool cold = false;
  // --connect=ADDR: read from a server already running at ADDR (a cluster
  // of servers: bench/cluster_bench.sh) instead of starting one; its export
  // is --mount (NFSv3 path or NFSv4 pseudo path).
  std::string connect;
  std::string mount;
  // With --connect: read passes, and whether each waits for a line on
  // stdin after printing "ready" (so that a driver starts every client's
  // pass at once).
  int rounds = 1;
  bool wait = false;
};

// Value of "--name=value" in arg, if arg is that flag.
std::optional<std::string> FlagValue(const std::string& arg, const std::string& name) {
  std::string prefix = "--" + name + "=";
  if (arg.rfind(prefix, 0) != 0) return std::nullopt;
  return arg.substr(prefix.size());
}

// Contents of the file at path; exits with a message if it cannot be read.
std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) Die("cannot read " + path);
  return text.str();
}

void Usage() {
  std::fprintf(stderr,
               "usage: nfs_bench_client (--tarball=FILE [--max-files=N] | --generate=N:SEED)\n"
               "         (--write-tar=FILE | --posix=DIR | --server=kvfs|mem|vfs --work=DIR\n"
               "          [--fsal-dir=DIR] [--version=3|4] [--cold] [--kv-backend=NAME]\n"
               "          [--ganesha-config=FILE]\n"
               "          | --connect=ADDR --mount=PATH [--version=3|4] [--rounds=N] [--wait])\n"
               "         [--tree=NAME] [--share=I/N]\n"
               "         [--phases=untar,read,stat,lookup,bigdir] [--inflight=32]\n"
               "         [--bigdir=N] [--lookups=N] [--seed=N] [--label=NAME]\n");
  std::exit(2);
}

// Runs the phases listed in flags.phases through `phases` (NfsPhases or
// PosixPhases); before "read", calls before_read (restart + drop caches) if
// set. With flags.perf_dir and server_pid, the server is profiled during
// untar and read.
template <typename P>
bool RunPhases(P& phases, const Flags& flags, const Options& opt,
               const std::function<P&()>& before_read,
               const std::function<pid_t()>& server_pid = nullptr) {
  auto perf_file = [&](const char* phase) {
    if (flags.perf_dir.empty() || !server_pid) return std::string();
    return flags.perf_dir + "/" + opt.target + "-" + opt.corpus_name + "-" + phase + ".data";
  };
  bool ok = true;
  // Reports a phase's result with the CPU seconds the server (if its pid is
  // known) and this client used during it.
  auto report = [&](const std::function<PhaseResult()>& phase) {
    const pid_t pid = server_pid ? server_pid() : -1;
    const ProcessStat server_before = pid > 0 ? ReadProcessStat(pid) : ProcessStat();
    const long switches_before = pid > 0 ? ProcessContextSwitches(pid) : 0;
    const double client_before = ThisProcessCpuSeconds();
    PhaseResult r = phase();
    char cpu[160];
    std::snprintf(cpu, sizeof cpu, ", \"client_cpu_s\": %.2f",
                  ThisProcessCpuSeconds() - client_before);
    r.extra += cpu;
    if (pid > 0) {
      const ProcessStat server_after = ReadProcessStat(pid);
      std::snprintf(cpu, sizeof cpu,
                    ", \"server_cpu_s\": %.2f, \"server_switches\": %ld"
                    ", \"server_minor_faults\": %llu",
                    server_after.cpu_seconds - server_before.cpu_seconds,
                    ProcessContextSwitches(pid) - switches_before,
                    server_after.minor_faults - server_before.minor_faults);
      r.extra += cpu;
    }
    Report(opt, r);
    ok = ok && r.errors == 0;
  };
  auto want = [&](const char* name) {
    return ("," + flags.phases + ",").find(std::string(",") + name + ",") != std::string::npos;
  };
  P* p = &phases;
  if (want("untar")) {
    std::string file = perf_file("untar");
    PerfRecorder perf(file.empty() ? 0 : server_pid(), file);
    report([&] { return p->Untar(); });
  }
  if (want("read")) {
    if (before_read) p = &before_read();
    std::string file = perf_file("read");
    PerfRecorder perf(file.empty() ? 0 : server_pid(), file);
    report([&] { return p->Read(); });
  }
  if (want("stat")) report([&] { return p->Stat(); });
  if (want("lookup") && opt.lookups > 0) report([&] { return p->Lookup(); });
  if (want("bigdir") && opt.bigdir > 0) {
    for (const PhaseResult& r : p->BigDir()) {
      Report(opt, r);  // two phases in one run: no CPU of its own each
      ok = ok && r.errors == 0;
    }
  }
  return ok;
}

// Server options for a target serving `corpus`.
e2e::GaneshaOptions ServerOptions(const Flags& flags, const Corpus& corpus, Options* opt) {
  std::filesystem::create_directories(flags.work);
  if (flags.server == "kvfs") {
    fsal_test::KvfsExport k;
    k.path = "/bench";
    k.db_path = flags.work + "/db";
    k.capacity_bytes = 1ull << 40;
    k.capacity_inodes = 1ull << 32;
    k.kv_backend = flags.kv_backend;
    e2e::GaneshaOptions o = fsal_test::KvfsServerOptions({k}, flags.fsal_dir);
    o.exports[0].extra_config = "UseCookieVerifier = false;";
    return o;
  }
  if (flags.server == "mem") {
    // FSAL_MEM allocates Inode_Size bytes with every file (at most 2 MiB)
    // and keeps no more of it: as much as the corpus's largest file needs,
    // so that a million empty files do not take 2 TiB of address space
    // (and the machine's memory in page tables).
    uint64_t largest = 0;
    for (const Entry& e : corpus.entries) largest = std::max<uint64_t>(largest, e.data.size());
    const uint64_t inode_size = std::min<uint64_t>(largest, 2 << 20);
    if (largest > inode_size) opt->truncates_beyond = inode_size;
    return e2e::MemServerOptions("/bench", static_cast<uint32_t>(inode_size));
  }
  if (flags.server == "vfs") {
    std::filesystem::create_directories(flags.work + "/export");
    e2e::GaneshaOptions o;
    o.system_fsals = {"VFS"};
    e2e::GaneshaExport e;
    e.path = flags.work + "/export";
    e.pseudo = "/bench";
    e.fsal_name = "VFS";
    o.exports.push_back(e);
    return o;
  }
  Die("unknown --server " + flags.server);
}

// --connect: `rounds` read passes through a server that runs already (each
// after "ready" on stdout and a line on stdin, with --wait).
int RunConnected(const Flags& flags, const Corpus& corpus, Options opt) {
  if (flags.mount.empty() || flags.rounds < 1) Usage();
  opt.target = flags.label.empty() ? flags.connect : flags.label;
  e2e::NfsClientOptions copts;
  copts.server = flags.connect;
  // A cold first touch waits for the server to load the whole tree.
  copts.timeout_ms = 600000;
  e2e::NfsClient client(flags.version == 4 ? e2e::NfsVersion::kV4 : e2e::NfsVersion::kV3, copts);
  if (client.Mount(flags.mount) != 0) Die("mount " + flags.mount + ": " + client.LastError());
  NfsPhases phases(&client, corpus, opt);
  bool ok = true;
  for (int round = 1; round <= flags.rounds; ++round) {
    if (flags.wait) {
      std::printf("ready\n");
      std::fflush(stdout);
      std::string line;
      if (!std::getline(std::cin, line)) Die("no go on stdin");
    }
    PhaseResult r = phases.Read();
    r.extra = ", \"round\": " + std::to_string(round);
    Report(opt, r);
    ok = ok && r.errors == 0;
  }
  return ok ? 0 : 1;
}

int Main(int argc, char** argv) {
  Flags flags;
  Options opt;
  opt.lookups = 0;
  std::string lookups_flag;
  std::string inflight_flag;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (auto v = FlagValue(a, "posix"))
      flags.posix_dir = *v;
    else if (auto v = FlagValue(a, "server"))
      flags.server = *v;
    else if (auto v = FlagValue(a, "work"))
      flags.work = *v;
    else if (auto v = FlagValue(a, "fsal-dir"))
      flags.fsal_dir = *v;
    else if (auto v = FlagValue(a, "tarball"))
      flags.tarball = *v;
    else if (auto v = FlagValue(a, "generate"))
      flags.generate = *v;
    else if (auto v = FlagValue(a, "write-tar"))
      flags.write_tar = *v;
    else if (auto v = FlagValue(a, "phases"))
      flags.phases = *v;
    else if (auto v = FlagValue(a, "label"))
      flags.label = *v;
    else if (auto v = FlagValue(a, "kv-backend"))
      flags.kv_backend = *v;
    else if (auto v = FlagValue(a, "perf-dir"))
      flags.perf_dir = *v;
    else if (auto v = FlagValue(a, "ganesha-config"))
      flags.ganesha_config = ReadFileOrDie(*v);
    else if (auto v = FlagValue(a, "max-files"))
      flags.max_files = std::stoull(*v);
    else if (auto v = FlagValue(a, "version"))
      flags.version = std::stoi(*v);
    else if (auto v = FlagValue(a, "inflight"))
      inflight_flag = *v;
    else if (auto v = FlagValue(a, "bigdir"))
      opt.bigdir = std::stoull(*v);
    else if (auto v = FlagValue(a, "lookups"))
      lookups_flag = *v;
    else if (auto v = FlagValue(a, "seed"))
      opt.seed = std::stoull(*v);
    else if (a == "--cold")
      flags.cold = true;
    else if (auto v = FlagValue(a, "connect"))
      flags.connect = *v;
    else if (auto v = FlagValue(a, "mount"))
      flags.mount = *v;
    else if (auto v = FlagValue(a, "rounds"))
      flags.rounds = std::stoi(*v);
    else if (a == "--wait")
      flags.wait = true;
    else if (auto v = FlagValue(a, "tree"))
      opt.tree = *v;
    else if (auto v = FlagValue(a, "share")) {
      const size_t slash = v->find('/');
      if (slash == std::string::npos) Usage();
      opt.by_share = true;
      opt.share_index = std::stoull(v->substr(0, slash));
      opt.share_count = std::stoull(v->substr(slash + 1));
      if (opt.share_count == 0 || opt.share_index >= opt.share_count) Usage();
    } else
      Usage();
  }
  if (flags.tarball.empty() == flags.generate.empty()) Usage();
  if (flags.version != 3 && flags.version != 4) Usage();
  // libnfs 4.0 keeps one NFSv4 open-owner whose seqid breaks with several
  // OPENs in flight (NFS4ERR_BAD_SEQID): v4 defaults to one request at a time.
  opt.inflight = inflight_flag.empty() ? (flags.version == 4 ? 1 : 32) : std::stoi(inflight_flag);
  if (opt.inflight < 1) Usage();

  Corpus corpus;
  if (!flags.tarball.empty()) {
    // A connected client only reads: hashes and sizes suffice.
    corpus = LoadTarball(flags.tarball, flags.max_files, flags.connect.empty());
    std::filesystem::path tar_path(flags.tarball);
    opt.corpus_name =
        (tar_path.extension() == ".tar" ? tar_path.stem() : tar_path.filename()).string();
  } else {
    size_t colon = flags.generate.find(':');
    if (colon == std::string::npos) Usage();
    corpus = Generate(std::stoull(flags.generate.substr(0, colon)),
                      std::stoull(flags.generate.substr(colon + 1)));
    opt.corpus_name = "generated-" + flags.generate;
  }
  opt.lookups = lookups_flag.empty() ? corpus.entries.size() : std::stoull(lookups_flag);
  std::fprintf(stderr, "corpus %s: %zu entries, %llu files, %llu bytes\n", opt.corpus_name.c_str(),
               corpus.entries.size(), static_cast<unsigned long long>(corpus.file_count),
               static_cast<unsigned long long>(corpus.file_bytes));

  if (!flags.write_tar.empty()) {
    WriteTarball(corpus, flags.write_tar);
    return 0;
  }
  if (!flags.connect.empty()) return RunConnected(flags, corpus, opt);
  if (!flags.posix_dir.empty()) {
    opt.target = flags.label.empty() ? "posix" : flags.label;
    std::filesystem::create_directories(flags.posix_dir);
    PosixPhases phases(flags.posix_dir, corpus, opt);
    std::function<PosixPhases&()> before_read;
    if (flags.cold) {
      before_read = [&]() -> PosixPhases& {
        DropCaches();
        return phases;
      };
    }
    return RunPhases<PosixPhases>(phases, flags, opt, before_read) ? 0 : 1;
  }
  if (flags.server.empty() || flags.work.empty()) Usage();
  opt.target = flags.label.empty()
                   ? flags.server + (flags.kv_backend.empty() ? "" : "-" + flags.kv_backend) +
                         "-v" + std::to_string(flags.version)
                   : flags.label;
  e2e::GaneshaOptions server_options = ServerOptions(flags, corpus, &opt);
  server_options.extra_config += flags.ganesha_config;
  e2e::GaneshaServer server(server_options);
  if (Status s = server.Start(); !s.ok()) Die("server start: " + s.ToString());
  std::fprintf(stderr, "ganesha.nfsd pid %d\n", static_cast<int>(server.pid()));
  e2e::NfsVersion version = flags.version == 4 ? e2e::NfsVersion::kV4 : e2e::NfsVersion::kV3;
  e2e::NfsClientOptions copts;
  copts.timeout_ms = 120000;
  auto client = std::make_unique<e2e::NfsClient>(version, copts);
  const e2e::GaneshaExport& exp = server_options.exports[0];
  std::string mount_path = version == e2e::NfsVersion::kV4 ? exp.PseudoPath() : exp.path;
  if (client->Mount(mount_path) != 0) Die("mount: " + client->LastError());
  auto phases = std::make_unique<NfsPhases>(client.get(), corpus, opt);
  std::function<NfsPhases&()> before_read;
  if (flags.cold && flags.server != "mem") {
    before_read = [&]() -> NfsPhases& {
      phases.reset();
      client.reset();
      if (Status s = server.Stop(); !s.ok()) Die("server stop: " + s.ToString());
      DropCaches();
      if (Status s = server.Start(); !s.ok()) Die("server restart: " + s.ToString());
      client = std::make_unique<e2e::NfsClient>(version, copts);
      if (client->Mount(mount_path) != 0) Die("mount: " + client->LastError());
      phases = std::make_unique<NfsPhases>(client.get(), corpus, opt);
      return *phases;
    };
  }
  bool ok =
      RunPhases<NfsPhases>(*phases, flags, opt, before_read, [&server] { return server.pid(); });
  phases.reset();
  client.reset();
  if (Status s = server.Stop(); !s.ok()) {
    std::fprintf(stderr, "server stop: %s\n", s.ToString().c_str());
    ok = false;
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace kvfs::bench

int main(int argc, char** argv) { return kvfs::bench::Main(argc, argv); }
