#include "tests/ingest/ingest_test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>

#include "common/fs/schema.h"
#include "common/kv/kv_backend.h"
#include "common/kv/memory_store.h"

namespace kvfs::ingest_test {

using ingest::Compression;
using ingest::MemberType;

namespace {

// Hashes a file's contents given as pieces at ascending offsets, holes left
// out: the same digest for the same bytes however they are cut into pieces
// and holes, at a cost proportional to the pieces (never to the size of a
// sparse file). Contents are hashed in aligned windows; windows of zeros
// do not count.
class ContentHash {
 public:
  ContentHash() : state_(XXH3_createState()), window_data_(kWindow, '\0') {
    XXH3_64bits_reset(state_);
  }
  ~ContentHash() { XXH3_freeState(state_); }
  ContentHash(const ContentHash&) = delete;
  ContentHash& operator=(const ContentHash&) = delete;

  void Add(uint64_t offset, std::string_view data) {
    while (!data.empty()) {
      const uint64_t window = offset / kWindow;
      if (window != window_) {
        Flush();
        window_ = window;
      }
      const size_t at = static_cast<size_t>(offset % kWindow);
      const size_t n = std::min<size_t>(data.size(), kWindow - at);
      std::memcpy(window_data_.data() + at, data.data(), n);
      offset += n;
      data.remove_prefix(n);
    }
  }

  uint64_t Digest(uint64_t size) {
    Flush();
    XXH3_64bits_update(state_, &size, sizeof(size));
    return XXH3_64bits_digest(state_);
  }

 private:
  static constexpr size_t kWindow = 1 << 16;

  void Flush() {
    if (window_ == UINT64_MAX) return;
    if (window_data_.find_first_not_of('\0') != std::string::npos) {
      XXH3_64bits_update(state_, &window_, sizeof(window_));
      XXH3_64bits_update(state_, window_data_.data(), window_data_.size());
    }
    std::fill(window_data_.begin(), window_data_.end(), '\0');
    window_ = UINT64_MAX;
  }

  XXH3_state_t* state_;
  uint64_t window_ = UINT64_MAX;
  std::string window_data_;
};

}  // namespace

Spec File(std::string path, std::string data, uint32_t mode) {
  Spec s;
  s.path = std::move(path);
  s.data = std::move(data);
  s.mode = mode;
  return s;
}

Spec Dir(std::string path, uint32_t mode) {
  Spec s;
  s.path = std::move(path);
  s.type = MemberType::kDirectory;
  s.mode = mode;
  return s;
}

Spec Symlink(std::string path, std::string target) {
  Spec s;
  s.path = std::move(path);
  s.type = MemberType::kSymlink;
  s.mode = 0777;
  s.link_target = std::move(target);
  return s;
}

Spec HardLink(std::string path, std::string target) {
  Spec s;
  s.path = std::move(path);
  s.type = MemberType::kHardLink;
  s.link_target = std::move(target);
  return s;
}

void WriteTarball(const std::string& path, const std::vector<Spec>& members, TarFormat format,
                  Compression compression) {
  struct archive* a = archive_write_new();
  switch (format) {
    case TarFormat::kUstar:
      archive_write_set_format_ustar(a);
      break;
    case TarFormat::kPax:
      archive_write_set_format_pax(a);
      break;
    case TarFormat::kGnu:
      archive_write_set_format_gnutar(a);
      break;
    case TarFormat::kV7:
      archive_write_set_format_v7tar(a);
      break;
  }
  switch (compression) {
    case Compression::kNone:
      break;
    case Compression::kGzip:
      archive_write_add_filter_gzip(a);
      break;
    case Compression::kZstd:
      archive_write_add_filter_zstd(a);
      break;
    case Compression::kXz:
      archive_write_add_filter_xz(a);
      break;
  }
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
  struct archive_entry* e = archive_entry_new();
  for (const Spec& s : members) {
    archive_entry_clear(e);
    archive_entry_set_pathname(e, s.path.c_str());
    archive_entry_set_uid(e, s.uid);
    archive_entry_set_gid(e, s.gid);
    archive_entry_set_mtime(e, static_cast<time_t>(s.mtime.sec), s.mtime.nsec);
    mode_t type = AE_IFREG;
    switch (s.type) {
      case MemberType::kRegular:
        archive_entry_set_size(e, static_cast<la_int64_t>(s.data.size()));
        break;
      case MemberType::kDirectory:
        type = AE_IFDIR;
        break;
      case MemberType::kSymlink:
        type = AE_IFLNK;
        archive_entry_set_symlink(e, s.link_target.c_str());
        break;
      case MemberType::kHardLink:
        archive_entry_set_hardlink(e, s.link_target.c_str());
        break;
      case MemberType::kCharDevice:
        type = AE_IFCHR;
        archive_entry_set_rdev(e, static_cast<dev_t>(s.rdev));
        break;
      case MemberType::kBlockDevice:
        type = AE_IFBLK;
        archive_entry_set_rdev(e, static_cast<dev_t>(s.rdev));
        break;
      case MemberType::kFifo:
        type = AE_IFIFO;
        break;
      case MemberType::kSocket:
        type = AE_IFSOCK;
        break;
    }
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, s.mode);
    int r = archive_write_header(a, e);
    ASSERT_TRUE(r == ARCHIVE_OK || r == ARCHIVE_WARN) << s.path << ": " << archive_error_string(a);
    if (s.type == MemberType::kRegular && !s.data.empty()) {
      ASSERT_EQ(archive_write_data(a, s.data.data(), s.data.size()),
                static_cast<la_ssize_t>(s.data.size()))
          << archive_error_string(a);
    }
  }
  archive_entry_free(e);
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK) << archive_error_string(a);
  archive_write_free(a);
}

namespace {

// The ingest path rule, written independently of ingest/tree_builder.cc.
std::string Normalize(std::string_view path, std::string_view top) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = std::min(path.find('/', pos), path.size());
    std::string_view p = path.substr(pos, slash - pos);
    if (!p.empty() && p != ".") parts.push_back(p);
    pos = slash + 1;
  }
  if (!parts.empty() && parts.front() == top) parts.erase(parts.begin());
  std::string out;
  for (std::string_view p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

// Assigns each regular file's link_group: the smallest of its names.
void AssignLinkGroups(Manifest* m, const std::map<std::string, std::string>& same_file) {
  std::function<std::string(const std::string&)> root = [&](const std::string& p) {
    auto it = same_file.find(p);
    return it == same_file.end() ? p : root(it->second);
  };
  std::map<std::string, std::string> smallest;  // root -> smallest name
  for (auto& [path, e] : *m) {
    if (e.type != FileType::kRegular) continue;
    const std::string r = root(path);
    auto [it, fresh] = smallest.emplace(r, path);
    if (!fresh) it->second = std::min(it->second, path);
  }
  for (auto& [path, e] : *m) {
    if (e.type == FileType::kRegular) e.link_group = smallest[root(path)];
  }
}

FileType TypeOf(mode_t t) {
  switch (t) {
    case AE_IFDIR:
      return FileType::kDirectory;
    case AE_IFLNK:
      return FileType::kSymlink;
    case AE_IFCHR:
      return FileType::kCharDevice;
    case AE_IFBLK:
      return FileType::kBlockDevice;
    case AE_IFIFO:
      return FileType::kFifo;
    default:
      return FileType::kRegular;
  }
}

}  // namespace

Status ReadTarballManifest(const std::string& path, std::string_view top, Manifest* out) {
  out->clear();
  struct archive* a = archive_read_new();
  archive_read_support_format_all(a);
  archive_read_support_filter_all(a);
  std::unique_ptr<struct archive, int (*)(struct archive*)> guard(a, archive_read_free);
  if (archive_read_open_filename(a, path.c_str(), 1 << 20) != ARCHIVE_OK) {
    return Status::IOError(archive_error_string(a));
  }
  std::map<std::string, std::string> same_file;  // hard link -> target
  struct archive_entry* e;
  int r;
  // Names that have no form in the C locale come with a warning; their
  // UTF-8 form is the bytes stored.
  auto name = [](const char* mbs, const char* utf8) -> const char* {
    return mbs != nullptr ? mbs : utf8;
  };
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    const char* path = name(archive_entry_pathname(e), archive_entry_pathname_utf8(e));
    if (path == nullptr) return Status::IOError(archive_error_string(a));
    const std::string p = Normalize(path, top);
    if (const char* hard = name(archive_entry_hardlink(e), archive_entry_hardlink_utf8(e))) {
      const std::string t = Normalize(hard, top);
      if (!out->count(t)) return Status::InvalidArgument("hard link to unknown " + t);
      (*out)[p] = (*out)[t];
      same_file[p] = t;
      continue;
    }
    ManifestEntry m;
    m.type = TypeOf(archive_entry_filetype(e));
    m.mode = archive_entry_perm(e) & 07777;
    m.uid = static_cast<uint32_t>(archive_entry_uid(e));
    m.gid = static_cast<uint32_t>(archive_entry_gid(e));
    m.mtime = Timespec{archive_entry_mtime(e), static_cast<uint32_t>(archive_entry_mtime_nsec(e))};
    if (m.type == FileType::kSymlink) {
      m.link_target = name(archive_entry_symlink(e), archive_entry_symlink_utf8(e));
    }
    if (m.type == FileType::kCharDevice || m.type == FileType::kBlockDevice) {
      m.rdev = archive_entry_rdev(e);
    }
    if (m.type == FileType::kRegular) {
      m.size = static_cast<uint64_t>(archive_entry_size(e));
      ContentHash hash;
      const void* buf;
      size_t n;
      la_int64_t off;
      while ((r = archive_read_data_block(a, &buf, &n, &off)) == ARCHIVE_OK) {
        hash.Add(static_cast<uint64_t>(off), std::string_view(static_cast<const char*>(buf), n));
      }
      m.content_hash = hash.Digest(m.size);
      if (r != ARCHIVE_EOF) return Status::IOError(archive_error_string(a));
    }
    (*out)[p] = m;
  }
  if (r != ARCHIVE_EOF) return Status::IOError(archive_error_string(a));
  AssignLinkGroups(out, same_file);
  return Status::OK();
}

Status ReadTreeManifest(FileSystem* fs, std::string_view top, Manifest* out) {
  out->clear();
  Attributes root;
  KVFS_RETURN_IF_ERROR(fs->Lookup(kRootIno, top, &root));
  std::map<Ino, std::string> first_name;
  std::map<std::string, std::string> same_file;
  std::function<Status(const Attributes&, const std::string&)> walk =
      [&](const Attributes& a, const std::string& path) -> Status {
    ManifestEntry m;
    m.type = a.type;
    m.mode = a.mode;
    m.uid = a.uid;
    m.gid = a.gid;
    m.mtime = a.mtime;
    m.rdev = a.rdev;
    if (a.type == FileType::kSymlink) KVFS_RETURN_IF_ERROR(fs->Readlink(a.ino, &m.link_target));
    if (a.type == FileType::kRegular) {
      m.size = a.size;
      // Only what the file stores: a sparse file may be huge.
      ContentHash hash;
      std::vector<std::pair<uint64_t, uint64_t>> extents;
      KVFS_RETURN_IF_ERROR(fs->DataExtents(a.ino, 0, [&](uint64_t off, uint64_t len) {
        extents.emplace_back(off, len);
        return true;
      }));
      std::string chunk;
      for (auto [off, len] : extents) {
        for (uint64_t end = off + len; off < end; off += chunk.size()) {
          bool eof;
          KVFS_RETURN_IF_ERROR(fs->Read(a.ino, off,
                                        static_cast<size_t>(std::min<uint64_t>(1 << 20, end - off)),
                                        &chunk, &eof));
          if (chunk.empty()) return Status::IOError(path + ": short read");
          hash.Add(off, chunk);
        }
      }
      m.content_hash = hash.Digest(a.size);
      auto [it, fresh] = first_name.emplace(a.ino, path);
      if (!fresh) same_file[path] = it->second;
    }
    (*out)[path] = m;
    if (a.type != FileType::kDirectory) return Status::OK();
    std::vector<DirEntry> entries;
    bool eof = false;
    KVFS_RETURN_IF_ERROR(fs->ReadDir(
        a.ino, kStartCookie,
        [&](const DirEntry& de) {
          entries.push_back(de);
          return true;
        },
        &eof));
    for (const DirEntry& de : entries) {
      KVFS_RETURN_IF_ERROR(walk(de.attrs, path.empty() ? de.name : path + "/" + de.name));
    }
    return Status::OK();
  };
  KVFS_RETURN_IF_ERROR(walk(root, ""));
  AssignLinkGroups(out, same_file);
  return Status::OK();
}

Status CopyTarballPrefix(const std::string& from, const std::string& to, int n) {
  struct archive* in = archive_read_new();
  archive_read_support_format_all(in);
  archive_read_support_filter_all(in);
  struct archive* out = archive_write_new();
  archive_write_set_format_pax_restricted(out);
  Status s;
  if (archive_read_open_filename(in, from.c_str(), 1 << 20) != ARCHIVE_OK) {
    s = Status::IOError("cannot read " + from + ": " + archive_error_string(in));
  } else if (archive_write_open_filename(out, to.c_str()) != ARCHIVE_OK) {
    s = Status::IOError("cannot write " + to + ": " + archive_error_string(out));
  }
  struct archive_entry* e;
  for (int i = 0; s.ok() && i < n && archive_read_next_header(in, &e) == ARCHIVE_OK; ++i) {
    if (archive_write_header(out, e) != ARCHIVE_OK) {
      s = Status::IOError(std::string("write header: ") + archive_error_string(out));
      break;
    }
    const void* buf;
    size_t size;
    la_int64_t offset;
    while (archive_read_data_block(in, &buf, &size, &offset) == ARCHIVE_OK) {
      if (archive_write_data(out, buf, size) != static_cast<la_ssize_t>(size)) {
        s = Status::IOError(std::string("write data: ") + archive_error_string(out));
        break;
      }
    }
  }
  if (archive_write_close(out) != ARCHIVE_OK && s.ok()) {
    s = Status::IOError(std::string("close ") + to + ": " + archive_error_string(out));
  }
  archive_write_free(out);
  archive_read_free(in);
  return s;
}

Status ReadDirectoryManifest(const std::string& dir, Manifest* out) {
  out->clear();
  std::map<std::pair<dev_t, ino_t>, std::string> first_name;
  std::map<std::string, std::string> same_file;
  std::function<Status(const std::string&)> walk = [&](const std::string& path) -> Status {
    const std::string full = path.empty() ? dir : dir + "/" + path;
    struct stat st;
    if (lstat(full.c_str(), &st) != 0) return Status::FromErrno(errno, "lstat " + full);
    ManifestEntry m;
    m.type = TypeOf(st.st_mode & S_IFMT);
    m.mode = st.st_mode & 07777;
    m.uid = st.st_uid;
    m.gid = st.st_gid;
    m.mtime = Timespec{st.st_mtim.tv_sec, static_cast<uint32_t>(st.st_mtim.tv_nsec)};
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) m.rdev = st.st_rdev;
    if (S_ISLNK(st.st_mode)) {
      std::string target(4096, '\0');
      ssize_t n = readlink(full.c_str(), target.data(), target.size());
      if (n < 0) return Status::FromErrno(errno, "readlink " + full);
      m.link_target = target.substr(0, static_cast<size_t>(n));
    }
    if (S_ISREG(st.st_mode)) {
      m.size = static_cast<uint64_t>(st.st_size);
      int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Status::FromErrno(errno, "open " + full);
      ContentHash hash;
      std::string buf(1 << 20, '\0');
      uint64_t off = 0;
      ssize_t n;
      while ((n = read(fd, buf.data(), buf.size())) > 0) {
        hash.Add(off, std::string_view(buf.data(), static_cast<size_t>(n)));
        off += static_cast<uint64_t>(n);
      }
      const int err = n < 0 ? errno : 0;
      close(fd);
      m.content_hash = hash.Digest(m.size);
      if (err != 0) return Status::FromErrno(err, "read " + full);
      auto [it, fresh] = first_name.emplace(std::make_pair(st.st_dev, st.st_ino), path);
      if (!fresh) same_file[path] = it->second;
    }
    (*out)[path] = m;
    if (!S_ISDIR(st.st_mode)) return Status::OK();
    std::vector<std::string> names;
    DIR* d = opendir(full.c_str());
    if (d == nullptr) return Status::FromErrno(errno, "opendir " + full);
    while (dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        names.push_back(e->d_name);
      }
    }
    closedir(d);
    for (const std::string& name : names) {
      KVFS_RETURN_IF_ERROR(walk(path.empty() ? name : path + "/" + name));
    }
    return Status::OK();
  };
  KVFS_RETURN_IF_ERROR(walk(""));
  AssignLinkGroups(out, same_file);
  return Status::OK();
}

std::vector<std::string> CompareManifests(const Manifest& expected, const Manifest& actual,
                                          const ManifestOptions& options, bool strict) {
  std::vector<std::string> diffs;
  auto diff = [&](const std::string& path, const std::string& what, auto want, auto got) {
    if (want != got) {
      diffs.push_back("'" + path + "': " + what + " expected " + std::to_string(want) + ", got " +
                      std::to_string(got));
    }
  };
  for (const auto& [path, want] : expected) {
    auto it = actual.find(path);
    if (it == actual.end()) {
      diffs.push_back("'" + path + "': missing");
      continue;
    }
    const ManifestEntry& got = it->second;
    diff(path, "type", static_cast<int>(want.type), static_cast<int>(got.type));
    if (want.type != got.type) continue;
    diff(path, "mode", want.mode, got.mode);
    diff(path, "uid", want.uid, got.uid);
    diff(path, "gid", want.gid, got.gid);
    diff(path, "mtime", want.mtime.sec, got.mtime.sec);
    if (options.mtime_nsec) diff(path, "mtime nsec", want.mtime.nsec, got.mtime.nsec);
    diff(path, "size", want.size, got.size);
    diff(path, "content", want.content_hash, got.content_hash);
    diff(path, "rdev", want.rdev, got.rdev);
    if (want.link_target != got.link_target) {
      diffs.push_back("'" + path + "': symlink target '" + want.link_target + "' vs '" +
                      got.link_target + "'");
    }
    if (want.link_group != got.link_group) {
      diffs.push_back("'" + path + "': same file as '" + want.link_group + "' vs '" +
                      got.link_group + "'");
    }
  }
  for (const auto& [path, got] : actual) {
    if (expected.count(path)) continue;
    if (strict || got.type != FileType::kDirectory) diffs.push_back("'" + path + "': unexpected");
  }
  // Enough to see what is wrong; a whole tree of differences helps nobody.
  constexpr size_t kMaxShown = 10;
  if (diffs.size() > kMaxShown) {
    const size_t more = diffs.size() - kMaxShown;
    diffs.resize(kMaxShown);
    diffs.push_back("... and " + std::to_string(more) + " more differences");
  }
  for (std::string& d : diffs) {
    if (d.size() > 300) d = d.substr(0, 150) + "..." + d.substr(d.size() - 100);
  }
  return diffs;
}

StoreDump DumpStore(KVStore* store) {
  StoreDump dump(kNumColumns);
  for (int c = 0; c < kNumColumns; ++c) {
    auto it = store->NewIterator(static_cast<Column>(c), IteratorOptions());
    for (it->Seek(""); it->Valid(); it->Next()) dump[c].emplace(it->key(), it->value());
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  }
  return dump;
}

uint64_t KeysInRange(KVStore* store, uint64_t range) {
  const Ino begin = schema::RangeBegin(range), end = schema::RangeEnd(range);
  const std::pair<Column, std::pair<std::string, std::string>> spans[] = {
      {Column::kEntries, {schema::DirBegin(begin), schema::DirBegin(end)}},
      {Column::kInodes, {schema::InodeKey(begin), schema::InodeKey(end)}},
      {Column::kBlocks, {schema::BlockKey(begin, 0), schema::BlockKey(end, 0)}},
      {Column::kMeta, {schema::OrphanKey(begin), schema::OrphanKey(end)}},
  };
  uint64_t n = 0;
  for (const auto& [column, span] : spans) {
    IteratorOptions io;
    io.upper_bound = span.second;
    auto it = store->NewIterator(column, io);
    for (it->Seek(span.first); it->Valid(); it->Next()) ++n;
  }
  for (const std::string& k : {schema::UsageBytesKey(range), schema::UsageInodesKey(range)}) {
    std::string v;
    if (store->Get(Column::kMeta, k, &v).ok()) ++n;
  }
  return n;
}

std::unique_ptr<FileSystem> NewMemoryFileSystem(const NameHasher& hasher) {
  FileSystemOptions o;
  o.name_hasher = hasher;
  o.durable = false;
  std::unique_ptr<FileSystem> fs;
  Status s = FileSystem::Open(o, NewMemoryStore(), &fs);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return fs;
}

Status OpenRocksFileSystem(const std::string& path, std::unique_ptr<FileSystem>* out,
                           const NameHasher& hasher) {
  KVStoreSpec spec;
  spec.path = path;
  spec.backend = "rocksdb";
  spec.options = {{"block_cache_bytes", "32M"}, {"write_buffer_bytes", "16M"}};
  std::unique_ptr<KVStore> store;
  KVFS_RETURN_IF_ERROR(OpenKVStore(spec, &store));
  FileSystemOptions o;
  o.name_hasher = hasher;
  return FileSystem::Open(o, std::move(store), out);
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
  }
  return s;
}

int RunCommand(const std::string& command, std::string* output) {
  output->clear();
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) output->append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace kvfs::ingest_test
