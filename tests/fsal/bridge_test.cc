// Tests of FSAL_KVFS's C ABI over the core (fsal_kvfs/kvfs_bridge.h): wire
// handles, export identities, sharing of open databases, path resolution,
// I/O through iovecs, readdir cookies and open-unlinked files. No Ganesha.
#include "fsal_kvfs/kvfs_bridge.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/temp_dir.h"

namespace {

using kvfs::testing::TempDir;

// A database opened through the bridge for one test.
class BridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kvfs_fs_options opts{};
    db_ = dir_.path() + "/db";
    opts.db_path = db_.c_str();
    opts.kv_options = "block_cache_bytes=8M";
    ASSERT_EQ(kvfs_fs_acquire(&opts, &fs_, nullptr), 0) << kvfs_last_error();
  }
  void TearDown() override { kvfs_fs_release(fs_); }

  kvfs_new_object Obj(uint32_t mode = 0644) { return kvfs_new_object{mode, 0, 0}; }

  TempDir dir_;
  std::string db_;
  kvfs_fs* fs_ = nullptr;
};

TEST(WireHandle, RoundTrip) {
  unsigned char h[KVFS_HANDLE_SIZE];
  kvfs_handle_encode(0x1122334455667788ull, 0x100000007ull, h);
  uint64_t ino = 0;
  EXPECT_EQ(kvfs_handle_decode(h, sizeof(h), 0x1122334455667788ull, &ino), KVFS_HANDLE_OK);
  EXPECT_EQ(ino, 0x100000007ull);
}

// The format is persistent (clients keep handles across restarts and
// upgrades): pin its bytes.
TEST(WireHandle, FormatIsStable) {
  unsigned char h[KVFS_HANDLE_SIZE];
  kvfs_handle_encode(0x0123456789abcdefull, 42, h);
  const unsigned char prefix[20] = {0x4b, 0x01, 0x00, 0x00, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45,
                                    0x23, 0x01, 42,   0,    0,    0,    0,    0,    0,    0};
  EXPECT_EQ(std::memcmp(h, prefix, sizeof(prefix)), 0);
  uint32_t check = h[20] | h[21] << 8 | h[22] << 16 | static_cast<uint32_t>(h[23]) << 24;
  EXPECT_EQ(check, 0xbfa3d722u) << std::hex << check;
}

TEST(WireHandle, OtherExportIsRecognised) {
  unsigned char h[KVFS_HANDLE_SIZE];
  kvfs_handle_encode(1, 99, h);
  uint64_t ino = 0;
  EXPECT_EQ(kvfs_handle_decode(h, sizeof(h), 2, &ino), KVFS_HANDLE_OTHER_EXPORT);
  EXPECT_EQ(ino, 0u);
}

TEST(WireHandle, EveryCorruptionIsMalformed) {
  unsigned char good[KVFS_HANDLE_SIZE];
  kvfs_handle_encode(7, 1234, good);
  uint64_t ino = 0;
  for (size_t i = 0; i < KVFS_HANDLE_SIZE; i++) {
    for (int bit = 0; bit < 8; bit++) {
      unsigned char h[KVFS_HANDLE_SIZE];
      std::memcpy(h, good, sizeof(h));
      h[i] ^= static_cast<unsigned char>(1 << bit);
      EXPECT_EQ(kvfs_handle_decode(h, sizeof(h), 7, &ino), KVFS_HANDLE_MALFORMED)
          << "byte " << i << " bit " << bit;
    }
  }
  EXPECT_EQ(kvfs_handle_decode(good, sizeof(good) - 1, 7, &ino), KVFS_HANDLE_MALFORMED);
  unsigned char longer[KVFS_HANDLE_SIZE + 4] = {};
  std::memcpy(longer, good, sizeof(good));
  EXPECT_EQ(kvfs_handle_decode(longer, sizeof(longer), 7, &ino), KVFS_HANDLE_MALFORMED);
  EXPECT_EQ(kvfs_handle_decode(nullptr, KVFS_HANDLE_SIZE, 7, &ino), KVFS_HANDLE_MALFORMED);
  unsigned char zero_ino[KVFS_HANDLE_SIZE];
  kvfs_handle_encode(7, 0, zero_ino);
  EXPECT_EQ(kvfs_handle_decode(zero_ino, sizeof(zero_ino), 7, &ino), KVFS_HANDLE_MALFORMED);
}

TEST(ExportIdentity, StableAndDistinct) {
  uint64_t a = kvfs_export_identity("/srv/kvfs/db", 1);
  EXPECT_EQ(a, kvfs_export_identity("/srv/kvfs/db", 1));
  EXPECT_EQ(a, 0x39ebc5d6e814df7aull) << std::hex << a;  // persistent: pinned
  EXPECT_NE(a, kvfs_export_identity("/srv/kvfs/db", 2));
  EXPECT_NE(a, kvfs_export_identity("/srv/kvfs/db2", 1));
  EXPECT_NE(a, kvfs_export_identity("/srv/kvfs/d", 1));
}

TEST(Acquire, SharesOneOpenDatabasePerPath) {
  TempDir dir;
  std::string db = dir.path() + "/db";
  kvfs_fs_options opts{};
  opts.db_path = db.c_str();
  opts.kv_options = "block_cache_bytes=8M";
  kvfs_fs* first = nullptr;
  char* canonical = nullptr;
  ASSERT_EQ(kvfs_fs_acquire(&opts, &first, &canonical), 0) << kvfs_last_error();
  EXPECT_EQ(std::string(canonical), std::filesystem::canonical(db).string());
  free(canonical);

  // The same database through another spelling of its path.
  std::string alias = dir.path() + "/./db/";
  opts.db_path = alias.c_str();
  kvfs_fs* second = nullptr;
  ASSERT_EQ(kvfs_fs_acquire(&opts, &second, nullptr), 0) << kvfs_last_error();
  EXPECT_EQ(first, second);

  kvfs_new_object obj{0644, 0, 0};
  kvfs_attr a{};
  ASSERT_EQ(kvfs_core_create(first, KVFS_ROOT_INO, "f", &obj, &a), 0);
  kvfs_fs_release(first);
  // Still open through the second reference.
  EXPECT_EQ(kvfs_core_lookup(second, KVFS_ROOT_INO, "f", &a), 0);
  kvfs_fs_release(second);

  // Closed: opening again reopens RocksDB and finds the file.
  ASSERT_EQ(kvfs_fs_acquire(&opts, &first, nullptr), 0) << kvfs_last_error();
  EXPECT_EQ(kvfs_core_lookup(first, KVFS_ROOT_INO, "f", &a), 0);
  kvfs_fs_release(first);
}

TEST(Acquire, BadPathsFailWithAMessage) {
  TempDir dir;
  kvfs_fs* fs = nullptr;
  kvfs_fs_options opts{};
  opts.kv_options = "block_cache_bytes=8M";

  opts.db_path = "relative/db";
  EXPECT_EQ(kvfs_fs_acquire(&opts, &fs, nullptr), EINVAL);
  EXPECT_NE(std::string(kvfs_last_error()), "");

  std::string file = dir.path() + "/file";
  std::ofstream(file) << "x";
  opts.db_path = file.c_str();
  EXPECT_NE(kvfs_fs_acquire(&opts, &fs, nullptr), 0);
  EXPECT_NE(std::string(kvfs_last_error()).find(file), std::string::npos) << kvfs_last_error();

  std::string below_file = file + "/db";
  opts.db_path = below_file.c_str();
  EXPECT_NE(kvfs_fs_acquire(&opts, &fs, nullptr), 0);
  EXPECT_EQ(fs, nullptr);

  // A directory that is not a KVFS/RocksDB database.
  std::string junk = dir.path() + "/junk";
  std::filesystem::create_directories(junk);
  std::ofstream(junk + "/CURRENT") << "garbage\n";
  opts.db_path = junk.c_str();
  EXPECT_NE(kvfs_fs_acquire(&opts, &fs, nullptr), 0);
  EXPECT_EQ(fs, nullptr);
}

TEST_F(BridgeTest, ResolvePathCreatesAndChecksAncestry) {
  kvfs_attr a{}, b{}, f{};
  EXPECT_EQ(kvfs_core_resolve_path(fs_, "/a/b", false, &b), ENOENT);
  ASSERT_EQ(kvfs_core_resolve_path(fs_, "/a/b", true, &b), 0) << kvfs_last_error();
  EXPECT_EQ(b.type, KVFS_TYPE_DIRECTORY);
  ASSERT_EQ(kvfs_core_resolve_path(fs_, "//a/./", false, &a), 0);
  EXPECT_EQ(kvfs_core_resolve_path(fs_, "/a/b", false, &f), 0);
  EXPECT_EQ(f.ino, b.ino);
  EXPECT_EQ(kvfs_core_resolve_path(fs_, "/", false, &f), 0);
  EXPECT_EQ(f.ino, uint64_t{KVFS_ROOT_INO});
  EXPECT_EQ(kvfs_core_resolve_path(fs_, "a", false, &f), EINVAL);

  kvfs_new_object obj = Obj();
  ASSERT_EQ(kvfs_core_create(fs_, b.ino, "file", &obj, &f), 0);
  EXPECT_EQ(kvfs_core_resolve_path(fs_, "/a/b/file/x", true, &a), ENOTDIR);

  bool inside = false;
  ASSERT_EQ(kvfs_core_resolve_path(fs_, "/a", false, &a), 0);
  EXPECT_EQ(kvfs_core_is_within(fs_, f.ino, a.ino, &inside), 0);
  EXPECT_TRUE(inside);
  EXPECT_EQ(kvfs_core_is_within(fs_, a.ino, a.ino, &inside), 0);
  EXPECT_TRUE(inside);
  EXPECT_EQ(kvfs_core_is_within(fs_, a.ino, b.ino, &inside), 0);
  EXPECT_FALSE(inside);
  kvfs_attr other{};
  ASSERT_EQ(kvfs_core_resolve_path(fs_, "/other", true, &other), 0);
  EXPECT_EQ(kvfs_core_is_within(fs_, f.ino, other.ino, &inside), 0);
  EXPECT_FALSE(inside);
}

TEST_F(BridgeTest, ReadAndWriteThroughIovecs) {
  kvfs_new_object obj = Obj();
  kvfs_attr f{};
  ASSERT_EQ(kvfs_core_create(fs_, KVFS_ROOT_INO, "f", &obj, &f), 0);
  EXPECT_EQ(kvfs_core_create(fs_, KVFS_ROOT_INO, "f", &obj, &f), EEXIST);

  std::string part1(5000, 'a'), part2(70000, 'b');
  struct iovec w[2] = {{part1.data(), part1.size()}, {part2.data(), part2.size()}};
  kvfs_attr after{};
  ASSERT_EQ(kvfs_core_write(fs_, f.ino, 10, w, 2, false, &after), 0) << kvfs_last_error();
  EXPECT_EQ(after.size, 10 + part1.size() + part2.size());
  ASSERT_EQ(kvfs_core_fsync(fs_, f.ino), 0);

  std::vector<char> r1(7), r2(6000), r3(100000);
  struct iovec r[3] = {{r1.data(), r1.size()}, {r2.data(), r2.size()}, {r3.data(), r3.size()}};
  size_t n = 0;
  bool eof = false;
  ASSERT_EQ(kvfs_core_read(fs_, f.ino, 0, r, 3, &n, &eof), 0);
  EXPECT_EQ(n, after.size);
  EXPECT_TRUE(eof);
  std::string got(r1.begin(), r1.end());
  got.append(r2.begin(), r2.end());
  got.append(r3.begin(), r3.begin() + static_cast<long>(n - r1.size() - r2.size()));
  EXPECT_EQ(got, std::string(10, '\0') + part1 + part2);

  ASSERT_EQ(kvfs_core_read(fs_, f.ino, 0, r, 1, &n, &eof), 0);
  EXPECT_EQ(n, r1.size());
  EXPECT_FALSE(eof);
}

TEST_F(BridgeTest, ReaddirCookiesResumeAcrossChanges) {
  kvfs_new_object obj = Obj();
  kvfs_attr a{};
  for (int i = 0; i < 200; i++) {
    ASSERT_EQ(kvfs_core_create(fs_, KVFS_ROOT_INO, ("f" + std::to_string(i)).c_str(), &obj, &a), 0);
  }
  struct Listing {
    std::vector<std::pair<std::string, uint64_t>> entries;
    size_t limit = SIZE_MAX;
  };
  auto collect = [](void* arg, const char* name, const kvfs_attr* attr, uint64_t cookie) {
    auto* l = static_cast<Listing*>(arg);
    EXPECT_NE(attr->ino, 0u);
    l->entries.emplace_back(name, cookie);
    return l->entries.size() < l->limit;
  };
  Listing all;
  bool eof = false;
  ASSERT_EQ(kvfs_core_readdir(fs_, KVFS_ROOT_INO, 0, collect, &all, &eof), 0);
  EXPECT_TRUE(eof);
  ASSERT_EQ(all.entries.size(), 200u);
  for (size_t i = 0; i < all.entries.size(); i++) {
    EXPECT_GE(all.entries[i].second, 3u);
    if (i > 0) {
      EXPECT_GT(all.entries[i].second, all.entries[i - 1].second);
    }
    uint64_t c = 0;
    ASSERT_EQ(kvfs_core_cookie_of(fs_, KVFS_ROOT_INO, all.entries[i].first.c_str(), &c), 0);
    EXPECT_EQ(c, all.entries[i].second);
  }

  // A page of 50, then remove the 50th entry and one further on, add one:
  // resuming from the 50th cookie yields exactly the survivors after it.
  Listing page;
  page.limit = 50;
  ASSERT_EQ(kvfs_core_readdir(fs_, KVFS_ROOT_INO, 0, collect, &page, &eof), 0);
  EXPECT_FALSE(eof);
  ASSERT_EQ(page.entries.size(), 50u);
  ASSERT_EQ(kvfs_core_unlink(fs_, KVFS_ROOT_INO, all.entries[49].first.c_str()), 0);
  ASSERT_EQ(kvfs_core_unlink(fs_, KVFS_ROOT_INO, all.entries[120].first.c_str()), 0);
  ASSERT_EQ(kvfs_core_create(fs_, KVFS_ROOT_INO, "new", &obj, &a), 0);
  uint64_t new_cookie = 0;
  ASSERT_EQ(kvfs_core_cookie_of(fs_, KVFS_ROOT_INO, "new", &new_cookie), 0);
  Listing rest;
  ASSERT_EQ(kvfs_core_readdir(fs_, KVFS_ROOT_INO, page.entries.back().second, collect, &rest, &eof),
            0);
  EXPECT_TRUE(eof);
  std::vector<std::string> expected;
  for (size_t i = 50; i < all.entries.size(); i++) {
    if (i != 120) expected.push_back(all.entries[i].first);
  }
  if (new_cookie > page.entries.back().second) expected.push_back("new");
  std::vector<std::string> got;
  for (auto& e : rest.entries) got.push_back(e.first);
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, expected);

  uint64_t c = 0;
  EXPECT_EQ(kvfs_core_cookie_of(fs_, KVFS_ROOT_INO, "missing", &c), ENOENT);
}

TEST_F(BridgeTest, OpenFileOutlivesItsLastName) {
  kvfs_new_object obj = Obj();
  kvfs_attr f{};
  ASSERT_EQ(kvfs_core_create(fs_, KVFS_ROOT_INO, "f", &obj, &f), 0);
  std::string data = "still here";
  struct iovec w = {data.data(), data.size()};
  ASSERT_EQ(kvfs_core_write(fs_, f.ino, 0, &w, 1, true, nullptr), 0);
  ASSERT_EQ(kvfs_core_open_file(fs_, f.ino), 0);
  ASSERT_EQ(kvfs_core_unlink(fs_, KVFS_ROOT_INO, "f"), 0);

  char buf[64];
  struct iovec r = {buf, sizeof(buf)};
  size_t n = 0;
  bool eof = false;
  ASSERT_EQ(kvfs_core_read(fs_, f.ino, 0, &r, 1, &n, &eof), 0) << kvfs_last_error();
  EXPECT_EQ(std::string(buf, n), data);
  kvfs_attr a{};
  ASSERT_EQ(kvfs_core_getattr(fs_, f.ino, &a), 0);
  EXPECT_EQ(a.nlink, 0u);

  ASSERT_EQ(kvfs_core_close_file(fs_, f.ino), 0);
  int err = kvfs_core_getattr(fs_, f.ino, &a);
  EXPECT_TRUE(err == ESTALE || err == ENOENT) << err;
}

TEST_F(BridgeTest, ObjectsAndAttributes) {
  kvfs_new_object dmode = Obj(0750);
  kvfs_attr d{}, l{}, n{}, f{};
  ASSERT_EQ(kvfs_core_mkdir(fs_, KVFS_ROOT_INO, "d", &dmode, &d), 0);
  EXPECT_EQ(d.mode, 0750u);
  kvfs_new_object obj = Obj(0777);
  ASSERT_EQ(kvfs_core_symlink(fs_, d.ino, "l", "../target", &obj, &l), 0);
  char buf[KVFS_MAX_SYMLINK + 1];
  size_t len = 0;
  ASSERT_EQ(kvfs_core_readlink(fs_, l.ino, buf, sizeof(buf), &len), 0);
  EXPECT_EQ(std::string(buf, len), "../target");
  ASSERT_EQ(kvfs_core_mknod(fs_, d.ino, "fifo", KVFS_TYPE_FIFO, &obj, 0, &n), 0);
  EXPECT_EQ(n.type, KVFS_TYPE_FIFO);
  EXPECT_EQ(kvfs_core_mknod(fs_, d.ino, "bad", KVFS_TYPE_REGULAR, &obj, 0, &n), EINVAL);

  ASSERT_EQ(kvfs_core_create(fs_, d.ino, "f", &obj, &f), 0);
  kvfs_setattr req{};
  req.mask = KVFS_SET_MODE | KVFS_SET_UID | KVFS_SET_SIZE | KVFS_SET_MTIME;
  req.mode = 0600;
  req.uid = 1000;
  req.size = 12345;
  req.mtime = kvfs_timespec{1700000000, 123456789};
  kvfs_attr after{};
  ASSERT_EQ(kvfs_core_setattr(fs_, f.ino, &req, &after), 0);
  EXPECT_EQ(after.mode, 0600u);
  EXPECT_EQ(after.uid, 1000u);
  EXPECT_EQ(after.size, 12345u);
  EXPECT_EQ(after.mtime.sec, 1700000000);
  EXPECT_EQ(after.mtime.nsec, 123456789u);
  EXPECT_GT(after.change, f.change);

  ASSERT_EQ(kvfs_core_link(fs_, f.ino, d.ino, "f2", &after), 0);
  EXPECT_EQ(after.nlink, 2u);
  ASSERT_EQ(kvfs_core_rename(fs_, d.ino, "f2", d.ino, "f3"), 0);
  EXPECT_EQ(kvfs_core_rmdir(fs_, KVFS_ROOT_INO, "d"), ENOTEMPTY);
  kvfs_statfs st{};
  ASSERT_EQ(kvfs_core_statfs(fs_, &st), 0);
  EXPECT_GE(st.used_inodes, 5u);
}

}  // namespace
