#include "store/background_writer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace kvfs::store {

void BackgroundWriter::Buffer::Free::operator()(char* p) const { std::free(p); }

BackgroundWriter::BackgroundWriter(std::unique_ptr<ObjectWriter> target, size_t buffer_bytes,
                                   size_t buffers)
    : target_(std::move(target)),
      buffer_bytes_(std::max<size_t>(buffer_bytes, 1)),
      buffers_(std::max<size_t>(buffers, 1)),
      thread_([this] { WriteQueued(); }) {}

BackgroundWriter::~BackgroundWriter() {
  // An error here has nobody to go to: the target is discarded uncommitted.
  (void)Drain();
}

bool BackgroundWriter::TakeBuffer(std::unique_lock<std::mutex>& lock) {
  written_.wait(lock, [&] { return !error_.ok() || !spare_.empty() || allocated_ < buffers_; });
  if (!error_.ok()) return false;
  if (!spare_.empty()) {
    filling_ = std::move(spare_.back());
    spare_.pop_back();
  } else {
    // aligned_alloc wants a size that is a multiple of the alignment.
    const size_t bytes =
        (buffer_bytes_ + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    filling_.data.reset(static_cast<char*>(std::aligned_alloc(kBufferAlignment, bytes)));
    if (filling_.data == nullptr) throw std::bad_alloc();
    filling_.size = 0;
    ++allocated_;
  }
  have_filling_ = true;
  return true;
}

Status BackgroundWriter::Append(std::string_view data) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stop_) return Status::InvalidArgument("object already committed");
  if (!error_.ok()) return error_;
  size_ += data.size();
  while (!data.empty()) {
    if (!have_filling_ && !TakeBuffer(lock)) return error_;
    // The buffer is the producer's alone: fill it without the lock.
    lock.unlock();
    const size_t n = std::min(data.size(), buffer_bytes_ - filling_.size);
    std::memcpy(filling_.data.get() + filling_.size, data.data(), n);
    filling_.size += n;
    data.remove_prefix(n);
    lock.lock();
    if (!error_.ok()) return error_;  // nothing after an error is queued
    if (filling_.size == buffer_bytes_) {
      queue_.push_back(std::move(filling_));
      have_filling_ = false;
      queued_.notify_one();
    }
  }
  return Status::OK();
}

void BackgroundWriter::WriteQueued() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    queued_.wait(lock, [&] { return !queue_.empty() || stop_; });
    if (queue_.empty()) return;  // stop_, and everything is written
    if (error_.ok()) {
      const std::string_view data = queue_.front().view();  // stays put: only this thread pops
      lock.unlock();
      Status s = target_->Append(data);
      lock.lock();
      if (!s.ok()) error_ = std::move(s);
    }
    // The buffer is spare again; after an error so is every queued one,
    // unwritten.
    do {
      spare_.push_back(std::move(queue_.front()));
      spare_.back().size = 0;
      queue_.pop_front();
    } while (!error_.ok() && !queue_.empty());
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
    if (have_filling_ && filling_.size > 0 && error_.ok()) {
      queue_.push_back(std::move(filling_));
      have_filling_ = false;
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
