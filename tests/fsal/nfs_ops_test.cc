// FSAL_KVFS end to end: ganesha.nfsd with libfsalkvfs.so serving a fresh
// RocksDB-backed KVFS store, driven over NFSv3 and NFSv4 with libnfs.
// Each test gets its own database and server (a start takes ~0.1 s).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nfsc/libnfs.h>

#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/file_contents.h"
#include "tests/fsal/fsal_test_util.h"
#include "tests/test_backends.h"

namespace kvfs::fsal_test {
namespace {

using e2e::GaneshaServer;
using e2e::NfsClient;
using e2e::NfsDirEntry;
using e2e::NfsFile;
using e2e::NfsStat;
using e2e::NfsStatVfs;
using e2e::NfsVersion;

constexpr uint64_t kCapacityBytes = 8ull << 30;
constexpr uint64_t kCapacityInodes = 1000000;

// Parameters: key/value backend, NFS version.
class KvfsNfsTest : public ::testing::TestWithParam<std::tuple<std::string, NfsVersion>> {
 protected:
  NfsVersion Version() const { return std::get<1>(GetParam()); }

  void SetUp() override {
    KvfsExport e;
    e.db_path = dir_.path() + "/db";
    e.kv_backend = std::get<0>(GetParam());
    e.capacity_bytes = kCapacityBytes;
    e.capacity_inodes = kCapacityInodes;
    server_ = std::make_unique<GaneshaServer>(KvfsServerOptions({e}));
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    client_ = Connect(Version());
    ASSERT_NE(client_, nullptr);
  }

  void TearDown() override {
    client_.reset();
    if (server_ != nullptr) {
      EXPECT_EQ(server_->ConfigDiagnostics(), "");
      Status s = server_->Stop();
      EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << server_->LogTail();
    }
  }

  std::unique_ptr<NfsClient> Connect(NfsVersion v) {
    auto c = std::make_unique<NfsClient>(v);
    int rc = c->Mount("/kvfs");
    EXPECT_EQ(rc, 0) << c->LastError();
    return rc == 0 ? std::move(c) : nullptr;
  }

  NfsClient& c() { return *client_; }
  bool v4() const { return Version() == NfsVersion::kV4; }

  std::string ReadAll(NfsClient& client, const std::string& path) {
    std::string data;
    int rc = client.ReadFile(path, &data);
    EXPECT_EQ(rc, 0) << path << ": " << client.LastError();
    return data;
  }

  TempDir dir_;
  std::unique_ptr<GaneshaServer> server_;
  std::unique_ptr<NfsClient> client_;
};

TEST_P(KvfsNfsTest, WriteAndReadBack) {
  ASSERT_EQ(c().Mkdir("/io"), 0);
  // Inline-sized, block-boundary and multi-block files.
  const size_t sizes[] = {0, 1, 4095, 4096, 4097, 65536 + 7, (1 << 20) + 3};
  for (size_t i = 0; i < std::size(sizes); i++) {
    std::string path = "/io/f" + std::to_string(i);
    std::string data = Pattern(sizes[i], static_cast<uint32_t>(i));
    ASSERT_EQ(c().WriteFile(path, data), 0) << path << ": " << c().LastError();
    NfsStat st;
    ASSERT_EQ(c().Stat(path, &st), 0);
    EXPECT_EQ(st.nfs_size, sizes[i]);
    EXPECT_TRUE(S_ISREG(st.nfs_mode));
    EXPECT_TRUE(ReadAll(c(), path) == data) << path;
  }

  // Writes at offsets, leaving a hole that reads as zeros.
  NfsFile f;
  ASSERT_EQ(c().Create("/io/sparse", O_RDWR, 0644, &f), 0) << c().LastError();
  EXPECT_EQ(f.Pwrite("head", 0), 4);
  EXPECT_EQ(f.Pwrite("tail", 300000), 4);
  EXPECT_EQ(f.Fsync(), 0);
  std::string buf(16, 'x');
  EXPECT_EQ(f.Pread(buf.data(), buf.size(), 150000), 16);
  EXPECT_EQ(buf, std::string(16, '\0'));
  EXPECT_EQ(f.Close(), 0);
  std::string all = ReadAll(c(), "/io/sparse");
  ASSERT_EQ(all.size(), 300004u);
  EXPECT_EQ(all.substr(0, 4), "head");
  EXPECT_EQ(all.substr(300000), "tail");

  // The other protocol reads the same bytes.
  auto other = Connect(OtherVersion(Version()));
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(ReadAll(*other, "/io/f6") == Pattern(sizes[6], 6));
}

TEST_P(KvfsNfsTest, DirectoryTree) {
  ASSERT_EQ(c().Mkdir("/t", 0755), 0);
  ASSERT_EQ(c().Mkdir("/t/a", 0700), 0);
  ASSERT_EQ(c().Mkdir("/t/a/b"), 0);
  ASSERT_EQ(c().Mkdir("/t/a/b/c"), 0);
  ASSERT_EQ(c().WriteFile("/t/a/one", "1"), 0);
  ASSERT_EQ(c().WriteFile("/t/a/b/two", "22"), 0);
  ASSERT_EQ(c().WriteFile("/t/a/b/c/three", "333"), 0);

  std::vector<std::string> names;
  ASSERT_EQ(c().ListDir("/t/a", &names), 0);
  EXPECT_EQ(names, (std::vector<std::string>{"b", "one"}));
  ASSERT_EQ(c().ListDir("/t/a/b", &names), 0);
  EXPECT_EQ(names, (std::vector<std::string>{"c", "two"}));
  ASSERT_EQ(c().ListDir("/t/a/b/c", &names), 0);
  EXPECT_EQ(names, (std::vector<std::string>{"three"}));

  NfsStat st;
  ASSERT_EQ(c().Stat("/t/a", &st), 0);
  EXPECT_TRUE(S_ISDIR(st.nfs_mode));
  EXPECT_EQ(st.nfs_mode & 07777, 0700u);
  EXPECT_EQ(ReadAll(c(), "/t/a/b/c/three"), "333");

  // Removing bottom-up empties the tree.
  EXPECT_EQ(c().Unlink("/t/a/b/c/three"), 0);
  EXPECT_EQ(c().Rmdir("/t/a/b/c"), 0);
  ASSERT_EQ(c().ListDir("/t/a/b", &names), 0);
  EXPECT_EQ(names, (std::vector<std::string>{"two"}));
}

// A directory far larger than one READDIR reply: every page continues from
// the previous page's last cookie.
TEST_P(KvfsNfsTest, LargeDirectoryListsCompletely) {
  constexpr int kEntries = 3000;
  // Entries are made over NFSv3 (one RPC each; libnfs's NFSv4 create takes
  // three), the listing is over the version under test.
  auto maker = Connect(NfsVersion::kV3);
  ASSERT_NE(maker, nullptr);
  ASSERT_EQ(maker->Mkdir("/big"), 0);
  std::set<std::string> expected;
  for (int i = 0; i < kEntries; i++) {
    std::string name = "entry-" + std::to_string(i) + "-with-a-longer-name";
    NfsFile f;
    ASSERT_EQ(maker->Create("/big/" + name, O_WRONLY, 0644, &f), 0) << maker->LastError();
    expected.insert(name);
  }
  ASSERT_EQ(maker->Mkdir("/big/a-directory"), 0);
  expected.insert("a-directory");

  std::vector<NfsDirEntry> entries;
  ASSERT_EQ(c().ReadDir("/big", &entries), 0) << c().LastError();
  std::set<std::string> got;
  for (const NfsDirEntry& e : entries) {
    EXPECT_TRUE(got.insert(e.name).second) << "listed twice: " << e.name;
    if (e.name == "a-directory") {
      EXPECT_TRUE(S_ISDIR(e.mode));
    } else {
      EXPECT_TRUE(S_ISREG(e.mode)) << e.name;
    }
  }
  EXPECT_EQ(got, expected);

  // Remove every third entry; a fresh listing (new client, no cache on
  // either side) shows exactly the rest.
  for (int i = 0; i < kEntries; i += 3) {
    std::string name = "entry-" + std::to_string(i) + "-with-a-longer-name";
    ASSERT_EQ(maker->Unlink("/big/" + name), 0);
    expected.erase(name);
  }
  auto other = Connect(Version());
  ASSERT_NE(other, nullptr);
  entries.clear();
  ASSERT_EQ(other->ReadDir("/big", &entries), 0);
  got.clear();
  for (const NfsDirEntry& e : entries) got.insert(e.name);
  EXPECT_EQ(got, expected);
  NfsStat st;
  ASSERT_EQ(other->Stat("/big/entry-1-with-a-longer-name", &st), 0);
  EXPECT_NE(st.nfs_ino, 0u);
}

TEST_P(KvfsNfsTest, Rename) {
  ASSERT_EQ(c().Mkdir("/r"), 0);
  ASSERT_EQ(c().Mkdir("/r/d1"), 0);
  ASSERT_EQ(c().Mkdir("/r/d2"), 0);
  ASSERT_EQ(c().WriteFile("/r/d1/a", "alpha"), 0);
  NfsStat before;
  ASSERT_EQ(c().Stat("/r/d1/a", &before), 0);

  // Within a directory.
  ASSERT_EQ(c().Rename("/r/d1/a", "/r/d1/b"), 0);
  NfsStat st;
  EXPECT_EQ(c().Stat("/r/d1/a", &st), -ENOENT);
  ASSERT_EQ(c().Stat("/r/d1/b", &st), 0);
  EXPECT_EQ(st.nfs_ino, before.nfs_ino);

  // Across directories (same inode, same handle).
  ASSERT_EQ(c().Rename("/r/d1/b", "/r/d2/c"), 0);
  EXPECT_EQ(ReadAll(c(), "/r/d2/c"), "alpha");

  // Over an existing file: the target is replaced.
  ASSERT_EQ(c().WriteFile("/r/d2/victim", "old"), 0);
  ASSERT_EQ(c().Rename("/r/d2/c", "/r/d2/victim"), 0);
  EXPECT_EQ(ReadAll(c(), "/r/d2/victim"), "alpha");
  std::vector<std::string> names;
  ASSERT_EQ(c().ListDir("/r/d2", &names), 0);
  EXPECT_EQ(names, (std::vector<std::string>{"victim"}));

  // A directory with contents.
  ASSERT_EQ(c().Rename("/r/d2", "/r/d1/moved"), 0);
  EXPECT_EQ(ReadAll(c(), "/r/d1/moved/victim"), "alpha");
  ASSERT_EQ(c().ListDir("/r", &names), 0);
  EXPECT_EQ(names, (std::vector<std::string>{"d1"}));

  // Errors. Objects never leave the inode range of their top-level
  // directory (docs/schema.md): like crossing file systems.
  EXPECT_EQ(c().Rename("/r/d1/moved", "/elsewhere"), -EXDEV);
  EXPECT_EQ(c().Rename("/r/missing", "/r/x"), -ENOENT);
  ASSERT_EQ(c().Mkdir("/r/full"), 0);
  ASSERT_EQ(c().WriteFile("/r/full/f", "x"), 0);
  ASSERT_EQ(c().Mkdir("/r/empty"), 0);
  int rc = c().Rename("/r/empty", "/r/full");
  EXPECT_TRUE(rc == -ENOTEMPTY || rc == -EEXIST) << rc;
}

TEST_P(KvfsNfsTest, HardLinks) {
  ASSERT_EQ(c().Mkdir("/h"), 0);
  ASSERT_EQ(c().WriteFile("/h/orig", "shared content"), 0);
  ASSERT_EQ(c().Link("/h/orig", "/h/alias"), 0) << c().LastError();
  NfsStat a, b;
  ASSERT_EQ(c().Stat("/h/orig", &a), 0);
  ASSERT_EQ(c().Stat("/h/alias", &b), 0);
  EXPECT_EQ(a.nfs_ino, b.nfs_ino);
  EXPECT_EQ(b.nfs_nlink, 2u);

  // Writing through one name is visible through the other.
  NfsFile f;
  ASSERT_EQ(c().Open("/h/alias", O_WRONLY, &f), 0);
  EXPECT_EQ(f.Pwrite("SHARED", 0), 6);
  EXPECT_EQ(f.Close(), 0);
  EXPECT_EQ(ReadAll(c(), "/h/orig"), "SHARED content");

  ASSERT_EQ(c().Unlink("/h/orig"), 0);
  ASSERT_EQ(c().Stat("/h/alias", &b), 0);
  EXPECT_EQ(b.nfs_nlink, 1u);
  EXPECT_EQ(ReadAll(c(), "/h/alias"), "SHARED content");
  EXPECT_EQ(c().Link("/h/missing", "/h/x"), -ENOENT);
  EXPECT_EQ(c().Link("/h/alias", "/h/alias"), -EEXIST);
}

TEST_P(KvfsNfsTest, Symlinks) {
  ASSERT_EQ(c().Mkdir("/s"), 0);
  ASSERT_EQ(c().Symlink("../some/target file", "/s/link"), 0) << c().LastError();
  std::string target;
  ASSERT_EQ(c().Readlink("/s/link", &target), 0);
  EXPECT_EQ(target, "../some/target file");
  NfsStat st;
  ASSERT_EQ(c().Lstat("/s/link", &st), 0);
  EXPECT_TRUE(S_ISLNK(st.nfs_mode));
  EXPECT_EQ(st.nfs_size, target.size());
  std::string long_target = Pattern(1000, 5);
  for (char& ch : long_target) ch = static_cast<char>('a' + static_cast<unsigned char>(ch) % 26);
  ASSERT_EQ(c().Symlink(long_target, "/s/long"), 0);
  ASSERT_EQ(c().Readlink("/s/long", &target), 0);
  ASSERT_EQ(c().Lstat("/s/long", &st), 0);
  EXPECT_EQ(st.nfs_size, long_target.size());
  if (v4()) {
    // libnfs 4.0 copies an NFSv4 link text as a C string although the
    // decoded text is not NUL-terminated: bytes after it may follow.
    EXPECT_EQ(target.substr(0, long_target.size()), long_target);
  } else {
    EXPECT_EQ(target, long_target);
  }
  EXPECT_EQ(c().Symlink("x", "/s/link"), -EEXIST);
  EXPECT_EQ(c().Unlink("/s/link"), 0);
  EXPECT_EQ(c().Lstat("/s/link", &st), -ENOENT);
}

// Device nodes and FIFOs (NFSv3 MKNOD; libnfs 4.0 has no NFSv4 mknod).
TEST_P(KvfsNfsTest, SpecialFiles) {
  if (v4()) GTEST_SKIP() << "libnfs 4.0 cannot create special files over NFSv4";
  ASSERT_EQ(c().Mkdir("/dev"), 0);
  ASSERT_EQ(nfs_mknod(c().context(), "/dev/null", S_IFCHR | 0666, makedev(1, 3)), 0)
      << c().LastError();
  ASSERT_EQ(nfs_mknod(c().context(), "/dev/sda", S_IFBLK | 0660, makedev(8, 0)), 0);
  ASSERT_EQ(nfs_mknod(c().context(), "/dev/pipe", S_IFIFO | 0600, 0), 0);
  NfsStat st;
  ASSERT_EQ(c().Lstat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.nfs_mode));
  EXPECT_EQ(st.nfs_mode & 07777, 0666u);
  EXPECT_EQ(st.nfs_rdev, makedev(1, 3));
  ASSERT_EQ(c().Lstat("/dev/sda", &st), 0);
  EXPECT_TRUE(S_ISBLK(st.nfs_mode));
  EXPECT_EQ(st.nfs_rdev, makedev(8, 0));
  ASSERT_EQ(c().Lstat("/dev/pipe", &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.nfs_mode));
  // Visible over NFSv4 too (libnfs 4.0 does not decode NFSv4 rawdev).
  auto other = Connect(NfsVersion::kV4);
  ASSERT_NE(other, nullptr);
  ASSERT_EQ(other->Lstat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.nfs_mode));
  EXPECT_EQ(c().Unlink("/dev/null"), 0);
}

TEST_P(KvfsNfsTest, SetattrAndTruncate) {
  ASSERT_EQ(c().Mkdir("/a"), 0);
  std::string data = Pattern(10000, 7);
  ASSERT_EQ(c().WriteFile("/a/f", data), 0);
  NfsStat st;

  ASSERT_EQ(c().Truncate("/a/f", 100), 0);
  ASSERT_EQ(c().Stat("/a/f", &st), 0);
  EXPECT_EQ(st.nfs_size, 100u);
  EXPECT_EQ(ReadAll(c(), "/a/f"), data.substr(0, 100));
  ASSERT_EQ(c().Truncate("/a/f", 5000), 0);
  EXPECT_TRUE(ReadAll(c(), "/a/f") == data.substr(0, 100) + std::string(4900, '\0'));

  ASSERT_EQ(c().Chmod("/a/f", 0640), 0);
  ASSERT_EQ(c().Chown("/a/f", 1234, 5678), 0);
  struct timeval times[2] = {{1600000000, 250000}, {1500000000, 500000}};
  ASSERT_EQ(c().Utimes("/a/f", times), 0);
  ASSERT_EQ(c().Stat("/a/f", &st), 0);
  EXPECT_EQ(st.nfs_mode & 07777, 0640u);
  EXPECT_EQ(st.nfs_uid, 1234u);
  EXPECT_EQ(st.nfs_gid, 5678u);
  EXPECT_EQ(st.nfs_atime, 1600000000u);
  EXPECT_EQ(st.nfs_atime_nsec, 250000000u);
  EXPECT_EQ(st.nfs_mtime, 1500000000u);
  EXPECT_EQ(st.nfs_mtime_nsec, 500000000u);
  EXPECT_GE(st.nfs_ctime, 1600000000u);  // ctime is the server's clock

  // Through an open file.
  NfsFile f;
  ASSERT_EQ(c().Open("/a/f", O_RDWR, &f), 0);
  EXPECT_EQ(f.Ftruncate(3), 0);
  EXPECT_EQ(f.Fchmod(0600), 0);
  ASSERT_EQ(f.Fstat(&st), 0);
  EXPECT_EQ(st.nfs_size, 3u);
  EXPECT_EQ(st.nfs_mode & 07777, 0600u);
  EXPECT_EQ(f.Close(), 0);

  // Directories cannot be truncated.
  EXPECT_NE(c().Truncate("/a", 0), 0);
}

// Whatever the core reports reaches the client as the matching errno.
TEST_P(KvfsNfsTest, ErrorsReachTheClient) {
  NfsStat st;
  EXPECT_EQ(c().Stat("/missing", &st), -ENOENT);
  EXPECT_EQ(c().Mkdir("/missing/sub"), -ENOENT);
  NfsFile f;
  EXPECT_EQ(c().Open("/missing", O_RDONLY, &f), -ENOENT);

  ASSERT_EQ(c().Mkdir("/e"), 0);
  EXPECT_EQ(c().Mkdir("/e"), -EEXIST);
  ASSERT_EQ(c().WriteFile("/e/file", "x"), 0);
  EXPECT_EQ(c().Create("/e/file", O_WRONLY | O_EXCL, 0644, &f), -EEXIST);
  EXPECT_EQ(c().Mkdir("/e/file"), -EEXIST);
  EXPECT_EQ(c().Rmdir("/e"), -ENOTEMPTY);
  EXPECT_EQ(c().Stat("/e/file/below", &st), -ENOTDIR);
  EXPECT_EQ(c().Rmdir("/e/file"), -ENOTDIR);
  EXPECT_EQ(c().Unlink("/e/missing"), -ENOENT);
  EXPECT_EQ(c().Mkdir("/e/" + std::string(256, 'n')), -ENAMETOOLONG);
  EXPECT_EQ(c().Mkdir("/e/" + std::string(255, 'n')), 0);
}

// Permission checks reach KVFS objects; in particular an open that would
// truncate is refused before any data is lost.
TEST_P(KvfsNfsTest, PermissionsAreEnforced) {
  ASSERT_EQ(c().Mkdir("/p", 0777), 0);  // (libnfs 4.0 cannot chmod a directory over v4)
  ASSERT_EQ(c().WriteFile("/p/ro", "keep", 0644), 0);
  ASSERT_EQ(c().Chmod("/p/ro", 0644), 0);

  e2e::NfsClientOptions opts;
  opts.uid = 1000;
  opts.gid = 1000;
  NfsClient user(Version(), opts);
  ASSERT_EQ(user.Mount("/kvfs"), 0) << user.LastError();
  NfsFile f;
  EXPECT_EQ(user.Open("/p/ro", O_WRONLY, &f), -EACCES);
  EXPECT_NE(user.Open("/p/ro", O_WRONLY | O_CREAT | O_TRUNC, &f), 0);
  EXPECT_NE(user.Truncate("/p/ro", 0), 0);
  EXPECT_NE(user.Chmod("/p/ro", 0666), 0);
  EXPECT_EQ(ReadAll(c(), "/p/ro"), "keep");

  ASSERT_EQ(user.WriteFile("/p/mine", "user data"), 0) << user.LastError();
  NfsStat st;
  ASSERT_EQ(c().Stat("/p/mine", &st), 0);
  EXPECT_EQ(st.nfs_uid, 1000u);
  EXPECT_EQ(st.nfs_gid, 1000u);
  ASSERT_EQ(user.Mkdir("/p/dir", 0700), 0);
  ASSERT_EQ(c().Stat("/p/dir", &st), 0);
  EXPECT_EQ(st.nfs_uid, 1000u);
}

// One client writes while another reads the same file.
TEST_P(KvfsNfsTest, TwoClientsWriterAndReader) {
  constexpr size_t kChunk = 16 << 10;
  constexpr int kChunks = 64;
  const std::string data = Pattern(kChunk * kChunks, 99);
  ASSERT_EQ(c().Mkdir("/shared"), 0);
  ASSERT_EQ(c().WriteFile("/shared/f", ""), 0);

  auto reader = Connect(OtherVersion(Version()));
  ASSERT_NE(reader, nullptr);
  std::atomic<bool> writer_done{false};
  std::atomic<int> writer_rc{0};
  std::atomic<int> read_attempts{0};
  std::thread writer([&] {
    NfsClient w(Version());
    if (w.Mount("/kvfs") != 0) {
      writer_rc = -1;
      writer_done = true;
      return;
    }
    NfsFile f;
    if (w.Open("/shared/f", O_WRONLY, &f) != 0) writer_rc = -2;
    for (int i = 0; i < kChunks && writer_rc == 0; i++) {
      if (i == kChunks / 2) {
        // Halfway, let the reader look at least twice, so reads surely
        // overlap the writes however the two threads are scheduled.
        const int seen = read_attempts.load();
        while (read_attempts.load() < seen + 2) std::this_thread::yield();
      }
      if (f.Pwrite(std::string_view(data).substr(i * kChunk, kChunk), i * kChunk) !=
          static_cast<int64_t>(kChunk)) {
        writer_rc = -3;
      }
    }
    if (writer_rc == 0 && f.Fsync() != 0) writer_rc = -4;
    if (f.Close() != 0 && writer_rc == 0) writer_rc = -5;
    writer_done = true;
  });

  // While it writes, every prefix the reader sees is a prefix of the data.
  int reads = 0;
  while (!writer_done) {
    std::string seen;
    if (reader->ReadFile("/shared/f", &seen) == 0) {
      size_t whole = seen.size() / kChunk * kChunk;
      EXPECT_TRUE(seen.substr(0, whole) == data.substr(0, whole))
          << "prefix of " << seen.size() << " bytes differs";
      reads++;
    }
    ++read_attempts;
  }
  writer.join();
  ASSERT_EQ(writer_rc, 0);
  EXPECT_GT(reads, 0);
  EXPECT_TRUE(ReadAll(*reader, "/shared/f") == data);
  EXPECT_TRUE(ReadAll(c(), "/shared/f") == data);
}

// Clients creating, writing and removing in one directory at the same time
// (Ganesha runs them on several worker threads); the listing the version
// under test sees afterwards is exact, and so is every file.
TEST_P(KvfsNfsTest, ConcurrentClientsInOneDirectory) {
  constexpr int kClients = 4;
  constexpr int kFiles = 150;
  ASSERT_EQ(c().Mkdir("/cc"), 0);
  // A listing before the storm, so that MDCACHE holds chunks of the
  // directory that concurrent creates must be placed into.
  std::vector<std::string> names;
  ASSERT_EQ(c().ListDir("/cc", &names), 0);

  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kClients; t++) {
    threads.emplace_back([&, t] {
      NfsClient w(NfsVersion::kV3);
      if (w.Mount("/kvfs") != 0) {
        failures++;
        return;
      }
      for (int i = 0; i < kFiles; i++) {
        std::string path = "/cc/t" + std::to_string(t) + "-" + std::to_string(i);
        if (w.WriteFile(path, path) != 0) failures++;
        // Every third file is removed again.
        if (i % 3 == 2 && w.Unlink(path) != 0) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures, 0);

  std::set<std::string> expected;
  for (int t = 0; t < kClients; t++) {
    for (int i = 0; i < kFiles; i++) {
      if (i % 3 != 2) expected.insert("t" + std::to_string(t) + "-" + std::to_string(i));
    }
  }
  ASSERT_EQ(c().ListDir("/cc", &names), 0);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), expected);
  EXPECT_EQ(names.size(), expected.size());
  for (const std::string& name : expected) {
    EXPECT_EQ(ReadAll(c(), "/cc/" + name), "/cc/" + name);
  }
}

// NFSv4: an open file survives the removal of its name until it is closed
// (the core's OpenFile/CloseFile bracket the open state). NFSv3 has no open
// state: the handle goes stale at once.
TEST_P(KvfsNfsTest, UnlinkOfAnOpenFile) {
  ASSERT_EQ(c().Mkdir("/u"), 0);
  std::string data = Pattern(100000, 3);
  ASSERT_EQ(c().WriteFile("/u/f", data), 0);
  NfsFile f;
  ASSERT_EQ(c().Open("/u/f", O_RDWR, &f), 0);
  ASSERT_EQ(c().Unlink("/u/f"), 0);
  NfsStat st;
  EXPECT_EQ(c().Stat("/u/f", &st), -ENOENT);
  std::vector<std::string> names;
  ASSERT_EQ(c().ListDir("/u", &names), 0);
  EXPECT_TRUE(names.empty());

  std::string buf(data.size(), '\0');
  if (v4()) {
    EXPECT_EQ(f.Pread(buf.data(), buf.size(), 0), static_cast<int64_t>(data.size()));
    EXPECT_TRUE(buf == data);
    EXPECT_EQ(f.Pwrite("more", data.size()), 4);
    ASSERT_EQ(f.Fstat(&st), 0);
    EXPECT_EQ(st.nfs_size, data.size() + 4);
    EXPECT_EQ(st.nfs_nlink, 0u);
    EXPECT_EQ(f.Close(), 0);
  } else {
    // libnfs 4.0 reports any failed NFSv3 READ as -EFAULT (with a garbled
    // message); GETATTR shows the server's answer, NFS3ERR_STALE.
    EXPECT_LT(f.Pread(buf.data(), buf.size(), 0), 0);
    EXPECT_EQ(f.Fstat(&st), -ESTALE) << c().LastError();
    f.Close();
  }
  EXPECT_EQ(c().Stat("/u/f", &st), -ENOENT);

  if (v4()) {
    // Same for a file replaced by a rename while open.
    ASSERT_EQ(c().WriteFile("/u/g", "old content"), 0);
    NfsFile g;
    ASSERT_EQ(c().Open("/u/g", O_RDONLY, &g), 0);
    ASSERT_EQ(c().WriteFile("/u/h", "new content"), 0);
    ASSERT_EQ(c().Rename("/u/h", "/u/g"), 0);
    std::string old(11, '\0');
    EXPECT_EQ(g.Pread(old.data(), old.size(), 0), 11);
    EXPECT_EQ(old, "old content");
    EXPECT_EQ(g.Close(), 0);
    EXPECT_EQ(ReadAll(c(), "/u/g"), "new content");
    ASSERT_EQ(c().Unlink("/u/g"), 0);
  }
  // The space is given back once the last user is gone.
  NfsStatVfs vfs;
  ASSERT_EQ(c().StatVfs("/", &vfs), 0);
  EXPECT_LT((vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize, 50000u);
}

TEST_P(KvfsNfsTest, Statfs) {
  NfsStatVfs st;
  ASSERT_EQ(c().StatVfs("/", &st), 0) << c().LastError();
  EXPECT_EQ(st.f_blocks * st.f_frsize, kCapacityBytes);
  EXPECT_EQ(st.f_files, kCapacityInodes);
  uint64_t free_before = st.f_bfree * st.f_frsize;
  uint64_t files_before = st.f_ffree;

  ASSERT_EQ(c().Mkdir("/st"), 0);
  ASSERT_EQ(c().WriteFile("/st/f", Pattern(1 << 20, 1)), 0);
  ASSERT_EQ(c().StatVfs("/", &st), 0);
  EXPECT_LE(st.f_bfree * st.f_frsize, free_before - (1 << 20));
  EXPECT_LE(st.f_ffree, files_before - 2);
  EXPECT_EQ(st.f_bavail, st.f_bfree);
}

// A real tree (a few hundred files of /usr/include) copied in through NFS
// and read back through both protocols: every byte equal.
TEST_P(KvfsNfsTest, CopiedTreeReadsBackIdentical) {
  namespace fs = std::filesystem;
  const fs::path source = "/usr/include/linux";
  ASSERT_TRUE(fs::is_directory(source));
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(source); it != fs::end(it); ++it) {
    if (it->is_regular_file() && !it->is_symlink()) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  if (files.size() > 300) files.resize(300);
  ASSERT_GE(files.size(), 100u);

  std::map<std::string, uint64_t> sums;  // NFS path -> checksum of the source
  std::set<std::string> made_dirs = {"/tree"};
  ASSERT_EQ(c().Mkdir("/tree"), 0);
  for (const fs::path& file : files) {
    std::string rel = fs::relative(file, source).string();
    std::string nfs_path = "/tree/" + rel;
    // Parent directories first.
    std::string parent = fs::path(nfs_path).parent_path().string();
    std::vector<std::string> missing;
    for (std::string p = parent; !made_dirs.count(p); p = fs::path(p).parent_path().string()) {
      missing.push_back(p);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      ASSERT_EQ(c().Mkdir(*it), 0) << *it;
      made_dirs.insert(*it);
    }
    const std::string content = kvfs::testing::ReadFileContents(file);
    ASSERT_EQ(c().WriteFile(nfs_path, content), 0) << nfs_path << ": " << c().LastError();
    sums[nfs_path] = Checksum(content);
  }

  auto other = Connect(OtherVersion(Version()));
  ASSERT_NE(other, nullptr);
  for (NfsClient* client : {&c(), other.get()}) {
    for (const auto& [path, sum] : sums) {
      std::string back;
      ASSERT_EQ(client->ReadFile(path, &back), 0) << path;
      EXPECT_EQ(Checksum(back), sum) << path;
      EXPECT_TRUE(back == kvfs::testing::ReadFileContents(
                              source / path.substr(std::string("/tree/").size())))
          << path << " differs byte for byte";
    }
    // Each directory lists exactly the copied names.
    std::map<std::string, std::set<std::string>> children;
    for (const auto& [path, sum] : sums) {
      children[fs::path(path).parent_path().string()].insert(fs::path(path).filename().string());
    }
    for (const std::string& d : made_dirs) {
      if (d != "/tree") {
        children[fs::path(d).parent_path().string()].insert(fs::path(d).filename().string());
      }
    }
    for (const auto& [d, expected] : children) {
      std::vector<std::string> names;
      ASSERT_EQ(client->ListDir(d, &names), 0) << d;
      EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), expected) << d;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    BackendsAndVersions, KvfsNfsTest,
    ::testing::Combine(::testing::ValuesIn(kvfs::testing::PersistentBackends()),
                       ::testing::Values(NfsVersion::kV3, NfsVersion::kV4)),
    [](const auto& info) {
      return std::get<0>(info.param) + "_" +
             VersionName(::testing::TestParamInfo<NfsVersion>(std::get<1>(info.param), 0));
    });

}  // namespace
}  // namespace kvfs::fsal_test
