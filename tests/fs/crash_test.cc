// Crash consistency on every key/value backend: a child process runs random mutations
// (durable mode, two threads, group commit) and reports over a pipe each
// operation it starts and each one acknowledged; the parent kills it with
// SIGKILL at a random moment, reopens the store and checks that
//   - Fsck finds the store consistent, before and after FileSystem::Open
//     (which deletes the files that were open and unlinked: no orphan may
//     remain);
//   - the tree is exactly what the acknowledged operations built (names,
//     types, contents, inode numbers), except that each thread's one
//     operation in flight may or may not have happened;
//   - inode numbers are never handed out twice across crashes;
//   - the reopened file system accepts new writes.
// Each seed kills the same store several times in a row, the parent writing
// between the rounds.
//
// This binary has its own main(): run with "--crash-child ..." it is the
// child (see ChildMain); it is started with fork and exec so that it begins
// without the parent's store threads.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/fs/file_system.h"
#include "common/fs/path.h"
#include "common/fs/schema.h"
#include "tests/fs/test_util.h"
#include "tests/test_backends.h"

namespace kvfs {
namespace {

using namespace std::chrono_literals;

constexpr const char* kChildFlag = "--crash-child";
// The child writes its reports to this descriptor.
constexpr int kReportFd = 100;
constexpr int kThreads = 2;
constexpr int kRoundsPerSeed = 5;

// Deterministic contents of `len` bytes for a write tagged `seed`.
std::string Pattern(uint64_t seed, size_t len) {
  std::string s(len, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < len; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    s[i] = static_cast<char>(x >> 56);
  }
  return s;
}

// One mutation as reported over the pipe: "<kind> <path> <a> <b> <c>".
struct Op {
  char kind = 0;  // M mkdir, C create, W write, T truncate, U unlink
  std::string path;
  uint64_t a = 0, b = 0, c = 0;  // W: offset, length, seed; T: size

  std::string Encode() const {
    return std::string(1, kind) + " " + path + " " + std::to_string(a) + " " + std::to_string(b) +
           " " + std::to_string(c);
  }
  static bool Decode(std::istream& in, Op* op) {
    return static_cast<bool>(in >> op->kind >> op->path >> op->a >> op->b >> op->c);
  }
};

// What the tree holds at one path.
struct Object {
  bool dir = false;
  std::string data;
  Ino ino = 0;  // 0 if not known
};
using Tree = std::map<std::string, Object>;

// Applies `op` to `tree`; `ino` is the new object's number (0: unknown).
void Apply(const Op& op, Ino ino, Tree* tree) {
  switch (op.kind) {
    case 'M':
    case 'C':
      (*tree)[op.path] = Object{op.kind == 'M', "", ino};
      break;
    case 'W': {
      std::string& d = (*tree)[op.path].data;
      if (d.size() < op.a + op.b) d.resize(op.a + op.b, '\0');
      d.replace(op.a, op.b, Pattern(op.c, op.b));
      break;
    }
    case 'T':
      (*tree)[op.path].data.resize(op.a, '\0');
      break;
    case 'U':
      tree->erase(op.path);
      break;
  }
}

// ---- The child -----------------------------------------------------------------------------

// Serializes report lines (each is written with one write(), below
// PIPE_BUF, so it arrives whole even if the process dies).
class Reporter {
 public:
  explicit Reporter(int fd) : fd_(fd) {}
  void Line(const std::string& line) {
    std::lock_guard<std::mutex> l(mu_);
    std::string s = line + "\n";
    if (write(fd_, s.data(), s.size()) != static_cast<ssize_t>(s.size())) _exit(4);
  }

 private:
  std::mutex mu_;
  const int fd_;
};

[[noreturn]] void ChildFail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "crash child: %s: %s\n", what.c_str(), s.ToString().c_str());
  _exit(3);
}

// One thread of the child: mutations below its own top-level directory (and
// a few files of its own directly in the root), forever.
void ChildThread(FileSystem* fs, Reporter* reporter, uint64_t seed, int round, int thread) {
  std::mt19937_64 rng(seed * 1000 + round * 10 + thread);
  auto u = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  const std::string prefix = "r" + std::to_string(round) + "t" + std::to_string(thread);
  std::vector<std::pair<std::string, Ino>> dirs;   // path, ino
  std::vector<std::pair<std::string, Ino>> files;  // path, ino
  std::vector<Ino> open_files;                     // kept open until the kill
  uint64_t n = 0;
  auto run = [&](const Op& op, const std::function<Status(Ino*)>& body) {
    reporter->Line("I " + std::to_string(thread) + " " + op.Encode());
    Ino ino = 0;
    Status s = body(&ino);
    if (!s.ok()) ChildFail(op.Encode(), s);
    reporter->Line("A " + std::to_string(thread) + " " + std::to_string(ino));
  };
  const NewObject obj{0644, 0, 0};
  run(Op{'M', "/" + prefix}, [&](Ino* ino) {
    Attributes a;
    KVFS_RETURN_IF_ERROR(fs->Mkdir(kRootIno, prefix, obj, &a));
    dirs.emplace_back("/" + prefix, a.ino);
    *ino = a.ino;
    return Status::OK();
  });
  for (;;) {
    const uint64_t pick = u(100);
    if (pick < 10 || files.empty()) {
      const bool is_dir = pick < 10;
      const bool in_root = !is_dir && u(10) == 0;
      const auto& [dir_path, dir_ino] = dirs[u(dirs.size())];
      const Ino parent = in_root ? kRootIno : dir_ino;
      const std::string name = (in_root ? prefix : "") + (is_dir ? "d" : "f") + std::to_string(n++);
      const std::string path = JoinPath(in_root ? "/" : dir_path, name);
      run(Op{is_dir ? 'M' : 'C', path}, [&](Ino* ino) {
        Attributes a;
        KVFS_RETURN_IF_ERROR(is_dir ? fs->Mkdir(parent, name, obj, &a)
                                    : fs->Create(parent, name, obj, true, &a));
        (is_dir ? dirs : files).emplace_back(path, a.ino);
        *ino = a.ino;
        return Status::OK();
      });
    } else if (pick < 70) {
      const auto& [path, file_ino] = files[u(files.size())];
      const uint64_t off = u(4) == 0 ? u(200000) : u(6000);
      const uint64_t len = 1 + (u(4) == 0 ? u(70000) : u(5000));
      const Op op{'W', path, off, len, rng()};
      const Stability stability = u(2) ? Stability::kStable : Stability::kUnstable;
      run(op, [&, ino = file_ino](Ino*) {
        Attributes a;
        KVFS_RETURN_IF_ERROR(fs->Write(ino, op.a, Pattern(op.c, op.b), stability, &a));
        return stability == Stability::kStable ? Status::OK() : fs->Fsync(ino);
      });
    } else if (pick < 85) {
      const auto& [path, file_ino] = files[u(files.size())];
      const Op op{'T', path, u(3) == 0 ? u(200000) : u(6000)};
      run(op, [&, ino = file_ino](Ino*) {
        SetAttrRequest req;
        req.size = op.a;
        Attributes a;
        return fs->SetAttr(ino, req, &a);
      });
    } else {
      const size_t i = u(files.size());
      // Not a structured binding: clang 14 cannot capture those in the lambda.
      const std::string path = files[i].first;
      const Ino file_ino = files[i].second;
      files.erase(files.begin() + i);
      // Half of the removed files stay open: orphans at the kill.
      if (u(2) == 0) {
        Status s = fs->OpenFile(file_ino);
        if (!s.ok()) ChildFail("open " + path, s);
        open_files.push_back(file_ino);
      }
      run(Op{'U', path}, [&](Ino*) {
        Attributes parent;
        std::string name;
        KVFS_RETURN_IF_ERROR(ResolveParent(fs, path, &parent, &name));
        return fs->Unlink(parent.ino, name);
      });
    }
  }
}

int ChildMain(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s %s BACKEND:DB SEED ROUND FD\n", argv[0], kChildFlag);
    return 2;
  }
  const std::string spec = argv[2];
  const std::string backend = spec.substr(0, spec.find(':'));
  const std::string db = spec.substr(spec.find(':') + 1);
  const uint64_t seed = std::strtoull(argv[3], nullptr, 10);
  const int round = std::atoi(argv[4]);
  Reporter reporter(std::atoi(argv[5]));
  std::unique_ptr<KVStore> store;
  Status s = testing::OpenTestStore(backend, db, &store, testing::SmallBufferOptions(backend));
  if (!s.ok()) ChildFail("open store", s);
  std::unique_ptr<FileSystem> fs;
  s = FileSystem::Open(FileSystemOptions(), std::move(store), &fs);
  if (!s.ok()) ChildFail("open file system", s);
  reporter.Line("R");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(ChildThread, fs.get(), &reporter, seed, round, t);
  }
  for (auto& t : threads) t.join();  // never returns: the parent kills us
  return 0;
}

// ---- The parent ----------------------------------------------------------------------------

// Parameters: backend, seed.
class CrashTest : public ::testing::TestWithParam<std::tuple<std::string, uint64_t>> {
 protected:
  const std::string& Backend() const { return std::get<0>(GetParam()); }
  uint64_t Seed() const { return std::get<1>(GetParam()); }

  void SetUp() override {
    tmp_ = std::make_unique<testing::TempDir>("kvfs_crash_test");
    db_ = tmp_->path() + "/db";
    rng_.seed(Seed());
  }

  // Starts a child for `round`, kills it at a random moment and collects its
  // reports into model_ (acknowledged) and pending_ (in flight).
  void RunChild(int round) {
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    const std::string exe = "/proc/self/exe";
    std::vector<std::string> args = {"crash_test",          kChildFlag,
                                     Backend() + ":" + db_, std::to_string(Seed()),
                                     std::to_string(round), std::to_string(kReportFd)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Only async-signal-safe calls until exec.
      if (dup2(fds[1], kReportFd) < 0) _exit(5);
      execv(exe.c_str(), argv.data());
      _exit(6);
    }
    close(fds[1]);
    std::string buf;
    // Some rounds kill during startup (store open, orphan cleanup), the
    // others 20-300 ms after the child is ready.
    const bool early = round % kRoundsPerSeed == 2;
    auto deadline =
        std::chrono::steady_clock::now() +
        (early ? std::chrono::milliseconds(rng_() % 40) : std::chrono::milliseconds(20000));
    bool ready = false;
    for (;;) {
      const ReadResult r = ReadSome(fds[0], deadline, &buf);
      if (r == ReadResult::kEof) break;
      if (!ready && buf.starts_with("R\n")) {
        ready = true;
        if (!early) {
          deadline =
              std::chrono::steady_clock::now() + std::chrono::milliseconds(20 + rng_() % 281);
        }
      }
      if (r == ReadResult::kTimeout) break;
    }
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    while (ReadSome(fds[0], std::chrono::steady_clock::time_point::max(), &buf) !=
           ReadResult::kEof) {
    }
    close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child ended on its own (status " << status << "), see its stderr";
    ASSERT_TRUE(early || ready) << "the child never became ready";
    ParseReports(buf);
  }

  enum class ReadResult { kData, kTimeout, kEof };
  // Appends what `fd` has to *buf, waiting for data until `deadline`.
  static ReadResult ReadSome(int fd, std::chrono::steady_clock::time_point deadline,
                             std::string* buf) {
    for (;;) {
      int timeout = -1;
      if (deadline != std::chrono::steady_clock::time_point::max()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return ReadResult::kTimeout;
        timeout = static_cast<int>(left.count());
      }
      struct pollfd p = {fd, POLLIN, 0};
      int r = poll(&p, 1, timeout);
      if (r == 0) return ReadResult::kTimeout;
      if (r < 0 && errno == EINTR) continue;
      char chunk[65536];
      ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ReadResult::kEof;
      buf->append(chunk, n);
      return ReadResult::kData;
    }
  }

  void ParseReports(const std::string& buf) {
    std::map<int, Op> in_flight;
    std::istringstream lines(buf);
    std::string line;
    while (std::getline(lines, line)) {
      if (lines.eof()) break;  // a partial last line (cannot happen: one write per line)
      std::istringstream in(line);
      char kind;
      int thread;
      if (!(in >> kind) || kind == 'R') continue;
      ASSERT_TRUE(in >> thread) << line;
      if (kind == 'I') {
        ASSERT_TRUE(Op::Decode(in, &in_flight[thread])) << line;
        continue;
      }
      Ino ino = 0;
      ASSERT_TRUE(kind == 'A' && (in >> ino) && in_flight.count(thread)) << line;
      const Op& op = in_flight[thread];
      if (ino != 0) {
        EXPECT_TRUE(inos_.insert(ino).second) << "inode number " << ino << " handed out twice";
      }
      Apply(op, ino, &model_);
      ++acknowledged_;
      in_flight.erase(thread);
    }
    pending_.clear();
    for (auto& [thread, op] : in_flight) pending_.push_back(op);
  }

  // Reads the whole KVFS tree below directory `dir` (at `path`) into *out.
  void ReadTree(FileSystem* fs, Ino dir, const std::string& path, Tree* out) {
    std::vector<DirEntry> entries;
    bool eof = false;
    ASSERT_OK(fs->ReadDir(
        dir, kStartCookie,
        [&](const DirEntry& e) {
          entries.push_back(e);
          return true;
        },
        &eof));
    ASSERT_TRUE(eof);
    for (const DirEntry& e : entries) {
      const std::string p = JoinPath(path, e.name);
      Object& o = (*out)[p];
      o.ino = e.attrs.ino;
      o.dir = e.attrs.type == FileType::kDirectory;
      if (o.dir) {
        ReadTree(fs, e.attrs.ino, p, out);
      } else {
        ASSERT_EQ(e.attrs.type, FileType::kRegular) << p;
        ASSERT_OK(testing::ReadAll(fs, e.attrs.ino, &o.data));
      }
    }
  }

  static bool Same(const std::optional<Object>& want, const std::optional<Object>& have) {
    if (!want || !have) return !want && !have;
    return want->dir == have->dir && want->data == have->data &&
           (want->ino == 0 || want->ino == have->ino);
  }
  static std::optional<Object> At(const Tree& t, const std::string& p) {
    auto it = t.find(p);
    return it == t.end() ? std::nullopt : std::optional<Object>(it->second);
  }
  static std::string Show(const std::optional<Object>& o) {
    if (!o) return "absent";
    return (o->dir ? "directory"
                   : "file of " + std::to_string(o->data.size()) + " bytes, hash " +
                         std::to_string(std::hash<std::string>()(o->data))) +
           " (inode " + std::to_string(o->ino) + ")";
  }

  // Opens the store after a crash and checks it; see the file comment.
  void Verify(const std::string& when) {
    SCOPED_TRACE(when);
    std::unique_ptr<KVStore> store;
    KVStoreSpec spec;
    spec.path = db_;
    spec.backend = Backend();
    spec.create_if_missing = false;
    Status s = OpenKVStore(spec, &store);
    if (s.IsNotFound()) {  // killed before the store was even created
      ASSERT_TRUE(model_.empty());
      return;
    }
    ASSERT_OK(s);
    for (const auto& p : testing::FsckProblems(store.get(), DefaultNameHasher())) {
      ADD_FAILURE() << "fsck after the crash: " << p;
    }
    std::unique_ptr<FileSystem> fs;
    ASSERT_OK(FileSystem::Open(FileSystemOptions(), std::move(store), &fs));
    for (const auto& p : testing::FsckProblems(fs.get(), DefaultNameHasher())) {
      ADD_FAILURE() << "fsck after reopening: " << p;
    }
    {
      IteratorOptions io;
      auto it = fs->store()->NewIterator(Column::kMeta, io);
      it->Seek(schema::kOrphanPrefix);
      EXPECT_FALSE(it->Valid() && it->key().starts_with(schema::kOrphanPrefix))
          << "an orphan survived FileSystem::Open";
    }
    Tree actual;
    ReadTree(fs.get(), kRootIno, "/", &actual);
    if (HasFailure()) return;
    Tree alternative = model_;  // every in-flight operation done
    for (const Op& op : pending_) Apply(op, 0, &alternative);
    std::set<std::string> paths;
    for (const Tree* t : {&model_, &alternative, &actual}) {
      for (const auto& [p, o] : *t) paths.insert(p);
    }
    for (const std::string& p : paths) {
      const auto have = At(actual, p);
      if (Same(At(model_, p), have) || Same(At(alternative, p), have)) continue;
      ADD_FAILURE() << p << ": found " << Show(have) << ", acknowledged state "
                    << Show(At(model_, p)) << ", with the operation in flight "
                    << Show(At(alternative, p));
    }
    // Adopt what the in-flight operations left behind, then keep writing.
    for (auto& [p, o] : actual) {
      if (!model_.count(p) || model_[p].ino == 0) inos_.insert(o.ino);
    }
    model_ = std::move(actual);
    pending_.clear();
    WriteAsParent(fs.get());
  }

  // The parent's own durable writes between rounds.
  void WriteAsParent(FileSystem* fs) {
    const std::string name = "parent-" + std::to_string(parent_files_++);
    Attributes a;
    ASSERT_OK(fs->Create(kRootIno, name, NewObject{}, true, &a));
    EXPECT_TRUE(inos_.insert(a.ino).second) << "inode number " << a.ino << " handed out twice";
    const std::string data = Pattern(a.ino, 70000);
    ASSERT_OK(fs->Write(a.ino, 0, data, Stability::kStable, &a));
    model_["/" + name] = Object{false, data, a.ino};
  }

  std::unique_ptr<testing::TempDir> tmp_;
  std::string db_;
  std::mt19937_64 rng_;
  Tree model_;               // what the acknowledged operations built
  std::vector<Op> pending_;  // operations in flight at the kill
  std::set<Ino> inos_;       // every inode number seen so far
  uint64_t acknowledged_ = 0;
  int parent_files_ = 0;
};

TEST_P(CrashTest, KillAtRandomMomentsAndRecover) {
  for (int round = 0; round < kRoundsPerSeed && !HasFailure(); ++round) {
    RunChild(round);
    if (HasFailure()) return;
    Verify("after kill " + std::to_string(round + 1));
  }
  if (HasFailure()) return;
  Verify("final reopen");
  std::printf("seed %llu: %d kills, %llu operations acknowledged, %zu objects\n",
              static_cast<unsigned long long>(Seed()), kRoundsPerSeed,
              static_cast<unsigned long long>(acknowledged_), model_.size());
}

INSTANTIATE_TEST_SUITE_P(BackendsAndSeeds, CrashTest,
                         ::testing::Combine(::testing::ValuesIn(testing::PersistentBackends()),
                                            ::testing::Values(1, 2, 3, 4)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_seed" +
                                  std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace kvfs

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], kvfs::kChildFlag) == 0) {
    return kvfs::ChildMain(argc, argv);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
