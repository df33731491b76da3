// Writing sorted key/value streams into SST files on several threads, for the
// RocksDB backend's bulk loads.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kvfs {

// How a ParallelSstWriter cuts and hands over its streams.
struct ParallelSstWriterOptions {
  // Worker threads building and compressing SST files (at least 1).
  uint32_t threads = 2;
  // A stream's SST file holds at most about this many bytes of keys and
  // values (before compression): it ends with the first pair that reaches it.
  uint64_t file_bytes = 64 << 20;
};

// Writes one ascending stream of key/value pairs per column family into SST
// files in a directory, built by worker threads while the caller goes on.
//
// Each stream is cut into consecutive runs; each run becomes one SST file,
// built and compressed by one worker from start to finish. So the files of one
// stream never overlap and can be ingested together at the bottom level, and
// the caller hands over batches of pairs (up to 1 MiB), not single blocks: one
// thread hand-off per batch instead of RocksDB's parallel compression's several
// per block. A run ends at `file_bytes`, or earlier (past an eighth of that)
// when its worker has a full queue while another worker has nothing to do:
// then the next run starts on the idle worker instead of the caller waiting.
//
// Memory: the caller's open batch per stream, plus per worker a queue of at
// most 16 batches and the batch it works on; Add waits while the queue of the
// worker it feeds is full.
//
// Not thread-safe: one thread calls Add and Finish.
class ParallelSstWriter {
 public:
  // One stream per column family: its file names start with `name`, its files
  // are written with `options` (compression and table format) for `handle`.
  struct Stream {
    std::string name;
    rocksdb::Options options;
    rocksdb::ColumnFamilyHandle* handle = nullptr;
  };

  // Starts the workers. Files go into existing directory `dir`.
  ParallelSstWriter(std::string dir, std::vector<Stream> streams,
                    const ParallelSstWriterOptions& options);
  // Stops the workers, discarding what they have not written. Files already
  // written stay (the caller owns the directory).
  ~ParallelSstWriter();

  ParallelSstWriter(const ParallelSstWriter&) = delete;
  ParallelSstWriter& operator=(const ParallelSstWriter&) = delete;

  // Appends key -> value to stream `stream`. The caller guarantees each
  // stream's keys strictly ascending. Returns the first error any worker
  // met (IOError naming the file), after which nothing more is written.
  Status Add(size_t stream, std::string_view key, std::string_view value);

  // Hands over what is left, waits until every file is written and synced,
  // and sets (*files)[i] to stream i's files in key order (empty for a
  // stream that got no pairs). Call at most once; Add after it is an error.
  Status Finish(std::vector<std::vector<std::string>>* files);

 private:
  struct Batch;
  struct Worker;
  struct Shared;
  struct StreamState;

  // An empty batch (a free one if there is one) for file `file` of `stream`.
  // The caller holds the shared mutex, as for every *Locked function.
  std::unique_ptr<Batch> TakeBatchLocked(size_t stream, size_t file);
  // Starts the stream's next file on the worker with the shortest queue.
  void StartFileLocked(StreamState* st);
  // Sends the stream's open batch (an empty one if none) to the worker of
  // its current file, waiting for room in that worker's queue; `ends_file`
  // completes the file.
  Status Send(size_t stream, bool ends_file);

  std::unique_ptr<Shared> shared_;
  std::vector<StreamState> streams_;
  std::vector<std::unique_ptr<Worker>> workers_;
  const uint64_t file_bytes_;
  const uint64_t min_file_bytes_;  // a file is ended early only past this
  const uint64_t batch_bytes_;
  bool finished_ = false;
};

}  // namespace kvfs
