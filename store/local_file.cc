#include "store/local_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/unique_fd.h"

namespace kvfs::store {
namespace {

class FileReader final : public ObjectReader {
 public:
  FileReader(UniqueFd fd, uint64_t size, std::string path)
      : fd_(std::move(fd)), size_(size), path_(std::move(path)) {}

  Status Read(char* buf, size_t n, size_t* got) override {
    for (;;) {
      ssize_t r = ::read(fd_.get(), buf, n);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Status::FromErrno(errno, "read " + path_);
      *got = static_cast<size_t>(r);
      return Status::OK();
    }
  }

  uint64_t size() const override { return size_; }

 private:
  UniqueFd fd_;
  const uint64_t size_;
  const std::string path_;
};

}  // namespace

Status OpenLocalFile(const std::string& path, std::unique_ptr<ObjectReader>* out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, "open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  *out = std::make_unique<FileReader>(std::move(fd), static_cast<uint64_t>(st.st_size), path);
  return Status::OK();
}

}  // namespace kvfs::store
