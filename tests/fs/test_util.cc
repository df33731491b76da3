#include "tests/fs/test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "common/fs/fsck.h"

namespace kvfs::testing {

NameHasher FirstByteHasher() {
  return NameHasher{"first-byte", [](std::string_view s) {
                      return static_cast<uint64_t>(s.empty() ? 0 : static_cast<uint8_t>(s[0]))
                             << 56;
                    }};
}

std::vector<std::string> FsckProblems(KVStore* store, const NameHasher& hasher) {
  FsckReport report;
  Status s = Fsck(store, hasher, &report);
  if (!s.ok()) return {"fsck could not run: " + s.ToString()};
  return report.problems;
}

Status ReadAll(FileSystem* fs, Ino ino, std::string* out) {
  out->clear();
  std::string chunk;
  bool eof = false;
  while (!eof) {
    KVFS_RETURN_IF_ERROR(fs->Read(ino, out->size(), 1 << 20, &chunk, &eof));
    if (chunk.empty() && !eof) return Status::IOError("short read before end of file");
    out->append(chunk);
  }
  return Status::OK();
}

bool ReadLocalFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out->append(buf, n);
  close(fd);
  return n == 0;
}

namespace {

FileType LocalType(mode_t m) {
  if (S_ISDIR(m)) return FileType::kDirectory;
  if (S_ISLNK(m)) return FileType::kSymlink;
  if (S_ISCHR(m)) return FileType::kCharDevice;
  if (S_ISBLK(m)) return FileType::kBlockDevice;
  if (S_ISFIFO(m)) return FileType::kFifo;
  if (S_ISSOCK(m)) return FileType::kSocket;
  return FileType::kRegular;
}

// The recursive walk of CompareTrees.
class TreeComparer {
 public:
  TreeComparer(FileSystem* fs, const TreeCompareOptions& options) : fs_(fs), options_(options) {}

  void CompareDir(Ino dir, const std::string& local, const std::string& shown) {
    std::map<std::string, Attributes> kvfs_entries;
    bool eof = false;
    Status s = fs_->ReadDir(
        dir, kStartCookie,
        [&](const DirEntry& e) {
          if (!kvfs_entries.emplace(e.name, e.attrs).second) {
            Diff(shown + "/" + e.name, "listed twice by ReadDir");
          }
          return true;
        },
        &eof);
    if (!s.ok() || !eof) return Diff(shown, "ReadDir: " + s.ToString());
    std::set<std::string> local_names;
    if (!ListLocal(local, &local_names)) return Diff(shown, "cannot list the local directory");
    Attributes attrs;
    s = fs_->GetAttr(dir, &attrs);
    if (!s.ok()) return Diff(shown, "GetAttr: " + s.ToString());
    Field(shown, "directory size (entries)", attrs.size, static_cast<uint64_t>(local_names.size()));
    for (const auto& [name, attrs] : kvfs_entries) {
      if (!local_names.count(name)) Diff(shown + "/" + name, "only in KVFS");
    }
    for (const std::string& name : local_names) {
      auto it = kvfs_entries.find(name);
      if (it == kvfs_entries.end()) {
        Diff(shown + "/" + name, "missing in KVFS");
        continue;
      }
      CompareObject(dir, name, it->second, local + "/" + name, shown + "/" + name);
    }
  }

  std::vector<std::string> TakeDiffs() { return std::move(diffs_); }

 private:
  void Diff(const std::string& path, const std::string& what) {
    diffs_.push_back((path.empty() ? "/" : path) + ": " + what);
  }

  static bool ListLocal(const std::string& path, std::set<std::string>* names) {
    DIR* d = opendir(path.c_str());
    if (d == nullptr) return false;
    while (struct dirent* de = readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names->insert(n);
    }
    closedir(d);
    return true;
  }

  template <typename T>
  void Field(const std::string& path, const char* what, T kvfs, T local) {
    if (kvfs != local) {
      Diff(path, std::string(what) + " is " + std::to_string(kvfs) + " in KVFS, " +
                     std::to_string(local) + " locally");
    }
  }

  void CompareObject(Ino dir, const std::string& name, const Attributes& a,
                     const std::string& local, const std::string& shown) {
    struct stat st;
    if (lstat(local.c_str(), &st) != 0) return Diff(shown, "local lstat failed");
    Attributes looked_up;
    Status s = fs_->Lookup(dir, name, &looked_up);
    if (!s.ok()) return Diff(shown, "Lookup: " + s.ToString());
    if (looked_up.ino != a.ino || looked_up.nlink != a.nlink || looked_up.size != a.size ||
        looked_up.mode != a.mode || looked_up.type != a.type) {
      Diff(shown, "Lookup and ReadDir disagree");
    }
    const FileType type = LocalType(st.st_mode);
    if (a.type != type) {
      return Diff(shown, "type " + std::to_string(static_cast<int>(a.type)) + " in KVFS, " +
                             std::to_string(static_cast<int>(type)) + " locally");
    }
    Field(shown, "mode", a.mode, static_cast<uint32_t>(st.st_mode & 07777));
    Field(shown, "nlink", a.nlink, static_cast<uint32_t>(st.st_nlink));
    if (options_.owners) {
      Field(shown, "uid", a.uid, static_cast<uint32_t>(st.st_uid));
      Field(shown, "gid", a.gid, static_cast<uint32_t>(st.st_gid));
    }
    const int64_t msec = st.st_mtim.tv_sec;
    auto pinned = [&](int64_t sec) {
      return sec >= options_.pinned_mtime_begin && sec < options_.pinned_mtime_end;
    };
    if (options_.all_mtimes || pinned(msec) || pinned(a.mtime.sec)) {
      if (a.mtime.sec != msec || a.mtime.nsec != static_cast<uint32_t>(st.st_mtim.tv_nsec)) {
        Diff(shown, "mtime " + std::to_string(a.mtime.sec) + "." + std::to_string(a.mtime.nsec) +
                        " in KVFS, " + std::to_string(msec) + "." +
                        std::to_string(st.st_mtim.tv_nsec) + " locally");
      }
    }
    if (type != FileType::kDirectory) CheckLinkIdentity(shown, a.ino, st.st_ino);
    switch (type) {
      case FileType::kDirectory:
        CompareDir(a.ino, local, shown);
        break;
      case FileType::kRegular: {
        Field(shown, "size", a.size, static_cast<uint64_t>(st.st_size));
        std::string kvfs_data, local_data;
        s = ReadAll(fs_, a.ino, &kvfs_data);
        if (!s.ok()) return Diff(shown, "Read: " + s.ToString());
        if (!ReadLocalFile(local, &local_data)) return Diff(shown, "local read failed");
        if (kvfs_data != local_data) Diff(shown, "contents differ");
        break;
      }
      case FileType::kSymlink: {
        std::string target, local_target(static_cast<size_t>(st.st_size) + 1, '\0');
        s = fs_->Readlink(a.ino, &target);
        if (!s.ok()) return Diff(shown, "Readlink: " + s.ToString());
        ssize_t n = readlink(local.c_str(), local_target.data(), local_target.size());
        local_target.resize(n < 0 ? 0 : n);
        if (target != local_target) Diff(shown, "symlink target '" + target + "' in KVFS");
        break;
      }
      default:
        break;
    }
  }

  // Names of one local inode must be names of one KVFS inode and back.
  void CheckLinkIdentity(const std::string& shown, Ino ino, ino_t local_ino) {
    auto [l, l_new] = by_local_.emplace(local_ino, ino);
    auto [k, k_new] = by_kvfs_.emplace(ino, local_ino);
    if (l->second != ino || k->second != local_ino) {
      Diff(shown, "hard links differ: KVFS inode " + std::to_string(ino) +
                      " does not correspond to the local inode");
    }
  }

  FileSystem* const fs_;
  const TreeCompareOptions options_;
  std::map<ino_t, Ino> by_local_;
  std::map<Ino, ino_t> by_kvfs_;
  std::vector<std::string> diffs_;
};

}  // namespace

std::vector<std::string> CompareTrees(FileSystem* fs, Ino dir, const std::string& local_dir,
                                      const TreeCompareOptions& options) {
  TreeComparer comparer(fs, options);
  comparer.CompareDir(dir, local_dir, "");
  return comparer.TakeDiffs();
}

}  // namespace kvfs::testing
