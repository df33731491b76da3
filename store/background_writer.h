// BackgroundWriter: an ObjectWriter that passes what it is given to another
// ObjectWriter on a thread of its own, so that the producer (an export's tar
// writer, reading and decompressing the next files) works while the previous
// bytes are written (a file's write calls, a bucket's part uploads).
//
// Appends are copied into a ring of `buffers` buffers of `buffer_bytes`,
// one allocation made up front (its pages are touched as they are filled)
// and reused, so the writer holds at most buffers * buffer_bytes, and Append
// blocks while every buffer is full and waiting to be written. Each Append
// of the target is one or more whole buffers that lie next to each other in
// memory: as many as are queued, up to the end of the ring (the last
// Append, made by Commit, may end with a partly filled one). So the target
// sees the same bytes in the same order, in calls of a multiple of
// buffer_bytes, and bigger calls when it is the slower side. The ring
// starts at a multiple of kBufferAlignment; with buffer_bytes a multiple of
// it too (the default), every call does, so a target can write them with
// direct I/O (store/posix). The first error the target returns stops the
// writing: the next Append and Commit return it, and nothing given after it
// is written.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

#include "common/status.h"
#include "store/persistent_store.h"

namespace kvfs::store {

class BackgroundWriter final : public ObjectWriter {
 public:
  explicit BackgroundWriter(std::unique_ptr<ObjectWriter> target,
                            size_t buffer_bytes = size_t{1} << 20, size_t buffers = 8);
  // Stops the thread once what is queued is written; without a successful
  // Commit() the target is destroyed uncommitted (its object discarded).
  ~BackgroundWriter() override;
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  // Copies `data` into the buffers, queueing each one it fills; returns the
  // target's first error, if any.
  Status Append(std::string_view data) override;
  // Queues the last, partly filled buffer, waits until everything queued is
  // written, then commits the target.
  Status Commit() override;
  // Bytes appended so far (buffered, queued or written).
  uint64_t size() const override;

  static constexpr size_t kBufferAlignment = 4096;

 private:
  struct Free {
    void operator()(char* p) const;
  };

  char* Slot(size_t i) const { return ring_.get() + i * buffer_bytes_; }
  void WriteQueued();
  // Stops the thread after the queue drains; returns the first error.
  Status Drain();

  std::unique_ptr<ObjectWriter> target_;
  const size_t buffer_bytes_;
  const size_t buffers_;
  const std::unique_ptr<char, Free> ring_;  // buffers_ slots of buffer_bytes_
  mutable std::mutex mu_;
  std::condition_variable queued_;   // something to write, or stop_
  std::condition_variable written_;  // slots are free again, or an error
  // Slots first_, first_ + 1, ... (mod buffers_): queued_slots_ full ones,
  // queued or being written, then the one Append fills (only the producer
  // touches it), of which filled_ bytes are used.
  size_t first_ = 0;
  size_t queued_slots_ = 0;
  size_t filled_ = 0;
  // Bytes of the last queued slot if Commit queued it partly filled.
  size_t tail_bytes_ = 0;
  uint64_t size_ = 0;
  Status error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kvfs::store
