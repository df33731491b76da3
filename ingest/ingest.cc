#include "ingest/ingest.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/fs/schema.h"
#include "common/fs/tree_lifecycle.h"
#include "ingest/archive.h"
#include "ingest/decompress.h"
#include "ingest/tar_writer.h"
#include "ingest/tree_walk.h"
#include "progress/counting_streams.h"
#include "store/background_writer.h"

namespace kvfs::ingest {

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A private directory under the staging directory for one ingest's sort
// runs, removed with its contents on destruction.
class WorkDir {
 public:
  Status Create(const std::string& parent) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return Status::FromErrno(ec.value(), "create staging directory " + parent);
    std::string dir = parent + "/ingest-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
      return Status::FromErrno(errno, "create a directory in " + parent);
    }
    path_ = std::move(dir);
    return Status::OK();
  }
  ~WorkDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A tree name must also be usable as the name of its tarball.
Status CheckTreeName(const std::string& name) {
  Status s = CheckObjectName(name);
  if (!s.ok()) return Status::FromErrno(s.posix_errno(), "tree name: " + s.message());
  return Status::OK();
}

}  // namespace

Status ReserveClaimedRange(FileSystem* fs, coord::Coordination* claims,
                           const std::string& claim_owner, const std::string& name,
                           uint64_t* range) {
  uint64_t hint = 0;
  if (claims != nullptr) {
    KVFS_RETURN_IF_ERROR(claims->HighestClaimedRange(&hint));
    ++hint;
  }
  const std::string owner = claim_owner + (claim_owner.empty() ? "" : " ") + "tree=" + name;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    KVFS_RETURN_IF_ERROR(fs->trees()->ReserveRange(hint, range));
    if (claims == nullptr) return Status::OK();
    Status s = claims->ClaimRange(*range, owner);
    if (s.ok()) return Status::OK();
    KVFS_RETURN_IF_ERROR(fs->trees()->AbandonRange(*range));
    if (s.posix_errno() != EEXIST) return s;
    uint64_t highest;
    KVFS_RETURN_IF_ERROR(claims->HighestClaimedRange(&highest));
    hint = std::max(*range, highest) + 1;
  }
  return Status::FromErrno(
      EAGAIN, "could not claim an inode range in " + claims->Describe() + " after 1000 attempts");
}

namespace {

// Checks, before anything is written, that `name` may be (re)placed.
Status CheckTarget(FileSystem* fs, const std::string& name, bool replace) {
  Attributes a;
  Status s = fs->Lookup(kRootIno, name, &a);
  if (s.IsNotFound()) return Status::OK();
  KVFS_RETURN_IF_ERROR(s);
  if (!replace) return Status::Exists("'" + name + "' exists (ask to replace it)");
  if (a.type != FileType::kDirectory || !schema::IsRangeOwner(a.ino)) {
    return Status::Exists("'" + name + "' exists and is not a tree that can be replaced");
  }
  return Status::OK();
}

// Builds, loads and publishes the tree into the reserved `range` (or, with
// options.fill_top, fills that stub), numbering members from first_local.
Status LoadRange(FileSystem* fs, ArchiveReader* archive, const StoreLayout& layout,
                 const std::string& name, const std::string& alias, uint64_t range,
                 uint64_t first_local, const std::string& work_dir, const IngestOptions& options,
                 IngestStats* stats) {
  std::unique_ptr<BulkLoader> loader;
  KVFS_RETURN_IF_ERROR(fs->store()->NewBulkLoader(options.staging_dir, &loader));
  TreeBuilderOptions bo;
  bo.skip_special = options.skip_special;
  bo.max_tree_bytes = options.max_tree_bytes;
  bo.sort_memory_bytes = options.sort_memory_bytes;
  bo.work_dir = work_dir;
  bo.now = Now();
  bo.alias = alias;
  bo.first_local = first_local;
  TreeBuilder builder(layout, range, name, loader.get(), bo);
  Clock::time_point t0 = Clock::now();
  for (;;) {
    Member m;
    bool end;
    KVFS_RETURN_IF_ERROR(archive->Next(&m, &end));
    if (end) break;
    KVFS_RETURN_IF_ERROR(builder.Add(m, archive));
  }
  LoadedTree tree;
  Status s = builder.Finish(&tree);
  stats->build = builder.stats();
  KVFS_RETURN_IF_ERROR(s);
  stats->build_seconds = SecondsSince(t0);

  t0 = Clock::now();
  KVFS_RETURN_IF_ERROR(loader->Commit());
  stats->loaded_bytes = loader->BytesAdded();
  loader.reset();
  stats->load_seconds = SecondsSince(t0);

  t0 = Clock::now();
  if (options.fill_top != 0) {
    KVFS_RETURN_IF_ERROR(fs->trees()->FinishFill(tree));
  } else {
    tree.replace = options.replace;
    KVFS_RETURN_IF_ERROR(fs->trees()->PublishTree(tree, &stats->replaced_range));
  }
  stats->publish_seconds = SecondsSince(t0);
  return Status::OK();
}

std::string BaseName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

}  // namespace

Status IngestTarball(FileSystem* fs, std::unique_ptr<ObjectReader> in, std::string_view object_name,
                     const IngestOptions& options, IngestStats* stats) {
  *stats = IngestStats();
  // Members may start with the tarball's name, whatever the tree is called.
  std::string alias;
  TreeNameOf(BaseName(object_name), &alias);
  std::string name = options.name.empty() ? alias : options.name;
  if (name.empty()) {
    return Status::InvalidArgument("cannot tell the tree's name from '" + std::string(object_name) +
                                   "' (not NAME.tar, .tar.gz, .tgz, .tar.zst or .tar.xz)");
  }
  KVFS_RETURN_IF_ERROR(CheckTreeName(name));
  stats->name = name;
  stats->archive_bytes = in->size();
  if (options.max_archive_bytes != 0 && in->size() > options.max_archive_bytes) {
    return Status::FromErrno(
        EDQUOT, "tarball " + std::string(object_name) + " has " + std::to_string(in->size()) +
                    " bytes, more than the quota of " + std::to_string(options.max_archive_bytes));
  }
  if (options.staging_dir.empty()) return Status::InvalidArgument("no staging directory");
  if (options.progress != nullptr) {
    options.progress->SetTotal(in->size());
    in = progress::CountingReader(std::move(in), options.progress);
  }
  if (options.fill_top == 0) KVFS_RETURN_IF_ERROR(CheckTarget(fs, name, options.replace));
  StoreLayout layout;
  KVFS_RETURN_IF_ERROR(ReadStoreLayout(fs->store(), options.hasher, &layout));
  std::unique_ptr<ObjectReader> tar;
  KVFS_RETURN_IF_ERROR(OpenDecompressor(std::move(in), options.decompress_threads, &tar));
  std::unique_ptr<ArchiveReader> archive;
  KVFS_RETURN_IF_ERROR(ArchiveReader::Open(std::move(tar), &archive));
  WorkDir work;
  KVFS_RETURN_IF_ERROR(work.Create(options.staging_dir));

  uint64_t range;
  uint64_t first_local = 2;
  if (options.fill_top != 0) {
    range = schema::RangeOf(options.fill_top);
    uint64_t high_water;
    KVFS_RETURN_IF_ERROR(fs->trees()->BeginFill(options.fill_top, &high_water));
    first_local = options.fill_first_local != 0 ? options.fill_first_local : high_water;
  } else {
    KVFS_RETURN_IF_ERROR(
        ReserveClaimedRange(fs, options.claims, options.claim_owner, name, &range));
  }
  stats->range = range;
  stats->first_local = first_local;
  Status s = LoadRange(fs, archive.get(), layout, name, alias, range, first_local, work.path(),
                       options, stats);
  if (!s.ok()) {
    // Nothing of the range is visible (or the stub is as it was): delete what
    // was loaded. If even that fails, the next FileSystem::Open does it.
    Status a = options.fill_top != 0 ? fs->trees()->ResetToStub(options.fill_top)
                                     : fs->trees()->AbandonRange(range);
    if (!a.ok()) {
      return Status::FromErrno(
          s.posix_errno(),
          s.message() + " (and dropping the partial load failed: " + a.ToString() + ")");
    }
  }
  return s;
}

Status IngestFile(FileSystem* fs, const std::string& path, const IngestOptions& options,
                  IngestStats* stats) {
  std::unique_ptr<ObjectReader> in;
  KVFS_RETURN_IF_ERROR(OpenLocalFile(path, &in));
  return IngestTarball(fs, std::move(in), path, options, stats);
}

Status IngestFromStore(FileSystem* fs, PersistentStore* store, const std::string& name,
                       const IngestOptions& options, IngestStats* stats) {
  std::string object;
  std::string tree;
  if (TreeNameOf(name, &tree)) {
    object = name;
  } else {
    // Find the tree's tarball, whatever its compression.
    std::vector<ObjectInfo> objects;
    KVFS_RETURN_IF_ERROR(TarballsOf(store, name, &objects));
    if (objects.size() > 1) {
      return Status::InvalidArgument("the store has several tarballs of '" + name + "' (" +
                                     objects[0].name + ", " + objects[1].name + "): name one");
    }
    if (objects.empty()) {
      return Status::NotFound("no tarball of '" + name + "' in " + store->Describe());
    }
    object = objects[0].name;
  }
  std::unique_ptr<ObjectReader> in;
  KVFS_RETURN_IF_ERROR(store->OpenRead(object, &in));
  return IngestTarball(fs, std::move(in), object, options, stats);
}

// ---- Export ----------------------------------------------------------------------------

namespace {

// A file whose holes add up to at least this many bytes is written as a
// sparse member (smaller holes are written as zeros).
constexpr uint64_t kSparseMinHoleBytes = 64 << 10;

// Writes the members of a tree's entries, as TreeWalk hands them over.
class TreeWriter {
 public:
  TreeWriter(FileSystem* fs, TarWriter* out, ExportStats* stats)
      : fs_(fs), out_(out), stats_(stats) {}

  // A regular file whose contents are written as they are (not as a sparse
  // member): the walk may read these ahead.
  static bool IsCopiedWhole(const Attributes& a) {
    return a.type == FileType::kRegular && a.size < a.space_used + kSparseMinHoleBytes;
  }

  // The member for entry `e` of `batch`.
  Status Write(const WalkBatch& batch, const WalkEntry& e) {
    if (e.attrs.type == FileType::kDirectory) {
      ++stats_->members;
      return out_->WriteHeader(MemberOf(e.attrs, e.path, MemberType::kDirectory));
    }
    return WriteNonDirectory(batch, e);
  }

 private:
  static Member MemberOf(const Attributes& a, std::string path, MemberType type) {
    Member m;
    m.path = std::move(path);
    m.type = type;
    m.mode = a.mode;
    m.uid = a.uid;
    m.gid = a.gid;
    m.mtime = a.mtime;
    m.has_atime = true;
    m.atime = a.atime;
    m.rdev = a.rdev;
    return m;
  }

  Status WriteNonDirectory(const WalkBatch& batch, const WalkEntry& e) {
    const Attributes& a = e.attrs;
    const std::string& path = e.path;
    if (a.nlink > 1) {
      auto [it, first] = links_.emplace(a.ino, path);
      if (!first) {
        Member m = MemberOf(a, path, MemberType::kHardLink);
        m.link_target = it->second;
        ++stats_->members;
        return out_->WriteHeader(m);
      }
    }
    switch (a.type) {
      case FileType::kRegular:
        return WriteFile(batch, e);
      case FileType::kSymlink: {
        Member m = MemberOf(a, path, MemberType::kSymlink);
        KVFS_RETURN_IF_ERROR(fs_->Readlink(a.ino, &m.link_target));
        ++stats_->members;
        return out_->WriteHeader(m);
      }
      case FileType::kCharDevice:
      case FileType::kBlockDevice:
      case FileType::kFifo: {
        const MemberType t = a.type == FileType::kCharDevice    ? MemberType::kCharDevice
                             : a.type == FileType::kBlockDevice ? MemberType::kBlockDevice
                                                                : MemberType::kFifo;
        ++stats_->members;
        return out_->WriteHeader(MemberOf(a, path, t));
      }
      case FileType::kSocket:
        return Status::NotSupported("'" + path + "' is a socket, which tar cannot hold");
      case FileType::kDirectory:
        break;
    }
    return Status::InvalidArgument("'" + path + "' has an unexpected type");
  }

  // A regular file: its contents, or for a sparse file (space_used tells
  // without a read) only the runs of data it stores, so that the member
  // costs what the file stores, never its size.
  Status WriteFile(const WalkBatch& batch, const WalkEntry& e) {
    const Attributes& a = e.attrs;
    const std::string& path = e.path;
    Member m = MemberOf(a, path, MemberType::kRegular);
    m.size = a.size;
    ++stats_->members;
    if (IsCopiedWhole(a)) {
      KVFS_RETURN_IF_ERROR(out_->WriteHeader(m));
      if (!e.read) return CopyContents(a.ino, 0, a.size, path);
      // Read by the walk.
      KVFS_RETURN_IF_ERROR(e.read_status);
      return WriteContents(batch.ContentsOf(e), a.size, path);
    }
    std::vector<DataExtent> extents;
    bool changed = false;
    KVFS_RETURN_IF_ERROR(fs_->DataExtents(a.ino, 0, [&](uint64_t offset, uint64_t length) {
      changed = offset > a.size || length > a.size - offset;
      if (!changed) extents.push_back(DataExtent{offset, length});
      return !changed;
    }));
    if (changed) return Status::FromErrno(EAGAIN, "'" + path + "' changed while it was exported");
    KVFS_RETURN_IF_ERROR(out_->WriteSparseHeader(m, extents));
    for (const DataExtent& e : extents) {
      KVFS_RETURN_IF_ERROR(CopyContents(a.ino, e.offset, e.length, path));
    }
    return Status::OK();
  }

  // Copies `length` bytes of file `ino` from `offset` into the member,
  // straight from the store's blocks (one scan, no copy in between).
  Status CopyContents(Ino ino, uint64_t offset, uint64_t length, const std::string& path) {
    uint64_t copied = 0;
    KVFS_RETURN_IF_ERROR(fs_->ReadStream(ino, offset, length, [&](std::string_view piece) {
      copied += piece.size();
      return out_->WriteData(piece);
    }));
    return Copied(copied, length, path);
  }

  // Writes `data`, the contents of a file of `length` bytes.
  Status WriteContents(std::string_view data, uint64_t length, const std::string& path) {
    if (!data.empty()) KVFS_RETURN_IF_ERROR(out_->WriteData(data));
    return Copied(data.size(), length, path);
  }

  // Counts `copied` bytes of a file or extent of `length` bytes; a
  // difference means the file changed while it was exported.
  Status Copied(uint64_t copied, uint64_t length, const std::string& path) {
    if (copied != length) {
      return Status::FromErrno(EAGAIN, "'" + path + "' changed while it was exported");
    }
    stats_->bytes += copied;
    return Status::OK();
  }

  FileSystem* const fs_;
  TarWriter* const out_;
  ExportStats* const stats_;
  // Files with several names -> the path they were first written under.
  std::unordered_map<Ino, std::string> links_;
};

}  // namespace

Status WriteTree(FileSystem* fs, std::string_view name, ObjectWriter* out, Compression compression,
                 ExportStats* stats, std::string_view member_top) {
  Attributes top;
  KVFS_RETURN_IF_ERROR(fs->Lookup(kRootIno, name, &top));
  if (top.type != FileType::kDirectory) {
    return Status::FromErrno(ENOTDIR, "'" + std::string(name) + "' is not a directory");
  }
  std::unique_ptr<TarWriter> writer;
  KVFS_RETURN_IF_ERROR(TarWriter::Open(out, compression, &writer));
  // The tree is listed, and part of its small files read, on a second core.
  TreeWalk walk(fs, top, std::string(member_top.empty() ? name : member_top),
                [](const Attributes& a) { return TreeWriter::IsCopiedWhole(a) && a.nlink == 1; });
  TreeWriter tw(fs, writer.get(), stats);
  WalkBatch batch;
  for (;;) {
    KVFS_RETURN_IF_ERROR(walk.Next(&batch));
    if (batch.entries.empty()) break;
    for (const WalkEntry& e : batch.entries) KVFS_RETURN_IF_ERROR(tw.Write(batch, e));
  }
  KVFS_RETURN_IF_ERROR(writer->Close());
  stats->object_bytes = out->size();
  return Status::OK();
}

Status ExportTree(FileSystem* fs, std::string_view name, PersistentStore* store,
                  const ExportOptions& options, ExportStats* stats) {
  *stats = ExportStats();
  const Clock::time_point t0 = Clock::now();
  KVFS_RETURN_IF_ERROR(CheckTreeName(std::string(name)));
  const std::string target = options.as_tree.empty() ? std::string(name) : options.as_tree;
  KVFS_RETURN_IF_ERROR(CheckTreeName(target));
  const std::string object = target + std::string(TarballSuffix(options.compression));
  stats->object = object;
  std::unique_ptr<ObjectWriter> out;
  KVFS_RETURN_IF_ERROR(store->OpenWrite(object, &out));
  // The tarball is written on a thread of its own while the tree is read
  // (docs/benchmarks.md, "Export").
  out = std::make_unique<store::BackgroundWriter>(std::move(out));
  ObjectWriter* sink = out.get();
  std::optional<progress::CountingWriter> counted;
  if (options.progress != nullptr) {
    if (options.progress->Snapshot().total_bytes == 0) {
      Attributes top;
      TreeState state;
      if (fs->Lookup(kRootIno, name, &top).ok() &&
          fs->trees()->ReadTreeState(top.ino, &state).ok()) {
        options.progress->SetTotal(state.bytes);
      }
    }
    sink = &counted.emplace(out.get(), options.progress);
  }
  KVFS_RETURN_IF_ERROR(WriteTree(fs, name, sink, options.compression, stats, target));
  if (options.before_commit) KVFS_RETURN_IF_ERROR(options.before_commit());
  KVFS_RETURN_IF_ERROR(out->Commit());
  // The new tarball is in place: older ones with another compression go.
  std::vector<ObjectInfo> objects;
  KVFS_RETURN_IF_ERROR(TarballsOf(store, target, &objects));
  for (const ObjectInfo& o : objects) {
    if (o.name != object) {
      Status s = store->Delete(o.name);
      if (!s.ok() && !s.IsNotFound()) return s;
      ++stats->removed_stale;
    }
  }
  stats->seconds = SecondsSince(t0);
  return Status::OK();
}

Status EvictTree(FileSystem* fs, std::string_view name, EvictStats* stats) {
  *stats = EvictStats();
  StatFsInfo before, after;
  KVFS_RETURN_IF_ERROR(fs->StatFs(&before));
  KVFS_RETURN_IF_ERROR(fs->trees()->DropTree(name, &stats->range));
  KVFS_RETURN_IF_ERROR(fs->StatFs(&after));
  stats->bytes = static_cast<int64_t>(before.used_bytes) - static_cast<int64_t>(after.used_bytes);
  stats->inodes =
      static_cast<int64_t>(before.used_inodes) - static_cast<int64_t>(after.used_inodes);
  return Status::OK();
}

Status CleanStagingDir(const std::string& staging_dir) {
  std::error_code ec;
  if (!std::filesystem::exists(staging_dir, ec)) return Status::OK();
  for (const auto& entry : std::filesystem::directory_iterator(staging_dir, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) {
      return Status::FromErrno(ec.value(),
                               "clean staging directory: remove " + entry.path().string());
    }
  }
  if (ec) return Status::FromErrno(ec.value(), "clean staging directory " + staging_dir);
  return Status::OK();
}

}  // namespace kvfs::ingest
