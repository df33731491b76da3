// Robustness end to end: no sequence of valid requests from any client may
// take the server down. ganesha.nfsd with FSAL_KVFS runs under a 2 GiB data
// limit (RLIMIT_DATA: heap, private mappings, thread stacks), so a request
// whose cost followed a file's logical size instead of what it stores fails
// this test instead of the machine:
//   - sparse giants: a file of 2^62 bytes (2^46 block numbers) created,
//     written at both ends, read, truncated, unlinked, also while open; the
//     largest size enforced (EFBIG past it);
//   - such a file in a tree of the persistent store: written back as a
//     small sparse tarball that GNU tar extracts to the same sparse file,
//     evicted, loaded again;
//   - a randomized mix of operations from two clients (NFSv3 and NFSv4) with
//     giant offsets and sizes among them, compared with a model afterwards,
//     then `kvfs fsck` of the store.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/fsal/fsal_test_util.h"
#include "tests/fsal/raw_nfs3.h"
#include "tests/ingest/ingest_test_util.h"

namespace kvfs::fsal_test {
namespace {

using e2e::GaneshaServer;
using e2e::NfsClient;
using e2e::NfsFile;
using e2e::NfsStat;
using e2e::NfsStatVfs;
using e2e::NfsVersion;
using ingest_test::RunCommand;

constexpr uint64_t kDataLimit = 2ull << 30;
constexpr uint64_t kGiant = 1ull << 62;
// FSINFO's maxfilesize (docs/fsal.md): the largest size, and the largest
// offset + length of a write.
constexpr uint64_t kMaxFileSize = (1ull << 63) - 1;

// Ganesha refuses a READ or WRITE that ends past the export's MaxOffsetRead
// / MaxOffsetWrite (default 2^63 - 1) before the FSAL sees it, so a
// page-sized read of the last bytes of a file of the largest size would
// fail; the sample configuration lifts both (docs/fsal.md).
constexpr char kNoOffsetLimits[] =
    "MaxOffsetRead = 18446744073709551615; MaxOffsetWrite = 18446744073709551615;";

// A WRITE over `client`'s version: the bytes written, or the negative
// errno. libnfs reports every NFSv3 READ/WRITE error as EFAULT, so NFSv3
// writes go out raw (FILE_SYNC) and their status maps to the errno.
int64_t WriteAt(NfsClient& client, NfsFile* f, const std::string& path, const std::string& data,
                uint64_t offset) {
  if (client.version() == NfsVersion::kV4) return f->Pwrite(data, offset);
  FileHandle fh;
  if (int rc = HandleOf(client, path, &fh); rc != 0) return rc;
  int status = -1;
  if (int rc = RawWrite(client, fh, offset, data, &status); rc != 0) return rc;
  switch (status) {
    case kNfs3Ok:
      return static_cast<int64_t>(data.size());
    case kNfs3ErrFbig:
      return -EFBIG;
    case kNfs3ErrStale:
      return -ESTALE;
    default:
      return -EIO;
  }
}

uint64_t UsedBytes(NfsClient* c) {
  NfsStatVfs st;
  EXPECT_EQ(c->StatVfs("/", &st), 0) << c->LastError();
  return (st.f_blocks - st.f_bfree) * st.f_frsize;
}

class Robustness : public ::testing::TestWithParam<NfsVersion> {
 protected:
  // Starts the server: a KVFS export of a fresh store, with `fsal_extra` in
  // its FSAL block.
  void StartServer(const std::string& fsal_extra = "") {
    export_.db_path = dir_.path() + "/db";
    export_.fsal_extra = fsal_extra;
    export_.export_extra = kNoOffsetLimits;
    e2e::GaneshaOptions opts = KvfsServerOptions({export_});
    opts.data_limit_bytes = kDataLimit;
    server_ = std::make_unique<GaneshaServer>(opts);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    client_ = std::make_unique<NfsClient>(GetParam());
    ASSERT_EQ(client_->Mount("/kvfs"), 0) << client_->LastError();
  }

  void TearDown() override {
    client_.reset();
    if (server_ == nullptr) return;
    EXPECT_TRUE(server_->running()) << "the server died: " << server_->exit_description() << "\n"
                                    << server_->LogTail();
    Status s = server_->Stop();
    EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << server_->LogTail();
  }

  // Reads n bytes at offset through an open file.
  std::string Pread(NfsFile* f, size_t n, uint64_t offset) {
    std::string buf(n, '\x55');
    int64_t got = f->Pread(buf.data(), n, offset);
    EXPECT_GE(got, 0) << "read at " << offset << ": " << client_->LastError();
    buf.resize(got < 0 ? 0 : static_cast<size_t>(got));
    return buf;
  }

  TempDir dir_;
  KvfsExport export_;
  std::unique_ptr<GaneshaServer> server_;
  std::unique_ptr<NfsClient> client_;
};

// The case of the issue: truncate to a giant size, then unlink. Every step
// answers at once (a libnfs call gives up after 10 s) within the limit.
TEST_P(Robustness, SparseGiantFiles) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  NfsClient& c = *client_;
  const uint64_t used0 = UsedBytes(&c);
  NfsFile f;
  ASSERT_EQ(c.Create("/giant", O_RDWR, 0644, &f), 0) << c.LastError();
  ASSERT_EQ(f.Ftruncate(kGiant), 0) << c.LastError();
  NfsStat st;
  ASSERT_EQ(f.Fstat(&st), 0);
  EXPECT_EQ(st.nfs_size, kGiant);
  EXPECT_LT(st.nfs_used, 1u << 20);
  // Past the largest size: FBIG, and nothing changes.
  EXPECT_EQ(f.Ftruncate(kMaxFileSize + 1), -EFBIG);
  EXPECT_EQ(WriteAt(c, &f, "/giant", "xy", kMaxFileSize - 1), -EFBIG);
  ASSERT_EQ(f.Fstat(&st), 0);
  EXPECT_EQ(st.nfs_size, kGiant);

  ASSERT_EQ(f.Pwrite("Z", kGiant - 1), 1) << c.LastError();
  ASSERT_EQ(f.Pwrite("A", 0), 1) << c.LastError();
  ASSERT_EQ(f.Fsync(), 0);
  EXPECT_EQ(Pread(&f, 16, kGiant - 1), "Z");
  EXPECT_EQ(Pread(&f, 16, 0), std::string("A") + std::string(15, '\0'));
  EXPECT_EQ(Pread(&f, 1 << 20, kGiant / 3), std::string(1 << 20, '\0'));
  ASSERT_EQ(c.Stat("/giant", &st), 0);
  EXPECT_EQ(st.nfs_size, kGiant);
  EXPECT_LT(st.nfs_used, 1u << 20);
  EXPECT_LT(UsedBytes(&c) - used0, 1u << 20);

  // At the largest size itself, a write of its last byte.
  ASSERT_EQ(f.Ftruncate(kMaxFileSize), 0);
  ASSERT_EQ(f.Pwrite("!", kMaxFileSize - 1), 1) << c.LastError();
  EXPECT_EQ(Pread(&f, 8, kMaxFileSize - 1), "!");

  // Down to one byte, and away.
  ASSERT_EQ(f.Ftruncate(1), 0) << c.LastError();
  EXPECT_EQ(Pread(&f, 16, 0), "A");
  ASSERT_EQ(f.Close(), 0);
  ASSERT_EQ(c.Unlink("/giant"), 0) << c.LastError();
  EXPECT_EQ(UsedBytes(&c), used0);

  // And unlinked at full size, the call the issue saw never answer.
  ASSERT_EQ(c.Create("/giant2", O_RDWR, 0644, &f), 0);
  ASSERT_EQ(f.Ftruncate(999999999999999ull), 0);
  ASSERT_EQ(f.Pwrite("end", 999999999999999ull - 3), 3);
  ASSERT_EQ(f.Close(), 0);
  ASSERT_EQ(c.Unlink("/giant2"), 0) << c.LastError();
  EXPECT_EQ(UsedBytes(&c), used0);
}

// A giant kept open while its name goes: NFSv4 keeps it readable until the
// close (then it is deleted); an NFSv3 handle has no open state and goes
// stale at once.
TEST_P(Robustness, SparseGiantUnlinkedWhileOpen) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  NfsClient& c = *client_;
  const uint64_t used0 = UsedBytes(&c);
  NfsFile f;
  ASSERT_EQ(c.Create("/open-giant", O_RDWR, 0644, &f), 0) << c.LastError();
  ASSERT_EQ(f.Ftruncate(kGiant), 0);
  ASSERT_EQ(f.Pwrite("tail", kGiant - 4), 4);
  FileHandle fh;
  if (GetParam() == NfsVersion::kV3) {
    ASSERT_EQ(HandleOf(c, "/open-giant", &fh), 0);
  }
  ASSERT_EQ(c.Unlink("/open-giant"), 0) << c.LastError();
  if (GetParam() == NfsVersion::kV4) {
    EXPECT_EQ(Pread(&f, 8, kGiant - 4), "tail");
    NfsStat st;
    ASSERT_EQ(f.Fstat(&st), 0);
    EXPECT_EQ(st.nfs_size, kGiant);
    EXPECT_EQ(st.nfs_nlink, 0u);
    ASSERT_EQ(f.Close(), 0);
  } else {
    int status = -1;
    std::string data;
    bool eof;
    ASSERT_EQ(RawRead(c, fh, kGiant - 4, 8, &status, &data, &eof), 0);
    EXPECT_EQ(status, kNfs3ErrStale);
  }
  EXPECT_EQ(UsedBytes(&c), used0);
}

// A giant in a tree of the persistent store: the write-back is a small
// sparse tarball, GNU tar extracts it to the same sparse file, and the tree
// evicted and loaded again holds it unchanged.
TEST_P(Robustness, SparseGiantThroughThePersistentStore) {
  const std::string store = dir_.path() + "/store";
  ASSERT_EQ(::mkdir(store.c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(
      StartServer("persistent_store = \"" + store + "\"; cache_writeback_delay_seconds = 0;"));
  NfsClient& c = *client_;
  ASSERT_EQ(c.Mkdir("/t"), 0) << c.LastError();
  ASSERT_EQ(c.WriteFile("/t/small", "hello"), 0);
  NfsFile f;
  ASSERT_EQ(c.Create("/t/giant", O_RDWR, 0600, &f), 0) << c.LastError();
  ASSERT_EQ(f.Ftruncate(kGiant), 0);
  ASSERT_EQ(f.Pwrite("head", 0), 4);
  ASSERT_EQ(f.Pwrite("tail", kGiant - 4), 4);
  ASSERT_EQ(f.Close(), 0);

  // Write back and evict.
  std::string out;
  ASSERT_EQ(
      RunCommand(std::string(KVFS_TOOL_BIN) + " cache --db " + export_.db_path + " drop t", &out),
      0)
      << out;
  const std::string tarball = store + "/t.tar";
  ASSERT_TRUE(std::filesystem::exists(tarball)) << out;
  EXPECT_LT(std::filesystem::file_size(tarball), 1u << 20);

  // GNU tar restores the sparse file (on a tmpfs: ext4 ends at 16 TiB).
  const std::string x = "/run/robustness-extract";
  std::filesystem::create_directories(x);
  ASSERT_EQ(RunCommand("tar -xf " + tarball + " -C " + x, &out), 0) << out;
  EXPECT_EQ(out, "");
  struct stat sb;
  ASSERT_EQ(::stat((x + "/t/giant").c_str(), &sb), 0);
  EXPECT_EQ(static_cast<uint64_t>(sb.st_size), kGiant);
  EXPECT_LT(static_cast<uint64_t>(sb.st_blocks) * 512, 1u << 20);
  {
    int fd = ::open((x + "/t/giant").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    char head[4], tail[4];
    EXPECT_EQ(::pread(fd, head, 4, 0), 4);
    EXPECT_EQ(::pread(fd, tail, 4, static_cast<off_t>(kGiant - 4)), 4);
    ::close(fd);
    EXPECT_EQ(std::string(head, 4), "head");
    EXPECT_EQ(std::string(tail, 4), "tail");
  }
  std::filesystem::remove_all(x);

  // Loaded again on first touch: the same file.
  ASSERT_EQ(c.Open("/t/giant", O_RDONLY, &f), 0) << c.LastError();
  EXPECT_EQ(Pread(&f, 4, 0), "head");
  EXPECT_EQ(Pread(&f, 8, kGiant - 4), "tail");
  EXPECT_EQ(Pread(&f, 1 << 16, kGiant / 2), std::string(1 << 16, '\0'));
  ASSERT_EQ(f.Close(), 0);
  std::string small;
  ASSERT_EQ(c.ReadFile("/t/small", &small), 0);
  EXPECT_EQ(small, "hello");
  ASSERT_EQ(c.Unlink("/t/giant"), 0) << c.LastError();
}

// ---- A randomized mix from two clients ------------------------------------------

// What a file should hold: its size and the bytes written (everything else
// reads as zeros), as non-overlapping runs.
struct ModelFile {
  bool exists = false;
  uint64_t size = 0;
  std::map<uint64_t, std::string> runs;  // offset -> bytes

  void Write(uint64_t offset, const std::string& data) {
    Cut(offset, offset + data.size());
    runs[offset] = data;
    size = std::max(size, offset + data.size());
  }
  void Truncate(uint64_t new_size) {
    Cut(new_size, UINT64_MAX);
    size = new_size;
  }
  // What a read of n bytes at offset returns.
  std::string Read(uint64_t offset, size_t n) const {
    if (offset >= size) return "";
    n = static_cast<size_t>(std::min<uint64_t>(n, size - offset));
    std::string out(n, '\0');
    for (const auto& [at, data] : runs) {
      const uint64_t from = std::max(at, offset), to = std::min(at + data.size(), offset + n);
      if (from < to) out.replace(from - offset, to - from, data, from - at, to - from);
    }
    return out;
  }

 private:
  // Removes [from, to) from the runs.
  void Cut(uint64_t from, uint64_t to) {
    std::map<uint64_t, std::string> kept;
    for (auto& [at, data] : runs) {
      const uint64_t end = at + data.size();
      if (end <= from || at >= to) {
        kept[at] = std::move(data);
        continue;
      }
      if (at < from) kept[at] = data.substr(0, from - at);
      if (end > to) kept[to] = data.substr(to - at);
    }
    runs = std::move(kept);
  }
};

// One client's share of the mix: its own directory of files, operated on at
// random, checked as it goes; returns the model for the final comparison.
void RunMix(NfsVersion version, const std::string& dir, uint64_t seed, int ops,
            std::vector<ModelFile>* model, std::vector<std::string>* failures) {
  NfsClient c(version);
  if (c.Mount("/kvfs") != 0) {
    failures->push_back(dir + ": mount: " + c.LastError());
    return;
  }
  if (c.Mkdir(dir) != 0) failures->push_back(dir + ": mkdir: " + c.LastError());
  std::mt19937_64 rng(seed);
  auto pick = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  model->assign(6, ModelFile());
  auto path = [&](size_t i) { return dir + "/f" + std::to_string(i); };
  // Offsets: small ones, block boundaries, giant ones, the very end.
  auto offset = [&](const ModelFile& m) -> uint64_t {
    switch (pick(5)) {
      case 0:
        return pick(256 << 10);
      case 1:
        return (1 + pick(64)) * 65536 - 8 + pick(16);
      case 2:
        return pick(kGiant);
      case 3:
        return kMaxFileSize - pick(200000);
      default:
        return m.size;
    }
  };
  auto fail = [&](int op, const std::string& what) {
    failures->push_back(dir + " op " + std::to_string(op) + ": " + what);
  };
  for (int op = 0; op < ops && failures->size() < 10; ++op) {
    const size_t i = pick(model->size());
    ModelFile& m = (*model)[i];
    const std::string p = path(i);
    if (!m.exists) {
      NfsFile f;
      if (int rc = c.Create(p, O_RDWR, 0644, &f); rc != 0) {
        fail(op, "create " + p + ": " + std::to_string(rc));
        continue;
      }
      m = ModelFile();
      m.exists = true;
      continue;
    }
    const uint64_t r = pick(100);
    NfsFile f;
    if (r < 80 && c.Open(p, O_RDWR, &f) != 0) {
      fail(op, "open " + p + ": " + c.LastError());
      continue;
    }
    if (r < 35) {  // write
      const uint64_t off = offset(m);
      const std::string data = ingest_test::RandomBytes(1 + pick(8192), seed * 1000003 + op);
      const int64_t got = WriteAt(c, &f, p, data, off);
      const bool too_big = off > kMaxFileSize - data.size();
      if (too_big ? got != -EFBIG : got != static_cast<int64_t>(data.size())) {
        fail(op, "write " + std::to_string(data.size()) + " at " + std::to_string(off) +
                     " returned " + std::to_string(got));
      } else if (!too_big) {
        m.Write(off, data);
      }
    } else if (r < 50) {  // truncate (sometimes past the largest size)
      const uint64_t size = pick(10) == 0 ? kMaxFileSize + 1 + pick(1000) : offset(m);
      const int rc = f.Ftruncate(size);
      const bool too_big = size > kMaxFileSize;
      if (rc != (too_big ? -EFBIG : 0)) {
        fail(op, "truncate to " + std::to_string(size) + " returned " + std::to_string(rc));
      } else if (!too_big) {
        m.Truncate(size);
      }
    } else if (r < 75) {  // read, checked against the model
      const uint64_t off = pick(2) == 0 ? offset(m) : pick(std::max<uint64_t>(m.size, 1));
      const size_t n = 1 + pick(65536);
      std::string buf(n, '\x55');
      const int64_t got = f.Pread(buf.data(), n, off);
      if (got < 0) {
        fail(op, "read at " + std::to_string(off) + ": " + std::to_string(got));
      } else {
        buf.resize(static_cast<size_t>(got));
        if (buf != m.Read(off, n)) fail(op, "read at " + std::to_string(off) + " differs");
      }
    } else if (r < 80) {  // commit
      if (int rc = f.Fsync(); rc != 0) fail(op, "fsync: " + std::to_string(rc));
    } else if (r < 92) {  // stat
      NfsStat st;
      if (int rc = c.Stat(p, &st); rc != 0) {
        fail(op, "stat: " + std::to_string(rc));
      } else if (st.nfs_size != m.size) {
        fail(op, "size " + std::to_string(st.nfs_size) + ", model " + std::to_string(m.size));
      }
    } else {  // unlink
      if (int rc = c.Unlink(p); rc != 0) {
        fail(op, "unlink: " + std::to_string(rc));
      } else {
        m.exists = false;
      }
    }
  }
}

TEST(RobustnessMix, TwoClientsWithGiantOffsetsMatchTheModel) {
  TempDir dir;
  KvfsExport e;
  e.db_path = dir.path() + "/db";
  e.export_extra = kNoOffsetLimits;
  e2e::GaneshaOptions opts = KvfsServerOptions({e});
  opts.data_limit_bytes = kDataLimit;
  GaneshaServer server(opts);
  Status s = server.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();

  constexpr int kOps = 400;
  std::vector<ModelFile> model_a, model_b;
  std::vector<std::string> failures_a, failures_b;
  std::thread a(RunMix, NfsVersion::kV3, "/a", 11, kOps, &model_a, &failures_a);
  std::thread b(RunMix, NfsVersion::kV4, "/b", 22, kOps, &model_b, &failures_b);
  a.join();
  b.join();
  for (const auto& f : failures_a) ADD_FAILURE() << f;
  for (const auto& f : failures_b) ADD_FAILURE() << f;
  ASSERT_TRUE(server.running()) << "the server died: " << server.exit_description() << "\n"
                                << server.LogTail();

  // Afterwards, through a fresh client: every file as the model says.
  NfsClient c(NfsVersion::kV3);
  ASSERT_EQ(c.Mount("/kvfs"), 0) << c.LastError();
  for (const auto& [dir_name, model] : {std::pair{"/a", &model_a}, std::pair{"/b", &model_b}}) {
    for (size_t i = 0; i < model->size(); ++i) {
      const ModelFile& m = (*model)[i];
      const std::string p = std::string(dir_name) + "/f" + std::to_string(i);
      SCOPED_TRACE(p);
      NfsStat st;
      if (!m.exists) {
        EXPECT_EQ(c.Stat(p, &st), -ENOENT);
        continue;
      }
      ASSERT_EQ(c.Stat(p, &st), 0);
      EXPECT_EQ(st.nfs_size, m.size);
      NfsFile f;
      ASSERT_EQ(c.Open(p, O_RDONLY, &f), 0);
      std::mt19937_64 rng(i);
      std::vector<uint64_t> probes;  // every run, and random points (holes)
      for (const auto& [at, data] : m.runs) probes.push_back(at > 100 ? at - 100 : 0);
      for (int k = 0; k < 8; ++k) probes.push_back(m.size == 0 ? 0 : rng() % m.size);
      for (uint64_t off : probes) {
        std::string buf(9000, '\x55');
        const int64_t got = f.Pread(buf.data(), buf.size(), off);
        ASSERT_GE(got, 0);
        buf.resize(static_cast<size_t>(got));
        EXPECT_EQ(buf, m.Read(off, 9000)) << "at " << off;
      }
    }
  }
  ASSERT_TRUE(server.Stop().ok()) << server.LogTail();
  // The store is consistent, usage counters included.
  std::string out;
  EXPECT_EQ(RunCommand(std::string(KVFS_TOOL_BIN) + " fsck --db " + e.db_path, &out), 0) << out;
}

INSTANTIATE_TEST_SUITE_P(Versions, Robustness, ::testing::Values(NfsVersion::kV3, NfsVersion::kV4),
                         VersionName);

}  // namespace
}  // namespace kvfs::fsal_test
