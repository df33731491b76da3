// OpenLocalFile (store/local_file.h): every byte comes back in order, whatever
// the sizes asked for, also from a file whose pages are still dirty; a big file
// on a local disk is read past the page cache (direct I/O), a small one and
// any file on tmpfs through it.
#include "store/local_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include "common/unique_fd.h"
#include "tests/status_assertions.h"
#include "tests/store/direct_io.h"

namespace kvfs::store {
namespace {

using kvfs::testing::CachedBytes;
using kvfs::testing::DirectIoDir;
using kvfs::testing::MakeDirectIoDirs;

std::string RandomBytes(size_t n, uint64_t seed) {
  std::string data(n, '\0');
  std::mt19937_64 random(seed);
  for (char& ch : data) ch = static_cast<char>(random());
  return data;
}

void WriteFile(const std::string& path, const std::string& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid()) << path;
  ASSERT_EQ(::write(fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
}

// Syncs `path` and drops its pages from the page cache.
void Evict(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << path;
  ASSERT_EQ(::fsync(fd.get()), 0);
  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
}

// Reads all of `path` with OpenLocalFile, asking for sizes that cycle
// through odd ones, aligned ones and more than a direct chunk.
std::string ReadAll(const std::string& path) {
  std::unique_ptr<ObjectReader> in;
  EXPECT_OK(OpenLocalFile(path, &in));
  if (!in) return "";
  const size_t sizes[] = {1 << 20, 4097, 1, 65536, 5 << 20, 12345};
  std::string out, buf(5 << 20, '\0');
  for (size_t i = 0;; ++i) {
    size_t got = 0;
    EXPECT_OK(in->Read(buf.data(), sizes[i % std::size(sizes)], &got));
    if (got == 0) break;
    out.append(buf.data(), got);
  }
  EXPECT_EQ(in->size(), out.size());
  return out;
}

TEST(LocalFileTest, ReadsEveryByteAndBigFilesOnALocalDiskPastThePageCache) {
  const std::string big = RandomBytes(kDirectReadMinBytes + (1 << 20) + 12345, 1);
  const std::string small = RandomBytes(kDirectReadMinBytes / 2 + 7, 2);
  const std::vector<DirectIoDir> dirs = MakeDirectIoDirs("local_file_test");
  ASSERT_FALSE(::testing::Test::HasFailure());
  for (const DirectIoDir& c : dirs) {
    SCOPED_TRACE(c.path.string());
    const std::string big_path = (c.path / "big").string();
    const std::string small_path = (c.path / "small").string();
    WriteFile(big_path, big);
    WriteFile(small_path, small);
    // Written, not synced: a direct read still sees the dirty pages' bytes.
    EXPECT_TRUE(ReadAll(big_path) == big);
    EXPECT_TRUE(ReadAll(small_path) == small);

    Evict(big_path);
    Evict(small_path);
    if (c.local_disk) {
      ASSERT_EQ(CachedBytes(big_path, big.size()), 0u);
    }
    EXPECT_TRUE(ReadAll(big_path) == big);
    EXPECT_TRUE(ReadAll(small_path) == small);
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t big_pages = (big.size() + page - 1) / page;
    const size_t small_pages = (small.size() + page - 1) / page;
    EXPECT_EQ(CachedBytes(big_path, big.size()), c.local_disk ? 0 : big_pages * page);
    EXPECT_EQ(CachedBytes(small_path, small.size()), small_pages * page);
    std::filesystem::remove_all(c.path);
  }
}

// A file that is not there, or not a regular file, is refused.
TEST(LocalFileTest, RefusesWhatIsNotARegularFile) {
  std::unique_ptr<ObjectReader> in;
  EXPECT_EQ(OpenLocalFile("/nonexistent/kvfs-local-file", &in).posix_errno(), ENOENT);
  EXPECT_EQ(OpenLocalFile("/dev/shm", &in).posix_errno(), EINVAL);
}

}  // namespace
}  // namespace kvfs::store
