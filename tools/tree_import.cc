#include "tools/tree_import.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "common/fs/path.h"

namespace kvfs {

namespace {

// Bytes copied per Read/Write call.
constexpr size_t kChunk = 1 << 20;

// Status for a failed system call on a local path.
Status LocalError(std::string_view what, std::string_view path) {
  return Status::FromErrno(errno, std::string(what) + " " + std::string(path));
}

// Closes a file descriptor on destruction.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Copies [begin, end) of local `fd` to the same offsets of `ino` with
// pread; stops early at the local end of file. *copied grows by the bytes
// copied.
Status CopyRange(FileSystem* fs, int fd, Ino ino, uint64_t begin, uint64_t end, std::string* buf,
                 uint64_t* copied) {
  for (uint64_t off = begin; off < end;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, end - off));
    ssize_t n = pread(fd, buf->data(), want, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read");
    if (n == 0) break;
    Attributes attrs;
    KVFS_RETURN_IF_ERROR(
        fs->Write(ino, off, std::string_view(buf->data(), n), Stability::kUnstable, &attrs));
    off += n;
    *copied += n;
  }
  return Status::OK();
}

// Copies a seekable regular file of `size` bytes, skipping its holes.
Status CopySparse(FileSystem* fs, int fd, Ino ino, uint64_t size, std::string* buf) {
  uint64_t copied = 0;
  for (uint64_t off = 0; off < size;) {
    off_t data = lseek(fd, static_cast<off_t>(off), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    uint64_t hole = size;
    if (data < 0) {
      if (errno != EINVAL) return Status::FromErrno(errno, "seek");
      data = static_cast<off_t>(off);  // no SEEK_DATA support: copy everything
    } else {
      off_t h = lseek(fd, data, SEEK_HOLE);
      if (h >= 0) hole = std::min<uint64_t>(size, h);
    }
    KVFS_RETURN_IF_ERROR(CopyRange(fs, fd, ino, data, hole, buf, &copied));
    off = hole;
  }
  return Status::OK();
}

// Copies a stream (pipe, terminal...) to its end; *size is the length read.
Status CopyStream(FileSystem* fs, int fd, Ino ino, std::string* buf, uint64_t* size) {
  *size = 0;
  for (;;) {
    ssize_t n = read(fd, buf->data(), buf->size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read");
    if (n == 0) return Status::OK();
    Attributes attrs;
    KVFS_RETURN_IF_ERROR(
        fs->Write(ino, *size, std::string_view(buf->data(), n), Stability::kUnstable, &attrs));
    *size += n;
  }
}

// The KVFS file type of a local st_mode.
FileType TypeOfMode(mode_t mode) {
  if (S_ISDIR(mode)) return FileType::kDirectory;
  if (S_ISLNK(mode)) return FileType::kSymlink;
  if (S_ISCHR(mode)) return FileType::kCharDevice;
  if (S_ISBLK(mode)) return FileType::kBlockDevice;
  if (S_ISFIFO(mode)) return FileType::kFifo;
  if (S_ISSOCK(mode)) return FileType::kSocket;
  return FileType::kRegular;
}

// Recursive copy of one local tree; see ImportTree.
class Importer {
 public:
  Importer(FileSystem* fs, ImportStats* stats) : fs_(fs), stats_(stats) {}

  // Copies the entries of open local directory `dirfd` (at `path`) into
  // KVFS directory `dir`, recursively.
  void ImportEntries(int dirfd, const std::string& path, Ino dir) {
    std::vector<std::string> names;
    Status s = ListLocal(dirfd, &names);
    if (!s.ok()) return Fail(path, s);
    for (const std::string& name : names) {
      const std::string child = path + "/" + name;
      struct stat st;
      if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        Fail(child, LocalError("stat", child));
        continue;
      }
      s = ImportOne(dirfd, name, child, st, dir);
      if (!s.ok()) Fail(child, s);
    }
  }

  // Sets the permissions, owner and times of `ino` from `st`.
  Status CopyAttributes(Ino ino, const struct stat& st) {
    SetAttrRequest req;
    if (!S_ISLNK(st.st_mode)) req.mode = st.st_mode & 07777;
    req.uid = st.st_uid;
    req.gid = st.st_gid;
    req.atime = Timespec{st.st_atim.tv_sec, static_cast<uint32_t>(st.st_atim.tv_nsec)};
    req.mtime = Timespec{st.st_mtim.tv_sec, static_cast<uint32_t>(st.st_mtim.tv_nsec)};
    Attributes attrs;
    return fs_->SetAttr(ino, req, &attrs);
  }

  // Creates directory `name` in `parent`, or reuses an existing directory.
  Status MakeDirectory(Ino parent, const std::string& name, const struct stat& st,
                       Attributes* out) {
    Status s = fs_->Mkdir(parent, name, NewObjectOf(st), out);
    if (s.posix_errno() == EEXIST) {
      KVFS_RETURN_IF_ERROR(fs_->Lookup(parent, name, out));
      if (out->type != FileType::kDirectory) return s;
      return Status::OK();
    }
    if (s.ok()) ++stats_->directories;
    return s;
  }

 private:
  // Mode and owner of a new object copied from `st`.
  static NewObject NewObjectOf(const struct stat& st) {
    return NewObject{static_cast<uint32_t>(st.st_mode & 07777), st.st_uid, st.st_gid};
  }

  // Records that the object at local `path` could not be imported.
  void Fail(const std::string& path, const Status& s) {
    stats_->errors.push_back(path + ": " + s.ToString());
  }

  // The names in local directory `dirfd`, sorted, without "." and "..".
  static Status ListLocal(int dirfd, std::vector<std::string>* names) {
    int fd = dup(dirfd);
    if (fd < 0) return Status::FromErrno(errno, "dup");
    DIR* d = fdopendir(fd);
    if (d == nullptr) {
      Status s = Status::FromErrno(errno, "opendir");
      close(fd);
      return s;
    }
    rewinddir(d);
    errno = 0;
    while (struct dirent* de = readdir(d)) {
      std::string_view n = de->d_name;
      if (n != "." && n != "..") names->emplace_back(n);
      errno = 0;
    }
    Status s = errno != 0 ? Status::FromErrno(errno, "readdir") : Status::OK();
    closedir(d);
    std::sort(names->begin(), names->end());
    return s;
  }

  // Makes way for a new object of `type` called `name` in `parent`: removes
  // an existing non-directory; an existing directory stays (to be merged
  // into) if `type` is a directory, else it is an error.
  Status ClearName(Ino parent, const std::string& name, FileType type) {
    Attributes existing;
    Status s = fs_->Lookup(parent, name, &existing);
    if (s.IsNotFound()) return Status::OK();
    KVFS_RETURN_IF_ERROR(s);
    if (existing.type != FileType::kDirectory) return fs_->Unlink(parent, name);
    if (type == FileType::kDirectory) return Status::OK();
    return Status::Exists("'" + name + "' is a directory in KVFS");
  }

  // Copies local object `name` of `dirfd` (at `path`, described by `st`)
  // into KVFS directory `parent`.
  Status ImportOne(int dirfd, const std::string& name, const std::string& path,
                   const struct stat& st, Ino parent) {
    Attributes attrs;
    KVFS_RETURN_IF_ERROR(ClearName(parent, name, TypeOfMode(st.st_mode)));
    switch (TypeOfMode(st.st_mode)) {
      case FileType::kDirectory: {
        int fd = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return LocalError("open", path);
        FdCloser closer(fd);
        KVFS_RETURN_IF_ERROR(MakeDirectory(parent, name, st, &attrs));
        ImportEntries(fd, path, attrs.ino);
        break;  // attributes last: adding entries changed the times
      }
      case FileType::kRegular: {
        auto linked = st.st_nlink > 1 ? links_.find({st.st_dev, st.st_ino}) : links_.end();
        if (linked != links_.end()) {
          Status s = fs_->Link(linked->second, parent, name, &attrs);
          if (s.ok()) {
            ++stats_->hard_links;
            return Status::OK();
          }
          if (s.posix_errno() != EXDEV) return s;
        }
        KVFS_RETURN_IF_ERROR(ImportFile(dirfd, name, path, st, parent, &attrs));
        if (st.st_nlink > 1 && linked == links_.end()) {
          links_[{st.st_dev, st.st_ino}] = attrs.ino;
        }
        break;
      }
      case FileType::kSymlink: {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = readlinkat(dirfd, name.c_str(), target.data(), target.size());
        if (n < 0) return LocalError("readlink", path);
        target.resize(std::min<size_t>(n, target.size()));
        KVFS_RETURN_IF_ERROR(fs_->Symlink(parent, name, target, NewObjectOf(st), &attrs));
        ++stats_->symlinks;
        break;
      }
      default:
        KVFS_RETURN_IF_ERROR(
            fs_->Mknod(parent, name, TypeOfMode(st.st_mode), NewObjectOf(st), st.st_rdev, &attrs));
        ++stats_->specials;
        break;
    }
    return CopyAttributes(attrs.ino, st);
  }

  // Creates regular file `name` in `parent` with the local file's contents.
  Status ImportFile(int dirfd, const std::string& name, const std::string& path,
                    const struct stat& st, Ino parent, Attributes* attrs) {
    int fd = openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return LocalError("open", path);
    FdCloser closer(fd);
    KVFS_RETURN_IF_ERROR(fs_->Create(parent, name, NewObjectOf(st), /*exclusive=*/true, attrs));
    uint64_t size;
    KVFS_RETURN_IF_ERROR(CopyFileContents(fs_, fd, attrs->ino, &size));
    ++stats_->files;
    stats_->bytes += size;
    return Status::OK();
  }

  FileSystem* const fs_;
  ImportStats* const stats_;
  // Local files with several names -> their KVFS inode, once imported.
  std::map<std::pair<dev_t, ino_t>, Ino> links_;
};

}  // namespace

Status CopyFileContents(FileSystem* fs, int fd, Ino ino, uint64_t* bytes) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat");
  Attributes attrs;
  SetAttrRequest req;
  req.size = 0;
  KVFS_RETURN_IF_ERROR(fs->SetAttr(ino, req, &attrs));  // drop the old contents
  std::string buf(kChunk, '\0');
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (S_ISREG(st.st_mode)) {
    KVFS_RETURN_IF_ERROR(CopySparse(fs, fd, ino, size, &buf));
  } else {
    KVFS_RETURN_IF_ERROR(CopyStream(fs, fd, ino, &buf, &size));
  }
  req.size = size;  // also covers a trailing hole
  KVFS_RETURN_IF_ERROR(fs->SetAttr(ino, req, &attrs));
  if (bytes != nullptr) *bytes = size;
  return Status::OK();
}

Status ImportTree(FileSystem* fs, const std::string& local_dir, std::string_view dest,
                  ImportStats* stats) {
  int fd = open(local_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return LocalError("open", local_dir);
  FdCloser closer(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) return LocalError("stat", local_dir);

  Importer importer(fs, stats);
  Attributes root;
  Status s = ResolvePath(fs, dest, &root);
  if (s.IsNotFound()) {
    Attributes parent;
    std::string name;
    KVFS_RETURN_IF_ERROR(ResolveParent(fs, dest, &parent, &name));
    KVFS_RETURN_IF_ERROR(importer.MakeDirectory(parent.ino, name, st, &root));
  } else if (!s.ok()) {
    return s;
  } else if (root.type != FileType::kDirectory) {
    return Status::FromErrno(ENOTDIR, "'" + std::string(dest) + "' is not a directory");
  }
  std::string base = local_dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  importer.ImportEntries(fd, base, root.ino);
  s = importer.CopyAttributes(root.ino, st);
  if (!s.ok()) stats->errors.push_back(local_dir + ": " + s.ToString());
  if (!stats->errors.empty()) {
    return Status::IOError(std::to_string(stats->errors.size()) + " objects failed to import");
  }
  return Status::OK();
}

}  // namespace kvfs
