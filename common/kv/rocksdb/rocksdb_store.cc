#include "common/kv/rocksdb/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "common/kv/error_iterator.h"
#include "common/kv/group_commit.h"
#include "common/kv/rocksdb/parallel_sst_writer.h"

namespace kvfs {
namespace {

// RocksDB errors become IOError carrying RocksDB's message, except NotFound.
Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::OK();
  std::string msg(context);
  msg += ": ";
  msg += s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  return Status::IOError(msg);
}

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

bool ValidColumn(Column c) { return static_cast<int>(c) < kNumColumns; }

// WriteBatch::Add: the operands and the stored value are 8-byte little-endian
// signed counters (EncodeCounter); addition wraps around. A stored value of
// the wrong size counts as 0, as DecodeCounter defines. Addition is
// associative, so RocksDB may pre-combine operands (PartialMerge) during
// compaction.
class Int64AddOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing_value,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* /*logger*/) const override {
    const uint64_t base = existing_value == nullptr
                              ? 0
                              : static_cast<uint64_t>(DecodeCounter(ToView(*existing_value)));
    const uint64_t delta = static_cast<uint64_t>(DecodeCounter(ToView(value)));
    *new_value = EncodeCounter(static_cast<int64_t>(base + delta));
    return true;
  }

  // Persisted in the OPTIONS file: never rename.
  const char* Name() const override { return "kvfs.Int64Add"; }
};

class RocksDBSnapshot final : public Snapshot {
 public:
  RocksDBSnapshot(rocksdb::DB* db, const rocksdb::Snapshot* snapshot)
      : db_(db), snapshot_(snapshot) {}
  ~RocksDBSnapshot() override { db_->ReleaseSnapshot(snapshot_); }

  RocksDBSnapshot(const RocksDBSnapshot&) = delete;
  RocksDBSnapshot& operator=(const RocksDBSnapshot&) = delete;

  rocksdb::DB* db() const { return db_; }
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB* const db_;
  const rocksdb::Snapshot* const snapshot_;
};

class RocksDBIterator final : public Iterator {
 public:
  RocksDBIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                  const rocksdb::Snapshot* snapshot, std::string upper_bound, bool fill_cache)
      : upper_bound_(std::move(upper_bound)), bound_slice_(ToSlice(upper_bound_)) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.fill_cache = fill_cache;
    // RocksDB keeps a pointer to the bound: it lives in this object, declared
    // before (so destroyed after) iter_.
    if (!upper_bound_.empty()) ro.iterate_upper_bound = &bound_slice_;
    iter_.reset(db->NewIterator(ro, cf));
  }

  void Seek(std::string_view target) override { iter_->Seek(ToSlice(target)); }

  void SeekBefore(std::string_view target) override {
    // Keys at or past the upper bound are invisible, so the bound acts as a
    // smaller target.
    if (!upper_bound_.empty() && (target.empty() || std::string_view(upper_bound_) < target)) {
      target = upper_bound_;
    }
    if (target.empty()) {
      iter_->SeekToLast();
      return;
    }
    // SeekForPrev lands on the last key <= target; we want < target.
    iter_->SeekForPrev(ToSlice(target));
    if (iter_->Valid() && ToView(iter_->key()) == target) iter_->Prev();
  }

  void Next() override {
    if (iter_->Valid()) iter_->Next();
  }

  bool Valid() const override { return iter_->Valid(); }
  std::string_view key() const override { return ToView(iter_->key()); }
  std::string_view value() const override { return ToView(iter_->value()); }
  Status status() const override { return FromRocks(iter_->status(), "rocksdb iterator"); }

 private:
  const std::string upper_bound_;
  const rocksdb::Slice bound_slice_;
  std::unique_ptr<rocksdb::Iterator> iter_;
};

// How bulk loads write their SST files (RocksDBOptions::bulk_load_*).
struct BulkLoadSettings {
  ParallelSstWriterOptions writer;
  rocksdb::CompressionType compression = rocksdb::kNoCompression;
};

// BulkLoader over SST files: a ParallelSstWriter writes each column's keys
// into SST files in a private directory under the staging directory, and
// Commit() ingests all of them in one atomic IngestExternalFiles call across
// the column families. The files are moved (hard-linked) into the database,
// not copied, so the staging directory must be on the database's file
// system. The private directory and whatever is left in it are removed on
// destruction.
class SstBulkLoader final : public BulkLoader {
 public:
  // `dir` is the loader's own (already created) directory.
  SstBulkLoader(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> column_handles,
                std::string dir, const BulkLoadSettings& settings)
      : db_(db), handles_(std::move(column_handles)), dir_(std::move(dir)) {
    std::vector<ParallelSstWriter::Stream> streams;
    for (int i = 0; i < kNumColumns; ++i) {
      rocksdb::Options options = db_->GetOptions(handles_[i]);
      // The files land at the bottom level: they get the bulk load's
      // compression (by default the bottom level's own). Each file is
      // compressed by the worker that builds it.
      options.bottommost_compression = settings.compression;
      options.bottommost_compression_opts.enabled = true;
      options.compression_opts.parallel_threads = 1;
      options.bottommost_compression_opts.parallel_threads = 1;
      streams.push_back({ColumnName(static_cast<Column>(i)), options, handles_[i]});
    }
    writer_ = std::make_unique<ParallelSstWriter>(dir_, std::move(streams), settings.writer);
  }

  ~SstBulkLoader() override {
    writer_.reset();  // stop the workers and close files before removing them
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);  // best effort: nothing to report to
  }

  SstBulkLoader(const SstBulkLoader&) = delete;
  SstBulkLoader& operator=(const SstBulkLoader&) = delete;

  Status Add(Column c, std::string_view key, std::string_view value) override {
    if (committed_) return Status::InvalidArgument("bulk load: already committed");
    KVFS_RETURN_IF_ERROR(order_.Check(c, key));
    KVFS_RETURN_IF_ERROR(writer_->Add(static_cast<size_t>(c), key, value));
    order_.Added(c, key);
    bytes_ += key.size() + value.size();
    return Status::OK();
  }

  Status Commit() override {
    if (committed_) return Status::InvalidArgument("bulk load: already committed");
    committed_ = true;
    std::vector<std::vector<std::string>> files;
    KVFS_RETURN_IF_ERROR(writer_->Finish(&files));
    std::vector<rocksdb::IngestExternalFileArg> args;
    for (int i = 0; i < kNumColumns; ++i) {
      if (files[i].empty()) continue;
      rocksdb::IngestExternalFileArg arg;
      arg.column_family = handles_[i];
      arg.external_files = std::move(files[i]);
      arg.options.move_files = true;
      // The keys of a fresh range overlap nothing: no global sequence number
      // is needed; if one is (overwritten keys), keep it in the manifest
      // rather than rewriting the file.
      arg.options.write_global_seqno = false;
      args.push_back(std::move(arg));
    }
    if (args.empty()) return Status::OK();
    return FromRocks(db_->IngestExternalFiles(args), "bulk load: ingest SST files");
  }

  uint64_t BytesAdded() const override { return bytes_; }

 private:
  rocksdb::DB* const db_;
  const std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // one per Column
  const std::string dir_;
  std::unique_ptr<ParallelSstWriter> writer_;
  BulkLoadKeyOrder order_;
  bool committed_ = false;
  uint64_t bytes_ = 0;
};

class RocksDBStore final : public KVStore {
 public:
  // Takes ownership of db and handles (handles[0] is "default", then one per
  // Column in order).
  RocksDBStore(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
               BulkLoadSettings bulk_load)
      : db_(db),
        handles_(std::move(handles)),
        bulk_load_(bulk_load),
        group_commit_([this] { return FromRocks(db_->SyncWAL(), "rocksdb SyncWAL"); }) {}

  ~RocksDBStore() override {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    // Close flushes nothing we rely on: everything written is in the WAL.
    // Its status has no one to go to.
    db_->Close().PermitUncheckedError();
  }

  RocksDBStore(const RocksDBStore&) = delete;
  RocksDBStore& operator=(const RocksDBStore&) = delete;

  Status Get(const ReadOptions& opts, Column c, std::string_view key, std::string* value) override {
    if (!ValidColumn(c)) return Status::InvalidArgument("rocksdb store: bad column");
    rocksdb::ReadOptions ro;
    Status s = Unwrap(opts.snapshot, &ro.snapshot);
    if (!s.ok()) return s;
    rocksdb::Status rs = db_->Get(ro, Handle(c), ToSlice(key), value);
    if (rs.IsNotFound()) return Status::NotFound("key not found");
    return FromRocks(rs, "rocksdb Get");
  }

  Status Write(const WriteOptions& opts, const WriteBatch& batch) override {
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      if (!ValidColumn(op.column)) return Status::InvalidArgument("rocksdb store: bad column");
      rocksdb::ColumnFamilyHandle* cf = Handle(op.column);
      rocksdb::Status rs;
      switch (op.type) {
        case WriteBatch::OpType::kPut:
          rs = wb.Put(cf, ToSlice(op.key), ToSlice(op.value));
          break;
        case WriteBatch::OpType::kDelete:
          rs = wb.Delete(cf, ToSlice(op.key));
          break;
        case WriteBatch::OpType::kDeleteRange:
          if (op.key > op.value) return Status::InvalidArgument("DeleteRange: begin > end");
          if (op.key == op.value) continue;  // empty range
          rs = wb.DeleteRange(cf, ToSlice(op.key), ToSlice(op.value));
          break;
        case WriteBatch::OpType::kAdd:
          rs = wb.Merge(cf, ToSlice(op.key), ToSlice(op.value));
          break;
      }
      if (!rs.ok()) return FromRocks(rs, "rocksdb WriteBatch");
    }
    if (wb.Count() == 0) return Status::OK();
    rocksdb::WriteOptions wo;
    wo.sync = opts.sync;
    return FromRocks(db_->Write(wo, &wb), "rocksdb Write");
  }

  std::unique_ptr<Iterator> NewIterator(Column c, const IteratorOptions& opts) override {
    if (!ValidColumn(c)) {
      return NewErrorIterator(Status::InvalidArgument("rocksdb store: bad column"));
    }
    const rocksdb::Snapshot* snapshot = nullptr;
    Status s = Unwrap(opts.snapshot, &snapshot);
    if (!s.ok()) return NewErrorIterator(std::move(s));
    return std::make_unique<RocksDBIterator>(db_.get(), Handle(c), snapshot, opts.upper_bound,
                                             opts.fill_cache);
  }

  std::unique_ptr<Snapshot> GetSnapshot() override {
    return std::make_unique<RocksDBSnapshot>(db_.get(), db_->GetSnapshot());
  }

  Status Sync() override { return group_commit_.Sync(); }

  std::string Name() const override { return "rocksdb"; }

  std::vector<std::pair<std::string, uint64_t>> Statistics() override {
    // RocksDB's integer properties, summed over the columns, under names
    // without the "rocksdb." prefix and with '_' for '-'.
    static constexpr const char* kProperties[][2] = {
        {"rocksdb.estimate-num-keys", "estimate_num_keys"},
        {"rocksdb.live-sst-files-size", "live_sst_files_size_bytes"},
        {"rocksdb.cur-size-all-mem-tables", "memtables_size_bytes"},
        {"rocksdb.estimate-pending-compaction-bytes", "pending_compaction_bytes"},
        {"rocksdb.num-running-compactions", "running_compactions"},
        {"rocksdb.num-running-flushes", "running_flushes"},
        {"rocksdb.num-live-versions", "live_versions"},
    };
    std::vector<std::pair<std::string, uint64_t>> out;
    for (const auto& [property, name] : kProperties) {
      uint64_t total = 0;
      for (size_t i = 1; i < handles_.size(); ++i) {
        uint64_t value = 0;
        if (db_->GetIntProperty(handles_[i], property, &value)) total += value;
      }
      out.emplace_back(name, total);
    }
    // The block cache is shared by the columns: its usage once.
    uint64_t cache_usage = 0;
    if (handles_.size() > 1 &&
        db_->GetIntProperty(handles_[1], "rocksdb.block-cache-usage", &cache_usage)) {
      out.emplace_back("block_cache_usage_bytes", cache_usage);
    }
    return out;
  }

  Status Checkpoint(const std::string& dir) override {
    std::error_code ec;
    if (std::filesystem::symlink_status(dir, ec).type() != std::filesystem::file_type::not_found) {
      return Status::FromErrno(EEXIST, "checkpoint: " + dir + " exists");
    }
    rocksdb::Checkpoint* raw = nullptr;
    rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // log_size_for_flush 0: flush the memtables first, so the copy needs no
    // WAL and holds every write that returned.
    if (s.ok()) s = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
    return FromRocks(s, "checkpoint into " + dir);
  }

  Status NewBulkLoader(const std::string& staging_dir, std::unique_ptr<BulkLoader>* out) override {
    if (staging_dir.empty()) return Status::InvalidArgument("bulk load: empty staging directory");
    std::error_code ec;
    std::filesystem::create_directories(staging_dir, ec);
    if (ec) {
      return Status::FromErrno(ec.value(), "bulk load: create staging directory " + staging_dir);
    }
    std::string dir = staging_dir + "/bulk-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
      return Status::FromErrno(errno, "bulk load: create a directory in " + staging_dir);
    }
    *out = std::make_unique<SstBulkLoader>(
        db_.get(), std::vector<rocksdb::ColumnFamilyHandle*>(handles_.begin() + 1, handles_.end()),
        std::move(dir), bulk_load_);
    return Status::OK();
  }

 private:
  rocksdb::ColumnFamilyHandle* Handle(Column c) const { return handles_[1 + static_cast<int>(c)]; }

  // Sets *out to the RocksDB snapshot behind `snapshot` (null for null).
  Status Unwrap(const Snapshot* snapshot, const rocksdb::Snapshot** out) const {
    *out = nullptr;
    if (snapshot == nullptr) return Status::OK();
    auto* snap = dynamic_cast<const RocksDBSnapshot*>(snapshot);
    if (snap == nullptr || snap->db() != db_.get()) {
      return Status::InvalidArgument("snapshot of another store");
    }
    *out = snap->get();
    return Status::OK();
  }

  const std::unique_ptr<rocksdb::DB> db_;
  const std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  const BulkLoadSettings bulk_load_;
  GroupCommit group_commit_;
};

// True if this RocksDB build can compress with t.
bool Supports(rocksdb::CompressionType t) {
  const std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  return std::find(supported.begin(), supported.end(), t) != supported.end();
}

// The upper levels' compression: a fast one this build supports.
rocksdb::CompressionType FastCompression() {
  return Supports(rocksdb::kLZ4Compression)      ? rocksdb::kLZ4Compression
         : Supports(rocksdb::kSnappyCompression) ? rocksdb::kSnappyCompression
                                                 : rocksdb::kNoCompression;
}

// Fast compression for the upper levels and a denser one for the bottommost
// level (which holds ~90% of the data), picked among those this RocksDB build
// supports.
void ChooseCompression(rocksdb::ColumnFamilyOptions* cf) {
  cf->compression = FastCompression();
  cf->bottommost_compression =
      Supports(rocksdb::kZSTD) ? rocksdb::kZSTD : rocksdb::kDisableCompressionOption;
}

// The compression RocksDBOptions::bulk_load_compression names, falling back
// as ChooseCompression does; InvalidArgument for an unknown name.
Status BulkLoadCompression(const std::string& name, rocksdb::CompressionType* out) {
  if (name == "zstd") {
    *out = Supports(rocksdb::kZSTD) ? rocksdb::kZSTD : FastCompression();
  } else if (name == "lz4") {
    *out = FastCompression();
  } else if (name == "none") {
    *out = rocksdb::kNoCompression;
  } else {
    return Status::InvalidArgument(
        "rocksdb store: bulk_load_compression is zstd, lz4 or none, not '" + name + "'");
  }
  return Status::OK();
}

rocksdb::ColumnFamilyOptions ColumnOptions(Column c, const RocksDBOptions& opts,
                                           const std::shared_ptr<rocksdb::Cache>& cache,
                                           const std::shared_ptr<rocksdb::MergeOperator>& add) {
  rocksdb::ColumnFamilyOptions cf;
  // Every column accepts WriteBatch::Add (counters live mostly in meta).
  cf.merge_operator = add;
  ChooseCompression(&cf);
  // Level sizes follow the actual data size: bounded space amplification
  // (~1.1x), which matters for many small values.
  cf.level_compaction_dynamic_level_bytes = true;
  cf.write_buffer_size = c == Column::kMeta ? std::max<size_t>(opts.write_buffer_bytes / 4, 4 << 20)
                                            : opts.write_buffer_bytes;
  cf.max_write_buffer_number = 2;

  rocksdb::BlockBasedTableOptions table;
  // One LRU cache for all columns, holding index and filter blocks too, so
  // block_cache_bytes bounds read memory; L0 index/filter blocks are pinned
  // because every read consults them.
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;
  // Small values, point lookups: small blocks keep read amplification low.
  // File contents are bigger and read sequentially: bigger blocks.
  table.block_size = c == Column::kBlocks ? 16 << 10 : 4 << 10;
  if ((c == Column::kEntries || c == Column::kInodes) && opts.bloom_bits_per_key > 0) {
    // Lookups of absent names and inodes are common (create, lookup
    // misses): whole-key Bloom filters answer most without reading a block.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(opts.bloom_bits_per_key, false));
    table.whole_key_filtering = true;
    // The same for the memtables: a lookup of a key that is not in them
    // (most of them, once the data is flushed) skips the skiplist search.
    cf.memtable_whole_key_filtering = true;
    cf.memtable_prefix_bloom_size_ratio = 0.02;
    table.optimize_filters_for_memory = true;
    // Hash index inside data blocks: point lookups skip the binary search.
    table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
    table.data_block_hash_table_util_ratio = 0.75;
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

}  // namespace

Status OpenRocksDBStore(const RocksDBOptions& opts, std::unique_ptr<KVStore>* out) {
  if (opts.path.empty()) return Status::InvalidArgument("rocksdb store: empty path");
  if (opts.max_background_jobs < 1 || opts.bloom_bits_per_key < 0 || opts.bulk_load_threads < 1 ||
      opts.max_open_files < 64) {
    return Status::InvalidArgument("rocksdb store: bad options");
  }
  if (opts.bulk_load_file_bytes < kMinBulkLoadFileBytes) {
    return Status::InvalidArgument("rocksdb store: bulk_load_file_bytes is at least 64K");
  }
  BulkLoadSettings bulk_load;
  bulk_load.writer.threads = static_cast<uint32_t>(opts.bulk_load_threads);
  bulk_load.writer.file_bytes = opts.bulk_load_file_bytes;
  KVFS_RETURN_IF_ERROR(BulkLoadCompression(opts.bulk_load_compression, &bulk_load.compression));
  const std::string context = "open rocksdb store at " + opts.path;
  if (!opts.create_if_missing &&
      rocksdb::Env::Default()->FileExists(opts.path + "/CURRENT").IsNotFound()) {
    return Status::NotFound(context + ": no database there");
  }

  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = opts.create_if_missing;
  db_opts.create_missing_column_families = true;
  // Every Write hands its WAL record to the OS before returning, so a
  // process kill loses nothing; Sync() (SyncWAL) only has to fsync.
  db_opts.manual_wal_flush = false;
  // After a crash, recover the WAL up to the first torn or corrupt record (a
  // write that was never synced); everything before it is intact.
  db_opts.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_opts.max_background_jobs = opts.max_background_jobs;
  db_opts.max_open_files = opts.max_open_files;
  // Smooth out writeback of new SST files instead of one big fsync.
  db_opts.bytes_per_sync = 1 << 20;
  // With several column families a rarely written one (meta) would pin old
  // WAL files forever; past this total its memtable is flushed.
  db_opts.max_total_wal_size = 4 * static_cast<uint64_t>(opts.write_buffer_bytes);
  db_opts.keep_log_file_num = 10;
  // Trees are read once, with high locality (a directory's files lie next
  // to each other in the blocks column): let the kernel read ahead in SST
  // files instead of advising random access (docs/kv-stores.md).
  db_opts.advise_random_on_open = false;

  auto cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
  auto add = std::make_shared<Int64AddOperator>();
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  // "default" is required by RocksDB and left unused.
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName,
                           ColumnOptions(Column::kMeta, opts, cache, add));
  for (int i = 0; i < kNumColumns; ++i) {
    const Column c = static_cast<Column>(i);
    descriptors.emplace_back(ColumnName(c), ColumnOptions(c, opts, cache, add));
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(db_opts, opts.path, descriptors, &handles, &db);
  if (!rs.ok()) {
    // Not NotFound even if RocksDB says so: the caller asked to open a path.
    return Status::IOError(context + ": " + rs.ToString());
  }
  *out = std::make_unique<RocksDBStore>(db, std::move(handles), bulk_load);
  return Status::OK();
}

}  // namespace kvfs
