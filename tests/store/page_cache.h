// How much of a file is in the page cache, for tests of direct I/O.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/unique_fd.h"

namespace kvfs::testing {

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
