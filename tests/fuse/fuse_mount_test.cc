// kvfs-fuse mounted, end to end (ctest runs this in private namespaces): the
// operations of the core through the kernel, the mount options, durability
// across kill -9, invalidations from the control socket, the cache manager's
// trees, lookup counts, signals, daemon mode and the user's mistakes.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/fs/path.h"
#include "tests/file_contents.h"
#include "tests/fs/test_util.h"
#include "tests/fuse/fuse_test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/store/test_store.h"

namespace kvfs::fuse_test {
namespace {

using ingest_test::File;
using ingest_test::OpenRocksFileSystem;
using ingest_test::RandomBytes;
using ingest_test::WriteTarball;
using kvfs::testing::FsckProblems;
using kvfs::testing::TempDir;

// ---- Small POSIX helpers: -errno on failure. ----------------------------------------

int WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return -errno;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      int err = errno;
      close(fd);
      return -err;
    }
    done += static_cast<size_t>(n);
  }
  return close(fd) == 0 ? 0 : -errno;
}

int ReadFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return -errno;
  out->clear();
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out->append(buf, static_cast<size_t>(n));
  int err = n < 0 ? errno : 0;
  close(fd);
  return -err;
}

// The contents of `path`, or "<errno text>" if it cannot be read.
std::string Contents(const std::string& path) {
  std::string data;
  int r = ReadFile(path, &data);
  return r == 0 ? data : "<" + std::string(std::strerror(-r)) + ">";
}

int Errno(int r) { return r == 0 ? 0 : errno; }

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) names.push_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// Runs fn in a child process as uid/gid (no supplementary groups); returns
// what fn returned (0..255).
int AsUser(uid_t uid, gid_t gid, const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(250);
    _exit(fn());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

std::string Tool() { return KVFS_TOOL_BIN; }

class FuseMountTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(mkdir(mnt().c_str(), 0755), 0); }

  std::string db() const { return dir_.path() + "/db"; }
  std::string mnt() const { return dir_.path() + "/mnt"; }
  std::string P(const std::string& rel) const { return mnt() + "/" + rel; }

  // Mounts the store with `extra` arguments.
  void Mount(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--db", db()};
    args.insert(args.end(), extra.begin(), extra.end());
    fuse_ = std::make_unique<KvfsFuse>(args, mnt());
    Status s = fuse_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void Unmount() {
    Status s = fuse_->Stop();
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << fuse_->Output();
  }
  // The store, opened directly (nothing may have it open).
  std::unique_ptr<FileSystem> OpenStore() {
    std::unique_ptr<FileSystem> fs;
    Status s = OpenRocksFileSystem(db(), &fs);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return fs;
  }
  // `kvfs fsck` of the store: exit status 0 and "consistent".
  void ExpectFsckClean() {
    std::string out;
    EXPECT_EQ(ingest_test::RunCommand(Tool() + " fsck --db " + db(), &out), 0) << out;
    EXPECT_NE(out.find("consistent"), std::string::npos) << out;
  }

  TempDir dir_{"kvfs-fuse"};
  std::unique_ptr<KvfsFuse> fuse_;
};

// ---- The operations ---------------------------------------------------------------------

TEST_F(FuseMountTest, FilesDirectoriesLinksAndNodes) {
  ASSERT_NO_FATAL_FAILURE(
      Mount({"--capacity-bytes", "1G", "--capacity-inodes", "5000", "-o", "dev"}));
  ASSERT_EQ(mkdir(P("d").c_str(), 0750), 0);
  struct stat st;
  ASSERT_EQ(stat(P("d").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);

  // Contents across the inline threshold, the block size and a hole.
  const std::string big = RandomBytes(300000, 1);
  ASSERT_EQ(WriteFile(P("d/small"), "hello"), 0);
  ASSERT_EQ(WriteFile(P("d/big"), big), 0);
  EXPECT_EQ(Contents(P("d/small")), "hello");
  EXPECT_EQ(Contents(P("d/big")), big);
  int fd = open(P("d/sparse").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "z", 1, 5 << 20), 1);
  char hole[4096];
  ASSERT_EQ(pread(fd, hole, sizeof(hole), 1 << 20), static_cast<ssize_t>(sizeof(hole)));
  EXPECT_EQ(std::string(hole, sizeof(hole)), std::string(sizeof(hole), '\0'));
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, (5 << 20) + 1);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);  // the hole takes no room
  // SEEK_DATA/SEEK_HOLE: the data is the last block, the rest a hole.
  const off_t data = lseek(fd, 0, SEEK_DATA);
  EXPECT_GT(data, 4 << 20);
  EXPECT_LE(data, 5 << 20);
  EXPECT_EQ(lseek(fd, 0, SEEK_HOLE), 0);
  EXPECT_EQ(lseek(fd, data, SEEK_HOLE), (5 << 20) + 1);
  EXPECT_EQ(lseek(fd, (5 << 20) + 1, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  ASSERT_EQ(close(fd), 0);
  fd = open(P("d/small").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(lseek(fd, 1, SEEK_DATA), 1);
  EXPECT_EQ(lseek(fd, 1, SEEK_HOLE), 5);
  ASSERT_EQ(close(fd), 0);
  EXPECT_EQ(open(P("d/sparse").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600), -1);
  EXPECT_EQ(errno, EEXIST);

  // Symlinks and hard links.
  ASSERT_EQ(symlink("small", P("d/link").c_str()), 0);
  char target[64] = {};
  ASSERT_EQ(readlink(P("d/link").c_str(), target, sizeof(target)), 5);
  EXPECT_STREQ(target, "small");
  EXPECT_EQ(Contents(P("d/link")), "hello");
  ASSERT_EQ(lstat(P("d/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(link(P("d/small").c_str(), P("d/hard").c_str()), 0);
  struct stat a, b;
  ASSERT_EQ(stat(P("d/small").c_str(), &a), 0);
  ASSERT_EQ(stat(P("d/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);

  // Renames: over an existing file, of a directory.
  ASSERT_EQ(WriteFile(P("d/victim"), "old"), 0);
  ASSERT_EQ(rename(P("d/small").c_str(), P("d/victim").c_str()), 0);
  EXPECT_EQ(Contents(P("d/victim")), "hello");
  EXPECT_EQ(access(P("d/small").c_str(), F_OK), -1);
  ASSERT_EQ(mkdir(P("d/sub").c_str(), 0755), 0);
  ASSERT_EQ(WriteFile(P("d/sub/f"), "in sub"), 0);
  ASSERT_EQ(stat(P("d/sub").c_str(), &a), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(rename(P("d/sub").c_str(), P("d/sub2").c_str()), 0);
  EXPECT_EQ(Contents(P("d/sub2/f")), "in sub");
  // A rename changes the renamed object's ctime, as on ext4 (pjdfstest's
  // rename/22.t checks this on ext4, UFS and ZFS only).
  ASSERT_EQ(stat(P("d/sub2").c_str(), &b), 0);
  EXPECT_GT(b.st_ctim.tv_sec * 1000000000ll + b.st_ctim.tv_nsec,
            a.st_ctim.tv_sec * 1000000000ll + a.st_ctim.tv_nsec);

  // Nodes: a FIFO, a device, a socket.
  ASSERT_EQ(mkfifo(P("d/fifo").c_str(), 0640), 0);
  ASSERT_EQ(mknod(P("d/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  const std::string sock_path = P("d/sock");
  ASSERT_LT(sock_path.size(), sizeof(addr.sun_path));
  std::strcpy(addr.sun_path, sock_path.c_str());
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  close(sock);
  ASSERT_EQ(lstat(P("d/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(lstat(P("d/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(lstat(sock_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  // A device node of the mount works as the device (-o dev).
  ASSERT_EQ(WriteFile(P("d/null"), "discarded"), 0);

  // Attributes: mode, owner, times with nanoseconds, size both ways.
  ASSERT_EQ(chmod(P("d/victim").c_str(), 0604), 0);
  ASSERT_EQ(chown(P("d/victim").c_str(), 1234, 5678), 0);
  const timespec times[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("d/victim").c_str(), times, 0), 0);
  ASSERT_EQ(stat(P("d/victim").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  ASSERT_EQ(truncate(P("d/big").c_str(), 100), 0);
  ASSERT_EQ(truncate(P("d/big").c_str(), 200000), 0);
  EXPECT_EQ(Contents(P("d/big")), big.substr(0, 100) + std::string(200000 - 100, '\0'));

  // Appends.
  fd = open(P("d/victim").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "x", 1), 1);
  ASSERT_EQ(write(fd, "y", 1), 1);
  ASSERT_EQ(close(fd), 0);
  EXPECT_EQ(Contents(P("d/victim")), "helloxy");

  // Errors as POSIX has them.
  EXPECT_EQ(Errno(rmdir(P("d").c_str())), ENOTEMPTY);
  EXPECT_EQ(Errno(unlink(P("d/sub2").c_str())), EISDIR);
  EXPECT_EQ(Errno(rmdir(P("d/victim").c_str())), ENOTDIR);
  EXPECT_EQ(Errno(mkdir(P("d/victim").c_str(), 0755)), EEXIST);
  EXPECT_EQ(Errno(stat(P("d/missing").c_str(), &st)), ENOENT);
  EXPECT_EQ(Errno(mkdir(P(std::string(256, 'n')).c_str(), 0755)), ENAMETOOLONG);

  // statfs: the capacities given, the core's block size and name limit.
  struct statvfs vfs;
  ASSERT_EQ(statvfs(mnt().c_str(), &vfs), 0);
  EXPECT_EQ(vfs.f_blocks * vfs.f_frsize, 1ull << 30);
  EXPECT_EQ(vfs.f_files, 5000u);
  EXPECT_LT(vfs.f_ffree, 5000u);
  EXPECT_EQ(vfs.f_namemax, 255u);

  // Inode numbers are the store's: compare after unmounting.
  std::map<std::string, ino_t> inos;
  for (const char* p : {"d", "d/victim", "d/hard", "d/big", "d/sub2", "d/sub2/f", "d/link"}) {
    ASSERT_EQ(lstat(P(p).c_str(), &st), 0) << p;
    inos[std::string("/") + p] = st.st_ino;
  }
  ASSERT_EQ(stat(mnt().c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, kRootIno);
  ASSERT_NO_FATAL_FAILURE(Unmount());
  {
    std::unique_ptr<FileSystem> fs = OpenStore();
    ASSERT_NE(fs, nullptr);
    for (const auto& [path, ino] : inos) {
      Attributes attrs;
      ASSERT_OK(ResolvePath(fs.get(), path, &attrs));
      EXPECT_EQ(attrs.ino, ino) << path;
    }
    EXPECT_EQ(FsckProblems(fs.get(), DefaultNameHasher()), std::vector<std::string>{});
  }
}

TEST_F(FuseMountTest, RenameFlags) {
  ASSERT_NO_FATAL_FAILURE(Mount());
  ASSERT_EQ(WriteFile(P("a"), "A"), 0);
  ASSERT_EQ(WriteFile(P("b"), "B"), 0);
  EXPECT_EQ(Errno(renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("b").c_str(), RENAME_NOREPLACE)),
            EEXIST);
  EXPECT_EQ(Contents(P("b")), "B");
  ASSERT_EQ(renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("c").c_str(), RENAME_NOREPLACE), 0);
  EXPECT_EQ(Contents(P("c")), "A");
  // The core cannot swap two names in one step.
  EXPECT_EQ(Errno(renameat2(AT_FDCWD, P("b").c_str(), AT_FDCWD, P("c").c_str(), RENAME_EXCHANGE)),
            EINVAL);
  EXPECT_EQ(Contents(P("b")), "B");
  EXPECT_EQ(Contents(P("c")), "A");
}

TEST_F(FuseMountTest, FallocateGrowsAndRefusesWhatItCannotDo) {
  ASSERT_NO_FATAL_FAILURE(Mount());
  int fd = open(P("f").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "abc", 3), 3);
  ASSERT_EQ(fallocate(fd, 0, 0, 1 << 20), 0) << strerror(errno);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  // Never shorter.
  ASSERT_EQ(fallocate(fd, 0, 0, 10), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_EQ(Errno(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4 << 20)), EOPNOTSUPP);
  EXPECT_EQ(Errno(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2)), EOPNOTSUPP);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  char buf[3];
  ASSERT_EQ(pread(fd, buf, 3, 0), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
  close(fd);
}

TEST_F(FuseMountTest, ExtendedAttributesAreCleanlyUnsupported) {
  ASSERT_NO_FATAL_FAILURE(Mount());
  ASSERT_EQ(WriteFile(P("f"), "x"), 0);
  char buf[64];
  // Twice each: the kernel remembers the answer after the first call.
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(Errno(static_cast<int>(getxattr(P("f").c_str(), "user.a", buf, sizeof(buf)))),
              ENOTSUP);
    EXPECT_EQ(Errno(setxattr(P("f").c_str(), "user.a", "1", 1, 0)), ENOTSUP);
    EXPECT_EQ(Errno(static_cast<int>(listxattr(P("f").c_str(), buf, sizeof(buf)))), ENOTSUP);
    EXPECT_EQ(Errno(removexattr(P("f").c_str(), "user.a")), ENOTSUP);
  }
}

TEST_F(FuseMountTest, AnUnlinkedOpenFileLivesUntilItsLastClose) {
  ASSERT_NO_FATAL_FAILURE(Mount());
  struct statvfs before;
  ASSERT_EQ(statvfs(mnt().c_str(), &before), 0);
  const std::string data = RandomBytes(100000, 2);
  ASSERT_EQ(WriteFile(P("f"), data), 0);
  int fd = open(P("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  int fd2 = open(P("f").c_str(), O_RDONLY);
  ASSERT_GE(fd2, 0);
  ASSERT_EQ(unlink(P("f").c_str()), 0);
  EXPECT_EQ(access(P("f").c_str(), F_OK), -1);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);
  std::string back(data.size(), '\0');
  ASSERT_EQ(pread(fd, back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, data);
  ASSERT_EQ(pwrite(fd, "new", 3, 0), 3);
  ASSERT_EQ(fsync(fd), 0);
  ASSERT_EQ(close(fd), 0);
  // Still open through fd2.
  ASSERT_EQ(pread(fd2, back.data(), 3, 0), 3);
  EXPECT_EQ(back.substr(0, 3), "new");
  ASSERT_EQ(close(fd2), 0);
  // Gone at the last close: usage back to where it was. The kernel sends
  // the release after close() returned, so give it a few seconds.
  struct statvfs after;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(statvfs(mnt().c_str(), &after), 0);
    if (after.f_ffree == before.f_ffree && after.f_bfree == before.f_bfree) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(after.f_ffree, before.f_ffree);
  EXPECT_EQ(after.f_bfree, before.f_bfree);
  ASSERT_NO_FATAL_FAILURE(Unmount());
  ExpectFsckClean();
}

class FuseReaddirTest : public FuseMountTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(FuseReaddirTest, ListsLargeDirectoriesWholeAndOnce) {
  ASSERT_NO_FATAL_FAILURE(Mount({"-o", std::string("readdirplus=") + GetParam()}));
  ASSERT_EQ(mkdir(P("big").c_str(), 0755), 0);
  std::vector<std::string> want = {".", ".."};
  for (int i = 0; i < 3000; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "file-%05d", i);
    ASSERT_EQ(WriteFile(P("big/") + name, name), 0);
    want.push_back(name);
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(List(P("big")), want);
  // The attributes a listing gives are right (readdirplus fills the cache).
  DIR* d = opendir(P("big").c_str());
  ASSERT_NE(d, nullptr);
  int checked = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    struct stat st;
    ASSERT_EQ(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
    EXPECT_EQ(st.st_ino, e->d_ino);
    EXPECT_EQ(st.st_size, static_cast<off_t>(std::strlen(e->d_name)));
    ++checked;
  }
  closedir(d);
  EXPECT_EQ(checked, 3000);
  // "." and "..".
  struct stat self, parent, entry_dot;
  ASSERT_EQ(stat(P("big").c_str(), &self), 0);
  ASSERT_EQ(stat(mnt().c_str(), &parent), 0);
  d = opendir(P("big").c_str());
  std::map<std::string, ino_t> dots;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) {
      dots[e->d_name] = e->d_ino;
    }
  }
  closedir(d);
  (void)entry_dot;
  EXPECT_EQ(dots["."], self.st_ino);
  EXPECT_EQ(dots[".."], parent.st_ino);
  // Removing entries while listing: every entry present throughout is seen.
  d = opendir(P("big").c_str());
  std::set<std::string> seen;
  int n = 0;
  while (dirent* e = readdir(d)) {
    seen.insert(e->d_name);
    if (++n == 100) {
      for (int i = 0; i < 3000; i += 2) {
        char name[32];
        std::snprintf(name, sizeof(name), "big/file-%05d", i);
        ASSERT_EQ(unlink(P(name).c_str()), 0);
      }
    }
  }
  closedir(d);
  for (int i = 1; i < 3000; i += 2) {
    char name[32];
    std::snprintf(name, sizeof(name), "file-%05d", i);
    EXPECT_EQ(seen.count(name), 1u) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, FuseReaddirTest, ::testing::Values("yes", "no", "auto"));

// ---- Mount options ---------------------------------------------------------------------

TEST_F(FuseMountTest, MountOptionsReachTheKernel) {
  ASSERT_NO_FATAL_FAILURE(Mount({"-o", "allow_other,max_read=65536"}));
  std::string type;
  ASSERT_TRUE(IsMounted(mnt(), &type));
  EXPECT_EQ(type, "fuse.kvfs");
  const std::string options = MountOptionsOf(mnt());
  EXPECT_NE(options.find("default_permissions"), std::string::npos) << options;
  EXPECT_NE(options.find("allow_other"), std::string::npos) << options;
  EXPECT_NE(options.find("max_read=65536"), std::string::npos) << options;
  std::ifstream mounts("/proc/self/mounts");
  std::string line, found;
  while (std::getline(mounts, line)) {
    if (line.find(" " + mnt() + " ") != std::string::npos) found = line;
  }
  EXPECT_EQ(found.substr(0, found.find(' ')), db()) << found;  // the default fsname
  ASSERT_NO_FATAL_FAILURE(Unmount());

  ASSERT_NO_FATAL_FAILURE(Mount({"-o", "fsname=trees,subtype=kt,ro"}));
  ASSERT_TRUE(IsMounted(mnt(), &type));
  EXPECT_EQ(type, "fuse.kt");
  EXPECT_EQ(Errno(mkdir(P("x").c_str(), 0755)), EROFS);
  EXPECT_EQ(WriteFile(P("y"), "no"), -EROFS);
  ASSERT_NO_FATAL_FAILURE(Unmount());
}

TEST_F(FuseMountTest, CacheAndIoOptionsKeepContentsRight) {
  for (const char* o :
       {"direct_io", "kernel_cache", "auto_cache", "writeback_cache",
        "max_write=4096,max_threads=1", "clone_fd,entry_timeout=0,attr_timeout=0"}) {
    SCOPED_TRACE(o);
    ASSERT_NO_FATAL_FAILURE(Mount({"-o", o}));
    const std::string name = std::string("f-") + std::to_string(std::hash<std::string>()(o));
    const std::string first = RandomBytes(200000, 3);
    const std::string second = RandomBytes(150001, 4);
    ASSERT_EQ(WriteFile(P(name), first), 0);
    EXPECT_EQ(Contents(P(name)), first);
    // Rewritten: the next open must see the new contents, whatever is cached.
    ASSERT_EQ(WriteFile(P(name), second), 0);
    EXPECT_EQ(Contents(P(name)), second);
    ASSERT_NO_FATAL_FAILURE(Unmount());
    std::unique_ptr<FileSystem> fs = OpenStore();
    Attributes a;
    ASSERT_OK(ResolvePath(fs.get(), "/" + name, &a));
    std::string stored;
    ASSERT_OK(kvfs::testing::ReadAll(fs.get(), a.ino, &stored));
    EXPECT_EQ(stored, second);
  }
}

TEST_F(FuseMountTest, PermissionsAreCheckedByTheKernel) {
  ASSERT_NO_FATAL_FAILURE(Mount({"-o", "allow_other"}));
  ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
  ASSERT_EQ(chmod(mnt().c_str(), 0755), 0);
  ASSERT_EQ(WriteFile(P("public"), "for all", 0644), 0);
  ASSERT_EQ(WriteFile(P("private"), "for root", 0600), 0);
  ASSERT_EQ(mkdir(P("open").c_str(), 0777), 0);
  ASSERT_EQ(chmod(P("open").c_str(), 0777), 0);
  ASSERT_EQ(mkdir(P("group").c_str(), 0777), 0);
  ASSERT_EQ(chown(P("group").c_str(), 0, 3000), 0);
  ASSERT_EQ(chmod(P("group").c_str(), 02777), 0);
  const std::string pub = P("public"), priv = P("private");
  EXPECT_EQ(AsUser(1000, 2000,
                   [&] {
                     std::string data;
                     if (ReadFile(pub, &data) != 0 || data != "for all") return 1;
                     if (WriteFile(pub, "mine") != -EACCES) return 2;
                     if (ReadFile(priv, &data) != -EACCES) return 3;
                     if (chmod(pub.c_str(), 0666) == 0 || errno != EPERM) return 4;
                     if (WriteFile(P("open/made"), "by 1000") != 0) return 5;
                     if (WriteFile(P("group/file"), "x") != 0) return 6;
                     if (mkdir(P("group/dir").c_str(), 0755) != 0) return 7;
                     return 0;
                   }),
            0);
  struct stat st;
  ASSERT_EQ(stat(P("open/made").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 2000u);
  // A set-group-ID directory passes its group on, and its bit to directories.
  ASSERT_EQ(stat(P("group/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 3000u);
  ASSERT_EQ(stat(P("group/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 3000u);
  EXPECT_TRUE(st.st_mode & S_ISGID);
  ASSERT_NO_FATAL_FAILURE(Unmount());

  // Without allow_other only the user who mounted gets in.
  ASSERT_NO_FATAL_FAILURE(Mount());
  EXPECT_EQ(AsUser(1000, 2000,
                   [&] {
                     struct stat s;
                     return stat(pub.c_str(), &s) != 0 && errno == EACCES ? 0 : 1;
                   }),
            0);
}

// ---- Durability ----------------------------------------------------------------------

class FuseDurabilityTest : public FuseMountTest,
                           public ::testing::WithParamInterface<const char*> {};

// What close, fsync and metadata calls returned is on disk when kvfs-fuse is
// killed: the store opened afterwards has it.
TEST_P(FuseDurabilityTest, WhatWasAcknowledgedSurvivesKill9) {
  std::vector<std::string> extra;
  if (*GetParam() != '\0') extra = {"-o", GetParam()};
  ASSERT_NO_FATAL_FAILURE(Mount(extra));
  const std::string closed = RandomBytes(500000, 5);
  const std::string synced = RandomBytes(70000, 6);
  ASSERT_EQ(mkdir(P("d").c_str(), 0700), 0);
  // Closed (flush replied): durable.
  int fd = open(P("d/closed").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  for (size_t off = 0; off < closed.size(); off += 7000) {
    size_t n = std::min<size_t>(7000, closed.size() - off);
    ASSERT_EQ(write(fd, closed.data() + off, n), static_cast<ssize_t>(n));
  }
  ASSERT_EQ(close(fd), 0);
  // fsync'ed, still open at the kill.
  int open_fd = open(P("d/synced").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(open_fd, 0);
  ASSERT_EQ(write(open_fd, synced.data(), synced.size()), static_cast<ssize_t>(synced.size()));
  ASSERT_EQ(fsync(open_fd), 0);
  // Metadata.
  ASSERT_EQ(symlink("closed", P("d/link").c_str()), 0);
  ASSERT_EQ(rename(P("d/closed").c_str(), P("d/renamed").c_str()), 0);
  ASSERT_EQ(chmod(P("d/renamed").c_str(), 0640), 0);
  ASSERT_OK(fuse_->Kill9());
  close(open_fd);  // ENOTCONN: the server is gone

  ExpectFsckClean();
  std::unique_ptr<FileSystem> fs = OpenStore();
  ASSERT_NE(fs, nullptr);
  Attributes a;
  std::string data;
  ASSERT_OK(ResolvePath(fs.get(), "/d/renamed", &a));
  EXPECT_EQ(a.mode, 0640u);
  ASSERT_OK(kvfs::testing::ReadAll(fs.get(), a.ino, &data));
  EXPECT_EQ(data, closed);
  ASSERT_OK(ResolvePath(fs.get(), "/d/synced", &a));
  ASSERT_OK(kvfs::testing::ReadAll(fs.get(), a.ino, &data));
  EXPECT_EQ(data, synced);
  ASSERT_OK(ResolvePath(fs.get(), "/d/link", &a));
  EXPECT_EQ(a.type, FileType::kSymlink);
}

INSTANTIATE_TEST_SUITE_P(Caching, FuseDurabilityTest,
                         ::testing::Values("", "writeback_cache", "direct_io"));

// ---- The process: signals, unmount, daemon mode, mistakes --------------------------------

TEST_F(FuseMountTest, SignalsAndUnmountEndItCleanly) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP, 0}) {
    SCOPED_TRACE(sig);
    ASSERT_NO_FATAL_FAILURE(Mount());
    ASSERT_EQ(WriteFile(P("f" + std::to_string(sig)), "data"), 0);
    if (sig == 0) {
      ASSERT_NO_FATAL_FAILURE(Unmount());  // fusermount3 -u
    } else {
      int status = -1;
      ASSERT_OK(fuse_->SignalAndWait(sig, &status));
      EXPECT_EQ(status, 0) << fuse_->Output();
      EXPECT_NE(
          fuse_->Output().find(std::string("unmounted ") + mnt() + " on signal " + strsignal(sig)),
          std::string::npos)
          << fuse_->Output();
    }
    EXPECT_FALSE(IsMounted(mnt()));
    // The store is closed: another process can open it.
    ExpectFsckClean();
  }
}

TEST_F(FuseMountTest, ADaemonReturnsOnceTheMountIsUsable) {
  const std::string log = dir_.path() + "/daemon.log";
  std::string out;
  ASSERT_EQ(RunProgram({KvfsFuseBinary(), "--db", db(), "--log", log, mnt()}, &out), 0) << out;
  EXPECT_EQ(out, "");
  // No waiting: the mount is there when the command returns.
  EXPECT_TRUE(IsMounted(mnt()));
  ASSERT_EQ(WriteFile(P("f"), "daemon"), 0);
  EXPECT_EQ(Contents(P("f")), "daemon");
  ASSERT_EQ(RunProgram({"/usr/bin/fusermount3", "-u", mnt()}, &out), 0) << out;
  // The daemon syncs, closes the store and logs; then the store can be opened.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string text;
  while (text.find("unmounted") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    text = kvfs::testing::ReadFileContents(log);
  }
  EXPECT_NE(text.find("mounted " + db() + " on " + mnt()), std::string::npos) << text;
  ASSERT_NE(text.find("unmounted " + mnt()), std::string::npos) << text;
  // The process may still be closing the store after its last log line.
  for (int i = 0; i < 3000; ++i) {
    std::string o;
    if (ingest_test::RunCommand(Tool() + " fsck --db " + db(), &o) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ExpectFsckClean();
}

TEST_F(FuseMountTest, UserMistakesGetClearMessages) {
  std::string out;
  const std::string bin = KvfsFuseBinary();
  // Mountpoint missing, or not a directory.
  EXPECT_EQ(RunProgram({bin, "--db", db(), dir_.path() + "/nowhere"}, &out), 1);
  EXPECT_EQ(out, "kvfs-fuse: mountpoint " + dir_.path() + "/nowhere: No such file or directory\n");
  std::ofstream(dir_.path() + "/file") << "x";
  EXPECT_EQ(RunProgram({bin, "-f", "--db", db(), dir_.path() + "/file"}, &out), 1);
  EXPECT_EQ(out, "kvfs-fuse: mountpoint " + dir_.path() + "/file is not a directory\n");
  // A bad option: usage error.
  EXPECT_EQ(RunProgram({bin, "--db", db(), "-o", "bogus", mnt()}, &out), 2);
  EXPECT_NE(out.find("kvfs-fuse: unknown mount option 'bogus'"), std::string::npos) << out;
  EXPECT_NE(out.find("Try 'kvfs-fuse --help'."), std::string::npos) << out;
  // A store path that cannot be a store.
  EXPECT_EQ(RunProgram({bin, "--db", dir_.path() + "/file/db", mnt()}, &out), 1);
  EXPECT_NE(out.find("kvfs-fuse: cannot open the store " + dir_.path() + "/file/db: "),
            std::string::npos)
      << out;
  EXPECT_FALSE(IsMounted(mnt()));

  // No /dev/fuse (a container without the device): a tmpfs over /dev in a
  // mount namespace of its own.
  EXPECT_EQ(RunProgram({"/usr/bin/unshare", "--mount", "/bin/sh", "-c",
                        "mount -t tmpfs none /dev && exec " + bin + " --db " + db() + " " + mnt()},
                       &out),
            1);
  EXPECT_EQ(out,
            "kvfs-fuse: cannot open the FUSE device /dev/fuse: No such file or directory (load "
            "the fuse kernel module with `modprobe fuse`, or give the container the device, e.g. "
            "docker run --device /dev/fuse)\n");

  // A busy store: another kvfs-fuse has it, in the foreground and as a daemon.
  ASSERT_NO_FATAL_FAILURE(Mount());
  ASSERT_EQ(mkdir((dir_.path() + "/mnt2").c_str(), 0755), 0);
  for (bool foreground : {true, false}) {
    std::vector<std::string> argv = {bin, "--db", db(), dir_.path() + "/mnt2"};
    if (foreground) argv.insert(argv.begin() + 1, "-f");
    EXPECT_EQ(RunProgram(argv, &out), 1);
    EXPECT_EQ(out.rfind("kvfs-fuse: cannot open the store " + db() + ": ", 0), 0u) << out;
    EXPECT_NE(out.find("(the store is in use: another process serves it on " + db() +
                       "/control.sock, a kvfs-fuse mount or an NFS server; stop it first"),
              std::string::npos)
        << out;
    EXPECT_FALSE(IsMounted(dir_.path() + "/mnt2"));
  }
  // The first mount is unharmed.
  ASSERT_EQ(WriteFile(P("still"), "here"), 0);
  EXPECT_EQ(Contents(P("still")), "here");

  // A mountpoint whose kvfs-fuse died without unmounting.
  int status = 0;
  ASSERT_OK(fuse_->SignalAndWait(SIGKILL, &status));
  EXPECT_EQ(RunProgram({bin, "--db", db(), mnt()}, &out), 1);
  EXPECT_EQ(out, "kvfs-fuse: mountpoint " + mnt() +
                     " is a FUSE mount whose server is gone: unmount it first (fusermount3 -u " +
                     mnt() + ")\n");
  ASSERT_EQ(umount2(mnt().c_str(), MNT_DETACH), 0);
}

// ---- The store's other users --------------------------------------------------------

// kvfs-ingest, kvfs-evict reach the mounted store over its control socket; the
// kernel is told at once, even with hour-long cache timeouts.
TEST_F(FuseMountTest, TreesIngestedOrEvictedBehindTheKernelAreSeenAtOnce) {
  ASSERT_NO_FATAL_FAILURE(
      Mount({"-o", "entry_timeout=3600,attr_timeout=3600,negative_timeout=0,kernel_cache"}));
  const std::string v1 = dir_.path() + "/v1.tar", v2 = dir_.path() + "/v2.tar";
  WriteTarball(v1, {File("proj/README", "version 1\n"), File("proj/data", RandomBytes(9000, 7))});
  WriteTarball(v2, {File("proj/README", "version two\n")});
  std::string out;
  const std::string ingest = std::string(KVFS_INGEST_BIN) + " --db " + db() + " ";
  ASSERT_EQ(ingest_test::RunCommand(ingest + "--name proj " + v1, &out), 0) << out;
  EXPECT_EQ(List(mnt()), (std::vector<std::string>{".", "..", "proj"}));
  EXPECT_EQ(Contents(P("proj/README")), "version 1\n");
  struct stat before;
  ASSERT_EQ(stat(P("proj/README").c_str(), &before), 0);
  EXPECT_EQ(before.st_size, 10);

  ASSERT_EQ(ingest_test::RunCommand(ingest + "--replace --name proj " + v2, &out), 0) << out;
  struct stat after;
  ASSERT_EQ(stat(P("proj/README").c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_size, 12);
  EXPECT_EQ(Contents(P("proj/README")), "version two\n");
  EXPECT_EQ(Errno(access(P("proj/data").c_str(), F_OK)), ENOENT);

  ASSERT_EQ(ingest_test::RunCommand(std::string(KVFS_EVICT_BIN) + " --db " + db() + " proj", &out),
            0)
      << out;
  struct stat st;
  EXPECT_EQ(Errno(stat(P("proj").c_str(), &st)), ENOENT);
  EXPECT_EQ(List(mnt()), (std::vector<std::string>{".", ".."}));
}

// With a persistent store: tarballs are top-level directories loaded on first
// touch; what the kernel holds pins nothing, open files do. On each store
// plugin: a directory and a bucket on radosgw.
class FuseStoreTest : public FuseMountTest,
                      public ::testing::WithParamInterface<store_test::StoreKind> {
 protected:
  void SetUp() override {
    FuseMountTest::SetUp();
    Status s = store_test::TestStore::Create(GetParam(), &t_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // Writes a tarball of `members` into the store as `name`.
  void PutTarball(const std::string& name, const std::vector<ingest_test::Spec>& members) {
    const std::string local = t_->scratch() + "/" + name;
    WriteTarball(local, members);
    Status s = t_->PutFile(name, local);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // --store URL and its settings, as kvfs-fuse arguments.
  std::vector<std::string> StoreArgs() const {
    std::vector<std::string> args;
    std::istringstream words(t_->CommandOptions());
    for (std::string w; words >> w;) args.push_back(w);
    return args;
  }
  std::unique_ptr<store_test::TestStore> t_;
};

TEST_P(FuseStoreTest, TheCacheManagersTreesLoadAndEvictUnderTheMount) {
  const std::string data = RandomBytes(200000, 8);
  ASSERT_NO_FATAL_FAILURE(
      PutTarball("alpha.tar", {File("alpha/a/file", data), File("alpha/b", "bee")}));
  ASSERT_NO_FATAL_FAILURE(PutTarball("beta.tar", {File("beta/x", "ex")}));
  std::vector<std::string> args = StoreArgs();
  for (const char* a : {"--cache-refresh-seconds", "0", "--cache-writeback-delay-seconds", "0",
                        "-o", "entry_timeout=3600,attr_timeout=3600"}) {
    args.push_back(a);
  }
  ASSERT_NO_FATAL_FAILURE(Mount(args));
  EXPECT_EQ(List(mnt()), (std::vector<std::string>{".", "..", "alpha", "beta"}));
  auto cache = [&](const std::string& args, std::string* out) {
    return ingest_test::RunCommand(Tool() + " cache --db " + db() + " " + args, out);
  };
  std::string out;
  ASSERT_EQ(cache("list", &out), 0) << out;
  EXPECT_NE(out.find("unloaded"), std::string::npos) << out;

  EXPECT_EQ(Contents(P("alpha/a/file")), data);
  struct stat loaded;
  ASSERT_EQ(stat(P("alpha/a/file").c_str(), &loaded), 0);
  // Walked, closed: the kernel still caches the inodes, which pin nothing.
  ASSERT_EQ(cache("drop alpha", &out), 0) << out;
  // An open file does.
  int fd = open(P("alpha/b").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_NE(cache("drop alpha", &out), 0) << out;
  EXPECT_NE(out.find("Device or resource busy"), std::string::npos) << out;
  char c;
  ASSERT_EQ(pread(fd, &c, 1, 0), 1);
  ASSERT_EQ(close(fd), 0);
  ASSERT_EQ(cache("drop alpha", &out), 0) << out;
  // The same names (the kernel's cached entries) load the tree again, with
  // the same inode numbers (the same tarball).
  EXPECT_EQ(Contents(P("alpha/a/file")), data);
  struct stat reloaded;
  ASSERT_EQ(stat(P("alpha/a/file").c_str(), &reloaded), 0);
  EXPECT_EQ(reloaded.st_ino, loaded.st_ino);

  // A new tree written through the mount goes back to the store.
  ASSERT_EQ(mkdir(P("gamma").c_str(), 0755), 0);
  ASSERT_EQ(WriteFile(P("gamma/new"), "written through FUSE"), 0);
  ASSERT_EQ(cache("flush gamma", &out), 0) << out;
  EXPECT_TRUE(t_->Exists("gamma.tar")) << out;
  // The top level is the store's namespace.
  EXPECT_EQ(WriteFile(P("toplevel-file"), "no"), -EPERM);
  ASSERT_NO_FATAL_FAILURE(Unmount());
}

INSTANTIATE_TEST_SUITE_P(Plugins, FuseStoreTest,
                         ::testing::ValuesIn(store_test::PluginStoreKinds()),
                         store_test::StoreKindName());

TEST_F(FuseMountTest, ASubtreeIsTheMountsRoot) {
  ASSERT_NO_FATAL_FAILURE(Mount({"--subtree", "/exports/a"}));
  struct stat st;
  ASSERT_EQ(stat(mnt().c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, 1u);
  ASSERT_EQ(mkdir(P("inside").c_str(), 0755), 0);
  ASSERT_EQ(WriteFile(P("inside/f"), "deep"), 0);
  EXPECT_EQ(List(mnt()), (std::vector<std::string>{".", "..", "inside"}));
  ASSERT_NO_FATAL_FAILURE(Unmount());
  std::unique_ptr<FileSystem> fs = OpenStore();
  Attributes a;
  ASSERT_OK(ResolvePath(fs.get(), "/exports/a/inside/f", &a));
  std::string data;
  ASSERT_OK(kvfs::testing::ReadAll(fs.get(), a.ino, &data));
  EXPECT_EQ(data, "deep");
}

// ---- Lookup counts, in process ------------------------------------------------------

// The kernel's lookups (entries, creates, readdirplus) and forgets balance in
// the inode table: once the kernel drops the inodes, nothing is left.
TEST(FuseLookupCounts, ForgetsDropEveryInode) {
  TempDir dir("kvfs-fuse-counts");
  const std::string mnt = dir.path() + "/mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(OpenRocksFileSystem(dir.path() + "/db", &fs));
  std::mutex log_mu;
  std::vector<std::string> log;
  fusefs::FuseOperationsOptions oo;
  oo.settings.readdirplus = fusefs::ReaddirPlus::kYes;
  oo.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> l(log_mu);
    log.push_back(line);
  };
  InProcessMount mount(fs.get(), oo, mnt);
  ASSERT_OK(mount.Start());
  const fusefs::FuseOperations& ops = mount.ops();

  ASSERT_EQ(mkdir((mnt + "/d").c_str(), 0755), 0);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(WriteFile(mnt + "/d/f" + std::to_string(i), "x"), 0);
  }
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> names = List(mnt + "/d");  // readdirplus
    ASSERT_EQ(names.size(), 302u);
    struct stat st;
    for (int i = 0; i < 300; i += 7) {
      ASSERT_EQ(stat((mnt + "/d/f" + std::to_string(i)).c_str(), &st), 0);
    }
  }
  EXPECT_GE(ops.inodes().size(), 301u);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(unlink((mnt + "/d/f" + std::to_string(i)).c_str()), 0);
  ASSERT_EQ(rmdir((mnt + "/d").c_str()), 0);
  // The kernel sends its forgets on its own schedule: wait for them.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ops.inodes().size() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(ops.inodes().size(), 0u);
  ASSERT_OK(mount.Stop());
  std::lock_guard<std::mutex> l(log_mu);
  EXPECT_EQ(log, std::vector<std::string>{});
}

}  // namespace
}  // namespace kvfs::fuse_test
