// libkvfs-kv-leveldb.so: the LevelDB backend, TableFS's original store.
//
// Layout: one LevelDB database in the store's directory (spec.path). LevelDB
// has no column families, so every key is stored with a one-byte prefix, the
// Column's number (0 meta, 1 entries, 2 inodes, 3 blocks): each column is a
// contiguous key range of its own and keeps its byte order. Iterators strip
// the prefix and stop at their column's end.
//
// Durability: LevelDB has no call that syncs its log, and a synced write does
// not make earlier unsynced writes durable if a memtable switch started a new
// log file in between (the old log is closed without fsync). So no write is
// ever unsynced: every Write goes through a WriteQueue (group commit) whose
// leader turns the whole group of waiting batches into ONE leveldb::WriteBatch
// written with sync=true. Write therefore returns only once its batch is on
// stable storage, whatever opts.sync says, and Sync() has nothing left to do;
// concurrent writers share one fsync per group. LevelDB itself fsyncs the
// directory only for MANIFEST files, so the store's Env also fsyncs a new
// file's directory at the file's first Sync (a synced write into a fresh log
// file cannot lose the file's name) and after every rename (CURRENT).
//
// Concurrency: reads (Get, iterators, snapshots) go straight to LevelDB,
// which serves them concurrently with writes, each from one consistent
// version. Writes are serialized: the WriteQueue applies one group at a time
// and bulk-load commits take the same mutex (write_mu_), so a group may read
// the database and write what it computed without anyone writing in between.
//
// Emulated operations (LevelDB has neither merge operators nor range
// deletions), resolved while the group's batch is built:
// - Add(counter): the current value plus the delta, written as a Put of
//   EncodeCounter(sum). The current value is that left by the latest earlier
//   op of the same group on that key (an overlay of the keys put, deleted or
//   range-deleted so far in the group), else the database's (a point read).
// - DeleteRange: a Delete for every key the database holds in [begin, end) of
//   the column, found by a scan, plus a Delete for every key put earlier in the
//   group in that range. The scan reads every key and value in the range, so
//   its cost is O(keys and bytes in the range) reads, and the batch grows by
//   one Delete per key (RocksDB writes one tombstone). Later ops of the group
//   still apply after it, in order.
//
// Bulk loads (NewBulkLoader) append their keys to one leveldb::WriteBatch
// (keys and values encoded back to back, no per-key objects) that Commit()
// writes synced: one log record, so all or nothing after a crash. LevelDB
// cannot make several writes visible at once, nor adopt table files built
// elsewhere, so a load is held in memory whole: about its size while keys are
// added, and about twice that during Commit (the batch plus its copy in the
// memtable; reopening after a crash replays the record with a similar peak).
//
// Iterators, snapshots and bulk loaders must be destroyed before the store.
#include <fcntl.h>
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/filter_policy.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/slice.h>
#include <leveldb/status.h>
#include <leveldb/write_batch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "common/kv/error_iterator.h"
#include "common/kv/kv_plugin.h"
#include "common/kv/write_queue.h"
#include "common/plugin/plugin_options.h"

namespace kvfs {
namespace {

// The backend's name: the plugin's, Name()'s and the option reader's.
constexpr const char* kBackendName = "leveldb";

// Tuning of a store; the defaults follow those of the RocksDB backend where
// LevelDB has the same knob. Set from spec.options by OpenLevelDBStore.
struct LevelDBOptions {
  // Directory holding the database. Required.
  std::string path;
  // Create the database (and its directory) if missing; if false, a path
  // without a database gives NotFound.
  bool create_if_missing = true;
  // Size of the LRU cache of uncompressed data blocks ("block_cache_bytes").
  // LevelDB keeps index and filter blocks of open tables outside it.
  uint64_t block_cache_bytes = 256 << 20;
  // Memtable size ("write_buffer_bytes"); up to two exist at a time. LevelDB
  // accepts 64 KiB to 1 GiB.
  uint64_t write_buffer_bytes = 64 << 20;
  // Bloom filter bits per key ("bloom_bits_per_key"; ~1% false positives at
  // 10), for the whole database since LevelDB has one filter policy; 0: no
  // filters.
  int64_t bloom_bits_per_key = 10;
  // Target size of a table file ("max_file_size"), 1 MiB to 1 GiB. Bigger
  // than LevelDB's 2 MiB so that a large store needs fewer files, and the
  // table cache (max_open_files) covers more of it.
  uint64_t max_file_size = 32 << 20;
  // "snappy" or "none" ("compression").
  std::string compression = "snappy";
  // Table files kept open ("max_open_files"), 74 to 50000; each holds a file
  // descriptor and the table's index and filter blocks in memory.
  int64_t max_open_files = 1000;
  // Fail the open on a corrupt record in a log instead of skipping it and
  // replaying what follows ("paranoid_checks"). Every write is synced before
  // the next one starts, so only the last record can be torn by a crash, and
  // LevelDB treats a torn tail as the end of the log either way; corruption
  // elsewhere means damaged media, which should not be skipped silently.
  // Opening with false salvages such a store.
  bool paranoid_checks = true;
};

// LevelDB's status as ours: NotFound stays NotFound, Corruption becomes
// Corruption, anything else IOError; the message is `context` followed by
// LevelDB's text.
Status FromLevel(const leveldb::Status& s, std::string_view context) {
  if (s.ok()) return Status::OK();
  std::string msg(context);
  msg += ": ";
  msg += s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  return Status::IOError(msg);
}

// Conversions between our views and LevelDB's slices (no copies).
leveldb::Slice ToSlice(std::string_view s) { return leveldb::Slice(s.data(), s.size()); }
std::string_view ToView(const leveldb::Slice& s) { return std::string_view(s.data(), s.size()); }

// Whether c names one of the kNumColumns columns.
bool ValidColumn(Column c) { return static_cast<int>(c) < kNumColumns; }

// The one-byte prefix of column c's keys in the database.
char PrefixOf(Column c) { return static_cast<char>(static_cast<uint8_t>(c)); }

// Sets *out to the database key of `key` in column c.
void DbKey(Column c, std::string_view key, std::string* out) {
  out->assign(1, PrefixOf(c));
  out->append(key);
}

// The database key of `key` in column c.
std::string DbKey(Column c, std::string_view key) {
  std::string k;
  k.reserve(1 + key.size());
  DbKey(c, key, &k);
  return k;
}

// InvalidArgument if `batch` holds an op the store cannot apply: a bad
// column or a range whose begin lies after its end.
Status ValidateBatch(const WriteBatch& batch) {
  for (const auto& op : batch.ops()) {
    if (!ValidColumn(op.column)) return Status::InvalidArgument("leveldb store: bad column");
    if (op.type == WriteBatch::OpType::kDeleteRange && op.key > op.value) {
      return Status::InvalidArgument("DeleteRange: begin > end");
    }
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Env: directory entries made durable.

// The directory part of a file name LevelDB passes ("." if it has none).
std::string DirOf(const std::string& fname) {
  const size_t slash = fname.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return fname.substr(0, slash);
}

// fsyncs directory `dir`, making the names in it durable.
leveldb::Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return leveldb::Status::IOError("open directory " + dir, std::strerror(errno));
  leveldb::Status s;
  if (fsync(fd) != 0) s = leveldb::Status::IOError("fsync directory " + dir, std::strerror(errno));
  close(fd);
  return s;
}

// A writable file that also fsyncs its directory on its first successful
// Sync, so that the file's name is as durable as the data synced into it.
class DirSyncingFile final : public leveldb::WritableFile {
 public:
  // Takes ownership of `file`, which lives in directory `dir`.
  DirSyncingFile(leveldb::WritableFile* file, std::string dir)
      : file_(file), dir_(std::move(dir)) {}

  leveldb::Status Append(const leveldb::Slice& data) override { return file_->Append(data); }
  leveldb::Status Close() override { return file_->Close(); }
  leveldb::Status Flush() override { return file_->Flush(); }

  leveldb::Status Sync() override {
    leveldb::Status s = file_->Sync();
    if (!s.ok() || dir_synced_) return s;
    s = SyncDir(dir_);
    if (s.ok()) dir_synced_ = true;
    return s;
  }

 private:
  const std::unique_ptr<leveldb::WritableFile> file_;
  const std::string dir_;
  bool dir_synced_ = false;  // LevelDB syncs a file from one thread at a time
};

// Env::Default() with durable directory entries: every writable file syncs
// its directory on its first Sync (DirSyncingFile), and a rename syncs the
// target's directory. LevelDB's own POSIX Env does that only for MANIFEST
// files, which left a window after a memtable switch where a synced write in
// the new log file could vanish with the file's name in a machine crash. The
// cost is one directory fsync per new log, table or MANIFEST file.
class DurableDirEnv final : public leveldb::EnvWrapper {
 public:
  DurableDirEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}

  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override {
    leveldb::WritableFile* file = nullptr;
    leveldb::Status s = target()->NewWritableFile(fname, &file);
    *result = s.ok() ? new DirSyncingFile(file, DirOf(fname)) : nullptr;
    return s;
  }

  leveldb::Status NewAppendableFile(const std::string& fname,
                                    leveldb::WritableFile** result) override {
    leveldb::WritableFile* file = nullptr;
    leveldb::Status s = target()->NewAppendableFile(fname, &file);
    *result = s.ok() ? new DirSyncingFile(file, DirOf(fname)) : nullptr;
    return s;
  }

  leveldb::Status RenameFile(const std::string& src, const std::string& target_name) override {
    leveldb::Status s = target()->RenameFile(src, target_name);
    if (!s.ok()) return s;
    return SyncDir(DirOf(target_name));
  }
};

// ---------------------------------------------------------------------------
// Reads.

// A LevelDB snapshot, released on destruction.
class LevelDBSnapshot final : public Snapshot {
 public:
  LevelDBSnapshot(leveldb::DB* db, const leveldb::Snapshot* snapshot)
      : db_(db), snapshot_(snapshot) {}
  ~LevelDBSnapshot() override { db_->ReleaseSnapshot(snapshot_); }

  LevelDBSnapshot(const LevelDBSnapshot&) = delete;
  LevelDBSnapshot& operator=(const LevelDBSnapshot&) = delete;

  // The database it was taken of.
  leveldb::DB* db() const { return db_; }
  // The LevelDB snapshot, for leveldb::ReadOptions.
  const leveldb::Snapshot* get() const { return snapshot_; }

 private:
  leveldb::DB* const db_;
  const leveldb::Snapshot* const snapshot_;
};

// Iterates one column: a LevelDB iterator over the whole database, kept
// within [prefix, end_) where end_ is the column's upper bound (the prefixed
// upper_bound, or the next column's prefix).
class LevelDBIterator final : public Iterator {
 public:
  // `path` names the store in error messages and must outlive the iterator.
  LevelDBIterator(leveldb::DB* db, const leveldb::Snapshot* snapshot, Column c,
                  const std::string& upper_bound, bool fill_cache, const std::string* path)
      : prefix_(PrefixOf(c)),
        end_(upper_bound.empty() ? std::string(1, static_cast<char>(PrefixOf(c) + 1))
                                 : DbKey(c, upper_bound)),
        path_(path) {
    leveldb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.fill_cache = fill_cache;
    iter_.reset(db->NewIterator(ro));
  }

  void Seek(std::string_view target) override {
    DbKey(static_cast<Column>(prefix_), target, &scratch_);
    iter_->Seek(ToSlice(scratch_));
    // Every key from here on is >= the column's prefix.
    valid_ = iter_->Valid() && BeforeEnd();
  }

  void SeekBefore(std::string_view target) override {
    // The last key < min(target, end of column), where an empty target means
    // the end of the column; keys at or past the upper bound are invisible,
    // so end_ acts as a smaller target.
    DbKey(static_cast<Column>(prefix_), target, &scratch_);
    const std::string& limit = target.empty() || end_ < scratch_ ? end_ : scratch_;
    iter_->Seek(ToSlice(limit));
    if (iter_->Valid()) {
      iter_->Prev();
    } else if (iter_->status().ok()) {
      iter_->SeekToLast();  // nothing at or after the limit
    }
    // Every key from here on is < limit <= end_.
    valid_ = iter_->Valid() && !iter_->key().empty() && iter_->key()[0] == prefix_;
  }

  void Next() override {
    if (!valid_) return;
    iter_->Next();
    valid_ = iter_->Valid() && BeforeEnd();
  }

  bool Valid() const override { return valid_; }

  std::string_view key() const override { return ToView(iter_->key()).substr(1); }
  std::string_view value() const override { return ToView(iter_->value()); }

  Status status() const override {
    const leveldb::Status s = iter_->status();
    if (s.ok()) return Status::OK();
    return FromLevel(s, "leveldb iterator at " + *path_);
  }

 private:
  // Whether the LevelDB iterator's key lies before end_.
  bool BeforeEnd() const { return iter_->key().compare(ToSlice(end_)) < 0; }

  const char prefix_;
  const std::string end_;
  const std::string* const path_;
  std::unique_ptr<leveldb::Iterator> iter_;
  bool valid_ = false;
  std::string scratch_;  // the last prefixed target
};

// ---------------------------------------------------------------------------
// Writes.

// Translates a group of WriteBatches into one leveldb::WriteBatch with the
// same effect, resolving Add and DeleteRange against the earlier ops of the
// group and the database (which must not change while this runs: the caller
// holds the store's write mutex). One translator per group.
class GroupTranslator {
 public:
  // `path` names the store in error messages.
  GroupTranslator(leveldb::DB* db, const std::string& path) : db_(db), path_(path) {}

  GroupTranslator(const GroupTranslator&) = delete;
  GroupTranslator& operator=(const GroupTranslator&) = delete;

  // Appends the ops of `batches`, in order, to *out. Errors (a bad op, a
  // failed read) leave *out partly filled: the caller must not write it.
  Status Translate(std::span<const WriteBatch* const> batches, leveldb::WriteBatch* out) {
    // The overlay is needed only to answer Add and DeleteRange.
    track_ = false;
    for (const WriteBatch* batch : batches) {
      KVFS_RETURN_IF_ERROR(ValidateBatch(*batch));
      for (const auto& op : batch->ops()) {
        if (op.type == WriteBatch::OpType::kAdd || op.type == WriteBatch::OpType::kDeleteRange) {
          track_ = true;
        }
      }
    }
    for (const WriteBatch* batch : batches) {
      for (const auto& op : batch->ops()) KVFS_RETURN_IF_ERROR(Apply(op, out));
    }
    return Status::OK();
  }

  // Number of LevelDB operations appended to the batch.
  uint64_t count() const { return count_; }

 private:
  // A key of the overlay: column and key (not prefixed). Orders as the
  // database keys do.
  using OverlayKey = std::pair<Column, std::string_view>;
  // What the group's earlier ops left at a key: a value, or nullopt if
  // deleted. Views point into the batches or into counters_.
  using Overlay = std::map<OverlayKey, std::optional<std::string_view>>;

  // A DeleteRange applied earlier in the group.
  struct Tombstone {
    Column column;
    std::string_view begin, end;
  };

  // Appends the LevelDB form of `op` to *out and records its effect.
  Status Apply(const WriteBatch::Op& op, leveldb::WriteBatch* out) {
    switch (op.type) {
      case WriteBatch::OpType::kPut:
        DbKey(op.column, op.key, &key_);
        out->Put(ToSlice(key_), ToSlice(op.value));
        ++count_;
        if (track_) overlay_[{op.column, op.key}] = std::string_view(op.value);
        return Status::OK();
      case WriteBatch::OpType::kDelete:
        DbKey(op.column, op.key, &key_);
        out->Delete(ToSlice(key_));
        ++count_;
        if (track_) overlay_[{op.column, op.key}] = std::nullopt;
        return Status::OK();
      case WriteBatch::OpType::kDeleteRange:
        return DeleteRange(op.column, op.key, op.value, out);
      case WriteBatch::OpType::kAdd: {
        int64_t current = 0;
        KVFS_RETURN_IF_ERROR(CurrentCounter(op.column, op.key, &current));
        // Wraps around like the RocksDB merge operator (signed overflow is
        // undefined).
        const int64_t sum = static_cast<int64_t>(static_cast<uint64_t>(current) +
                                                 static_cast<uint64_t>(DecodeCounter(op.value)));
        const std::string& encoded = counters_.emplace_back(EncodeCounter(sum));
        DbKey(op.column, op.key, &key_);
        out->Put(ToSlice(key_), ToSlice(encoded));
        ++count_;
        overlay_[{op.column, op.key}] = std::string_view(encoded);
        return Status::OK();
      }
    }
    return Status::InvalidArgument("leveldb store: bad op type");
  }

  // Sets *value to the counter at `key` as the group's earlier ops left it.
  Status CurrentCounter(Column c, std::string_view key, int64_t* value) {
    auto it = overlay_.find({c, key});
    if (it != overlay_.end()) {
      *value = it->second ? DecodeCounter(*it->second) : 0;
      return Status::OK();
    }
    // A DeleteRange erases the overlay entries in its range, so a key with
    // no entry was last touched by a covering DeleteRange, if any.
    for (const Tombstone& t : tombstones_) {
      if (t.column == c && t.begin <= key && key < t.end) {
        *value = 0;
        return Status::OK();
      }
    }
    std::string stored;
    const leveldb::Status s = db_->Get(leveldb::ReadOptions(), ToSlice(DbKey(c, key)), &stored);
    if (s.IsNotFound()) {
      *value = 0;
      return Status::OK();
    }
    KVFS_RETURN_IF_ERROR(FromLevel(s, "leveldb Add: read the counter at " + path_));
    *value = DecodeCounter(stored);
    return Status::OK();
  }

  // Appends a Delete for every key of column c in [begin, end), in the
  // database or put earlier in the group, and records the range.
  Status DeleteRange(Column c, std::string_view begin, std::string_view end,
                     leveldb::WriteBatch* out) {
    if (begin >= end) return Status::OK();  // empty (begin > end was refused)
    const std::string lo = DbKey(c, begin), hi = DbKey(c, end);
    // The keys in the database: a one-off scan, kept out of the block cache.
    leveldb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(ToSlice(lo)); it->Valid() && it->key().compare(ToSlice(hi)) < 0; it->Next()) {
      out->Delete(it->key());
      ++count_;
    }
    KVFS_RETURN_IF_ERROR(FromLevel(it->status(), "leveldb DeleteRange: scan at " + path_));
    // The keys put earlier in this group, not in the database yet (those in
    // both get a second, harmless Delete).
    const auto first = overlay_.lower_bound({c, begin});
    const auto last = overlay_.lower_bound({c, end});
    for (auto i = first; i != last; ++i) {
      if (!i->second) continue;
      DbKey(c, i->first.second, &key_);
      out->Delete(ToSlice(key_));
      ++count_;
    }
    overlay_.erase(first, last);
    tombstones_.push_back(Tombstone{c, begin, end});
    return Status::OK();
  }

  leveldb::DB* const db_;
  const std::string& path_;
  bool track_ = false;  // whether to maintain overlay_
  Overlay overlay_;
  std::vector<Tombstone> tombstones_;
  std::deque<std::string> counters_;  // values computed by Add (stable addresses)
  std::string key_;                   // scratch for prefixed keys
  uint64_t count_ = 0;
};

class LevelDBStore;

// BulkLoader of the LevelDB store: one leveldb::WriteBatch, written synced by
// Commit() (see the top of the file).
class LevelDBBulkLoader final : public BulkLoader {
 public:
  explicit LevelDBBulkLoader(LevelDBStore* store) : store_(store) {}

  Status Add(Column c, std::string_view key, std::string_view value) override;
  Status Commit() override;
  uint64_t BytesAdded() const override { return bytes_; }

 private:
  LevelDBStore* const store_;
  leveldb::WriteBatch batch_;
  uint64_t count_ = 0;  // keys in batch_
  bool committed_ = false;
  uint64_t bytes_ = 0;
  BulkLoadKeyOrder order_;
  std::string key_;  // scratch for prefixed keys
};

// The KVStore over one LevelDB database (see the top of the file).
class LevelDBStore final : public KVStore {
 public:
  // Takes ownership of `db`, which was opened with `env`, `cache` and
  // `filter` (nullptr for none) in its options.
  LevelDBStore(std::string path, std::unique_ptr<DurableDirEnv> env,
               std::unique_ptr<leveldb::Cache> cache,
               std::unique_ptr<const leveldb::FilterPolicy> filter, leveldb::DB* db)
      : path_(std::move(path)),
        env_(std::move(env)),
        cache_(std::move(cache)),
        filter_(std::move(filter)),
        db_(db),
        queue_([this](std::span<const WriteBatch* const> batches) { return ApplyGroup(batches); }) {
  }

  LevelDBStore(const LevelDBStore&) = delete;
  LevelDBStore& operator=(const LevelDBStore&) = delete;

  Status Get(const ReadOptions& opts, Column c, std::string_view key, std::string* value) override {
    if (!ValidColumn(c)) return Status::InvalidArgument("leveldb store: bad column");
    leveldb::ReadOptions ro;
    KVFS_RETURN_IF_ERROR(Unwrap(opts.snapshot, &ro.snapshot));
    const leveldb::Status s = db_->Get(ro, ToSlice(DbKey(c, key)), value);
    if (s.IsNotFound()) return Status::NotFound("key not found");
    return FromLevel(s, "leveldb Get at " + path_);
  }

  // Every write is synced (see the top of the file), so opts.sync changes
  // nothing.
  Status Write(const WriteOptions& /*opts*/, const WriteBatch& batch) override {
    // Refuse a bad batch before it can join (and fail) a group.
    KVFS_RETURN_IF_ERROR(ValidateBatch(batch));
    if (batch.empty()) return Status::OK();
    return queue_.Write(batch);
  }

  std::unique_ptr<Iterator> NewIterator(Column c, const IteratorOptions& opts) override {
    if (!ValidColumn(c)) {
      return NewErrorIterator(Status::InvalidArgument("leveldb store: bad column"));
    }
    const leveldb::Snapshot* snapshot = nullptr;
    Status s = Unwrap(opts.snapshot, &snapshot);
    if (!s.ok()) return NewErrorIterator(std::move(s));
    return std::make_unique<LevelDBIterator>(db_.get(), snapshot, c, opts.upper_bound,
                                             opts.fill_cache, &path_);
  }

  std::unique_ptr<Snapshot> GetSnapshot() override {
    return std::make_unique<LevelDBSnapshot>(db_.get(), db_->GetSnapshot());
  }

  // Every Write returned only once durable: nothing is left to sync.
  Status Sync() override { return Status::OK(); }

  std::string Name() const override { return kBackendName; }

  // A LevelDBBulkLoader; `staging_dir` is not needed.
  Status NewBulkLoader(const std::string& /*staging_dir*/,
                       std::unique_ptr<BulkLoader>* out) override {
    *out = std::make_unique<LevelDBBulkLoader>(this);
    return Status::OK();
  }

  // Writes `batch` synced, serialized with the write groups. `what` names the
  // operation in error messages.
  Status WriteSynced(leveldb::WriteBatch* batch, std::string_view what) {
    std::lock_guard<std::mutex> lock(write_mu_);
    return WriteLocked(batch, what);
  }

 private:
  // The WriteQueue's apply: one synced LevelDB write for the whole group.
  // (write_mu_ serializes it with bulk-load commits.)
  Status ApplyGroup(std::span<const WriteBatch* const> batches) {
    std::lock_guard<std::mutex> lock(write_mu_);
    GroupTranslator translator(db_.get(), path_);
    leveldb::WriteBatch wb;
    KVFS_RETURN_IF_ERROR(translator.Translate(batches, &wb));
    if (translator.count() == 0) return Status::OK();  // e.g. only empty ranges
    return WriteLocked(&wb, "leveldb Write");
  }

  // Writes `batch` with sync=true. Requires write_mu_.
  Status WriteLocked(leveldb::WriteBatch* batch, std::string_view what) {
    leveldb::WriteOptions wo;
    wo.sync = true;
    return FromLevel(db_->Write(wo, batch), std::string(what) + " at " + path_);
  }

  // Sets *out to the LevelDB snapshot behind `snapshot` (nullptr for
  // nullptr); InvalidArgument for a snapshot of another store.
  Status Unwrap(const Snapshot* snapshot, const leveldb::Snapshot** out) const {
    *out = nullptr;
    if (snapshot == nullptr) return Status::OK();
    auto* snap = dynamic_cast<const LevelDBSnapshot*>(snapshot);
    if (snap == nullptr || snap->db() != db_.get()) {
      return Status::InvalidArgument("snapshot of another store");
    }
    *out = snap->get();
    return Status::OK();
  }

  const std::string path_;
  // What the database uses: declared before db_, so destroyed after it.
  const std::unique_ptr<DurableDirEnv> env_;
  const std::unique_ptr<leveldb::Cache> cache_;
  const std::unique_ptr<const leveldb::FilterPolicy> filter_;
  const std::unique_ptr<leveldb::DB> db_;
  // Held while a group or a bulk load is read and written, so that nothing
  // else writes in between.
  std::mutex write_mu_;
  WriteQueue queue_;
};

Status LevelDBBulkLoader::Add(Column c, std::string_view key, std::string_view value) {
  if (committed_) return Status::InvalidArgument("bulk load: already committed");
  KVFS_RETURN_IF_ERROR(order_.Check(c, key));
  order_.Added(c, key);
  DbKey(c, key, &key_);
  batch_.Put(ToSlice(key_), ToSlice(value));
  ++count_;
  bytes_ += key.size() + value.size();
  return Status::OK();
}

Status LevelDBBulkLoader::Commit() {
  if (committed_) return Status::InvalidArgument("bulk load: already committed");
  committed_ = true;
  Status s = count_ == 0 ? Status::OK() : store_->WriteSynced(&batch_, "bulk load: write");
  batch_.Clear();
  return s;
}

// ---------------------------------------------------------------------------
// Opening.

// Reads spec.options into *o (whose fields hold the defaults).
Status ParseOptions(const KVOptions& options, LevelDBOptions* o) {
  PluginOptionReader r(std::string("backend ") + kBackendName, options);
  r.Size("block_cache_bytes", &o->block_cache_bytes);
  r.Size("write_buffer_bytes", &o->write_buffer_bytes);
  r.Int("bloom_bits_per_key", 0, 64, &o->bloom_bits_per_key);
  r.Size("max_file_size", &o->max_file_size);
  r.String("compression", &o->compression);
  r.Int("max_open_files", 74, 50000, &o->max_open_files);
  r.Bool("paranoid_checks", &o->paranoid_checks);
  // Range checks (LevelDB would silently clamp these), reported together
  // with the reader's errors.
  std::string errors;
  if (o->write_buffer_bytes < (64 << 10) || o->write_buffer_bytes > (1 << 30)) {
    errors += "; write_buffer_bytes must be in [64K, 1G]";
  }
  if (o->max_file_size < (1 << 20) || o->max_file_size > (1 << 30)) {
    errors += "; max_file_size must be in [1M, 1G]";
  }
  if (o->compression != "snappy" && o->compression != "none") {
    errors += "; compression='" + o->compression + "' is not snappy or none";
  }
  Status s = r.Finish();
  if (!s.ok()) return Status::InvalidArgument(s.message() + errors);
  if (!errors.empty()) {
    return Status::InvalidArgument(std::string("backend ") + kBackendName + ": " +
                                   errors.substr(2));
  }
  return Status::OK();
}

// The plugin's open function (see kv_plugin.h).
Status OpenLevelDBStore(const KVStoreSpec& spec, std::unique_ptr<KVStore>* out) {
  if (spec.path.empty()) return Status::InvalidArgument("leveldb store: empty path");
  LevelDBOptions o;
  o.path = spec.path;
  o.create_if_missing = spec.create_if_missing;
  KVFS_RETURN_IF_ERROR(ParseOptions(spec.options, &o));
  const std::string context = "open leveldb store at " + o.path;

  struct stat st;
  if (!o.create_if_missing && stat((o.path + "/CURRENT").c_str(), &st) != 0 && errno == ENOENT) {
    return Status::NotFound(context + ": no database there");
  }
  if (o.create_if_missing) {
    // LevelDB creates only the last component.
    std::error_code ec;
    std::filesystem::create_directories(o.path, ec);
    if (ec) return Status::IOError(context + ": create directory: " + ec.message());
  }

  auto env = std::make_unique<DurableDirEnv>();
  std::unique_ptr<leveldb::Cache> cache(leveldb::NewLRUCache(o.block_cache_bytes));
  std::unique_ptr<const leveldb::FilterPolicy> filter;
  if (o.bloom_bits_per_key > 0) {
    filter.reset(leveldb::NewBloomFilterPolicy(static_cast<int>(o.bloom_bits_per_key)));
  }

  leveldb::Options options;
  options.create_if_missing = o.create_if_missing;
  options.paranoid_checks = o.paranoid_checks;
  options.env = env.get();
  options.write_buffer_size = o.write_buffer_bytes;
  options.max_open_files = static_cast<int>(o.max_open_files);
  options.block_cache = cache.get();
  options.max_file_size = o.max_file_size;
  options.compression =
      o.compression == "snappy" ? leveldb::kSnappyCompression : leveldb::kNoCompression;
  options.filter_policy = filter.get();

  leveldb::DB* db = nullptr;
  const leveldb::Status s = leveldb::DB::Open(options, o.path, &db);
  if (!s.ok()) {
    // Not NotFound even if LevelDB says so: the caller asked to open a path.
    if (s.IsCorruption()) return Status::Corruption(context + ": " + s.ToString());
    return Status::IOError(context + ": " + s.ToString());
  }
  *out = std::make_unique<LevelDBStore>(o.path, std::move(env), std::move(cache), std::move(filter),
                                        db);
  return Status::OK();
}

}  // namespace
}  // namespace kvfs

KVFS_DEFINE_KV_PLUGIN("leveldb", ::kvfs::OpenLevelDBStore)
