// Durability of FSAL_KVFS under kill -9: several NFSv3 clients untar a tree
// through ganesha.nfsd + libfsalkvfs.so (mkdir, create with mode, writes,
// COMMIT or FILE_SYNC writes, chown, chmod, utimes) while the server is
// SIGKILLed at a random moment. After a restart, every operation the server
// had answered must be there: NFS lets a server answer FILE_SYNC writes,
// COMMITs and metadata operations only once they are on stable storage.
// Operations that were sent but not answered may or may not have happened.
//
// Several rounds on the same store (each untars into a new directory), so
// recovery after a crash is itself crashed into.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/fsal/fsal_test_util.h"

namespace kvfs::fsal_test {
namespace {

using e2e::GaneshaServer;
using e2e::NfsClient;
using e2e::NfsClientOptions;
using e2e::NfsFile;
using e2e::NfsStat;
using e2e::NfsVersion;

// How far the server acknowledged one file's untar.
enum class Acked {
  kNothing,
  kCreated,  // CREATE answered (file exists, mode set)
  kData,     // all data answered as stable (FILE_SYNC writes, or COMMIT)
  kOwner,    // SETATTR uid/gid answered
  kMode,     // SETATTR mode answered
  kTimes,    // SETATTR times answered
};

// One file of a client's tree and what the server acknowledged.
struct FileRecord {
  std::string path;
  std::string data;
  int mode = 0644;
  int uid = 0;
  int gid = 0;
  int64_t mtime = 0;
  // Written with O_SYNC (FILE_SYNC WRITEs) rather than UNSTABLE + COMMIT.
  bool file_sync = false;
  Acked acked = Acked::kNothing;
  // Bytes answered as stable so far (FILE_SYNC writes only).
  uint64_t stable_bytes = 0;
};

// One client's untar: directories then files, until the first failure.
struct ClientRun {
  std::vector<std::string> dirs_acked;
  std::vector<FileRecord> files;
  uint64_t acked_ops = 0;
};

// Untars a generated tree under `root` (which must exist) with a mounted
// NFSv3 client, recording every answered operation; stops at the first error
// (the server was killed).
void UntarWith(NfsClient& client, const std::string& root, uint32_t seed, ClientRun* run) {
  std::mt19937 rng(seed);
  for (int d = 0; d < 40; ++d) {
    std::string dir = root + "/d" + std::to_string(d);
    if (client.Mkdir(dir, 0750) != 0) return;
    run->dirs_acked.push_back(dir);
    ++run->acked_ops;
    for (int f = 0; f < 25; ++f) {
      FileRecord rec;
      rec.path = dir + "/f" + std::to_string(f);
      rec.data = Pattern(1 + rng() % 40000, seed * 7919 + d * 100 + f);
      rec.mode = 0600 | static_cast<int>(rng() % 0100);
      rec.uid = 1000 + static_cast<int>(rng() % 5);
      rec.gid = 2000 + static_cast<int>(rng() % 5);
      rec.mtime = 1600000000 + static_cast<int64_t>(rng() % 100000000);
      rec.file_sync = rng() % 2 == 0;
      run->files.push_back(rec);
      FileRecord& r = run->files.back();
      NfsFile file;
      if (client.Create(r.path, O_WRONLY | (r.file_sync ? O_SYNC : 0), 0644, &file) != 0) return;
      r.acked = Acked::kCreated;
      ++run->acked_ops;
      // Several WRITEs per file (8 KiB each), as a client with a small wsize.
      for (size_t off = 0; off < r.data.size(); off += 8192) {
        size_t n = std::min<size_t>(8192, r.data.size() - off);
        if (file.Pwrite(r.data.data() + off, n, off) != static_cast<int64_t>(n)) return;
        ++run->acked_ops;
        if (r.file_sync) r.stable_bytes = off + n;
      }
      if (!r.file_sync && file.Fsync() != 0) return;
      r.acked = Acked::kData;
      if (file.Close() != 0) return;
      if (client.Chown(r.path, r.uid, r.gid) != 0) return;
      r.acked = Acked::kOwner;
      if (client.Chmod(r.path, r.mode) != 0) return;
      r.acked = Acked::kMode;
      struct timeval tv[2] = {{r.mtime, 0}, {r.mtime, 0}};
      if (client.Utimes(r.path, tv) != 0) return;
      r.acked = Acked::kTimes;
      run->acked_ops += 3;
    }
  }
}

// Untar() with a client of its own.
void Untar(const std::string& root, uint32_t seed, ClientRun* run) {
  NfsClientOptions options;
  options.timeout_ms = 3000;
  options.autoreconnect = 0;
  auto client = std::make_unique<NfsClient>(NfsVersion::kV3, options);
  if (client->Mount("/kvfs") != 0) return;
  UntarWith(*client, root, seed, run);
  // libnfs 4.0 crashes in nfs_umount() (NfsClient's destructor) once the
  // server is gone: the killed server's client is left to process exit.
  (void)client.release();
}

// Checks that everything `run` recorded as answered survived.
void Verify(NfsClient& client, const ClientRun& run) {
  for (const std::string& dir : run.dirs_acked) {
    NfsStat st;
    ASSERT_EQ(client.Lstat(dir, &st), 0) << "acknowledged mkdir lost: " << dir;
    EXPECT_TRUE(S_ISDIR(st.nfs_mode)) << dir;
    EXPECT_EQ(st.nfs_mode & 07777, 0750u) << dir;
  }
  for (const FileRecord& r : run.files) {
    if (r.acked == Acked::kNothing) {
      // CREATE unanswered: may exist or not; if it does, it is a prefix of
      // the data at most (nothing was acknowledged).
      continue;
    }
    NfsStat st;
    ASSERT_EQ(client.Lstat(r.path, &st), 0) << "acknowledged create lost: " << r.path;
    ASSERT_TRUE(S_ISREG(st.nfs_mode)) << r.path;
    std::string back;
    ASSERT_EQ(client.ReadFile(r.path, &back), 0) << r.path;
    if (r.acked >= Acked::kData) {
      EXPECT_TRUE(back == r.data) << "acknowledged data lost: " << r.path << " has " << back.size()
                                  << " of " << r.data.size() << " bytes";
    } else if (r.stable_bytes > 0) {
      ASSERT_GE(back.size(), r.stable_bytes) << "FILE_SYNC write lost: " << r.path;
      EXPECT_TRUE(back.compare(0, r.stable_bytes, r.data, 0, r.stable_bytes) == 0)
          << "FILE_SYNC data differs: " << r.path;
    }
    if (r.acked >= Acked::kOwner) {
      EXPECT_EQ(st.nfs_uid, static_cast<uint64_t>(r.uid)) << "acknowledged chown lost: " << r.path;
      EXPECT_EQ(st.nfs_gid, static_cast<uint64_t>(r.gid)) << r.path;
    }
    if (r.acked >= Acked::kMode) {
      EXPECT_EQ(st.nfs_mode & 07777, static_cast<uint64_t>(r.mode))
          << "acknowledged chmod lost: " << r.path;
    }
    if (r.acked >= Acked::kTimes) {
      EXPECT_EQ(st.nfs_mtime, static_cast<uint64_t>(r.mtime))
          << "acknowledged utimes lost: " << r.path;
    }
  }
}

TEST(KvfsCrash, AnsweredOperationsSurviveKill9DuringUntar) {
  constexpr int kRounds = 4;
  constexpr int kClients = 4;
  TempDir dir;
  KvfsExport e;
  e.db_path = dir.path() + "/db";
  GaneshaServer server(KvfsServerOptions({e}));
  ASSERT_TRUE(server.Start().ok());
  uint32_t seed = static_cast<uint32_t>(
      std::chrono::steady_clock::now().time_since_epoch().count() & 0x7fffffff);
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<ClientRun> all;
  for (int round = 0; round < kRounds; ++round) {
    std::string root = "/round" + std::to_string(round);
    {
      NfsClient setup(NfsVersion::kV3);
      ASSERT_EQ(setup.Mount("/kvfs"), 0) << setup.LastError();
      ASSERT_EQ(setup.Mkdir(root, 0755), 0) << setup.LastError();
      for (int c = 0; c < kClients; ++c) {
        ASSERT_EQ(setup.Mkdir(root + "/c" + std::to_string(c), 0755), 0);
      }
    }
    std::vector<ClientRun> runs(kClients);
    std::vector<std::thread> threads;
    for (int c = 0; c < kClients; ++c) {
      threads.emplace_back(Untar, root + "/c" + std::to_string(c), seed + round * 100 + c,
                           &runs[c]);
    }
    // Kill while the clients are busy: 300..1500 ms in.
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 1200));
    ASSERT_TRUE(server.Kill9().ok());
    for (std::thread& t : threads) t.join();
    uint64_t acked = 0;
    for (const ClientRun& r : runs) acked += r.acked_ops;
    std::printf("round %d: %llu operations answered before kill -9\n", round,
                static_cast<unsigned long long>(acked));
    EXPECT_GT(acked, 0u);
    Status s = server.Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (ClientRun& r : runs) all.push_back(std::move(r));
    // Everything answered in this round and all earlier ones is there.
    NfsClient client(NfsVersion::kV3);
    ASSERT_EQ(client.Mount("/kvfs"), 0) << client.LastError();
    for (const ClientRun& r : all) {
      ASSERT_NO_FATAL_FAILURE(Verify(client, r));
    }
  }
  EXPECT_TRUE(server.Stop().ok());
}

}  // namespace
}  // namespace kvfs::fsal_test
