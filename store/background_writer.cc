#include "store/background_writer.h"

#include <utility>

namespace kvfs::store {

BackgroundWriter::BackgroundWriter(std::unique_ptr<ObjectWriter> target, size_t max_pending_bytes)
    : target_(std::move(target)),
      max_pending_bytes_(max_pending_bytes),
      thread_([this] { WriteQueued(); }) {}

BackgroundWriter::~BackgroundWriter() {
  // An error here has nobody to go to: the target is discarded uncommitted.
  (void)Drain();
}

Status BackgroundWriter::Append(std::string_view data) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stop_) return Status::InvalidArgument("object already committed");
  // Wait for room; a single Append larger than the bound goes alone.
  written_.wait(lock, [&] {
    return !error_.ok() || pending_bytes_ == 0 ||
           pending_bytes_ + data.size() <= max_pending_bytes_;
  });
  if (!error_.ok()) return error_;
  if (data.empty()) return Status::OK();
  queue_.emplace_back(data);
  pending_bytes_ += data.size();
  size_ += data.size();
  lock.unlock();
  queued_.notify_one();
  return Status::OK();
}

void BackgroundWriter::WriteQueued() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    queued_.wait(lock, [&] { return !queue_.empty() || stop_; });
    if (queue_.empty()) return;                // stop_, and everything is written
    const std::string& data = queue_.front();  // stays put: only this thread pops
    lock.unlock();
    Status s = target_->Append(data);
    lock.lock();
    pending_bytes_ -= data.size();
    queue_.pop_front();
    if (!s.ok()) {
      error_ = std::move(s);
      pending_bytes_ = 0;
      queue_.clear();  // nothing after an error is written
    }
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
  }
  KVFS_RETURN_IF_ERROR(Drain());
  return target_->Commit();
}

uint64_t BackgroundWriter::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

}  // namespace kvfs::store
