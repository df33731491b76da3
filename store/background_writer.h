// BackgroundWriter: an ObjectWriter that passes what it is given to another
// ObjectWriter on a thread of its own, so that the producer (an export's tar
// writer, reading and decompressing the next files) works while the previous
// bytes are written (a file's write calls, a bucket's part uploads).
//
// Bounded: Append blocks while more than `max_pending_bytes` wait to be
// written. The target sees the same bytes, in the same order, in the same
// Append calls. The first error the target returns stops the writing: the
// next Append and Commit return it, and nothing given after it is written.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"
#include "store/persistent_store.h"

namespace kvfs::store {

class BackgroundWriter final : public ObjectWriter {
 public:
  explicit BackgroundWriter(std::unique_ptr<ObjectWriter> target,
                            size_t max_pending_bytes = size_t{8} << 20);
  // Stops the thread once what is queued is written; without a successful
  // Commit() the target is destroyed uncommitted (its object discarded).
  ~BackgroundWriter() override;
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  // Queues a copy of `data`; returns the target's first error, if any.
  Status Append(std::string_view data) override;
  // Waits until everything queued is written, then commits the target.
  Status Commit() override;
  // Bytes appended so far (queued or written).
  uint64_t size() const override;

 private:
  void WriteQueued();
  // Stops the thread after the queue drains; returns the first error.
  Status Drain();

  std::unique_ptr<ObjectWriter> target_;
  const size_t max_pending_bytes_;
  mutable std::mutex mu_;
  std::condition_variable queued_;   // something to write, or stop_
  std::condition_variable written_;  // pending_bytes_ fell, or an error
  std::deque<std::string> queue_;    // the front is the one being written
  size_t pending_bytes_ = 0;         // queued and in flight
  uint64_t size_ = 0;
  Status error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kvfs::store
