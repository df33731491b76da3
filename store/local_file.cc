#include "store/local_file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/unique_fd.h"

namespace kvfs::store {
namespace {

// Direct reads fetch this much at a time, at offsets and into a buffer
// aligned to kAlignment.
constexpr size_t kChunk = 4 << 20;
constexpr size_t kAlignment = 4096;

struct FreeChunk {
  void operator()(char* p) const { std::free(p); }
};
using Chunk = std::unique_ptr<char, FreeChunk>;

class FileReader final : public ObjectReader {
 public:
  // `chunk`: kChunk aligned bytes if `fd` was opened with O_DIRECT, else null.
  FileReader(UniqueFd fd, uint64_t size, std::string path, Chunk chunk)
      : fd_(std::move(fd)), size_(size), path_(std::move(path)), chunk_(std::move(chunk)) {}

  Status Read(char* buf, size_t n, size_t* got) override {
    if (chunk_ && pos_ == end_) KVFS_RETURN_IF_ERROR(FillChunk());
    if (!chunk_) {
      const ssize_t r = ReadOnce(buf, n);
      if (r < 0) return Status::FromErrno(errno, "read " + path_);
      *got = static_cast<size_t>(r);
      return Status::OK();
    }
    *got = std::min(n, end_ - pos_);
    std::memcpy(buf, chunk_.get() + pos_, *got);
    pos_ += *got;
    return Status::OK();
  }

  uint64_t size() const override { return size_; }

 private:
  // Reads the next chunk directly. If direct I/O is refused (EINVAL: by the
  // file system, or at an unaligned offset after a short read) the reading
  // goes on buffered from the same offset, without the chunk.
  Status FillChunk() {
    const ssize_t r = ReadOnce(chunk_.get(), kChunk);
    if (r < 0 && errno == EINVAL) {
      const int flags = ::fcntl(fd_.get(), F_GETFL);
      if (flags < 0 || ::fcntl(fd_.get(), F_SETFL, flags & ~O_DIRECT) != 0) {
        return Status::FromErrno(errno, "fcntl " + path_);
      }
      chunk_.reset();
      return Status::OK();
    }
    if (r < 0) return Status::FromErrno(errno, "read " + path_);
    pos_ = 0;
    end_ = static_cast<size_t>(r);
    return Status::OK();
  }

  // read(2), retried on EINTR.
  ssize_t ReadOnce(char* buf, size_t n) {
    for (;;) {
      const ssize_t r = ::read(fd_.get(), buf, n);
      if (r >= 0 || errno != EINTR) return r;
    }
  }

  UniqueFd fd_;
  const uint64_t size_;
  const std::string path_;
  Chunk chunk_;     // null while reading buffered
  size_t pos_ = 0;  // chunk_[pos_, end_) is still to be returned
  size_t end_ = 0;
};

}  // namespace

bool OnLocalDisk(int fd) {
  struct statfs st;
  if (::fstatfs(fd, &st) != 0) return false;
  switch (st.f_type) {
    case EXT4_SUPER_MAGIC:  // ext2, ext3 and ext4 alike
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
      return true;
    default:
      return false;
  }
}

Status OpenLocalFile(const std::string& path, std::unique_ptr<ObjectReader>* out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, "open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  Chunk chunk;
  if (static_cast<uint64_t>(st.st_size) >= kDirectReadMinBytes && OnLocalDisk(fd.get())) {
    chunk.reset(static_cast<char*>(std::aligned_alloc(kAlignment, kChunk)));
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (!chunk || flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_DIRECT) != 0) chunk.reset();
  }
  if (!chunk) ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  *out = std::make_unique<FileReader>(std::move(fd), static_cast<uint64_t>(st.st_size), path,
                                      std::move(chunk));
  return Status::OK();
}

}  // namespace kvfs::store
