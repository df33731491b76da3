// For tests of direct I/O: where to run them, and how much of a file is in
// the page cache.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/unique_fd.h"

namespace kvfs::testing {

// A fresh directory on a local disk (under TMPDIR, which must be on ext4, XFS
// or btrfs: direct I/O goes past the page cache there) or on tmpfs (/dev/shm:
// direct I/O is refused, everything is cached).
struct DirectIoDir {
  std::filesystem::path path;
  bool local_disk;
};

// Creates both directories for test `name`, removing old ones, and checks
// their file systems (a failure of the calling test if they are wrong).
inline std::vector<DirectIoDir> MakeDirectIoDirs(const std::string& name) {
  const std::string leaf = name + "." + std::to_string(::getpid());
  const std::vector<DirectIoDir> dirs = {{std::filesystem::temp_directory_path() / leaf, true},
                                         {std::filesystem::path("/dev/shm") / leaf, false}};
  for (const DirectIoDir& d : dirs) {
    std::filesystem::remove_all(d.path);
    std::filesystem::create_directories(d.path);
    struct statfs st;
    EXPECT_EQ(::statfs(d.path.c_str(), &st), 0);
    if (d.local_disk) {
      EXPECT_TRUE(st.f_type == EXT4_SUPER_MAGIC || st.f_type == XFS_SUPER_MAGIC ||
                  st.f_type == BTRFS_SUPER_MAGIC)
          << "this test needs TMPDIR on ext4, XFS or btrfs";
    } else {
      EXPECT_EQ(st.f_type, TMPFS_MAGIC);
    }
  }
  return dirs;
}

// Of the pages holding the first `bytes` of file `path`, the bytes of those in
// the page cache (mincore).
inline size_t CachedBytes(const std::string& path, size_t bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid()) << path;
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd.get(), 0);
  EXPECT_NE(map, MAP_FAILED) << path;
  if (map == MAP_FAILED) return 0;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((bytes + page - 1) / page);
  EXPECT_EQ(::mincore(map, bytes, resident.data()), 0);
  ::munmap(map, bytes);
  size_t cached = 0;
  for (unsigned char r : resident) cached += (r & 1) ? page : 0;
  return cached;
}

}  // namespace kvfs::testing
