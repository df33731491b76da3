#include "store/background_writer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace kvfs::store {

namespace {

// `bytes` (rounded up to the alignment, as aligned_alloc wants) at a multiple
// of BackgroundWriter::kBufferAlignment.
char* AllocateAligned(size_t bytes) {
  constexpr size_t kAlign = BackgroundWriter::kBufferAlignment;
  void* p = std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<char*>(p);
}

}  // namespace

void BackgroundWriter::Free::operator()(char* p) const { std::free(p); }

BackgroundWriter::BackgroundWriter(std::unique_ptr<ObjectWriter> target, size_t buffer_bytes,
                                   size_t buffers)
    : target_(std::move(target)),
      buffer_bytes_(std::max<size_t>(buffer_bytes, 1)),
      buffers_(std::max<size_t>(buffers, 1)),
      ring_(AllocateAligned(buffer_bytes_ * buffers_)),
      thread_([this] { WriteQueued(); }) {}

BackgroundWriter::~BackgroundWriter() {
  // An error here has nobody to go to: the target is discarded uncommitted.
  (void)Drain();
}

Status BackgroundWriter::Append(std::string_view data) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stop_) return Status::InvalidArgument("object already committed");
  if (!error_.ok()) return error_;
  size_ += data.size();
  while (!data.empty()) {
    // A slot to fill: every one but the queued ones.
    written_.wait(lock, [&] { return !error_.ok() || queued_slots_ < buffers_; });
    if (!error_.ok()) return error_;
    // The slot is the producer's alone: fill it without the lock.
    char* slot = Slot((first_ + queued_slots_) % buffers_);
    lock.unlock();
    const size_t n = std::min(data.size(), buffer_bytes_ - filled_);
    std::memcpy(slot + filled_, data.data(), n);
    filled_ += n;
    data.remove_prefix(n);
    lock.lock();
    if (!error_.ok()) return error_;  // nothing after an error is queued
    if (filled_ == buffer_bytes_) {
      ++queued_slots_;
      filled_ = 0;
      queued_.notify_one();
    }
  }
  return Status::OK();
}

void BackgroundWriter::WriteQueued() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    queued_.wait(lock, [&] { return queued_slots_ > 0 || stop_; });
    if (queued_slots_ == 0) return;  // stop_, and everything is written
    // The queued slots up to the end of the ring, in one call; they stay
    // put (the producer fills only slots past the queued ones).
    const size_t run = std::min(queued_slots_, buffers_ - first_);
    if (error_.ok()) {
      size_t bytes = run * buffer_bytes_;
      if (run == queued_slots_ && tail_bytes_ > 0) bytes -= buffer_bytes_ - tail_bytes_;
      const std::string_view data(Slot(first_), bytes);
      lock.unlock();
      Status s = target_->Append(data);
      lock.lock();
      if (!s.ok()) error_ = std::move(s);
    }
    // The slots are free again; after an error so is every queued one,
    // unwritten.
    const size_t freed = error_.ok() ? run : queued_slots_;
    first_ = (first_ + freed) % buffers_;
    queued_slots_ -= freed;
    written_.notify_all();
  }
}

Status BackgroundWriter::Drain() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  queued_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Status BackgroundWriter::Commit() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return Status::InvalidArgument("object already committed");
    if (filled_ > 0 && error_.ok()) {
      // Append left a slot for it: filled_ > 0 only in a slot it took.
      tail_bytes_ = filled_;
      ++queued_slots_;
      filled_ = 0;
      queued_.notify_one();
    }
  }
  KVFS_RETURN_IF_ERROR(Drain());
  return target_->Commit();
}

uint64_t BackgroundWriter::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

}  // namespace kvfs::store
