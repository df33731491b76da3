// kill -9 of kvfs-fuse during an untar of Debian's Linux source tree through
// the mount: afterwards the store is consistent (kvfs fsck) and, mounted
// again, holds every file the untar had closed or fsync'ed before the kill,
// byte for byte, and every directory and link it had made. (ctest runs this
// in private namespaces: it mounts.)
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "tests/fs/test_util.h"
#include "tests/fuse/fuse_test_util.h"
#include "tests/ingest/ingest_test_util.h"

namespace kvfs::fuse_test {
namespace {

using ingest_test::kLinuxSourceTarball;

using kvfs::testing::TempDir;

// Files the untar has finished when kvfs-fuse is killed.
constexpr int kKillAfterFiles = 4000;

// What the untar made, as acknowledged by the mount (paths relative to it).
struct Made {
  std::map<std::string, std::string> files;     // path -> contents
  std::map<std::string, std::string> symlinks;  // path -> target
  std::map<std::string, std::string> links;     // hard link path -> its target's path
  std::vector<std::string> dirs;
};

// Extracts the tarball into directory `root` until a call fails (the server
// is gone). Every call is relative to a descriptor of `root` taken at the
// start, so once the mount is detached nothing lands in the directory below.
// Every other regular file is fsync'ed before its close. Records what each
// completed call acknowledged, and notifies `cv` after each file.
class Untar {
 public:
  explicit Untar(const std::string& root) : root_fd_(open(root.c_str(), O_RDONLY | O_DIRECTORY)) {}
  ~Untar() { close(root_fd_); }

  void Run() {
    archive* a = archive_read_new();
    archive_read_support_format_all(a);
    archive_read_support_filter_all(a);
    if (archive_read_open_filename(a, kLinuxSourceTarball, 1 << 20) != ARCHIVE_OK) {
      Finish("cannot open " + std::string(kLinuxSourceTarball));
      archive_read_free(a);
      return;
    }
    archive_entry* e;
    std::string failure;
    while (failure.empty() && archive_read_next_header(a, &e) == ARCHIVE_OK) {
      const std::string path = archive_entry_pathname(e);
      const mode_t mode = archive_entry_perm(e);
      if (archive_entry_hardlink(e) != nullptr) {
        const std::string target = archive_entry_hardlink(e);
        if (linkat(root_fd_, target.c_str(), root_fd_, path.c_str(), 0) != 0) {
          failure = "link " + path + ": " + strerror(errno);
        } else {
          Record([&](Made& m) { m.links[path] = target; });
        }
        continue;
      }
      switch (archive_entry_filetype(e)) {
        case AE_IFDIR:
          if (mkdirat(root_fd_, path.c_str(), mode | 0700) != 0 && errno != EEXIST) {
            failure = "mkdir " + path + ": " + strerror(errno);
          } else {
            Record([&](Made& m) { m.dirs.push_back(path); });
          }
          break;
        case AE_IFLNK:
          if (symlinkat(archive_entry_symlink(e), root_fd_, path.c_str()) != 0) {
            failure = "symlink " + path + ": " + strerror(errno);
          } else {
            Record([&](Made& m) { m.symlinks[path] = archive_entry_symlink(e); });
          }
          break;
        case AE_IFREG:
          failure = ExtractFile(a, path, mode);
          break;
        default:
          break;
      }
    }
    archive_read_free(a);
    Finish(failure);
  }

  // Waits until `n` files are done (or the untar ended).
  void WaitForFiles(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return done_ || made_.files.size() >= n; });
  }

  Made made() {
    std::lock_guard<std::mutex> l(mu_);
    return made_;
  }
  std::string failure() {
    std::lock_guard<std::mutex> l(mu_);
    return failure_;
  }
  bool ended_early() {
    std::lock_guard<std::mutex> l(mu_);
    return done_ && failure_.empty();
  }

 private:
  std::string ExtractFile(archive* a, const std::string& path, mode_t mode) {
    std::string data;
    const void* buf;
    size_t size;
    la_int64_t offset;
    while (archive_read_data_block(a, &buf, &size, &offset) == ARCHIVE_OK) {
      data.append(static_cast<const char*>(buf), size);
    }
    int fd = openat(root_fd_, path.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) return "create " + path + ": " + strerror(errno);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = write(fd, data.data() + done, data.size() - done);
      if (n <= 0) {
        close(fd);
        return "write " + path + ": " + strerror(errno);
      }
      done += static_cast<size_t>(n);
    }
    if (++count_ % 2 == 0 && fsync(fd) != 0) {
      close(fd);
      return "fsync " + path + ": " + strerror(errno);
    }
    if (close(fd) != 0) return "close " + path + ": " + strerror(errno);
    Record([&](Made& m) { m.files[path] = std::move(data); });
    return "";
  }

  template <typename F>
  void Record(F&& f) {
    {
      std::lock_guard<std::mutex> l(mu_);
      f(made_);
    }
    cv_.notify_all();
  }

  void Finish(const std::string& failure) {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
      failure_ = failure;
    }
    cv_.notify_all();
  }

  const int root_fd_;
  uint64_t count_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  Made made_;  // guarded by mu_
  bool done_ = false;
  std::string failure_;
};

TEST(FuseCrash, Kill9DuringAnUntarLosesNothingAcknowledged) {
  ASSERT_TRUE(std::filesystem::exists(kLinuxSourceTarball))
      << kLinuxSourceTarball << " is missing: run ci/install-deps.sh (package linux-source-6.1)";
  TempDir dir("kvfs-fuse-crash");
  const std::string db = dir.path() + "/db", mnt = dir.path() + "/mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  Made made;
  {
    KvfsFuse fuse({"--db", db}, mnt);
    ASSERT_OK(fuse.Start());
    Untar untar(mnt);
    std::thread writer([&] { untar.Run(); });
    untar.WaitForFiles(kKillAfterFiles);
    EXPECT_FALSE(untar.ended_early()) << untar.failure();
    ASSERT_OK(fuse.Kill9());
    writer.join();
    // The untar stopped at the kill: its last call failed.
    EXPECT_NE(untar.failure(), "");
    made = untar.made();
  }
  EXPECT_GE(made.files.size(), static_cast<size_t>(kKillAfterFiles));

  // Consistent as it is, before anything opens it for writing.
  std::string out;
  EXPECT_EQ(ingest_test::RunCommand(std::string(KVFS_TOOL_BIN) + " fsck --db " + db, &out), 0)
      << out;
  EXPECT_NE(out.find("consistent"), std::string::npos) << out;

  KvfsFuse fuse({"--db", db}, mnt);
  ASSERT_OK(fuse.Start());
  int wrong = 0;
  auto at = [&](const std::string& rel) { return mnt + "/" + rel; };
  for (const auto& [path, data] : made.files) {
    std::string back;
    std::ifstream in(at(path), std::ios::binary);
    back.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) back = "<unreadable>";
    if (back != data && ++wrong <= 10) {
      ADD_FAILURE() << path << ": " << back.size() << " bytes back, " << data.size() << " written";
    }
  }
  EXPECT_EQ(wrong, 0);
  for (const std::string& d : made.dirs) {
    struct stat st;
    EXPECT_TRUE(stat(at(d).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) << d;
  }
  for (const auto& [path, target] : made.symlinks) {
    char buf[4096];
    ssize_t n = readlink(at(path).c_str(), buf, sizeof(buf));
    EXPECT_EQ(n >= 0 ? std::string(buf, static_cast<size_t>(n)) : "<missing>", target) << path;
  }
  for (const auto& [path, target] : made.links) {
    struct stat a, b;
    EXPECT_TRUE(stat(at(path).c_str(), &a) == 0 && stat(at(target).c_str(), &b) == 0 &&
                a.st_ino == b.st_ino)
        << path;
  }
  ASSERT_OK(fuse.Stop());
  EXPECT_EQ(ingest_test::RunCommand(std::string(KVFS_TOOL_BIN) + " fsck --db " + db, &out), 0)
      << out;
}

}  // namespace
}  // namespace kvfs::fuse_test
