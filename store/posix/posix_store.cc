// The "posix" persistent store plugin (libkvfs-store-posix.so): tarballs as
// the regular files of a local or NAS-mounted directory.
//
// Objects are the regular files directly in the directory, which must
// exist. Writes go to a temporary file under DIR/.kvfs/tmp, are fsynced and
// renamed into place (then the directory is fsynced). Range claims are
// files DIR/.kvfs/ranges/<R> created with O_CREAT|O_EXCL, which is atomic on
// local file systems and on NFSv3/v4 (exclusive create), so concurrent
// writers on several machines get different ranges; name claims are files
// DIR/.kvfs/names/<NAME>, made the same way. No settings.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>

#include "common/plugin/plugin_options.h"
#include "common/unique_fd.h"
#include "store/local_file.h"
#include "store/persistent_store.h"
#include "store/store_plugin.h"

namespace kvfs::store {
namespace {

constexpr std::string_view kMetaDir = ".kvfs";

Status Errno(std::string_view what, const std::string& path) {
  return Status::FromErrno(errno, std::string(what) + " " + path);
}

// Writes all of *data to fd; on an error *data is what was not written.
Status WriteAll(int fd, std::string_view* data, const std::string& path) {
  while (!data->empty()) {
    ssize_t n = ::write(fd, data->data(), data->size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write", path);
    data->remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  return WriteAll(fd, &data, path);
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

class FileWriter final : public ObjectWriter {
 public:
  FileWriter(UniqueFd fd, std::string tmp_path, std::string final_path, std::string dir)
      : fd_(std::move(fd)),
        tmp_path_(std::move(tmp_path)),
        final_path_(std::move(final_path)),
        dir_(std::move(dir)),
        direct_(OnLocalDisk(fd_.get()) ? Direct::kAllowed : Direct::kOff) {}

  ~FileWriter() override {
    if (!committed_) {
      fd_.Reset();
      ::unlink(tmp_path_.c_str());
    }
  }

  Status Append(std::string_view data) override {
    if (committed_) return Status::InvalidArgument("object already committed");
    const size_t bytes = data.size();
    // The whole blocks at the start go direct if they may; what direct I/O
    // refuses and the rest go buffered, and from then on everything does.
    std::string_view direct;
    if (direct_ != Direct::kOff && DirectIoCanStartAt(data.data())) {
      direct = data.substr(0, data.size() / kDirectIoAlignment * kDirectIoAlignment);
    }
    data.remove_prefix(direct.size());
    KVFS_RETURN_IF_ERROR(WriteDirect(&direct));
    if (!direct.empty() || !data.empty()) {
      KVFS_RETURN_IF_ERROR(StopDirect());
      KVFS_RETURN_IF_ERROR(WriteAll(fd_.get(), direct, tmp_path_));
      KVFS_RETURN_IF_ERROR(WriteAll(fd_.get(), data, tmp_path_));
    }
    size_ += bytes;
    // Start the write-back of every full stretch now, so that it proceeds
    // while the writer produces the rest, and Commit's fsync waits only for
    // the tail (the kernel would otherwise keep a whole tarball dirty until
    // then on a machine with memory to spare).
    if (size_ - written_back_ >= kWriteBackBytes) {
      if (::sync_file_range(fd_.get(), static_cast<off_t>(written_back_),
                            static_cast<off_t>(size_ - written_back_),
                            SYNC_FILE_RANGE_WRITE) != 0) {
        return Errno("sync_file_range", tmp_path_);
      }
      written_back_ = size_;
    }
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
  // An append's whole 4 KiB blocks, if it starts at a multiple of 4 KiB in
  // memory and in the file (a BackgroundWriter's buffers do), go past the
  // page cache (O_DIRECT) on a local disk: a tarball is written once and
  // rarely read back soon, and the kernel's copy of it into the page cache
  // was the biggest CPU cost of an export (docs/benchmarks.md). The first
  // other bytes (the tail), or a refusal, switch the file to buffered writes
  // for good. Commit's fsync makes both kinds durable.
  enum class Direct { kOff, kAllowed, kOn };
  static constexpr size_t kDirectIoAlignment = 4096;

  bool DirectIoCanStartAt(const char* p) const {
    return reinterpret_cast<uintptr_t>(p) % kDirectIoAlignment == 0 &&
           size_ % kDirectIoAlignment == 0;
  }

  // Writes what direct I/O takes of *data (whole blocks), leaving the rest
  // (all of it if the file system refuses) to buffered writes.
  Status WriteDirect(std::string_view* data) {
    if (data->empty()) return Status::OK();
    if (direct_ == Direct::kAllowed) direct_ = SetDirectIo(true) ? Direct::kOn : Direct::kOff;
    if (direct_ == Direct::kOff) return Status::OK();
    Status s = WriteAll(fd_.get(), data, tmp_path_);
    if (s.posix_errno() == EINVAL) return Status::OK();  // refused: buffered from here
    return s;
  }

  // Buffered writes from here on.
  Status StopDirect() {
    const bool was_on = direct_ == Direct::kOn;
    direct_ = Direct::kOff;
    if (was_on && !SetDirectIo(false)) return Errno("fcntl", tmp_path_);
    return Status::OK();
  }

  // Sets or clears O_DIRECT on the file; false (errno set) if refused.
  bool SetDirectIo(bool on) {
    const int flags = ::fcntl(fd_.get(), F_GETFL);
    return flags >= 0 &&
           ::fcntl(fd_.get(), F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT) == 0;
  }

  UniqueFd fd_;
  const std::string tmp_path_;
  const std::string final_path_;
  const std::string dir_;
  static constexpr uint64_t kWriteBackBytes = 8 << 20;
  Direct direct_;
  uint64_t size_ = 0;
  uint64_t written_back_ = 0;  // write-back started for bytes below this
  bool committed_ = false;
};

class PosixStore final : public PersistentStore {
 public:
  explicit PosixStore(std::string dir) : dir_(std::move(dir)) {}

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

  std::string Describe() const override { return dir_; }

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

Status OpenPosixStore(const StoreLocation& location, const StoreSpec& spec,
                      std::unique_ptr<PersistentStore>* out) {
  KVFS_RETURN_IF_ERROR(PluginOptionReader("persistent store posix", spec.options).Finish());
  const std::string& dir = location.resource;
  if (dir.empty()) return Status::InvalidArgument("persistent store: empty directory name");
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  auto store = std::make_unique<PosixStore>(d);
  KVFS_RETURN_IF_ERROR(store->Init());
  *out = std::move(store);
  return Status::OK();
}

}  // namespace
}  // namespace kvfs::store

KVFS_DEFINE_STORE_PLUGIN("posix", ::kvfs::store::OpenPosixStore)
