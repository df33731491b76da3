// BackgroundWriter: an ObjectWriter that passes what it is given to another
// ObjectWriter on a thread of its own, so that the producer (an export's tar
// writer, reading and decompressing the next files) works while the previous
// bytes are written (a file's write calls, a bucket's part uploads).
//
// Appends are copied into buffers of `buffer_bytes`, and each full buffer is
// one Append of the target (the last one, written by Commit, may be
// shorter): the target sees the same bytes in the same order, in calls of
// that size. The buffers start at multiples of kBufferAlignment, so a target
// can write whole buffers with direct I/O (store/posix). At most `buffers`
// buffers exist; they are allocated once and reused, so the writer holds at
// most buffers * buffer_bytes, and Append blocks while every buffer is full
// and waiting to be written. The first
// error the target returns stops the writing: the next Append and Commit
// return it, and nothing given after it is written.
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
#include <vector>

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
  // `capacity` bytes at a multiple of kBufferAlignment, `size` of them used.
  struct Buffer {
    struct Free {
      void operator()(char* p) const;
    };
    std::unique_ptr<char, Free> data;
    size_t size = 0;
    std::string_view view() const { return std::string_view(data.get(), size); }
  };

  // Waits for a buffer to fill (a spare one, or a new one while fewer than
  // buffers_ exist); false with the target's error if it failed meanwhile.
  bool TakeBuffer(std::unique_lock<std::mutex>& lock);
  void WriteQueued();
  // Stops the thread after the queue drains; returns the first error.
  Status Drain();

  std::unique_ptr<ObjectWriter> target_;
  const size_t buffer_bytes_;
  const size_t buffers_;
  mutable std::mutex mu_;
  std::condition_variable queued_;   // something to write, or stop_
  std::condition_variable written_;  // a buffer is spare again, or an error
  // The buffer Append fills (only the producer touches it), if it has one.
  Buffer filling_;
  bool have_filling_ = false;
  std::deque<Buffer> queue_;   // the front is the one being written
  std::vector<Buffer> spare_;  // written buffers, to be filled again
  size_t allocated_ = 0;       // buffers that exist
  uint64_t size_ = 0;
  Status error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kvfs::store
