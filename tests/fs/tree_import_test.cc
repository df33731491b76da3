// Tests of tools/tree_import.h: local trees copied into KVFS must compare
// equal to the original (contents, types, modes, owners, mtimes, hard links),
// sparse files must stay sparse, and errors must be reported.
#include "tools/tree_import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "common/fs/path.h"
#include "common/fs/schema.h"
#include "common/kv/memory_store.h"
#include "tests/fs/test_util.h"

namespace kvfs {
namespace {

class TreeImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FileSystemOptions options;
    options.durable = false;
    ASSERT_OK(FileSystem::Open(options, NewMemoryStore(), &fs_));
    src_ = tmp_.path() + "/src";
  }

  void TearDown() override {
    for (const auto& p : testing::FsckProblems(fs_.get(), DefaultNameHasher())) {
      ADD_FAILURE() << "fsck: " << p;
    }
  }

  std::string Local(const std::string& rel) const { return src_ + "/" + rel; }
  void WriteLocal(const std::string& rel, const std::string& data, off_t offset = 0) {
    int fd = open(Local(rel).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << rel;
    ASSERT_EQ(pwrite(fd, data.data(), data.size(), offset), static_cast<ssize_t>(data.size()));
    close(fd);
  }
  void SetMtime(const std::string& rel, int64_t sec, long nsec) {
    struct timespec ts[2] = {{sec - 100, nsec}, {sec, nsec}};
    ASSERT_EQ(utimensat(AT_FDCWD, Local(rel).c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << rel;
  }

  // A tree with every kind of object: files below, at and above the inline
  // threshold and spanning blocks, a sparse file, hard links, symlinks, a
  // FIFO, unusual modes and (as root) owners, and pinned mtimes.
  void BuildTree() {
    std::mt19937_64 rng(7);
    auto random_bytes = [&](size_t n) {
      std::string s(n, '\0');
      for (char& c : s) c = static_cast<char>(rng());
      return s;
    };
    for (const char* d : {"", "a", "a/b", "a/b/c", "empty", "sticky"}) {
      ASSERT_EQ(mkdir(Local(d).c_str(), 0755), 0) << d;
    }
    WriteLocal("zero", "");
    WriteLocal("a/small", "hello\n");
    WriteLocal("a/b/at_threshold", random_bytes(4096));
    WriteLocal("a/b/above_threshold", random_bytes(4097));
    WriteLocal("a/b/c/blocks", random_bytes(200000));
    // 8 MiB with 100 bytes of data in the middle.
    WriteLocal("a/sparse", random_bytes(100), 3 << 20);
    ASSERT_EQ(truncate(Local("a/sparse").c_str(), 8 << 20), 0);
    ASSERT_EQ(link(Local("a/small").c_str(), Local("a/b/c/small.link").c_str()), 0);
    ASSERT_EQ(link(Local("a/small").c_str(), Local("a/small.link2").c_str()), 0);
    ASSERT_EQ(symlink("b/c/blocks", Local("a/to_blocks").c_str()), 0);
    ASSERT_EQ(symlink("/nowhere/at/all", Local("a/b/dangling").c_str()), 0);
    ASSERT_EQ(mkfifo(Local("a/fifo").c_str(), 0640), 0);
    ASSERT_EQ(chmod(Local("a/small").c_str(), 0600), 0);
    ASSERT_EQ(chmod(Local("a/b/at_threshold").c_str(), 04755), 0);
    ASSERT_EQ(chmod(Local("sticky").c_str(), 01777), 0);
    if (geteuid() == 0) {
      ASSERT_EQ(lchown(Local("a/b/c/blocks").c_str(), 1234, 5678), 0);
      ASSERT_EQ(lchown(Local("a/to_blocks").c_str(), 42, 43), 0);
    }
    SetMtime("a/b/above_threshold", 1000000000, 123456789);
    SetMtime("a/to_blocks", 1100000000, 5);
    for (const char* d : {"a/b/c", "a/b", "a", "empty", "sticky", ""}) SetMtime(d, 1200000000, 7);
  }

  std::vector<std::string> Compare(const std::string& dest) {
    Attributes a;
    Status s = ResolvePath(fs_.get(), dest, &a);
    if (!s.ok()) return {"resolve " + dest + ": " + s.ToString()};
    testing::TreeCompareOptions opts;
    opts.all_mtimes = true;
    return testing::CompareTrees(fs_.get(), a.ino, src_, opts);
  }

  testing::TempDir tmp_{"kvfs_import_test"};
  std::string src_;
  std::unique_ptr<FileSystem> fs_;
};

TEST_F(TreeImportTest, CopyEqualsOriginal) {
  BuildTree();
  ImportStats stats;
  ASSERT_OK(ImportTree(fs_.get(), src_, "/imported", &stats));
  EXPECT_TRUE(stats.errors.empty());
  EXPECT_EQ(stats.directories, 6u);  // including /imported itself
  EXPECT_EQ(stats.files, 6u);
  EXPECT_EQ(stats.hard_links, 2u);
  EXPECT_EQ(stats.symlinks, 2u);
  EXPECT_EQ(stats.specials, 1u);
  for (const auto& d : Compare("/imported")) ADD_FAILURE() << d;

  // The destination directory itself took the attributes of the source.
  Attributes root;
  ASSERT_OK(ResolvePath(fs_.get(), "/imported", &root));
  EXPECT_EQ(root.mtime, (Timespec{1200000000, 7}));
  EXPECT_EQ(root.mode, 0755u);
}

TEST_F(TreeImportTest, SparseFilesStaySparse) {
  BuildTree();
  ImportStats stats;
  ASSERT_OK(ImportTree(fs_.get(), src_, "/imported", &stats));
  Attributes sparse;
  ASSERT_OK(ResolvePath(fs_.get(), "/imported/a/sparse", &sparse));
  EXPECT_EQ(sparse.size, 8u << 20);
  IteratorOptions io;
  io.upper_bound = schema::BlockKey(sparse.ino + 1, 0);
  auto it = fs_->store()->NewIterator(Column::kBlocks, io);
  int blocks = 0;
  for (it->Seek(schema::BlockKey(sparse.ino, 0)); it->Valid(); it->Next()) ++blocks;
  EXPECT_EQ(blocks, 1) << "only the block holding the 100 data bytes is stored";
}

TEST_F(TreeImportTest, ImportingAgainMergesAndOverwrites) {
  BuildTree();
  ImportStats first, second;
  ASSERT_OK(ImportTree(fs_.get(), src_, "/imported", &first));
  WriteLocal("a/b/c/blocks", "shorter now");
  ASSERT_EQ(truncate(Local("a/b/c/blocks").c_str(), 11), 0);
  WriteLocal("a/new", "new file");
  ASSERT_EQ(unlink(Local("a/b/dangling").c_str()), 0);
  ASSERT_EQ(unlink(Local("a/fifo").c_str()), 0);
  SetMtime("a", 1200000000, 7);
  SetMtime("a/b", 1200000000, 7);
  SetMtime("a/b/c", 1200000000, 7);
  ASSERT_OK(ImportTree(fs_.get(), src_, "/imported", &second));
  EXPECT_EQ(second.hard_links, 2u);
  std::vector<std::string> diffs = Compare("/imported");
  std::sort(diffs.begin(), diffs.end());
  // What was removed locally stays in KVFS (a merge, not a sync).
  EXPECT_EQ(diffs, (std::vector<std::string>{
                       "/a/b/dangling: only in KVFS",
                       "/a/b: directory size (entries) is 4 in KVFS, 3 locally",
                       "/a/fifo: only in KVFS",
                       "/a: directory size (entries) is 7 in KVFS, 6 locally",
                   }));
}

TEST_F(TreeImportTest, HardLinksAcrossTopLevelDirectoriesBecomeCopies) {
  ASSERT_EQ(mkdir(src_.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(Local("x").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(Local("y").c_str(), 0755), 0);
  WriteLocal("x/f", "shared");
  ASSERT_EQ(link(Local("x/f").c_str(), Local("x/g").c_str()), 0);
  ASSERT_EQ(link(Local("x/f").c_str(), Local("y/f").c_str()), 0);
  ImportStats stats;
  ASSERT_OK(ImportTree(fs_.get(), src_, "/", &stats));  // x and y get ranges of their own
  EXPECT_EQ(stats.hard_links, 1u);                      // x/g
  EXPECT_EQ(stats.files, 2u);                           // x/f and the copy y/f
  Attributes xf, xg, yf;
  ASSERT_OK(ResolvePath(fs_.get(), "/x/f", &xf));
  ASSERT_OK(ResolvePath(fs_.get(), "/x/g", &xg));
  ASSERT_OK(ResolvePath(fs_.get(), "/y/f", &yf));
  EXPECT_EQ(xf.ino, xg.ino);
  EXPECT_NE(xf.ino, yf.ino);
  EXPECT_EQ(xf.nlink, 2u);
  EXPECT_EQ(yf.nlink, 1u);
  std::string data;
  ASSERT_OK(testing::ReadAll(fs_.get(), yf.ino, &data));
  EXPECT_EQ(data, "shared");
}

TEST_F(TreeImportTest, Errors) {
  ImportStats stats;
  EXPECT_EQ(ImportTree(fs_.get(), src_, "/x", &stats).posix_errno(), ENOENT);  // no source
  BuildTree();
  EXPECT_EQ(ImportTree(fs_.get(), src_, "/missing/x", &stats).posix_errno(), ENOENT);
  Attributes f;
  ASSERT_OK(fs_->Create(kRootIno, "file", NewObject{}, true, &f));
  EXPECT_EQ(ImportTree(fs_.get(), src_, "/file", &stats).posix_errno(), ENOTDIR);
  EXPECT_EQ(ImportTree(fs_.get(), src_, "relative", &stats).posix_errno(), EINVAL);
  // A directory where the local tree has a file is reported and skipped.
  ASSERT_OK(ImportTree(fs_.get(), src_, "/imported", &stats));
  ASSERT_OK(ResolvePath(fs_.get(), "/imported/a", &f));
  Attributes x;
  ASSERT_OK(fs_->Unlink(f.ino, "small.link2"));
  ASSERT_OK(fs_->Mkdir(f.ino, "small.link2", NewObject{0755}, &x));
  ImportStats again;
  Status s = ImportTree(fs_.get(), src_, "/imported", &again);
  EXPECT_EQ(s.posix_errno(), EIO);
  ASSERT_EQ(again.errors.size(), 1u);
  EXPECT_NE(again.errors[0].find("/a/small.link2: "), std::string::npos) << again.errors[0];
}

TEST(CopyFileContentsTest, FromAPipe) {
  FileSystemOptions options;
  options.durable = false;
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(FileSystem::Open(options, NewMemoryStore(), &fs));
  Attributes a;
  ASSERT_OK(fs->Create(kRootIno, "f", NewObject{}, true, &a));
  ASSERT_OK(fs->Write(a.ino, 0, std::string(2 << 20, 'o'), Stability::kUnstable, &a));
  std::string data((1 << 20) + 12345, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + (i >> 13));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::thread writer([&] {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = write(fds[1], data.data() + off, std::min<size_t>(70000, data.size() - off));
      if (n <= 0) break;
      off += n;
    }
    close(fds[1]);
  });
  uint64_t size = 0;
  Status s = CopyFileContents(fs.get(), fds[0], a.ino, &size);
  writer.join();
  close(fds[0]);
  ASSERT_OK(s);
  EXPECT_EQ(size, data.size());
  std::string back;
  ASSERT_OK(testing::ReadAll(fs.get(), a.ino, &back));
  EXPECT_TRUE(back == data);  // the old, longer contents are gone
}

}  // namespace
}  // namespace kvfs
