// Targeted tests for core (common/fs) deviations from the documented
// behaviour, found while writing the model test, the crash test and the
// kvfs tool. Each test names where the behaviour is specified.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/fs/file_system.h"
#include "common/fs/schema.h"
#include "common/kv/memory_store.h"
#include "tests/fs/test_util.h"

namespace kvfs {
namespace {

class CoreFindingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FileSystemOptions options;
    options.durable = false;
    ASSERT_OK(FileSystem::Open(options, NewMemoryStore(), &fs_));
  }
  void TearDown() override {
    for (const auto& p : testing::FsckProblems(fs_.get(), DefaultNameHasher())) {
      ADD_FAILURE() << "fsck: " << p;
    }
  }

  std::unique_ptr<FileSystem> fs_;
};

// POSIX write(): "where nbyte is greater than 0, write() shall mark for
// update the last data modification and last file status change
// timestamps". Linux, and so an NFS server's WRITE of count 0, leaves the
// file alone. (Found by the model test; fixed in file_system.cc.)
TEST_F(CoreFindingsTest, ZeroLengthWriteChangesNothing) {
  Attributes before, after;
  ASSERT_OK(fs_->Create(kRootIno, "f", NewObject{}, true, &before));
  SetAttrRequest req;
  req.mtime = Timespec{1000000000, 5};
  ASSERT_OK(fs_->SetAttr(before.ino, req, &before));
  ASSERT_OK(fs_->Write(before.ino, 100, "", Stability::kStable, &after));
  EXPECT_EQ(after.size, 0u);
  EXPECT_EQ(after.mtime, before.mtime);
  EXPECT_EQ(after.ctime, before.ctime);
  EXPECT_EQ(after.change, before.change);
  ASSERT_OK(fs_->GetAttr(before.ino, &after));
  EXPECT_EQ(after.mtime, before.mtime);
  EXPECT_EQ(after.change, before.change);
}

}  // namespace
}  // namespace kvfs
