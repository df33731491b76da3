// What kvfs-fuse acknowledges is durable when the reply leaves (docs/fuse.md):
// close (flush), fsync, fsyncdir and every metadata operation. The store is a
// PowerLossStore, whose durable state is what a power loss would keep, served
// in process; the file system is then opened from that state alone.
// (ctest runs this in private namespaces: it mounts.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <ostream>
#include <string>

#include "common/fs/path.h"
#include "tests/fs/test_util.h"
#include "tests/fuse/fuse_test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/kv/power_loss_store.h"

namespace kvfs::fusefs {
// For GoogleTest's messages.
void PrintTo(const FuseSettings& s, std::ostream* os) {
  *os << (s.writeback_cache ? "writeback_cache " : "") << (s.direct_io ? "direct_io " : "")
      << (s.single_thread ? "single_thread" : "");
}
}  // namespace kvfs::fusefs

namespace kvfs::fuse_test {
namespace {

using ingest_test::RandomBytes;
using kv_test::PowerLossStore;
using kvfs::testing::FsckProblems;
using kvfs::testing::ReadAll;
using kvfs::testing::TempDir;

// Writes `data` in pieces (several FUSE writes) to an open descriptor.
void WriteAll(int fd, const std::string& data) {
  for (size_t off = 0; off < data.size(); off += 7000) {
    size_t n = std::min<size_t>(7000, data.size() - off);
    ASSERT_EQ(write(fd, data.data() + off, n), static_cast<ssize_t>(n)) << strerror(errno);
  }
}

std::string Stored(FileSystem* fs, const std::string& path) {
  Attributes a;
  Status s = ResolvePath(fs, path, &a);
  if (!s.ok()) return "<" + s.ToString() + ">";
  std::string data;
  s = ReadAll(fs, a.ino, &data);
  return s.ok() ? data : "<" + s.ToString() + ">";
}

class FusePowerLossTest : public ::testing::TestWithParam<fusefs::FuseSettings> {};

TEST_P(FusePowerLossTest, WhatWasAcknowledgedIsDurable) {
  TempDir dir("kvfs-fuse-power");
  const std::string mnt = dir.path() + "/mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  auto* store = new PowerLossStore();
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(FileSystem::Open(FileSystemOptions(), std::unique_ptr<KVStore>(store), &fs));
  fusefs::FuseOperationsOptions oo;
  oo.settings = GetParam();
  oo.log = [](const std::string& line) { ADD_FAILURE() << "log: " << line; };
  InProcessMount mount(fs.get(), oo, mnt);
  ASSERT_OK(mount.Start());

  // The file system a power loss now would leave.
  auto after_power_loss = [&]() {
    std::unique_ptr<FileSystem> after;
    std::unique_ptr<KVStore> durable = store->PowerLoss();
    EXPECT_NE(durable, nullptr);
    if (durable == nullptr) return after;
    EXPECT_OK(FileSystem::Open(FileSystemOptions(), std::move(durable), &after));
    if (after != nullptr) {
      EXPECT_EQ(FsckProblems(after.get(), DefaultNameHasher()), std::vector<std::string>{});
    }
    return after;
  };

  const std::string closed = RandomBytes(300000, 1), small = "small and inline";
  const std::string synced = RandomBytes(90000, 2), overwrite = RandomBytes(5000, 3);
  ASSERT_EQ(mkdir((mnt + "/d").c_str(), 0750), 0);
  {
    std::unique_ptr<FileSystem> after = after_power_loss();
    ASSERT_NE(after, nullptr);
    Attributes a;
    ASSERT_OK(ResolvePath(after.get(), "/d", &a));
    EXPECT_EQ(a.mode, 0750u);
  }
  // Closed: the flush reply follows a sync.
  int fd = open((mnt + "/d/closed").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_NO_FATAL_FAILURE(WriteAll(fd, closed));
  ASSERT_EQ(close(fd), 0);
  EXPECT_EQ(Stored(after_power_loss().get(), "/d/closed"), closed);
  fd = open((mnt + "/d/small").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_NO_FATAL_FAILURE(WriteAll(fd, small));
  ASSERT_EQ(close(fd), 0);
  EXPECT_EQ(Stored(after_power_loss().get(), "/d/small"), small);
  // Overwritten in place and closed.
  fd = open((mnt + "/d/closed").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, overwrite.data(), overwrite.size(), 100000),
            static_cast<ssize_t>(overwrite.size()));
  ASSERT_EQ(close(fd), 0);
  std::string expected_closed = closed;
  expected_closed.replace(100000, overwrite.size(), overwrite);
  EXPECT_EQ(Stored(after_power_loss().get(), "/d/closed"), expected_closed);
  // fsync'ed, still open.
  int open_fd = open((mnt + "/d/synced").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(open_fd, 0);
  ASSERT_NO_FATAL_FAILURE(WriteAll(open_fd, synced));
  ASSERT_EQ(fdatasync(open_fd), 0);
  EXPECT_EQ(Stored(after_power_loss().get(), "/d/synced"), synced);
  ASSERT_EQ(pwrite(open_fd, "more", 4, synced.size()), 4);
  ASSERT_EQ(fsync(open_fd), 0);
  EXPECT_EQ(Stored(after_power_loss().get(), "/d/synced"), synced + "more");
  // Metadata: each durable when its call returns.
  ASSERT_EQ(symlink("closed", (mnt + "/d/link").c_str()), 0);
  ASSERT_EQ(link((mnt + "/d/small").c_str(), (mnt + "/d/small2").c_str()), 0);
  ASSERT_EQ(rename((mnt + "/d/small").c_str(), (mnt + "/d/renamed").c_str()), 0);
  ASSERT_EQ(chmod((mnt + "/d/renamed").c_str(), 0604), 0);
  ASSERT_EQ(truncate((mnt + "/d/small2").c_str(), 5), 0);
  {
    std::unique_ptr<FileSystem> after = after_power_loss();
    ASSERT_NE(after, nullptr);
    EXPECT_EQ(Stored(after.get(), "/d/renamed"), "small");
    Attributes a;
    ASSERT_OK(ResolvePath(after.get(), "/d/renamed", &a));
    EXPECT_EQ(a.mode, 0604u);
    EXPECT_EQ(a.nlink, 2u);
    std::string target;
    ASSERT_OK(ResolvePath(after.get(), "/d/link", &a));
    ASSERT_OK(after->Readlink(a.ino, &target));
    EXPECT_EQ(target, "closed");
  }
  ASSERT_EQ(close(open_fd), 0);
  ASSERT_OK(mount.Stop());
}

fusefs::FuseSettings With(void (*change)(fusefs::FuseSettings*)) {
  fusefs::FuseSettings s;
  change(&s);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Caching, FusePowerLossTest,
    ::testing::Values(fusefs::FuseSettings(),
                      With([](fusefs::FuseSettings* s) { s->writeback_cache = true; }),
                      With([](fusefs::FuseSettings* s) { s->direct_io = true; }),
                      With([](fusefs::FuseSettings* s) { s->single_thread = true; })),
    [](const ::testing::TestParamInfo<fusefs::FuseSettings>& info) {
      const fusefs::FuseSettings& s = info.param;
      return std::string(s.writeback_cache ? "WritebackCache"
                         : s.direct_io     ? "DirectIo"
                         : s.single_thread ? "SingleThread"
                                           : "Default");
    });

}  // namespace
}  // namespace kvfs::fuse_test
