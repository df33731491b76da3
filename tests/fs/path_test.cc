// Tests of path resolution (common/fs/path.h) on an in-memory file system.
#include "common/fs/path.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/kv/memory_store.h"
#include "tests/fs/test_util.h"

namespace kvfs {
namespace {

class PathTest : public ::testing::Test {
 protected:
  // Builds:  /a/b/file   /a/up -> ..   /a/abs -> /a/b   /a/rel -> b/file
  //          /a/loop -> loop   /a/dangling -> nowhere   /top -> a/b
  void SetUp() override {
    FileSystemOptions options;
    options.durable = false;
    ASSERT_OK(FileSystem::Open(options, NewMemoryStore(), &fs_));
    Attributes x;
    ASSERT_OK(fs_->Mkdir(kRootIno, "a", NewObject{0755}, &a_));
    ASSERT_OK(fs_->Mkdir(a_.ino, "b", NewObject{0755}, &b_));
    ASSERT_OK(fs_->Create(b_.ino, "file", NewObject{}, true, &file_));
    ASSERT_OK(fs_->Symlink(a_.ino, "up", "..", NewObject{0777}, &x));
    ASSERT_OK(fs_->Symlink(a_.ino, "abs", "/a/b", NewObject{0777}, &x));
    ASSERT_OK(fs_->Symlink(a_.ino, "rel", "b/file", NewObject{0777}, &rel_));
    ASSERT_OK(fs_->Symlink(a_.ino, "loop", "loop", NewObject{0777}, &x));
    ASSERT_OK(fs_->Symlink(a_.ino, "dangling", "nowhere", NewObject{0777}, &x));
    ASSERT_OK(fs_->Symlink(kRootIno, "top", "a/b", NewObject{0777}, &x));
  }

  // The inode `path` resolves to, or 0 with *err set.
  Ino Resolve(const std::string& path, bool follow_last = false, int* err = nullptr) {
    Attributes out;
    Status s = ResolvePath(fs_.get(), path, &out, follow_last);
    if (err != nullptr) *err = s.posix_errno();
    return s.ok() ? out.ino : 0;
  }
  int ResolveErr(const std::string& path) {
    int err = 0;
    Resolve(path, false, &err);
    return err;
  }

  std::unique_ptr<FileSystem> fs_;
  Attributes a_, b_, file_, rel_;
};

TEST_F(PathTest, PlainPaths) {
  EXPECT_EQ(Resolve("/"), kRootIno);
  EXPECT_EQ(Resolve("/a"), a_.ino);
  EXPECT_EQ(Resolve("/a/b/file"), file_.ino);
  EXPECT_EQ(Resolve("//a///b//file"), file_.ino);
  EXPECT_EQ(Resolve("/a/./b/./file"), file_.ino);
  EXPECT_EQ(Resolve("/a/b/../b/file"), file_.ino);
  EXPECT_EQ(Resolve("/.."), kRootIno);
  EXPECT_EQ(Resolve("/../a/.."), kRootIno);
  EXPECT_EQ(Resolve("/a/"), a_.ino);
}

TEST_F(PathTest, Errors) {
  EXPECT_EQ(ResolveErr(""), EINVAL);
  EXPECT_EQ(ResolveErr("a/b"), EINVAL);
  EXPECT_EQ(ResolveErr("/missing"), ENOENT);
  EXPECT_EQ(ResolveErr("/a/missing/file"), ENOENT);
  EXPECT_EQ(ResolveErr("/a/b/file/x"), ENOTDIR);
  EXPECT_EQ(ResolveErr("/a/b/file/"), ENOTDIR);
  EXPECT_EQ(ResolveErr("/a/" + std::string(kMaxNameLength + 1, 'n')), ENAMETOOLONG);
}

TEST_F(PathTest, SymlinksInTheMiddleAreFollowed) {
  EXPECT_EQ(Resolve("/a/up/a/b/file"), file_.ino);  // relative target ".."
  EXPECT_EQ(Resolve("/a/abs/file"), file_.ino);     // absolute target
  EXPECT_EQ(Resolve("/top/file"), file_.ino);       // multi-component target
  EXPECT_EQ(Resolve("/a/abs/../b"), b_.ino);        // ".." of the target, not of the link
  EXPECT_EQ(ResolveErr("/a/dangling/x"), ENOENT);
  EXPECT_EQ(ResolveErr("/a/rel/x"), ENOTDIR);
  EXPECT_EQ(ResolveErr("/a/loop/x"), ELOOP);
}

TEST_F(PathTest, LastSymlinkFollowedOnlyOnRequestOrWithTrailingSlash) {
  EXPECT_EQ(Resolve("/a/rel"), rel_.ino);
  EXPECT_EQ(Resolve("/a/rel", true), file_.ino);
  EXPECT_EQ(Resolve("/a/abs/"), b_.ino);
  int err = 0;
  EXPECT_EQ(Resolve("/a/rel/", false, &err), 0u);
  EXPECT_EQ(err, ENOTDIR);  // followed to a file, but a directory was required
  EXPECT_EQ(Resolve("/a/loop", true, &err), 0u);
  EXPECT_EQ(err, ELOOP);
  EXPECT_EQ(Resolve("/a/dangling", true, &err), 0u);
  EXPECT_EQ(err, ENOENT);
}

TEST_F(PathTest, ResolveParent) {
  Attributes parent;
  std::string name;
  ASSERT_OK(ResolveParent(fs_.get(), "/a/b/new", &parent, &name));
  EXPECT_EQ(parent.ino, b_.ino);
  EXPECT_EQ(name, "new");
  ASSERT_OK(ResolveParent(fs_.get(), "/x//", &parent, &name));
  EXPECT_EQ(parent.ino, kRootIno);
  EXPECT_EQ(name, "x");
  ASSERT_OK(ResolveParent(fs_.get(), "/a/abs/file", &parent, &name));
  EXPECT_EQ(parent.ino, b_.ino);  // a symlink as the directory is followed
  EXPECT_EQ(name, "file");
  ASSERT_OK(ResolveParent(fs_.get(), "/a/rel", &parent, &name));
  EXPECT_EQ(parent.ino, a_.ino);  // the last component is a name, never followed
  EXPECT_EQ(name, "rel");
  for (const char* bad : {"/", "//", "/a/.", "/a/..", "relative", ""}) {
    EXPECT_EQ(ResolveParent(fs_.get(), bad, &parent, &name).posix_errno(), EINVAL) << bad;
  }
  EXPECT_EQ(ResolveParent(fs_.get(), "/a/b/file/x", &parent, &name).posix_errno(), ENOTDIR);
  EXPECT_EQ(ResolveParent(fs_.get(), "/missing/x", &parent, &name).posix_errno(), ENOENT);
}

TEST(JoinPathTest, OneSlash) {
  EXPECT_EQ(JoinPath("/", "a"), "/a");
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
  EXPECT_EQ(JoinPath("/a/", "b"), "/a/b");
  EXPECT_EQ(JoinPath("", "b"), "/b");
}

}  // namespace
}  // namespace kvfs
