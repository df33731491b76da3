// bulk_load_bench: how ingest hands a tree's keys to RocksDB.
//
//   bulk_load_bench MODE TARBALL DB_DIR
//
// Ingests TARBALL into a fresh store in DB_DIR with the ingest library,
// giving the keys to RocksDB one of three ways (MODE):
//   sst      the real thing: one SST file per column, ingested atomically
//            (KVStore::NewBulkLoader of the RocksDB store)
//   batches  write batches of 4 MiB through the WAL, then one WAL sync (not
//            atomic: the alternative that IngestExternalFiles replaces)
//   onebatch one WriteBatch holding everything, written synced at the end
//            (KVStore's default loader: atomic, memory grows with the tree)
// and prints one line: mode, seconds, peak RSS, store size on disk. Run each
// mode in its own process (peak RSS is per process); bench/ingest_bench.sh
// does.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "common/fs/file_system.h"
#include "common/kv/rocksdb/rocksdb_store.h"
#include "ingest/ingest.h"

namespace kvfs {
namespace {

// A loader that writes batches of about `batch_bytes` through the WAL as
// keys come, and syncs the WAL at Commit().
class BatchLoader final : public BulkLoader {
 public:
  BatchLoader(KVStore* store, size_t batch_bytes) : store_(store), batch_bytes_(batch_bytes) {}
  Status Add(Column c, std::string_view key, std::string_view value) override {
    batch_.Put(c, key, value);
    bytes_ += key.size() + value.size();
    return batch_.ByteSize() >= batch_bytes_ ? Flush() : Status::OK();
  }
  Status Commit() override {
    KVFS_RETURN_IF_ERROR(Flush());
    return store_->Sync();
  }
  uint64_t BytesAdded() const override { return bytes_; }

 private:
  Status Flush() {
    if (batch_.empty()) return Status::OK();
    Status s = store_->Write(WriteOptions(), batch_);
    batch_.Clear();
    return s;
  }
  KVStore* const store_;
  const size_t batch_bytes_;
  WriteBatch batch_;
  uint64_t bytes_ = 0;
};

// The RocksDB store with NewBulkLoader replaced according to the mode.
class ModeStore final : public KVStore {
 public:
  ModeStore(std::unique_ptr<KVStore> base, std::string mode)
      : base_(std::move(base)), mode_(std::move(mode)) {}
  using KVStore::Get;
  Status Get(const ReadOptions& o, Column c, std::string_view k, std::string* v) override {
    return base_->Get(o, c, k, v);
  }
  Status Write(const WriteOptions& o, const WriteBatch& b) override { return base_->Write(o, b); }
  std::unique_ptr<Iterator> NewIterator(Column c, const IteratorOptions& o) override {
    return base_->NewIterator(c, o);
  }
  std::unique_ptr<Snapshot> GetSnapshot() override { return base_->GetSnapshot(); }
  Status Sync() override { return base_->Sync(); }
  std::string Name() const override { return base_->Name(); }
  Status NewBulkLoader(const std::string& staging, std::unique_ptr<BulkLoader>* out) override {
    if (mode_ == "sst") return base_->NewBulkLoader(staging, out);
    if (mode_ == "batches") {
      *out = std::make_unique<BatchLoader>(base_.get(), 4 << 20);
      return Status::OK();
    }
    return KVStore::NewBulkLoader(staging, out);  // one WriteBatch
  }

 private:
  std::unique_ptr<KVStore> base_;
  const std::string mode_;
};

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

int Main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: bulk_load_bench sst|batches|onebatch TARBALL DB_DIR\n");
    return 2;
  }
  const std::string mode = argv[1], tarball = argv[2], db = argv[3];
  if (mode != "sst" && mode != "batches" && mode != "onebatch") {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  std::error_code ec;
  std::filesystem::remove_all(db, ec);
  const auto t0 = std::chrono::steady_clock::now();
  RocksDBOptions ro;
  ro.path = db;
  std::unique_ptr<KVStore> base;
  Status s = OpenRocksDBStore(ro, &base);
  std::unique_ptr<FileSystem> fs;
  if (s.ok()) {
    s = FileSystem::Open(FileSystemOptions(), std::make_unique<ModeStore>(std::move(base), mode),
                         &fs);
  }
  ingest::IngestOptions o;
  o.staging_dir = db + "/ingest-staging";
  ingest::IngestStats st;
  if (s.ok()) s = ingest::IngestFile(fs.get(), tarball, o, &st);
  if (s.ok()) s = fs->Sync();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", mode.c_str(), s.ToString().c_str());
    return 1;
  }
  fs.reset();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::printf("%s %.2f s, peak RSS %ld MB, store %.0f MB, loaded %.0f MB\n", mode.c_str(), seconds,
              ru.ru_maxrss / 1024, DirBytes(db) / 1e6, st.loaded_bytes / 1e6);
  return 0;
}

}  // namespace
}  // namespace kvfs

int main(int argc, char** argv) { return kvfs::Main(argc, argv); }
