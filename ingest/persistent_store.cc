#include "ingest/persistent_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <random>

#include "ingest/unique_fd.h"

namespace kvfs::ingest {

namespace {

constexpr std::string_view kMetaDir = ".kvfs";
constexpr size_t kMaxObjectName = 255;

Status Errno(std::string_view what, const std::string& path) {
  return Status::FromErrno(errno, std::string(what) + " " + path);
}

// Writes all of data to fd.
Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status FsyncPath(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Errno("open", path);
  if (::fsync(fd.get()) != 0) return Errno("fsync", path);
  return Status::OK();
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir", path);
  return Status::OK();
}

class FileReader final : public ObjectReader {
 public:
  FileReader(UniqueFd fd, uint64_t size, std::string path)
      : fd_(std::move(fd)), size_(size), path_(std::move(path)) {}

  Status Read(char* buf, size_t n, size_t* got) override {
    for (;;) {
      ssize_t r = ::read(fd_.get(), buf, n);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Errno("read", path_);
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

class FileWriter final : public ObjectWriter {
 public:
  FileWriter(UniqueFd fd, std::string tmp_path, std::string final_path, std::string dir)
      : fd_(std::move(fd)),
        tmp_path_(std::move(tmp_path)),
        final_path_(std::move(final_path)),
        dir_(std::move(dir)) {}

  ~FileWriter() override {
    if (!committed_) {
      fd_.Reset();
      ::unlink(tmp_path_.c_str());
    }
  }

  Status Append(std::string_view data) override {
    if (committed_) return Status::InvalidArgument("object already committed");
    KVFS_RETURN_IF_ERROR(WriteAll(fd_.get(), data, tmp_path_));
    size_ += data.size();
    return Status::OK();
  }

  Status Commit() override {
    if (committed_) return Status::InvalidArgument("object already committed");
    if (::fsync(fd_.get()) != 0) return Errno("fsync", tmp_path_);
    if (::close(fd_.Release()) != 0) return Errno("close", tmp_path_);
    if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) return Errno("rename", tmp_path_);
    committed_ = true;
    return FsyncPath(dir_);
  }

  uint64_t size() const override { return size_; }

 private:
  UniqueFd fd_;
  const std::string tmp_path_;
  const std::string final_path_;
  const std::string dir_;
  uint64_t size_ = 0;
  bool committed_ = false;
};

class LocalStore final : public PersistentStore {
 public:
  explicit LocalStore(std::string dir) : dir_(std::move(dir)) {}

  Status Init() {
    struct stat st;
    if (::stat(dir_.c_str(), &st) != 0) return Errno("persistent store", dir_);
    if (!S_ISDIR(st.st_mode)) {
      return Status::FromErrno(ENOTDIR, "persistent store " + dir_ + " is not a directory");
    }
    KVFS_RETURN_IF_ERROR(MakeDir(MetaPath("")));
    KVFS_RETURN_IF_ERROR(MakeDir(MetaPath("tmp")));
    KVFS_RETURN_IF_ERROR(MakeDir(MetaPath("names")));
    return MakeDir(MetaPath("ranges"));
  }

  Status List(std::vector<ObjectInfo>* out) override {
    out->clear();
    DIR* d = ::opendir(dir_.c_str());
    if (d == nullptr) return Errno("opendir", dir_);
    errno = 0;
    Status s;
    while (struct dirent* de = ::readdir(d)) {
      std::string_view name = de->d_name;
      if (!CheckObjectName(name).ok()) continue;
      ObjectInfo info;
      Status st = Stat(std::string(name), &info);
      if (st.IsNotFound() || st.posix_errno() == EISDIR) {
        errno = 0;
        continue;  // deleted meanwhile, or not an object
      }
      if (!st.ok()) {
        s = st;
        break;
      }
      out->push_back(std::move(info));
      errno = 0;
    }
    if (s.ok() && errno != 0) s = Errno("readdir", dir_);
    ::closedir(d);
    std::sort(out->begin(), out->end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
    return s;
  }

  Status Stat(const std::string& name, ObjectInfo* out) override {
    KVFS_RETURN_IF_ERROR(CheckObjectName(name));
    const std::string path = ObjectPath(name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Errno("stat", path);
    if (!S_ISREG(st.st_mode)) return Status::FromErrno(EISDIR, path + " is not a regular file");
    out->name = name;
    out->size = static_cast<uint64_t>(st.st_size);
    out->mtime_sec = st.st_mtim.tv_sec;
    out->mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
    const uint64_t fields[4] = {static_cast<uint64_t>(st.st_ino), out->size,
                                static_cast<uint64_t>(st.st_mtim.tv_sec),
                                static_cast<uint64_t>(st.st_mtim.tv_nsec)};
    out->version = XXH3_64bits(fields, sizeof(fields));
    return Status::OK();
  }

  Status OpenRead(const std::string& name, std::unique_ptr<ObjectReader>* out) override {
    KVFS_RETURN_IF_ERROR(CheckObjectName(name));
    return OpenLocalFile(ObjectPath(name), out);
  }

  Status OpenWrite(const std::string& name, std::unique_ptr<ObjectWriter>* out) override {
    KVFS_RETURN_IF_ERROR(CheckObjectName(name));
    std::string tmp = MetaPath("tmp/" + name + ".XXXXXX");
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) return Errno("create", tmp);
    if (::fchmod(fd.get(), 0644) != 0) {
      Status s = Errno("chmod", tmp);
      ::unlink(tmp.c_str());
      return s;
    }
    *out = std::make_unique<FileWriter>(std::move(fd), tmp, ObjectPath(name), dir_);
    return Status::OK();
  }

  Status Delete(const std::string& name) override {
    KVFS_RETURN_IF_ERROR(CheckObjectName(name));
    const std::string path = ObjectPath(name);
    if (::unlink(path.c_str()) != 0) return Errno("delete", path);
    return FsyncPath(dir_);
  }

  Status ClaimRange(uint64_t range, std::string_view owner) override {
    return CreateClaim(ClaimPath(range), "inode range " + std::to_string(range), owner);
  }

  Status HighestClaimedRange(uint64_t* range) override {
    *range = 0;
    const std::string dir = MetaPath("ranges");
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return Errno("opendir", dir);
    errno = 0;
    while (struct dirent* de = ::readdir(d)) {
      std::string_view name = de->d_name;
      uint64_t r = 0;
      auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), r);
      if (ec == std::errc() && end == name.data() + name.size()) *range = std::max(*range, r);
      errno = 0;
    }
    Status s = errno != 0 ? Errno("readdir", dir) : Status::OK();
    ::closedir(d);
    return s;
  }

  Status ClaimName(const std::string& name, std::string_view owner) override {
    KVFS_RETURN_IF_ERROR(CheckObjectName(name));
    return CreateClaim(MetaPath("names/" + name), "name '" + name + "'", owner);
  }

  Status ReleaseName(const std::string& name) override {
    KVFS_RETURN_IF_ERROR(CheckObjectName(name));
    const std::string path = MetaPath("names/" + name);
    if (::unlink(path.c_str()) != 0) return Errno("release claim", path);
    return FsyncPath(MetaPath("names"));
  }

  Status IsNameClaimed(const std::string& name, bool* claimed) override {
    KVFS_RETURN_IF_ERROR(CheckObjectName(name));
    const std::string path = MetaPath("names/" + name);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      *claimed = true;
      return Status::OK();
    }
    if (errno != ENOENT) return Errno("stat", path);
    *claimed = false;
    return Status::OK();
  }

  std::string Describe() const override { return "dir:" + dir_; }

 private:
  // Creates claim file `path` exclusively (EEXIST naming `what` if it
  // exists) with `owner` in it, durably.
  Status CreateClaim(const std::string& path, const std::string& what, std::string_view owner) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) {
      if (errno == EEXIST) return Status::Exists(what + " is already claimed in " + Describe());
      return Errno("claim", path);
    }
    // The claim is the file's existence; the contents are for people.
    std::string note(owner);
    note += '\n';
    KVFS_RETURN_IF_ERROR(WriteAll(fd.get(), note, path));
    if (::fsync(fd.get()) != 0) return Errno("fsync", path);
    return FsyncPath(path.substr(0, path.rfind('/')));
  }

  std::string ObjectPath(const std::string& name) const { return dir_ + "/" + name; }
  std::string MetaPath(const std::string& rel) const {
    return dir_ + "/" + std::string(kMetaDir) + (rel.empty() ? "" : "/" + rel);
  }
  // Zero-padded so that a listing sorts numerically.
  std::string ClaimPath(uint64_t range) const {
    char name[32];
    std::snprintf(name, sizeof(name), "%010llu", static_cast<unsigned long long>(range));
    return MetaPath(std::string("ranges/") + name);
  }

  const std::string dir_;
};

}  // namespace

Status OpenLocalStore(const std::string& dir, std::unique_ptr<PersistentStore>* out) {
  if (dir.empty()) return Status::InvalidArgument("persistent store: empty directory name");
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  auto store = std::make_unique<LocalStore>(d);
  KVFS_RETURN_IF_ERROR(store->Init());
  *out = std::move(store);
  return Status::OK();
}

Status OpenLocalFile(const std::string& path, std::unique_ptr<ObjectReader>* out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Errno("open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno("stat", path);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  *out = std::make_unique<FileReader>(std::move(fd), static_cast<uint64_t>(st.st_size), path);
  return Status::OK();
}

namespace {
struct SuffixInfo {
  std::string_view suffix;
  Compression compression;
};
// Longest first, so ".tar.gz" is not taken for ".gz" of something else.
constexpr SuffixInfo kSuffixes[] = {
    {".tar.zst", Compression::kZstd}, {".tar.gz", Compression::kGzip},
    {".tar.xz", Compression::kXz},    {".tgz", Compression::kGzip},
    {".tar", Compression::kNone},
};
}  // namespace

std::vector<std::string_view> TarballSuffixes() {
  std::vector<std::string_view> v;
  for (const SuffixInfo& s : kSuffixes) v.push_back(s.suffix);
  return v;
}

std::string_view TarballSuffix(Compression c) {
  switch (c) {
    case Compression::kNone:
      return ".tar";
    case Compression::kGzip:
      return ".tar.gz";
    case Compression::kZstd:
      return ".tar.zst";
    case Compression::kXz:
      return ".tar.xz";
  }
  return ".tar";
}

bool ParseCompression(std::string_view s, Compression* c) {
  if (s == "none") {
    *c = Compression::kNone;
  } else if (s == "gzip" || s == "gz") {
    *c = Compression::kGzip;
  } else if (s == "zstd" || s == "zst") {
    *c = Compression::kZstd;
  } else if (s == "xz") {
    *c = Compression::kXz;
  } else {
    return false;
  }
  return true;
}

bool TreeNameOf(std::string_view object, std::string* name, Compression* c) {
  for (const SuffixInfo& s : kSuffixes) {
    if (object.size() > s.suffix.size() && object.ends_with(s.suffix)) {
      name->assign(object.substr(0, object.size() - s.suffix.size()));
      if (c != nullptr) *c = s.compression;
      return true;
    }
  }
  return false;
}

Status CheckObjectName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty object name");
  if (name.size() > kMaxObjectName) {
    return Status::FromErrno(ENAMETOOLONG, "object name longer than 255 bytes");
  }
  if (name.front() == '.') {
    return Status::InvalidArgument("object name '" + std::string(name) + "' starts with '.'");
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("object name contains '/' or NUL");
  }
  return Status::OK();
}

}  // namespace kvfs::ingest
