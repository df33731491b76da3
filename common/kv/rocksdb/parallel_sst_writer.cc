#include "common/kv/rocksdb/parallel_sst_writer.h"

#include <rocksdb/env.h>
#include <rocksdb/sst_file_writer.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

namespace kvfs {
namespace {

// Batches a worker may have waiting before Add waits for it.
constexpr size_t kQueueBatches = 16;
// A batch is handed over once it holds this much (or a sixteenth of a file,
// if files are that small).
constexpr uint64_t kBatchBytes = 1 << 20;

}  // namespace

// Consecutive pairs of one stream, all for the same file.
struct ParallelSstWriter::Batch {
  size_t stream = 0;
  size_t file = 0;                               // the file's number within its stream
  bool ends_file = false;                        // the file is complete after these pairs
  std::string bytes;                             // keys and values back to back
  std::vector<std::pair<size_t, size_t>> sizes;  // (key size, value size)

  void Clear() {
    ends_file = false;
    bytes.clear();
    sizes.clear();
  }
};

// One worker thread and its queue (guarded by Shared::mu).
struct ParallelSstWriter::Worker {
  std::thread thread;
  std::deque<std::unique_ptr<Batch>> queue;
  std::condition_variable work;  // a batch was queued, or stopping
  // Used by the worker thread only: the file it builds for each stream.
  std::vector<std::unique_ptr<rocksdb::SstFileWriter>> open;
  std::vector<std::string> open_path;
};

// State shared by the caller's thread and the workers.
struct ParallelSstWriter::Shared {
  std::string dir;
  std::vector<Stream> streams;

  std::mutex mu;
  std::condition_variable room;  // a queue shrank, or a worker failed
  Status error;                  // the first worker error
  std::atomic<bool> failed{false};
  bool stopping = false;   // no more batches will come
  bool cancelled = false;  // drop what is queued
  std::vector<std::unique_ptr<Batch>> free_batches;
  std::vector<std::vector<std::string>> files;  // per stream, by file number

  std::string FileName(size_t stream, size_t file) const {
    char number[24];
    std::snprintf(number, sizeof number, "-%06zu.sst", file);
    return dir + "/" + streams[stream].name + number;
  }

  // Builds `b` into its stream's current file; completes the file if it ends.
  Status Write(Worker* w, const Batch& b) {
    std::unique_ptr<rocksdb::SstFileWriter>& writer = w->open[b.stream];
    std::string& path = w->open_path[b.stream];
    if (!writer) {
      const Stream& s = streams[b.stream];
      path = FileName(b.stream, b.file);
      // Written back every MiB on the way, so Finish's sync has little left.
      rocksdb::EnvOptions env;
      env.bytes_per_sync = 1 << 20;
      writer = std::make_unique<rocksdb::SstFileWriter>(env, s.options, s.handle);
      rocksdb::Status rs = writer->Open(path);
      if (!rs.ok()) {
        return Status::IOError("bulk load: open SST file " + path + ": " + rs.ToString());
      }
    }
    size_t at = 0;
    for (const auto& [k, v] : b.sizes) {
      rocksdb::Status rs = writer->Put(rocksdb::Slice(b.bytes.data() + at, k),
                                       rocksdb::Slice(b.bytes.data() + at + k, v));
      if (!rs.ok()) {
        return Status::IOError("bulk load: write SST file " + path + ": " + rs.ToString());
      }
      at += k + v;
    }
    if (!b.ends_file) return Status::OK();
    // Finish syncs the file.
    rocksdb::Status rs = writer->Finish();
    if (!rs.ok()) {
      return Status::IOError("bulk load: finish SST file " + path + ": " + rs.ToString());
    }
    writer.reset();
    std::lock_guard<std::mutex> l(mu);
    std::vector<std::string>& done = files[b.stream];
    if (done.size() <= b.file) done.resize(b.file + 1);
    done[b.file] = path;
    return Status::OK();
  }

  void Run(Worker* w) {
    for (;;) {
      std::unique_ptr<Batch> b;
      {
        std::unique_lock<std::mutex> l(mu);
        w->work.wait(l, [&] { return !w->queue.empty() || stopping; });
        if (w->queue.empty() || cancelled) break;
        b = std::move(w->queue.front());
        w->queue.pop_front();
      }
      room.notify_one();
      Status s = failed ? Status::OK() : Write(w, *b);
      std::lock_guard<std::mutex> l(mu);
      if (!s.ok() && error.ok()) {
        error = std::move(s);
        failed = true;
        room.notify_all();
      }
      b->Clear();
      free_batches.push_back(std::move(b));
    }
    // Files never completed are abandoned; the caller removes the directory.
    w->open.clear();
  }
};

struct ParallelSstWriter::StreamState {
  std::unique_ptr<Batch> batch;  // being filled, or null
  bool file_open = false;        // a file was started and not yet ended
  size_t worker = 0;             // the worker of the current file
  size_t file = 0;               // the current file's number
  size_t files = 0;              // files started
  uint64_t file_bytes = 0;       // bytes added to the current file
};

ParallelSstWriter::ParallelSstWriter(std::string dir, std::vector<Stream> streams,
                                     const ParallelSstWriterOptions& options)
    : shared_(std::make_unique<Shared>()),
      streams_(streams.size()),
      file_bytes_(std::max<uint64_t>(options.file_bytes, 1)),
      min_file_bytes_(std::max<uint64_t>(file_bytes_ / 8, 1)),
      batch_bytes_(std::clamp<uint64_t>(file_bytes_ / 16, 1, kBatchBytes)) {
  shared_->dir = std::move(dir);
  shared_->streams = std::move(streams);
  shared_->files.resize(shared_->streams.size());
  const uint32_t n = std::max<uint32_t>(options.threads, 1);
  for (uint32_t i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->open.resize(shared_->streams.size());
    w->open_path.resize(shared_->streams.size());
    w->thread = std::thread([s = shared_.get(), p = w.get()] { s->Run(p); });
    workers_.push_back(std::move(w));
  }
}

ParallelSstWriter::~ParallelSstWriter() {
  {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->stopping = true;
    shared_->cancelled = true;
  }
  for (auto& w : workers_) w->work.notify_one();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

Status ParallelSstWriter::Add(size_t stream, std::string_view key, std::string_view value) {
  if (finished_) return Status::InvalidArgument("bulk load: SST writer already finished");
  if (stream >= streams_.size()) return Status::InvalidArgument("bulk load: bad stream");
  if (shared_->failed) {
    std::lock_guard<std::mutex> l(shared_->mu);
    return shared_->error;
  }
  StreamState& st = streams_[stream];
  if (!st.batch) {
    std::lock_guard<std::mutex> l(shared_->mu);
    if (!st.file_open) StartFileLocked(&st);
    st.batch = TakeBatchLocked(stream, st.file);
  }
  st.batch->bytes.append(key);
  st.batch->bytes.append(value);
  st.batch->sizes.emplace_back(key.size(), value.size());
  st.file_bytes += key.size() + value.size();
  if (st.file_bytes >= file_bytes_) return Send(stream, true);
  if (st.batch->bytes.size() >= batch_bytes_) return Send(stream, false);
  return Status::OK();
}

Status ParallelSstWriter::Finish(std::vector<std::vector<std::string>>* files) {
  if (finished_) return Status::InvalidArgument("bulk load: SST writer already finished");
  finished_ = true;
  Status s;
  for (size_t i = 0; i < streams_.size() && s.ok(); ++i) {
    if (streams_[i].file_open) s = Send(i, true);
  }
  {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->stopping = true;
    if (!s.ok()) shared_->cancelled = true;
  }
  for (auto& w : workers_) w->work.notify_one();
  for (auto& w : workers_) w->thread.join();
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(shared_->mu);
  if (!shared_->error.ok()) return shared_->error;
  *files = shared_->files;
  return Status::OK();
}

std::unique_ptr<ParallelSstWriter::Batch> ParallelSstWriter::TakeBatchLocked(size_t stream,
                                                                             size_t file) {
  std::unique_ptr<Batch> b;
  if (!shared_->free_batches.empty()) {
    b = std::move(shared_->free_batches.back());
    shared_->free_batches.pop_back();
  } else {
    b = std::make_unique<Batch>();
  }
  b->stream = stream;
  b->file = file;
  return b;
}

void ParallelSstWriter::StartFileLocked(StreamState* st) {
  // The worker with the shortest queue.
  size_t best = 0;
  for (size_t i = 1; i < workers_.size(); ++i) {
    if (workers_[i]->queue.size() < workers_[best]->queue.size()) best = i;
  }
  st->file_open = true;
  st->worker = best;
  st->file = st->files++;
  st->file_bytes = 0;
}

Status ParallelSstWriter::Send(size_t stream, bool ends_file) {
  StreamState& st = streams_[stream];
  std::unique_lock<std::mutex> l(shared_->mu);
  std::unique_ptr<Batch> b = st.batch ? std::move(st.batch) : TakeBatchLocked(stream, st.file);
  Worker* w = workers_[st.worker].get();
  // The worker is behind and another has nothing to do: rather than wait,
  // end the current file here (if it is big enough) and start the next one,
  // with this batch, on the idle worker. Files then grow only as long as
  // both workers are kept busy, and the memory stays bounded.
  const uint64_t before = st.file_bytes - b->bytes.size();
  if (!ends_file && w->queue.size() >= kQueueBatches && before >= min_file_bytes_) {
    const bool idle = std::any_of(workers_.begin(), workers_.end(),
                                  [&](const auto& o) { return o->queue.empty(); });
    if (idle) {
      // The empty marker may exceed the queue's bound: it holds nothing.
      std::unique_ptr<Batch> end = TakeBatchLocked(stream, st.file);
      end->ends_file = true;
      w->queue.push_back(std::move(end));
      w->work.notify_one();
      StartFileLocked(&st);
      st.file_bytes = b->bytes.size();
      b->file = st.file;
      w = workers_[st.worker].get();
    }
  }
  b->ends_file = ends_file;
  if (ends_file) st.file_open = false;
  shared_->room.wait(l, [&] { return w->queue.size() < kQueueBatches || shared_->failed; });
  if (shared_->failed) {
    b->Clear();
    shared_->free_batches.push_back(std::move(b));
    return shared_->error;
  }
  w->queue.push_back(std::move(b));
  l.unlock();
  w->work.notify_one();
  return Status::OK();
}

}  // namespace kvfs
