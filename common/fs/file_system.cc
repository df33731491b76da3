// FileSystemImpl: the POSIX operations over the schema in schema.h.
//
// Every mutation follows one pattern (RunLocked):
//   1. plan: read, without locks, the locations of every record it will
//      change (from the location cache when it has them) and turn them into
//      lock ids;
//   2. lock those ids (LockTable), plan again and retry if the set grew
//      (a concurrent rename moved something);
//   3. load, check and change records through a Transaction, commit it as
//      one write batch, unlock;
//   4. if durable, wait for the group commit (KVStore::Sync) outside locks.
#include "common/fs/file_system.h"
#include "common/fs/tree_lifecycle.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <limits>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "common/fs/block_scan.h"
#include "common/fs/inode_allocator.h"
#include "common/fs/location_cache.h"
#include "common/fs/lock_table.h"
#include "common/fs/schema.h"
#include "common/fs/transaction.h"
#include "common/fs/unstable_writes.h"

namespace kvfs {

using schema::Bucket;
using schema::Entry;
using schema::InodeLocation;
using schema::InodeRecord;

uint32_t FileTypeToMode(FileType t) {
  switch (t) {
    case FileType::kRegular:
      return S_IFREG;
    case FileType::kDirectory:
      return S_IFDIR;
    case FileType::kSymlink:
      return S_IFLNK;
    case FileType::kCharDevice:
      return S_IFCHR;
    case FileType::kBlockDevice:
      return S_IFBLK;
    case FileType::kFifo:
      return S_IFIFO;
    case FileType::kSocket:
      return S_IFSOCK;
  }
  return 0;
}

Timespec Now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return Timespec{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

NameHasher DefaultNameHasher() {
  return NameHasher{"xxh3-64", [](std::string_view s) { return XXH3_64bits(s.data(), s.size()); }};
}

namespace {

// Lock ids: one per entry bucket and one per detached inode. The tag keeps
// the two kinds apart.
uint64_t BucketLockId(Ino dir, uint64_t bucket) {
  return XXH3_64bits_withSeed(&bucket, sizeof(bucket), dir);
}
uint64_t DetachedLockId(Ino ino) { return ino * 0x9E3779B97F4A7C15ull + 0x5bd1e995; }

Status CheckName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty name");
  if (name.size() > kMaxNameLength) {
    return Status::FromErrno(ENAMETOOLONG, "name longer than 255 bytes");
  }
  if (name == "." || name == "..") return Status::InvalidArgument("'.' and '..' are reserved");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("name contains '/' or NUL");
  }
  return Status::OK();
}

// Errors that mean "not there" (the operation itself will report them), as
// opposed to failures of the store.
bool IsAbsence(const Status& s) {
  int e = s.posix_errno();
  return e == ENOENT || e == ENOTDIR || e == ESTALE || e == ENAMETOOLONG;
}

Status NotADirectory(Ino ino) {
  return Status::FromErrno(ENOTDIR, "inode " + std::to_string(ino) + " is not a directory");
}

uint64_t BlockCount(uint64_t size, uint32_t block_size) {
  return (size + block_size - 1) / block_size;
}

// The change of a record's usage since it counted `old_usage` bytes.
int64_t UsageDelta(uint64_t old_usage, const InodeRecord& r) {
  return static_cast<int64_t>(schema::UsageBytes(r)) - static_cast<int64_t>(old_usage);
}

void Touch(InodeRecord* r, Timespec now, bool modified) {
  r->ctime = now;
  if (modified) r->mtime = now;
  ++r->change;
}

// The root's entry for top-level directory `name` (inode `ino`, in `slot`),
// with its record made from `attrs` (mode, uid, gid, nlink, size, times,
// change; at least change 1).
Entry TopDirectoryEntry(const std::string& name, Ino ino, uint8_t slot, const Attributes& attrs) {
  Entry e;
  e.slot = slot;
  e.name = name;
  e.ino = ino;
  e.type = FileType::kDirectory;
  e.embedded = true;
  InodeRecord& r = e.record;
  r.type = FileType::kDirectory;
  r.mode = attrs.mode & 07777;
  r.uid = attrs.uid;
  r.gid = attrs.gid;
  r.nlink = attrs.nlink;
  r.size = attrs.size;
  r.atime = attrs.atime;
  r.mtime = attrs.mtime;
  r.ctime = attrs.ctime;
  r.change = std::max<uint64_t>(attrs.change, 1);
  r.inline_data = true;
  return e;
}

}  // namespace

// The core: its POSIX operations and its whole-tree operations on one store.
class FileSystemImpl final : public FileSystem, public TreeLifecycle {
 public:
  FileSystemImpl(const FileSystemOptions& options, std::unique_ptr<KVStore> store)
      : options_(options),
        store_(std::move(store)),
        allocator_(store_.get(), /*chunk=*/4096),
        locations_(options.location_cache_entries) {}

  Status Init();

  Status Lookup(Ino parent, std::string_view name, Attributes* out) override;
  Status GetAttr(Ino ino, Attributes* out) override;
  Status SetAttr(Ino ino, const SetAttrRequest& req, Attributes* out) override;
  Status Create(Ino parent, std::string_view name, const NewObject& obj, bool exclusive,
                Attributes* out) override {
    return MakeNode(parent, name, FileType::kRegular, obj, 0, {}, exclusive, out);
  }
  Status Mkdir(Ino parent, std::string_view name, const NewObject& obj, Attributes* out) override {
    return MakeNode(parent, name, FileType::kDirectory, obj, 0, {}, true, out);
  }
  Status Mknod(Ino parent, std::string_view name, FileType type, const NewObject& obj,
               uint64_t rdev, Attributes* out) override;
  Status Symlink(Ino parent, std::string_view name, std::string_view target, const NewObject& obj,
                 Attributes* out) override;
  Status Readlink(Ino ino, std::string* target) override;
  Status Link(Ino ino, Ino new_parent, std::string_view new_name, Attributes* out) override;
  Status Unlink(Ino parent, std::string_view name) override { return Remove(parent, name, false); }
  Status Rmdir(Ino parent, std::string_view name) override { return Remove(parent, name, true); }
  Status Rename(Ino parent, std::string_view name, Ino new_parent,
                std::string_view new_name) override;
  Status Read(Ino ino, uint64_t offset, size_t size, std::string* out, bool* eof) override;
  Status ReadStream(Ino ino, uint64_t offset, uint64_t length,
                    const std::function<Status(std::string_view)>& fn) override;
  Status Write(Ino ino, uint64_t offset, std::string_view data, Stability stability,
               Attributes* out) override;
  Status DataExtents(Ino ino, uint64_t offset,
                     const std::function<bool(uint64_t, uint64_t)>& fn) override;
  Status Fsync(Ino ino) override {
    if (options_.durable && unstable_.Durable(ino)) return Status::OK();
    return SyncStore();
  }
  Status Sync() override { return SyncStore(); }
  Status OpenFile(Ino ino) override;
  Status CloseFile(Ino ino) override;
  Status ReadDir(Ino dir, uint64_t cookie, const std::function<bool(const DirEntry&)>& fn,
                 bool* eof) override;
  Status CookieOf(Ino dir, std::string_view name, uint64_t* cookie) override;
  Status StatFs(StatFsInfo* out) override;
  KVStore* store() override { return store_.get(); }
  TreeLifecycle* trees() override { return this; }

  // TreeLifecycle.
  Status ReserveRange(uint64_t at_least, uint64_t* range) override;
  Status PublishTree(const LoadedTree& tree, uint64_t* replaced_range) override;
  Status AbandonRange(uint64_t range) override;
  Status DropTree(std::string_view name, uint64_t* dropped_range) override;
  Status AddStubs(const std::vector<StubTree>& stubs, std::vector<Ino>* inos) override;
  Status BeginFill(Ino top, uint64_t* high_water) override;
  Status FinishFill(const LoadedTree& tree) override;
  Status ResetToStub(Ino top) override;
  Status ReadTreeState(Ino top, TreeState* out) override;

 private:
  uint64_t BucketOfName(std::string_view name) const {
    return schema::BucketOf(options_.name_hasher.hash(name));
  }

  // Where `ino`'s record lives (ESTALE if absent), from the location cache
  // if it has it and `use_cache`; a detached record itself is read only if
  // `need_record`.
  Status ReadLocation(Ino ino, InodeLocation* loc, bool skip_data, bool need_record = true,
                      bool use_cache = true) const;
  // Reads the record of `ino` wherever it lives; *parent is set for
  // embedded records.
  Status ReadRecord(Ino ino, InodeRecord* rec, Ino* parent, bool skip_data) const;
  // ReadRecord for a regular file: EISDIR for a directory, EINVAL for others.
  Status ReadFileRecord(Ino ino, InodeRecord* rec, bool skip_data) const;
  // Adds the lock id of the detached record `name` in `dir` would have, if
  // the name exists. Fails only on I/O errors.
  Status AddNamedLock(Ino dir, std::string_view name, std::vector<uint64_t>* ids) const;
  // Lock id of the record of `ino` as currently stored; ESTALE if absent.
  Status RecordLockId(Ino ino, uint64_t* id) const;
  // Adds the lock id of `ino`'s record as currently stored.
  Status AddRecordLock(Ino ino, std::vector<uint64_t>* ids) const;
  // Adds the lock ids an entry change in <dir, bucket> needs: the bucket and
  // the directory's own record (its size, times and link count change).
  Status AddEntryLocks(Ino dir, uint64_t bucket, std::vector<uint64_t>* ids) const;
  // Loads directory `dir`'s record and its bucket `bucket` for update
  // (ENOTDIR if `dir` is not a directory).
  Status LoadDirBucket(Transaction* txn, Ino dir, uint64_t bucket, InodeRecord** dir_rec,
                       Bucket** b) const;
  // Attributes of an entry found in a bucket (reads a detached record).
  Status EntryAttributes(Ino dir, const Entry& e, bool skip_data, Attributes* out) const;
  Attributes ToAttributes(Ino ino, const InodeRecord& r, Ino parent) const;

  // Runs `body` under the locks `plan` names; see the file comment.
  Status RunLocked(const std::function<Status(std::vector<uint64_t>*)>& plan,
                   const std::function<Status()>& body, bool sync);

  Status MakeNode(Ino parent, std::string_view name, FileType type, const NewObject& obj,
                  uint64_t rdev, std::string_view target, bool exclusive, Attributes* out);
  Status Remove(Ino parent, std::string_view name, bool directory);
  // Drops one link of `ino` (whose entry the caller already removed); deletes
  // it, or keeps it as an orphan while open, when no link is left.
  Status DropLink(Transaction* txn, Ino ino, const InodeRecord& rec_in_entry, bool embedded,
                  Timespec now);
  // Deletes every key of a non-directory object.
  void DeleteObject(Transaction* txn, Ino ino, const InodeRecord& rec);
  // Directory `dir` has no entries.
  Status CheckEmpty(Ino dir) const;
  // The range a new object of `type` in `parent` belongs to; sets *new_range
  // when it needs a range of its own (a top-level directory).
  uint64_t RangeForChild(Ino parent, FileType type, bool* new_range) const;
  Status CheckNotAncestor(Ino dir, Ino of) const;

  Status WriteData(Transaction* txn, Ino ino, InodeRecord* rec, uint64_t offset,
                   std::string_view data);
  Status Truncate(Transaction* txn, Ino ino, InodeRecord* rec, uint64_t size);
  Status MoveInlineToBlocks(Transaction* txn, Ino ino, InodeRecord* rec);
  Status ReadBlocks(Ino ino, uint64_t offset, size_t n, std::string* out) const;

  bool IsOpen(Ino ino) {
    std::lock_guard<std::mutex> l(open_mu_);
    return open_.count(ino) > 0;
  }
  Status CleanOrphans();
  // Syncs the store (group commit), recording which unstable writes that
  // made durable. Every sync of the core goes through here.
  Status SyncStore() { return unstable_.Sync(store_.get()); }

  // Runs `body` holding every lock stripe, so that no mutation is in flight
  // (whole-range operations), then waits for durability.
  Status RunExclusive(const std::function<Status()>& body);
  Status ReadRangeRecord(uint64_t range, schema::RangeRecord* r) const;
  // Writes `range`'s record alone and synced, before a bulk loader writes
  // any key of the range: a machine crash must never leave keys that no
  // record accounts for (ReserveRange, BeginFill).
  Status WriteRangeRecordSynced(uint64_t range, const schema::RangeRecord& r);
  // Adds to the transaction's batch the deletion of every key of `range`
  // (entries, inodes, blocks, orphans, usage counters, whose values leave
  // the totals) and either deletes its record or keeps it with owner 0, so
  // the number is never reused. Requires no mutation in flight.
  Status DropRangeKeys(Transaction* txn, uint64_t range, bool keep_record);
  // Adds range deletes of every key of `range` in the entries and blocks
  // columns, of its orphan keys, and of its inode index from `first_index`
  // on (RangeBegin(range): all of it).
  static void DeleteRangeContents(WriteBatch* b, uint64_t range, Ino first_index);
  // Reads a usage counter (0 if absent).
  Status ReadCounter(const std::string& key, int64_t* value) const;
  // The top-level directory `top`'s range record; EINVAL if it is not one.
  Status ReadTopRange(Ino top, schema::RangeRecord* r) const;
  // Adds to the batch what ResetToStub writes (see there). Requires no
  // mutation in flight.
  Status ResetRangeToStub(Transaction* txn, Ino top, schema::RangeRecord* record);
  // Deletes what interrupted bulk loads left behind (loading ranges) and
  // empties stubs whose fill was interrupted.
  Status CleanLoadingRanges();

  FileSystemOptions options_;  // layout fields are set from the superblock
  std::unique_ptr<KVStore> store_;
  InodeAllocator allocator_;
  LockTable locks_;
  // Exact copy of part of the inode index (location_cache.h).
  mutable LocationCache locations_;
  // Which inodes may have unstable writes not yet synced (Fsync).
  UnstableWrites unstable_;
  // Serializes renames that move a directory to another parent, so the
  // ancestor check cannot race with another such rename.
  std::mutex rename_mu_;
  std::mutex open_mu_;
  std::unordered_map<Ino, uint32_t> open_;  // ino -> open count
};

Status ListDirectory(FileSystem* fs, Ino dir, std::vector<DirEntry>* out) {
  out->clear();
  uint64_t cookie = kStartCookie;
  for (bool eof = false; !eof;) {
    KVFS_RETURN_IF_ERROR(fs->ReadDir(
        dir, cookie,
        [&](const DirEntry& e) {
          cookie = e.cookie;
          out->push_back(e);
          return true;
        },
        &eof));
  }
  return Status::OK();
}

Status FileSystem::Open(const FileSystemOptions& options, std::unique_ptr<KVStore> store,
                        std::unique_ptr<FileSystem>* out) {
  if (options.block_size == 0 || options.inline_threshold > options.block_size) {
    return Status::InvalidArgument("inline_threshold must not exceed block_size (> 0)");
  }
  if (!options.name_hasher.hash || options.name_hasher.name.empty()) {
    return Status::InvalidArgument("name hasher missing");
  }
  auto fs = std::make_unique<FileSystemImpl>(options, std::move(store));
  KVFS_RETURN_IF_ERROR(fs->Init());
  *out = std::move(fs);
  return Status::OK();
}

Status FileSystemImpl::Init() {
  std::string value;
  Status s = store_->Get(Column::kMeta, schema::kSuperKey, &value);
  if (s.ok()) {
    schema::Superblock sb;
    KVFS_RETURN_IF_ERROR(schema::DecodeSuperblock(value, &sb));
    if (sb.hash_name != options_.name_hasher.name) {
      return Status::InvalidArgument("store was created with name hash " + sb.hash_name +
                                     ", opened with " + options_.name_hasher.name);
    }
    if (sb.block_size == 0 || sb.inline_threshold > sb.block_size) {
      return Status::Corruption("superblock has inline threshold " +
                                std::to_string(sb.inline_threshold) + " and block size " +
                                std::to_string(sb.block_size));
    }
    // The layout parameters are the store's, whatever the options say.
    options_.inline_threshold = sb.inline_threshold;
    options_.block_size = sb.block_size;
  } else if (s.IsNotFound()) {
    // Format, but only an empty store.
    for (int c = 0; c < kNumColumns; ++c) {
      auto it = store_->NewIterator(static_cast<Column>(c), IteratorOptions());
      it->Seek("");
      KVFS_RETURN_IF_ERROR(it->status());
      if (it->Valid()) {
        return Status::Corruption("store is not empty but has no KVFS superblock");
      }
    }
    schema::Superblock sb{options_.name_hasher.name, options_.inline_threshold,
                          options_.block_size};
    InodeRecord root;
    root.type = FileType::kDirectory;
    root.mode = 0755;
    root.nlink = 2;
    root.atime = root.mtime = root.ctime = Now();
    root.change = 1;
    InodeLocation loc;
    loc.detached = true;
    loc.record = root;
    WriteBatch b;
    b.Put(Column::kMeta, schema::kSuperKey, schema::EncodeSuperblock(sb));
    b.Put(Column::kMeta, schema::RangeKey(0),
          schema::EncodeRangeRecord(schema::RangeRecord{kRootIno, 2}));
    b.Put(Column::kInodes, schema::InodeKey(kRootIno), schema::EncodeLocation(loc));
    b.Add(Column::kMeta, schema::UsageInodesKey(0), 1);
    b.Add(Column::kMeta, schema::TotalInodesKey(), 1);
    WriteOptions wo;
    wo.sync = true;
    KVFS_RETURN_IF_ERROR(store_->Write(wo, b));
  } else {
    return s;
  }
  KVFS_RETURN_IF_ERROR(CleanLoadingRanges());
  KVFS_RETURN_IF_ERROR(allocator_.Recover());
  return CleanOrphans();
}

Status FileSystemImpl::CleanOrphans() {
  // Open files do not survive a restart: delete every orphan left behind.
  std::vector<Ino> orphans;
  {
    IteratorOptions io;
    io.upper_bound = std::string(schema::kOrphanPrefix) + std::string(8, '\xff');
    auto it = store_->NewIterator(Column::kMeta, io);
    for (it->Seek(schema::kOrphanPrefix); it->Valid(); it->Next()) {
      Ino ino;
      if (schema::ParseOrphanKey(it->key(), &ino)) orphans.push_back(ino);
    }
    KVFS_RETURN_IF_ERROR(it->status());
  }
  for (Ino ino : orphans) {
    Transaction txn(store_.get(), &locations_);
    InodeRecord* rec;
    Status s = txn.GetRecordForUpdate(ino, &rec);
    if (s.ok()) {
      DeleteObject(&txn, ino, *rec);
    } else if (s.posix_errno() != ESTALE) {
      return s;
    }
    txn.batch()->Delete(Column::kMeta, schema::OrphanKey(ino));
    KVFS_RETURN_IF_ERROR(txn.Commit());
  }
  return orphans.empty() ? Status::OK() : SyncStore();
}

// ---- Reads ----------------------------------------------------------------------

Status FileSystemImpl::ReadLocation(Ino ino, InodeLocation* loc, bool skip_data, bool need_record,
                                    bool use_cache) const {
  LocationCache::Location cached;
  if (use_cache && locations_.Find(ino, &cached) && (!cached.detached || !need_record)) {
    *loc = InodeLocation();
    loc->detached = cached.detached;
    loc->parent = cached.parent;
    loc->bucket = cached.bucket;
    return Status::OK();
  }
  const uint64_t ticket = locations_.BeginFill(ino);
  std::string value;
  Status s = store_->Get(Column::kInodes, schema::InodeKey(ino), &value);
  if (s.IsNotFound()) {
    return Status::FromErrno(ESTALE, "inode " + std::to_string(ino) + " does not exist");
  }
  KVFS_RETURN_IF_ERROR(s);
  KVFS_RETURN_IF_ERROR(schema::DecodeLocation(value, loc, skip_data));
  locations_.Fill(ino, ticket, {loc->detached, loc->parent, loc->bucket});
  return Status::OK();
}

Status FileSystemImpl::ReadRecord(Ino ino, InodeRecord* rec, Ino* parent, bool skip_data) const {
  // Readers take no locks: a concurrent rename or link can move the record
  // between reading its location and reading its bucket. Then the location
  // is read again from the store (the cache may not know yet), a few times.
  constexpr int kAttempts = 4;
  for (int attempt = 1;; ++attempt) {
    InodeLocation loc;
    KVFS_RETURN_IF_ERROR(ReadLocation(ino, &loc, skip_data, /*need_record=*/true,
                                      /*use_cache=*/attempt == 1));
    if (loc.detached) {
      *rec = std::move(loc.record);
      *parent = 0;
      return Status::OK();
    }
    std::string value;
    Status s = store_->Get(Column::kEntries, schema::EntryKey(loc.parent, loc.bucket), &value);
    Bucket b;
    if (s.ok()) s = schema::DecodeBucket(value, &b, skip_data);
    if (!s.ok() && !s.IsNotFound()) return s;
    Entry* e = s.ok() ? b.FindIno(ino) : nullptr;
    if (e != nullptr && e->embedded) {
      *rec = std::move(e->record);
      *parent = loc.parent;
      return Status::OK();
    }
    if (attempt == kAttempts) {
      return Status::FromErrno(ESTALE, "inode " + std::to_string(ino) + " moved or was removed");
    }
  }
}

Status FileSystemImpl::ReadFileRecord(Ino ino, InodeRecord* rec, bool skip_data) const {
  Ino parent;
  KVFS_RETURN_IF_ERROR(ReadRecord(ino, rec, &parent, skip_data));
  if (rec->type == FileType::kDirectory) return Status::FromErrno(EISDIR, "is a directory");
  if (rec->type != FileType::kRegular) return Status::InvalidArgument("not a regular file");
  return Status::OK();
}

Status FileSystemImpl::AddNamedLock(Ino dir, std::string_view name,
                                    std::vector<uint64_t>* ids) const {
  Attributes a;
  Status s = const_cast<FileSystemImpl*>(this)->Lookup(dir, name, &a);
  if (s.ok()) ids->push_back(DetachedLockId(a.ino));
  return s.ok() || IsAbsence(s) ? Status::OK() : s;
}

Status FileSystemImpl::AddRecordLock(Ino ino, std::vector<uint64_t>* ids) const {
  uint64_t id;
  KVFS_RETURN_IF_ERROR(RecordLockId(ino, &id));
  ids->push_back(id);
  return Status::OK();
}

Status FileSystemImpl::AddEntryLocks(Ino dir, uint64_t bucket, std::vector<uint64_t>* ids) const {
  KVFS_RETURN_IF_ERROR(AddRecordLock(dir, ids));
  ids->push_back(BucketLockId(dir, bucket));
  return Status::OK();
}

Status FileSystemImpl::LoadDirBucket(Transaction* txn, Ino dir, uint64_t bucket,
                                     InodeRecord** dir_rec, Bucket** b) const {
  KVFS_RETURN_IF_ERROR(txn->GetRecordForUpdate(dir, dir_rec));
  if ((*dir_rec)->type != FileType::kDirectory) return NotADirectory(dir);
  return txn->GetBucket(dir, bucket, b);
}

Status FileSystemImpl::RecordLockId(Ino ino, uint64_t* id) const {
  InodeLocation loc;
  KVFS_RETURN_IF_ERROR(ReadLocation(ino, &loc, /*skip_data=*/true, /*need_record=*/false));
  *id = loc.detached ? DetachedLockId(ino) : BucketLockId(loc.parent, loc.bucket);
  return Status::OK();
}

Attributes FileSystemImpl::ToAttributes(Ino ino, const InodeRecord& r, Ino parent) const {
  Attributes a;
  a.ino = ino;
  a.type = r.type;
  a.mode = r.mode;
  a.uid = r.uid;
  a.gid = r.gid;
  a.nlink = r.nlink;
  a.size = r.size;
  a.rdev = r.rdev;
  a.atime = r.atime;
  a.mtime = r.mtime;
  a.ctime = r.ctime;
  a.change = r.change;
  a.space_used = schema::SpaceUsed(r, options_.block_size);
  a.parent = parent;
  return a;
}

Status FileSystemImpl::EntryAttributes(Ino dir, const Entry& e, bool skip_data,
                                       Attributes* out) const {
  if (e.embedded) {
    *out = ToAttributes(e.ino, e.record, dir);
    return Status::OK();
  }
  InodeRecord rec;
  Ino parent;
  KVFS_RETURN_IF_ERROR(ReadRecord(e.ino, &rec, &parent, skip_data));
  *out = ToAttributes(e.ino, rec, dir);
  return Status::OK();
}

Status FileSystemImpl::GetAttr(Ino ino, Attributes* out) {
  InodeRecord rec;
  Ino parent;
  KVFS_RETURN_IF_ERROR(ReadRecord(ino, &rec, &parent, /*skip_data=*/true));
  if (ino == kRootIno) parent = kRootIno;
  *out = ToAttributes(ino, rec, parent);
  return Status::OK();
}

Status FileSystemImpl::Lookup(Ino parent, std::string_view name, Attributes* out) {
  if (name == ".") {
    KVFS_RETURN_IF_ERROR(GetAttr(parent, out));
    return out->type == FileType::kDirectory ? Status::OK() : NotADirectory(parent);
  }
  if (name == "..") {
    Attributes dir;
    KVFS_RETURN_IF_ERROR(GetAttr(parent, &dir));
    if (dir.type != FileType::kDirectory) return NotADirectory(parent);
    return GetAttr(dir.parent, out);
  }
  if (name.size() > kMaxNameLength) {
    return Status::FromErrno(ENAMETOOLONG, "name longer than 255 bytes");
  }
  uint64_t bucket = BucketOfName(name);
  std::string value;
  Status s = store_->Get(Column::kEntries, schema::EntryKey(parent, bucket), &value);
  if (s.ok()) {
    Bucket b;
    KVFS_RETURN_IF_ERROR(schema::DecodeBucket(value, &b, /*skip_data=*/true));
    if (Entry* e = b.Find(name)) return EntryAttributes(parent, *e, true, out);
  } else if (!s.IsNotFound()) {
    return s;
  }
  // Not found: say why.
  Attributes dir;
  KVFS_RETURN_IF_ERROR(GetAttr(parent, &dir));
  if (dir.type != FileType::kDirectory) return NotADirectory(parent);
  return Status::NotFound("'" + std::string(name) + "' not found");
}

Status FileSystemImpl::Readlink(Ino ino, std::string* target) {
  InodeRecord rec;
  Ino parent;
  KVFS_RETURN_IF_ERROR(ReadRecord(ino, &rec, &parent, /*skip_data=*/false));
  if (rec.type != FileType::kSymlink) return Status::InvalidArgument("not a symbolic link");
  *target = std::move(rec.data);
  return Status::OK();
}

Status FileSystemImpl::Read(Ino ino, uint64_t offset, size_t size, std::string* out, bool* eof) {
  out->clear();
  InodeRecord rec;
  KVFS_RETURN_IF_ERROR(ReadFileRecord(ino, &rec, /*skip_data=*/false));
  if (offset >= rec.size) {
    *eof = true;
    return Status::OK();
  }
  size_t n = static_cast<size_t>(std::min<uint64_t>(size, rec.size - offset));
  *eof = offset + n >= rec.size;
  if (rec.inline_data) {
    out->assign(n, '\0');
    if (offset < rec.data.size()) {
      size_t have = std::min<size_t>(n, rec.data.size() - offset);
      std::memcpy(out->data(), rec.data.data() + offset, have);
    }
    return Status::OK();
  }
  return ReadBlocks(ino, offset, n, out);
}

Status FileSystemImpl::ReadBlocks(Ino ino, uint64_t offset, size_t n, std::string* out) const {
  const uint32_t bs = options_.block_size;
  out->assign(n, '\0');
  if (n == 0) return Status::OK();
  uint64_t first = offset / bs;
  uint64_t last = (offset + n - 1) / bs;
  auto copy_block = [&](uint64_t block, std::string_view data) {
    uint64_t block_start = block * bs;
    uint64_t from = std::max(offset, block_start);
    uint64_t to = std::min<uint64_t>(offset + n, block_start + data.size());
    if (from < to) {
      std::memcpy(out->data() + (from - offset), data.data() + (from - block_start), to - from);
    }
  };
  if (first == last) {
    std::string data;
    Status s = store_->Get(Column::kBlocks, schema::BlockKey(ino, first), &data);
    if (s.IsNotFound()) return Status::OK();
    KVFS_RETURN_IF_ERROR(s);
    copy_block(first, data);
    return Status::OK();
  }
  return ScanBlocks(store_.get(), ino, first, last + 1, [&](uint64_t block, std::string_view data) {
    copy_block(block, data);
    return true;
  });
}

Status FileSystemImpl::ReadStream(Ino ino, uint64_t offset, uint64_t length,
                                  const std::function<Status(std::string_view)>& fn) {
  InodeRecord rec;
  KVFS_RETURN_IF_ERROR(ReadFileRecord(ino, &rec, /*skip_data=*/false));
  if (offset >= rec.size) return Status::OK();
  const uint64_t end = offset + std::min(length, rec.size - offset);
  // Zeros for holes and for what follows a short block or inline contents,
  // handed out in pieces of up to 64 KiB.
  static const std::string kZeros(64 << 10, '\0');
  uint64_t pos = offset;  // the next byte fn gets
  auto zeros_to = [&](uint64_t to) {
    for (; pos < to; pos += std::min<uint64_t>(to - pos, kZeros.size())) {
      KVFS_RETURN_IF_ERROR(
          fn(std::string_view(kZeros).substr(0, std::min<uint64_t>(to - pos, kZeros.size()))));
    }
    return Status::OK();
  };
  if (rec.inline_data) {
    if (pos < rec.data.size()) {
      const uint64_t to = std::min<uint64_t>(end, rec.data.size());
      KVFS_RETURN_IF_ERROR(fn(std::string_view(rec.data).substr(pos, to - pos)));
      pos = to;
    }
    return zeros_to(end);
  }
  const uint32_t bs = options_.block_size;
  Status fn_status;
  KVFS_RETURN_IF_ERROR(ScanBlocks(
      store_.get(), ino, offset / bs, BlockCount(end, bs),
      [&](uint64_t block, std::string_view data) {
        const uint64_t start = block * bs;
        const uint64_t to = std::min(end, start + data.size());
        if (to <= pos) return true;
        fn_status = zeros_to(start);
        if (fn_status.ok()) {
          fn_status = fn(data.substr(pos - start, to - pos));
          pos = to;
        }
        return fn_status.ok();
      },
      /*fill_cache=*/false));
  KVFS_RETURN_IF_ERROR(fn_status);
  return zeros_to(end);
}

Status FileSystemImpl::DataExtents(Ino ino, uint64_t offset,
                                   const std::function<bool(uint64_t, uint64_t)>& fn) {
  InodeRecord rec;
  KVFS_RETURN_IF_ERROR(ReadFileRecord(ino, &rec, /*skip_data=*/true));
  if (offset >= rec.size) return Status::OK();
  if (rec.inline_data) {
    fn(offset, rec.size - offset);
    return Status::OK();
  }
  // Coalesce consecutive stored bytes into runs; a short block ends one.
  const uint32_t bs = options_.block_size;
  uint64_t run_start = 0, run_end = 0;  // empty while run_start == run_end
  bool stopped = false;
  KVFS_RETURN_IF_ERROR(
      ScanBlocks(store_.get(), ino, offset / bs, BlockCount(rec.size, bs),
                 [&](uint64_t block, std::string_view data) {
                   const uint64_t start = std::max(offset, block * bs);
                   const uint64_t end = std::min(rec.size, block * bs + data.size());
                   if (end <= start) return true;
                   if (start != run_end) {
                     if (run_end > run_start && !fn(run_start, run_end - run_start)) {
                       stopped = true;
                       return false;
                     }
                     run_start = start;
                   }
                   run_end = end;
                   return true;
                 }));
  if (!stopped && run_end > run_start) fn(run_start, run_end - run_start);
  return Status::OK();
}

Status FileSystemImpl::ReadDir(Ino dir, uint64_t cookie,
                               const std::function<bool(const DirEntry&)>& fn, bool* eof) {
  *eof = false;
  Attributes attrs;
  KVFS_RETURN_IF_ERROR(GetAttr(dir, &attrs));
  if (attrs.type != FileType::kDirectory) return NotADirectory(dir);
  uint64_t start_bucket = 0;
  uint8_t start_slot = 0;
  bool skip_through_slot = cookie >= kFirstCookie;
  if (skip_through_slot) schema::SplitCookie(cookie, &start_bucket, &start_slot);

  IteratorOptions io;
  io.upper_bound = schema::DirEnd(dir);
  auto it = store_->NewIterator(Column::kEntries, io);
  Bucket b;
  DirEntry de;
  for (it->Seek(schema::EntryKey(dir, start_bucket)); it->Valid(); it->Next()) {
    Ino key_dir;
    uint64_t bucket;
    if (!schema::ParseEntryKey(it->key(), &key_dir, &bucket) || key_dir != dir) {
      return Status::Corruption("bad entry key");
    }
    KVFS_RETURN_IF_ERROR(schema::DecodeBucket(it->value(), &b, /*skip_data=*/true));
    for (const Entry& e : b.entries) {
      if (skip_through_slot && bucket == start_bucket && e.slot <= start_slot) continue;
      de.name = e.name;
      Status s = EntryAttributes(dir, e, true, &de.attrs);
      if (s.posix_errno() == ESTALE) continue;  // hard link removed meanwhile
      KVFS_RETURN_IF_ERROR(s);
      de.cookie = schema::MakeCookie(bucket, e.slot);
      if (!fn(de)) return Status::OK();
    }
  }
  KVFS_RETURN_IF_ERROR(it->status());
  *eof = true;
  return Status::OK();
}

Status FileSystemImpl::CookieOf(Ino dir, std::string_view name, uint64_t* cookie) {
  uint64_t bucket = BucketOfName(name);
  std::string value;
  Status s = store_->Get(Column::kEntries, schema::EntryKey(dir, bucket), &value);
  if (s.IsNotFound()) return Status::NotFound("'" + std::string(name) + "' not found");
  KVFS_RETURN_IF_ERROR(s);
  Bucket b;
  KVFS_RETURN_IF_ERROR(schema::DecodeBucket(value, &b, /*skip_data=*/true));
  Entry* e = b.Find(name);
  if (e == nullptr) return Status::NotFound("'" + std::string(name) + "' not found");
  *cookie = schema::MakeCookie(bucket, e->slot);
  return Status::OK();
}

Status FileSystemImpl::StatFs(StatFsInfo* out) {
  int64_t bytes, inodes;
  KVFS_RETURN_IF_ERROR(ReadCounter(schema::TotalBytesKey(), &bytes));
  KVFS_RETURN_IF_ERROR(ReadCounter(schema::TotalInodesKey(), &inodes));
  out->total_bytes = options_.capacity_bytes;
  out->total_inodes = options_.capacity_inodes;
  out->used_bytes = static_cast<uint64_t>(std::max<int64_t>(bytes, 0));
  out->used_inodes = static_cast<uint64_t>(std::max<int64_t>(inodes, 0));
  out->block_size = 4096;
  out->max_name_length = kMaxNameLength;
  return Status::OK();
}

// ---- Mutations --------------------------------------------------------------------

Status FileSystemImpl::RunLocked(const std::function<Status(std::vector<uint64_t>*)>& plan,
                                 const std::function<Status()>& body, bool sync) {
  for (int attempt = 0;; ++attempt) {
    std::vector<uint64_t> ids;
    KVFS_RETURN_IF_ERROR(plan(&ids));
    std::sort(ids.begin(), ids.end());
    Status s;
    {
      LockTable::MultiLock lock(&locks_, ids);
      std::vector<uint64_t> again;
      KVFS_RETURN_IF_ERROR(plan(&again));
      std::sort(again.begin(), again.end());
      if (!std::includes(ids.begin(), ids.end(), again.begin(), again.end())) {
        if (attempt > 1000) return Status::FromErrno(EAGAIN, "lock plan keeps changing");
        continue;  // something moved between plan and lock: plan again
      }
      s = body();
    }
    if (s.ok() && sync && options_.durable) s = SyncStore();
    return s;
  }
}

uint64_t FileSystemImpl::RangeForChild(Ino parent, FileType type, bool* new_range) const {
  *new_range = false;
  if (parent == kRootIno) {
    if (type == FileType::kDirectory) *new_range = true;
    return 0;
  }
  return schema::RangeOf(parent);
}

Status FileSystemImpl::MakeNode(Ino parent, std::string_view name, FileType type,
                                const NewObject& obj, uint64_t rdev, std::string_view target,
                                bool exclusive, Attributes* out) {
  KVFS_RETURN_IF_ERROR(CheckName(name));
  const uint64_t bucket = BucketOfName(name);
  auto plan = [&](std::vector<uint64_t>* ids) { return AddEntryLocks(parent, bucket, ids); };
  auto body = [&]() -> Status {
    Transaction txn(store_.get(), &locations_);
    InodeRecord* dir;
    Bucket* b;
    KVFS_RETURN_IF_ERROR(LoadDirBucket(&txn, parent, bucket, &dir, &b));
    if (Entry* e = b->Find(name)) {
      if (exclusive || type != FileType::kRegular) {
        return Status::Exists("'" + std::string(name) + "' exists");
      }
      if (e->type == FileType::kDirectory) return Status::FromErrno(EISDIR, "is a directory");
      if (e->type != FileType::kRegular) {
        return Status::Exists("'" + std::string(name) + "' exists and is not a regular file");
      }
      return EntryAttributes(parent, *e, true, out);
    }
    int slot = b->FreeSlot();
    if (slot < 0) return Status::FromErrno(ENOSPC, "too many names with the same hash");

    bool new_range;
    uint64_t range = RangeForChild(parent, type, &new_range);
    Ino ino;
    if (new_range) {
      schema::RangeRecord rr;
      KVFS_RETURN_IF_ERROR(allocator_.NewRange(&range, &rr));
      ino = rr.owner;
      txn.batch()->Put(Column::kMeta, schema::RangeKey(range), schema::EncodeRangeRecord(rr));
    } else {
      KVFS_RETURN_IF_ERROR(allocator_.Allocate(range, &ino));
    }
    const Timespec now = Now();
    Entry e;
    e.slot = static_cast<uint8_t>(slot);
    e.name.assign(name);
    e.ino = ino;
    e.type = type;
    e.embedded = true;
    InodeRecord& r = e.record;
    r.type = type;
    r.mode = obj.mode & 07777;
    r.uid = obj.uid;
    r.gid = obj.gid;
    r.nlink = type == FileType::kDirectory ? 2 : 1;
    r.rdev = rdev;
    r.atime = r.mtime = r.ctime = now;
    r.change = 1;
    r.inline_data = true;
    if (type == FileType::kSymlink) {
      r.data.assign(target);
      r.size = target.size();
    }
    *out = ToAttributes(ino, r, parent);
    txn.AddUsage(range, static_cast<int64_t>(schema::UsageBytes(r)), 1);
    b->Insert(std::move(e));
    txn.MarkBucketDirty(parent, bucket);
    txn.SetEmbeddedLocation(ino, parent, bucket);
    if (type == FileType::kDirectory) ++dir->nlink;
    ++dir->size;
    Touch(dir, now, true);
    return txn.Commit();
  };
  return RunLocked(plan, body, /*sync=*/true);
}

Status FileSystemImpl::Mknod(Ino parent, std::string_view name, FileType type, const NewObject& obj,
                             uint64_t rdev, Attributes* out) {
  if (type == FileType::kRegular || type == FileType::kDirectory || type == FileType::kSymlink) {
    return Status::InvalidArgument("mknod makes only devices, FIFOs and sockets");
  }
  return MakeNode(parent, name, type, obj, rdev, {}, true, out);
}

Status FileSystemImpl::Symlink(Ino parent, std::string_view name, std::string_view target,
                               const NewObject& obj, Attributes* out) {
  if (target.empty()) return Status::NotFound("empty symlink target");
  if (target.size() > kMaxSymlinkLength) {
    return Status::FromErrno(ENAMETOOLONG, "symlink target longer than 4095 bytes");
  }
  return MakeNode(parent, name, FileType::kSymlink, obj, 0, target, true, out);
}

Status FileSystemImpl::Link(Ino ino, Ino new_parent, std::string_view new_name, Attributes* out) {
  KVFS_RETURN_IF_ERROR(CheckName(new_name));
  const uint64_t bucket = BucketOfName(new_name);
  auto plan = [&](std::vector<uint64_t>* ids) {
    KVFS_RETURN_IF_ERROR(AddRecordLock(ino, ids));
    ids->push_back(DetachedLockId(ino));  // its record may become detached
    return AddEntryLocks(new_parent, bucket, ids);
  };
  auto body = [&]() -> Status {
    Transaction txn(store_.get(), &locations_);
    InodeRecord* dir;
    Bucket* b;
    KVFS_RETURN_IF_ERROR(LoadDirBucket(&txn, new_parent, bucket, &dir, &b));
    InodeRecord* rec;
    KVFS_RETURN_IF_ERROR(txn.GetRecordForUpdate(ino, &rec));
    if (rec->type == FileType::kDirectory) {
      return Status::FromErrno(EPERM, "hard links to directories are not allowed");
    }
    if (rec->nlink == 0) return Status::NotFound("file was removed");
    bool new_range;
    if (RangeForChild(new_parent, rec->type, &new_range) != schema::RangeOf(ino)) {
      return Status::FromErrno(EXDEV, "link would cross an inode range (top-level directory)");
    }
    if (b->Find(new_name)) return Status::Exists("'" + std::string(new_name) + "' exists");
    int slot = b->FreeSlot();
    if (slot < 0) return Status::FromErrno(ENOSPC, "too many names with the same hash");

    const Timespec now = Now();
    ++rec->nlink;
    Touch(rec, now, false);
    InodeLocation* loc;
    KVFS_RETURN_IF_ERROR(txn.GetLocation(ino, &loc));
    if (!loc->detached) {
      // Move the record out of its entry: several names now share it.
      InodeRecord moved = *rec;
      Bucket* old_bucket;
      KVFS_RETURN_IF_ERROR(txn.GetBucket(loc->parent, loc->bucket, &old_bucket));
      Entry* old_entry = old_bucket->FindIno(ino);
      old_entry->embedded = false;
      old_entry->record = InodeRecord();
      txn.MarkBucketDirty(loc->parent, loc->bucket);
      txn.SetDetached(ino, moved);
      KVFS_RETURN_IF_ERROR(txn.GetRecordForUpdate(ino, &rec));
    }
    Entry e;
    e.slot = static_cast<uint8_t>(slot);
    e.name.assign(new_name);
    e.ino = ino;
    e.type = rec->type;
    e.embedded = false;
    b->Insert(std::move(e));
    txn.MarkBucketDirty(new_parent, bucket);
    ++dir->size;
    Touch(dir, now, true);
    *out = ToAttributes(ino, *rec, new_parent);
    return txn.Commit();
  };
  return RunLocked(plan, body, /*sync=*/true);
}

void FileSystemImpl::DeleteObject(Transaction* txn, Ino ino, const InodeRecord& rec) {
  if (!rec.inline_data) txn->DeleteBlocks(ino, 0, BlockCount(rec.size, options_.block_size));
  txn->EraseLocation(ino);
  txn->AddUsage(schema::RangeOf(ino), -static_cast<int64_t>(schema::UsageBytes(rec)), -1);
}

Status FileSystemImpl::DropLink(Transaction* txn, Ino ino, const InodeRecord& rec_in_entry,
                                bool embedded, Timespec now) {
  InodeRecord rec;
  if (embedded) {
    rec = rec_in_entry;
  } else {
    InodeRecord* detached;
    KVFS_RETURN_IF_ERROR(txn->GetRecordForUpdate(ino, &detached));
    rec = *detached;
  }
  if (rec.type == FileType::kDirectory) {
    // Only empty directories get here (checked by the caller).
    txn->EraseLocation(ino);
    txn->AddUsage(schema::RangeOf(ino), 0, -1);
    return Status::OK();
  }
  --rec.nlink;
  Touch(&rec, now, false);
  if (rec.nlink == 0) {
    if (IsOpen(ino)) {
      txn->SetDetached(ino, rec);
      txn->batch()->Put(Column::kMeta, schema::OrphanKey(ino), "");
    } else {
      DeleteObject(txn, ino, rec);
    }
  } else {
    txn->SetDetached(ino, rec);
  }
  return Status::OK();
}

Status FileSystemImpl::CheckEmpty(Ino dir) const {
  IteratorOptions io;
  io.upper_bound = schema::DirEnd(dir);
  auto it = store_->NewIterator(Column::kEntries, io);
  it->Seek(schema::DirBegin(dir));
  if (it->Valid()) return Status::FromErrno(ENOTEMPTY, "directory not empty");
  return it->status();
}

Status FileSystemImpl::Remove(Ino parent, std::string_view name, bool directory) {
  KVFS_RETURN_IF_ERROR(CheckName(name));
  const uint64_t bucket = BucketOfName(name);
  auto plan = [&](std::vector<uint64_t>* ids) {
    KVFS_RETURN_IF_ERROR(AddEntryLocks(parent, bucket, ids));
    return AddNamedLock(parent, name, ids);
  };
  auto body = [&]() -> Status {
    Transaction txn(store_.get(), &locations_);
    InodeRecord* dir;
    Bucket* b;
    KVFS_RETURN_IF_ERROR(LoadDirBucket(&txn, parent, bucket, &dir, &b));
    Entry* e = b->Find(name);
    if (e == nullptr) return Status::NotFound("'" + std::string(name) + "' not found");
    if (directory && e->type != FileType::kDirectory) return NotADirectory(e->ino);
    if (!directory && e->type == FileType::kDirectory) {
      return Status::FromErrno(EISDIR, "is a directory (use rmdir)");
    }
    if (directory) KVFS_RETURN_IF_ERROR(CheckEmpty(e->ino));
    Entry removed = *e;
    b->Remove(name);
    txn.MarkBucketDirty(parent, bucket);
    const Timespec now = Now();
    KVFS_RETURN_IF_ERROR(DropLink(&txn, removed.ino, removed.record, removed.embedded, now));
    if (directory) --dir->nlink;
    --dir->size;
    Touch(dir, now, true);
    return txn.Commit();
  };
  return RunLocked(plan, body, /*sync=*/true);
}

Status FileSystemImpl::CheckNotAncestor(Ino dir, Ino of) const {
  // Walks up from `of` to the root; `dir` must not be on the way.
  Ino cur = of;
  for (int depth = 0; cur != kRootIno; ++depth) {
    if (cur == dir) {
      return Status::InvalidArgument("cannot move a directory into its own subtree");
    }
    if (depth > 1000000) return Status::Corruption("directory parent chain has a cycle");
    InodeLocation loc;
    KVFS_RETURN_IF_ERROR(ReadLocation(cur, &loc, true, /*need_record=*/false));
    if (loc.detached) return Status::Corruption("directory without a parent entry");
    cur = loc.parent;
  }
  return Status::OK();
}

Status FileSystemImpl::Rename(Ino parent, std::string_view name, Ino new_parent,
                              std::string_view new_name) {
  KVFS_RETURN_IF_ERROR(CheckName(name));
  KVFS_RETURN_IF_ERROR(CheckName(new_name));
  const uint64_t src_bucket = BucketOfName(name);
  const uint64_t dst_bucket = BucketOfName(new_name);

  // A directory moving to another parent takes the rename mutex first (so
  // the ancestor check is stable), then the record locks.
  std::unique_lock<std::mutex> rename_lock(rename_mu_, std::defer_lock);
  if (parent != new_parent) {
    Attributes src;
    Status s = Lookup(parent, name, &src);
    if (s.ok() && src.type == FileType::kDirectory) rename_lock.lock();
    if (!s.ok() && !IsAbsence(s)) return s;
  }
  auto plan = [&](std::vector<uint64_t>* ids) {
    KVFS_RETURN_IF_ERROR(AddEntryLocks(parent, src_bucket, ids));
    KVFS_RETURN_IF_ERROR(AddEntryLocks(new_parent, dst_bucket, ids));
    KVFS_RETURN_IF_ERROR(AddNamedLock(parent, name, ids));
    return AddNamedLock(new_parent, new_name, ids);
  };
  auto body = [&]() -> Status {
    Transaction txn(store_.get(), &locations_);
    InodeRecord* src_dir;
    InodeRecord* dst_dir;
    Bucket* sb;
    Bucket* db;
    KVFS_RETURN_IF_ERROR(LoadDirBucket(&txn, parent, src_bucket, &src_dir, &sb));
    KVFS_RETURN_IF_ERROR(LoadDirBucket(&txn, new_parent, dst_bucket, &dst_dir, &db));
    Entry* src = sb->Find(name);
    if (src == nullptr) return Status::NotFound("'" + std::string(name) + "' not found");
    const bool is_dir = src->type == FileType::kDirectory;
    if (is_dir && parent != new_parent && !rename_lock.owns_lock()) {
      return Status::FromErrno(EAGAIN, "source changed type during rename");
    }
    // Inode ranges stay contiguous: an object never leaves its range.
    bool new_range;
    uint64_t dst_range = RangeForChild(new_parent, src->type, &new_range);
    bool range_ok = new_range
                        ? schema::IsRangeOwner(src->ino)
                        : !schema::IsRangeOwner(src->ino) && schema::RangeOf(src->ino) == dst_range;
    if (!range_ok) {
      return Status::FromErrno(EXDEV,
                               "rename would move an object out of its inode range "
                               "(top-level directory)");
    }
    if (is_dir && parent != new_parent)
      KVFS_RETURN_IF_ERROR(CheckNotAncestor(src->ino, new_parent));

    Entry* dst = db->Find(new_name);
    if (dst != nullptr && dst->ino == src->ino) return Status::OK();  // same object: no-op
    const Timespec now = Now();
    int64_t dst_size_delta = 1;
    if (dst != nullptr) {
      if (is_dir && dst->type != FileType::kDirectory) return NotADirectory(dst->ino);
      if (!is_dir && dst->type == FileType::kDirectory) {
        return Status::FromErrno(EISDIR, "target is a directory");
      }
      if (dst->type == FileType::kDirectory) {
        KVFS_RETURN_IF_ERROR(CheckEmpty(dst->ino));
        --dst_dir->nlink;
      }
      Entry replaced = *dst;
      db->Remove(new_name);
      KVFS_RETURN_IF_ERROR(DropLink(&txn, replaced.ino, replaced.record, replaced.embedded, now));
      dst_size_delta = 0;
    }
    // Move the entry.
    Entry moved = *src;
    sb->Remove(name);
    txn.MarkBucketDirty(parent, src_bucket);
    int slot = db->FreeSlot();
    if (slot < 0) return Status::FromErrno(ENOSPC, "too many names with the same hash");
    moved.slot = static_cast<uint8_t>(slot);
    moved.name.assign(new_name);
    const Ino ino = moved.ino;
    const bool embedded = moved.embedded;
    db->Insert(std::move(moved));
    txn.MarkBucketDirty(new_parent, dst_bucket);
    if (embedded) txn.SetEmbeddedLocation(ino, new_parent, dst_bucket);
    InodeRecord* rec;
    KVFS_RETURN_IF_ERROR(txn.GetRecordForUpdate(ino, &rec));
    Touch(rec, now, false);
    if (is_dir && parent != new_parent) {
      --src_dir->nlink;
      ++dst_dir->nlink;
    }
    // src_dir and dst_dir are the same record when parent == new_parent.
    --src_dir->size;
    dst_dir->size += dst_size_delta;
    Touch(src_dir, now, true);
    if (new_parent != parent) Touch(dst_dir, now, true);
    return txn.Commit();
  };
  return RunLocked(plan, body, /*sync=*/true);
}

// ---- File contents ------------------------------------------------------------------

Status FileSystemImpl::MoveInlineToBlocks(Transaction* txn, Ino ino, InodeRecord* rec) {
  // inline_threshold <= block_size, so inline contents fit in block 0.
  rec->stored = rec->data.size();
  if (!rec->data.empty()) txn->PutBlock(ino, 0, std::move(rec->data));
  rec->data.clear();
  rec->inline_data = false;
  return Status::OK();
}

Status FileSystemImpl::WriteData(Transaction* txn, Ino ino, InodeRecord* rec, uint64_t offset,
                                 std::string_view data) {
  if (offset > kMaxFileSize || data.size() > kMaxFileSize - offset) {
    return Status::FromErrno(EFBIG, "write past the maximum file size");
  }
  const uint64_t end = offset + data.size();
  const uint64_t new_size = std::max(rec->size, end);
  if (data.empty()) return Status::OK();
  if (new_size <= options_.inline_threshold) {
    if (rec->data.size() < new_size) rec->data.resize(new_size, '\0');
    std::memcpy(rec->data.data() + offset, data.data(), data.size());
  } else {
    if (rec->inline_data) KVFS_RETURN_IF_ERROR(MoveInlineToBlocks(txn, ino, rec));
    const uint32_t bs = options_.block_size;
    for (uint64_t block = offset / bs; block * bs < end; ++block) {
      uint64_t block_start = block * bs;
      uint64_t from = std::max(offset, block_start);
      uint64_t to = std::min<uint64_t>(end, block_start + bs);
      // Nothing is stored at or past the size, so only a block that starts
      // below it can hold bytes (read for a partial write or the count).
      std::string buf;
      if (block_start < rec->size) KVFS_RETURN_IF_ERROR(txn->GetBlock(ino, block, &buf));
      const uint64_t before = buf.size();
      if (from == block_start && to == block_start + bs) buf.clear();
      if (buf.size() < to - block_start) buf.resize(to - block_start, '\0');
      std::memcpy(buf.data() + (from - block_start), data.data() + (from - offset), to - from);
      rec->stored += buf.size() - before;
      txn->PutBlock(ino, block, std::move(buf));
    }
  }
  rec->size = new_size;
  return Status::OK();
}

Status FileSystemImpl::Truncate(Transaction* txn, Ino ino, InodeRecord* rec, uint64_t size) {
  if (size > kMaxFileSize) return Status::FromErrno(EFBIG, "size past the maximum file size");
  const uint32_t bs = options_.block_size;
  const uint64_t old_size = rec->size;
  if (size <= options_.inline_threshold) {
    if (!rec->inline_data) {
      // size <= inline_threshold <= block_size: the contents are in block 0.
      std::string content;
      if (size > 0) KVFS_RETURN_IF_ERROR(txn->GetBlock(ino, 0, &content));
      content.resize(size, '\0');
      txn->DeleteBlocks(ino, 0, BlockCount(old_size, bs));
      rec->data = std::move(content);
      rec->inline_data = true;
      rec->stored = 0;
    } else {
      rec->data.resize(size, '\0');
    }
  } else if (rec->inline_data) {
    KVFS_RETURN_IF_ERROR(MoveInlineToBlocks(txn, ino, rec));
  } else if (size < old_size) {
    // Only the blocks that exist past the new end are visited.
    const uint64_t first = BlockCount(size, bs), end = BlockCount(old_size, bs);
    uint64_t freed;
    KVFS_RETURN_IF_ERROR(txn->StoredBytes(ino, first, end, &freed));
    txn->DeleteBlocks(ino, first, end);
    rec->stored -= std::min(freed, rec->stored);
    if (size % bs != 0) {
      // Cut the last block so a later extension reads zeros past `size`.
      std::string blk;
      KVFS_RETURN_IF_ERROR(txn->GetBlock(ino, size / bs, &blk));
      if (blk.size() > size % bs) {
        rec->stored -= std::min<uint64_t>(blk.size() - size % bs, rec->stored);
        blk.resize(size % bs);
        txn->PutBlock(ino, size / bs, std::move(blk));
      }
    }
  }
  rec->size = size;
  return Status::OK();
}

Status FileSystemImpl::Write(Ino ino, uint64_t offset, std::string_view data, Stability stability,
                             Attributes* out) {
  auto plan = [&](std::vector<uint64_t>* ids) { return AddRecordLock(ino, ids); };
  auto body = [&]() -> Status {
    Transaction txn(store_.get(), &locations_);
    InodeRecord* rec;
    KVFS_RETURN_IF_ERROR(txn.GetRecordForUpdate(ino, &rec));
    if (rec->type == FileType::kDirectory) return Status::FromErrno(EISDIR, "is a directory");
    if (rec->type != FileType::kRegular) return Status::InvalidArgument("not a regular file");
    const uint64_t old_usage = schema::UsageBytes(*rec);
    KVFS_RETURN_IF_ERROR(WriteData(&txn, ino, rec, offset, data));
    if (!data.empty()) Touch(rec, Now(), true);  // POSIX: a 0-byte write changes nothing
    txn.AddUsage(schema::RangeOf(ino), UsageDelta(old_usage, *rec), 0);
    InodeLocation* loc;
    KVFS_RETURN_IF_ERROR(txn.GetLocation(ino, &loc));
    *out = ToAttributes(ino, *rec, loc->detached ? 0 : loc->parent);
    return txn.Commit();
  };
  const bool stable = stability == Stability::kStable;
  Status s = RunLocked(plan, body, stable);
  // Noted even on failure: a failed Write may not be known to have applied
  // nothing, and a needless sync at the next Fsync costs only time.
  if (!stable) unstable_.Noted(ino);
  return s;
}

Status FileSystemImpl::SetAttr(Ino ino, const SetAttrRequest& req, Attributes* out) {
  auto plan = [&](std::vector<uint64_t>* ids) { return AddRecordLock(ino, ids); };
  auto body = [&]() -> Status {
    Transaction txn(store_.get(), &locations_);
    InodeRecord* rec;
    KVFS_RETURN_IF_ERROR(txn.GetRecordForUpdate(ino, &rec));
    const Timespec now = Now();
    if (req.size) {
      if (rec->type == FileType::kDirectory) return Status::FromErrno(EISDIR, "is a directory");
      if (rec->type != FileType::kRegular) return Status::InvalidArgument("not a regular file");
    }
    if (req.size && !(req.size_grow_only && *req.size <= rec->size)) {
      const uint64_t old_usage = schema::UsageBytes(*rec);
      KVFS_RETURN_IF_ERROR(Truncate(&txn, ino, rec, *req.size));
      txn.AddUsage(schema::RangeOf(ino), UsageDelta(old_usage, *rec), 0);
      rec->mtime = now;
    }
    if (req.mode) rec->mode = *req.mode & 07777;
    if (req.uid) rec->uid = *req.uid;
    if (req.gid) rec->gid = *req.gid;
    if (req.atime_now)
      rec->atime = now;
    else if (req.atime)
      rec->atime = *req.atime;
    if (req.mtime_now)
      rec->mtime = now;
    else if (req.mtime)
      rec->mtime = *req.mtime;
    Touch(rec, now, false);
    InodeLocation* loc;
    KVFS_RETURN_IF_ERROR(txn.GetLocation(ino, &loc));
    *out = ToAttributes(ino, *rec, ino == kRootIno ? kRootIno : loc->detached ? 0 : loc->parent);
    return txn.Commit();
  };
  return RunLocked(plan, body, /*sync=*/true);
}

// ---- Open files ----------------------------------------------------------------------

Status FileSystemImpl::OpenFile(Ino ino) {
  {
    std::lock_guard<std::mutex> l(open_mu_);
    ++open_[ino];
  }
  Attributes a;
  Status s = GetAttr(ino, &a);
  if (!s.ok()) {
    std::lock_guard<std::mutex> l(open_mu_);
    if (--open_[ino] == 0) open_.erase(ino);
  }
  return s;
}

Status FileSystemImpl::CloseFile(Ino ino) {
  {
    std::lock_guard<std::mutex> l(open_mu_);
    auto it = open_.find(ino);
    if (it == open_.end()) return Status::InvalidArgument("file is not open");
    if (--it->second > 0) return Status::OK();
    open_.erase(it);
  }
  // Last close: delete the file if it was unlinked while open.
  auto plan = [&](std::vector<uint64_t>* ids) {
    ids->push_back(DetachedLockId(ino));
    return Status::OK();
  };
  bool deleted = false;
  auto body = [&]() -> Status {
    if (IsOpen(ino)) return Status::OK();  // reopened meanwhile
    Transaction txn(store_.get(), &locations_);
    InodeLocation* loc;
    Status s = txn.GetLocation(ino, &loc);
    if (s.posix_errno() == ESTALE) return Status::OK();
    KVFS_RETURN_IF_ERROR(s);
    if (!loc->detached || loc->record.nlink > 0) return Status::OK();
    DeleteObject(&txn, ino, loc->record);
    txn.batch()->Delete(Column::kMeta, schema::OrphanKey(ino));
    deleted = true;
    return txn.Commit();
  };
  KVFS_RETURN_IF_ERROR(RunLocked(plan, body, /*sync=*/false));
  return deleted && options_.durable ? SyncStore() : Status::OK();
}

// ---- Whole top-level directories ----------------------------------------------------

Status FileSystemImpl::RunExclusive(const std::function<Status()>& body) {
  Status s;
  {
    LockTable::MultiLock all(&locks_);
    s = body();
    // Whole-tree changes delete and add index keys by ranges and bulk loads.
    locations_.Clear();
  }
  if (s.ok() && options_.durable) s = SyncStore();
  return s;
}

Status FileSystemImpl::ReadCounter(const std::string& key, int64_t* value) const {
  std::string v;
  Status s = store_->Get(Column::kMeta, key, &v);
  if (s.IsNotFound()) {
    *value = 0;
    return Status::OK();
  }
  KVFS_RETURN_IF_ERROR(s);
  *value = DecodeCounter(v);
  return Status::OK();
}

Status FileSystemImpl::WriteRangeRecordSynced(uint64_t range, const schema::RangeRecord& r) {
  WriteBatch b;
  b.Put(Column::kMeta, schema::RangeKey(range), schema::EncodeRangeRecord(r));
  WriteOptions wo;
  wo.sync = true;
  return store_->Write(wo, b);
}

Status FileSystemImpl::ReadRangeRecord(uint64_t range, schema::RangeRecord* r) const {
  std::string value;
  Status s = store_->Get(Column::kMeta, schema::RangeKey(range), &value);
  if (s.IsNotFound()) {
    return Status::InvalidArgument("inode range " + std::to_string(range) + " has no record");
  }
  KVFS_RETURN_IF_ERROR(s);
  return schema::DecodeRangeRecord(value, r);
}

void FileSystemImpl::DeleteRangeContents(WriteBatch* b, uint64_t range, Ino first_index) {
  const Ino begin = schema::RangeBegin(range);
  const Ino end = schema::RangeEnd(range);
  b->DeleteRange(Column::kEntries, schema::DirBegin(begin), schema::DirBegin(end));
  b->DeleteRange(Column::kInodes, schema::InodeKey(first_index), schema::InodeKey(end));
  b->DeleteRange(Column::kBlocks, schema::BlockKey(begin, 0), schema::BlockKey(end, 0));
  b->DeleteRange(Column::kMeta, schema::OrphanKey(begin), schema::OrphanKey(end));
}

Status FileSystemImpl::DropRangeKeys(Transaction* txn, uint64_t range, bool keep_record) {
  WriteBatch* b = txn->batch();
  DeleteRangeContents(b, range, schema::RangeBegin(range));
  // No mutation is in flight, so the counters are exact: move them out of
  // the totals.
  int64_t bytes, inodes;
  KVFS_RETURN_IF_ERROR(ReadCounter(schema::UsageBytesKey(range), &bytes));
  KVFS_RETURN_IF_ERROR(ReadCounter(schema::UsageInodesKey(range), &inodes));
  b->Delete(Column::kMeta, schema::UsageBytesKey(range));
  b->Delete(Column::kMeta, schema::UsageInodesKey(range));
  if (bytes != 0) b->Add(Column::kMeta, schema::TotalBytesKey(), -bytes);
  if (inodes != 0) b->Add(Column::kMeta, schema::TotalInodesKey(), -inodes);
  if (keep_record) {
    schema::RangeRecord r;
    KVFS_RETURN_IF_ERROR(ReadRangeRecord(range, &r));
    r.owner = 0;
    r.loading = false;
    b->Put(Column::kMeta, schema::RangeKey(range), schema::EncodeRangeRecord(r));
  } else {
    b->Delete(Column::kMeta, schema::RangeKey(range));
  }
  return Status::OK();
}

Status FileSystemImpl::CleanLoadingRanges() {
  std::vector<uint64_t> loading, filling;
  {
    IteratorOptions io;
    io.upper_bound = schema::RangeKey(std::numeric_limits<uint64_t>::max());
    auto it = store_->NewIterator(Column::kMeta, io);
    for (it->Seek(schema::kRangePrefix); it->Valid(); it->Next()) {
      uint64_t range;
      schema::RangeRecord r;
      if (!schema::ParseRangeKey(it->key(), &range)) continue;
      KVFS_RETURN_IF_ERROR(schema::DecodeRangeRecord(it->value(), &r));
      if (r.loading) loading.push_back(range);
      if (r.filling) filling.push_back(range);
    }
    KVFS_RETURN_IF_ERROR(it->status());
  }
  for (uint64_t range : loading) {
    // Nothing of a loading range was ever visible: its number may be reused.
    Transaction txn(store_.get(), &locations_);
    KVFS_RETURN_IF_ERROR(DropRangeKeys(&txn, range, /*keep_record=*/false));
    KVFS_RETURN_IF_ERROR(txn.Commit());
  }
  for (uint64_t range : filling) {
    // The fill never finished: back to the empty stub it started from.
    Transaction txn(store_.get(), &locations_);
    schema::RangeRecord r;
    KVFS_RETURN_IF_ERROR(ResetRangeToStub(&txn, schema::RangeOwnerIno(range), &r));
    KVFS_RETURN_IF_ERROR(txn.Commit());
  }
  return loading.empty() && filling.empty() ? Status::OK() : SyncStore();
}

Status FileSystemImpl::ReserveRange(uint64_t at_least, uint64_t* range) {
  uint64_t r;
  KVFS_RETURN_IF_ERROR(allocator_.ReserveRange(at_least, &r));
  schema::RangeRecord record;
  record.owner = schema::RangeOwnerIno(r);
  record.high_water = 2;
  record.loading = true;
  KVFS_RETURN_IF_ERROR(WriteRangeRecordSynced(r, record));
  *range = r;
  return Status::OK();
}

Status FileSystemImpl::AbandonRange(uint64_t range) {
  return RunExclusive([&]() -> Status {
    schema::RangeRecord r;
    KVFS_RETURN_IF_ERROR(ReadRangeRecord(range, &r));
    if (!r.loading) {
      return Status::InvalidArgument("inode range " + std::to_string(range) + " is not loading");
    }
    Transaction txn(store_.get(), &locations_);
    KVFS_RETURN_IF_ERROR(DropRangeKeys(&txn, range, /*keep_record=*/false));
    return txn.Commit();
  });
}

Status FileSystemImpl::PublishTree(const LoadedTree& tree, uint64_t* replaced_range) {
  if (replaced_range != nullptr) *replaced_range = 0;
  KVFS_RETURN_IF_ERROR(CheckName(tree.name));
  if (tree.attrs.type != FileType::kDirectory) {
    return Status::InvalidArgument("a loaded tree's top must be a directory");
  }
  if (tree.high_water < 2 || tree.high_water > schema::kLocalMask + 1) {
    return Status::InvalidArgument("bad high-water mark for a loaded tree");
  }
  const uint64_t bucket = BucketOfName(tree.name);
  const Ino owner = schema::RangeOwnerIno(tree.range);
  return RunExclusive([&]() -> Status {
    schema::RangeRecord range_record;
    KVFS_RETURN_IF_ERROR(ReadRangeRecord(tree.range, &range_record));
    if (!range_record.loading) {
      return Status::InvalidArgument("inode range " + std::to_string(tree.range) +
                                     " is not loading");
    }
    Transaction txn(store_.get(), &locations_);
    InodeRecord* root;
    KVFS_RETURN_IF_ERROR(txn.GetRecordForUpdate(kRootIno, &root));
    Bucket* b;
    KVFS_RETURN_IF_ERROR(txn.GetBucket(kRootIno, bucket, &b));
    Entry* existing = b->Find(tree.name);
    uint8_t slot;
    if (existing != nullptr) {
      if (!tree.replace) return Status::Exists("'" + tree.name + "' exists");
      if (existing->type != FileType::kDirectory || !schema::IsRangeOwner(existing->ino)) {
        return Status::Exists("'" + tree.name + "' exists and is not a top-level directory");
      }
      const uint64_t old_range = schema::RangeOf(existing->ino);
      KVFS_RETURN_IF_ERROR(DropRangeKeys(&txn, old_range, /*keep_record=*/true));
      if (replaced_range != nullptr) *replaced_range = old_range;
      slot = existing->slot;  // readdir cookies of the root stay valid
      b->Remove(tree.name);
    } else {
      int free_slot = b->FreeSlot();
      if (free_slot < 0) return Status::FromErrno(ENOSPC, "too many names with the same hash");
      slot = static_cast<uint8_t>(free_slot);
      ++root->nlink;
      ++root->size;
    }
    b->Insert(TopDirectoryEntry(tree.name, owner, slot, tree.attrs));
    txn.MarkBucketDirty(kRootIno, bucket);
    txn.SetEmbeddedLocation(owner, kRootIno, bucket);
    Touch(root, Now(), true);
    range_record.owner = owner;
    range_record.high_water = tree.high_water;
    range_record.loading = false;
    txn.batch()->Put(Column::kMeta, schema::RangeKey(tree.range),
                     schema::EncodeRangeRecord(range_record));
    txn.AddUsage(tree.range, static_cast<int64_t>(tree.bytes), static_cast<int64_t>(tree.inodes));
    return txn.Commit();
  });
}

Status FileSystemImpl::DropTree(std::string_view name, uint64_t* dropped_range) {
  KVFS_RETURN_IF_ERROR(CheckName(name));
  const uint64_t bucket = BucketOfName(name);
  return RunExclusive([&]() -> Status {
    Transaction txn(store_.get(), &locations_);
    InodeRecord* root;
    KVFS_RETURN_IF_ERROR(txn.GetRecordForUpdate(kRootIno, &root));
    Bucket* b;
    KVFS_RETURN_IF_ERROR(txn.GetBucket(kRootIno, bucket, &b));
    Entry* e = b->Find(name);
    if (e == nullptr) return Status::NotFound("'" + std::string(name) + "' not found");
    if (e->type != FileType::kDirectory || !schema::IsRangeOwner(e->ino)) {
      return Status::InvalidArgument("'" + std::string(name) + "' is not a top-level directory");
    }
    const uint64_t range = schema::RangeOf(e->ino);
    KVFS_RETURN_IF_ERROR(DropRangeKeys(&txn, range, /*keep_record=*/true));
    b->Remove(name);
    txn.MarkBucketDirty(kRootIno, bucket);
    --root->nlink;
    --root->size;
    Touch(root, Now(), true);
    if (dropped_range != nullptr) *dropped_range = range;
    return txn.Commit();
  });
}

// ---- Stubs ---------------------------------------------------------------------

Status FileSystemImpl::ReadTopRange(Ino top, schema::RangeRecord* r) const {
  if (!schema::IsRangeOwner(top)) {
    return Status::InvalidArgument("inode " + std::to_string(top) +
                                   " is not a top-level directory");
  }
  KVFS_RETURN_IF_ERROR(ReadRangeRecord(schema::RangeOf(top), r));
  if (r->owner != top || r->loading) {
    return Status::InvalidArgument("inode " + std::to_string(top) +
                                   " is not a top-level directory");
  }
  return Status::OK();
}

Status FileSystemImpl::AddStubs(const std::vector<StubTree>& stubs, std::vector<Ino>* inos) {
  if (inos != nullptr) inos->clear();
  for (const StubTree& t : stubs) KVFS_RETURN_IF_ERROR(CheckName(t.name));
  std::vector<Ino> created;
  Status s = RunExclusive([&]() -> Status {
    std::set<uint64_t> chosen;  // ranges given in `stubs`
    Transaction txn(store_.get(), &locations_);
    InodeRecord* root;
    KVFS_RETURN_IF_ERROR(txn.GetRecordForUpdate(kRootIno, &root));
    for (const StubTree& t : stubs) {
      const uint64_t bucket = BucketOfName(t.name);
      Bucket* b;
      KVFS_RETURN_IF_ERROR(txn.GetBucket(kRootIno, bucket, &b));
      if (b->Find(t.name) != nullptr) return Status::Exists("'" + t.name + "' exists");
      const int slot = b->FreeSlot();
      if (slot < 0) return Status::FromErrno(ENOSPC, "too many names with the same hash");
      uint64_t range = t.range;
      schema::RangeRecord record;
      if (range == 0) {
        KVFS_RETURN_IF_ERROR(allocator_.NewRange(&range, &record));
      } else {
        std::string existing;
        Status s = store_->Get(Column::kMeta, schema::RangeKey(range), &existing);
        if (!s.ok() && !s.IsNotFound()) return s;
        if (s.ok() || !chosen.insert(range).second) {
          return Status::Exists("inode range " + std::to_string(range) + " is in use");
        }
        KVFS_RETURN_IF_ERROR(allocator_.UseRange(range, &record));
      }
      record.stub = true;
      const Ino ino = schema::RangeOwnerIno(range);
      Attributes a;
      a.mode = t.obj.mode;
      a.uid = t.obj.uid;
      a.gid = t.obj.gid;
      a.nlink = 2;
      a.atime = a.mtime = a.ctime = t.mtime;
      b->Insert(TopDirectoryEntry(t.name, ino, static_cast<uint8_t>(slot), a));
      txn.MarkBucketDirty(kRootIno, bucket);
      txn.SetEmbeddedLocation(ino, kRootIno, bucket);
      txn.batch()->Put(Column::kMeta, schema::RangeKey(range), schema::EncodeRangeRecord(record));
      txn.AddUsage(range, 0, 1);
      ++root->nlink;
      ++root->size;
      created.push_back(ino);
    }
    if (stubs.empty()) return Status::OK();
    Touch(root, Now(), true);
    return txn.Commit();
  });
  if (s.ok() && inos != nullptr) *inos = std::move(created);
  return s;
}

Status FileSystemImpl::BeginFill(Ino top, uint64_t* high_water) {
  const uint64_t range = schema::RangeOf(top);
  return RunExclusive([&]() -> Status {
    return allocator_.WithRangeHeld(range, [&]() -> Status {
      schema::RangeRecord r;
      KVFS_RETURN_IF_ERROR(ReadTopRange(top, &r));
      if (!r.stub || r.filling) {
        return Status::InvalidArgument("top-level directory " + std::to_string(top) +
                                       (r.filling ? " is being filled already" : " is not a stub"));
      }
      r.filling = true;
      KVFS_RETURN_IF_ERROR(WriteRangeRecordSynced(range, r));
      *high_water = r.high_water;
      return Status::OK();
    });
  });
}

Status FileSystemImpl::FinishFill(const LoadedTree& tree) {
  if (tree.attrs.type != FileType::kDirectory) {
    return Status::InvalidArgument("a loaded tree's top must be a directory");
  }
  if (tree.high_water < 2 || tree.high_water > schema::kLocalMask + 1 || tree.inodes < 1) {
    return Status::InvalidArgument("bad high-water mark or usage for a loaded tree");
  }
  const Ino top = schema::RangeOwnerIno(tree.range);
  return RunExclusive([&]() -> Status {
    return allocator_.WithRangeHeld(tree.range, [&]() -> Status {
      schema::RangeRecord range_record;
      KVFS_RETURN_IF_ERROR(ReadTopRange(top, &range_record));
      if (!range_record.filling) {
        return Status::InvalidArgument("inode range " + std::to_string(tree.range) +
                                       " is not being filled");
      }
      Transaction txn(store_.get(), &locations_);
      InodeRecord* r;
      KVFS_RETURN_IF_ERROR(txn.GetRecordForUpdate(top, &r));
      r->mode = tree.attrs.mode & 07777;
      r->uid = tree.attrs.uid;
      r->gid = tree.attrs.gid;
      r->nlink = tree.attrs.nlink;
      r->size = tree.attrs.size;
      r->atime = tree.attrs.atime;
      r->mtime = tree.attrs.mtime;
      r->ctime = tree.attrs.ctime;
      r->change = std::max(r->change + 1, tree.attrs.change);
      range_record.high_water = std::max(range_record.high_water, tree.high_water);
      range_record.stub = false;
      range_record.filling = false;
      txn.batch()->Put(Column::kMeta, schema::RangeKey(tree.range),
                       schema::EncodeRangeRecord(range_record));
      txn.AddUsage(tree.range, static_cast<int64_t>(tree.bytes),
                   static_cast<int64_t>(tree.inodes) - 1);
      return txn.Commit();
    });
  });
}

Status FileSystemImpl::ResetRangeToStub(Transaction* txn, Ino top, schema::RangeRecord* record) {
  KVFS_RETURN_IF_ERROR(ReadTopRange(top, record));
  const uint64_t range = schema::RangeOf(top);
  WriteBatch* b = txn->batch();
  // Everything below the top; the top's own index key (local 1) stays.
  DeleteRangeContents(b, range, top + 1);
  int64_t bytes, inodes;
  KVFS_RETURN_IF_ERROR(ReadCounter(schema::UsageBytesKey(range), &bytes));
  KVFS_RETURN_IF_ERROR(ReadCounter(schema::UsageInodesKey(range), &inodes));
  // What is left is the top directory: no bytes, one inode.
  txn->AddUsage(range, -bytes, 1 - inodes);
  InodeRecord* r;
  KVFS_RETURN_IF_ERROR(txn->GetRecordForUpdate(top, &r));
  r->size = 0;
  r->nlink = 2;
  ++r->change;
  record->stub = true;
  record->filling = false;
  b->Put(Column::kMeta, schema::RangeKey(range), schema::EncodeRangeRecord(*record));
  return Status::OK();
}

Status FileSystemImpl::ResetToStub(Ino top) {
  return RunExclusive([&]() -> Status {
    return allocator_.WithRangeHeld(schema::RangeOf(top), [&]() -> Status {
      Transaction txn(store_.get(), &locations_);
      schema::RangeRecord r;
      KVFS_RETURN_IF_ERROR(ResetRangeToStub(&txn, top, &r));
      return txn.Commit();
    });
  });
}

Status FileSystemImpl::ReadTreeState(Ino top, TreeState* out) {
  schema::RangeRecord r;
  KVFS_RETURN_IF_ERROR(ReadTopRange(top, &r));
  *out = TreeState();
  out->range = schema::RangeOf(top);
  out->stub = r.stub;
  out->filling = r.filling;
  out->high_water = r.high_water;
  int64_t bytes, inodes;
  KVFS_RETURN_IF_ERROR(ReadCounter(schema::UsageBytesKey(out->range), &bytes));
  KVFS_RETURN_IF_ERROR(ReadCounter(schema::UsageInodesKey(out->range), &inodes));
  out->bytes = static_cast<uint64_t>(std::max<int64_t>(bytes, 0));
  out->inodes = static_cast<uint64_t>(std::max<int64_t>(inodes, 0));
  return Status::OK();
}

}  // namespace kvfs
