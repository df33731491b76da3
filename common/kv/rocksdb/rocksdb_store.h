// The default KVStore backend: RocksDB, one column family per Column. The
// core reaches it as the plugin libkvfs-kv-rocksdb.so (rocksdb_plugin.cc,
// options named after the RocksDBOptions fields); this header is for the
// plugin and for benchmarks that link the store directly.
//
// Layout on disk: a RocksDB database in RocksDBOptions::path with the column
// families "meta", "entries", "inodes" and "blocks" (ColumnName()); RocksDB's
// mandatory "default" column family exists but is never used.
//
// Durability: Write(sync=false) returns once the batch is in the write-ahead
// log in the operating system's page cache (the WAL is flushed on every
// write), so killing the process loses nothing; Sync() fsyncs the WAL, shared
// among concurrent callers (GroupCommit), so a machine crash loses nothing
// written before Sync() was called. Write(sync=true) fsyncs before returning.
//
// Bulk loads (NewBulkLoader) write one SST file per column into a private
// directory under the staging directory and ingest them all with one
// DB::IngestExternalFiles call, which records them atomically in the
// MANIFEST; the files are moved (hard-linked), so the staging directory must
// be on the database's file system (e.g. inside its directory).
//
// Iterators and snapshots must be destroyed before the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/kv/kv_store.h"
#include "common/status.h"

namespace kvfs {

// The smallest SST file size a bulk load may be set to cut its columns into.
inline constexpr uint64_t kMinBulkLoadFileBytes = 64 << 10;

struct RocksDBOptions {
  // Directory holding the database. Required.
  std::string path;
  // Size of the LRU block cache shared by all columns. It also holds index
  // and filter blocks, so it bounds the store's read-side memory.
  size_t block_cache_bytes = 256 << 20;
  // Create the database (and its directory) if it does not exist. If false,
  // opening a path without a database returns NotFound.
  bool create_if_missing = true;
  // Memtable size of the entries, inodes and blocks columns (meta uses a
  // quarter of it, at least 4 MiB). Up to two memtables per column exist.
  size_t write_buffer_bytes = 64 << 20;
  // Threads for flushes and compactions.
  int max_background_jobs = 2;
  // Bloom filter bits per key on the entries and inodes columns (~1% false
  // positives at 10); 0 disables the filters.
  int bloom_bits_per_key = 10;
  // Threads building and compressing the SST files of a bulk load while the
  // thread adding keys goes on (each file is built by one of them).
  int bulk_load_threads = 2;
  // A bulk load cuts each column into SST files of at most about this many
  // bytes of keys and values (before compression), ended earlier (past an
  // eighth) to keep both threads busy; at least kMinBulkLoadFileBytes.
  uint64_t bulk_load_file_bytes = 256 << 20;
  // Table files kept open (RocksDB's table cache); the rest are opened when
  // read. Bounds the descriptors the store holds (the process may have 20,000
  // here, and a bulk load writes a file per 32-256 MiB).
  int max_open_files = 4096;
  // Compression of the SST files a bulk load writes. They land at the
  // bottom level and keep it until a compaction rewrites them: "zstd" (the
  // bottom level's own, the densest), "lz4" (faster to write, about 1.5x the
  // space for text) or "none" (fastest, the contents' full size). A
  // compression this RocksDB build lacks falls back as the levels do.
  std::string bulk_load_compression = "zstd";
};

// Opens (creating it if allowed) the store at opts.path and sets *out to it.
// Errors never crash: an empty path or a bad option gives InvalidArgument, a
// missing database with create_if_missing=false gives NotFound, and a path
// that is unusable (not a directory, no permission, locked by another
// process or another store in this process) gives IOError whose message
// names the path and carries RocksDB's explanation. *out is untouched on
// error. Name() of the store is "rocksdb".
Status OpenRocksDBStore(const RocksDBOptions& opts, std::unique_ptr<KVStore>* out);

}  // namespace kvfs
