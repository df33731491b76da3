#include "common/kv/write_queue.h"

#include <utility>
#include <vector>

namespace kvfs {

struct WriteQueue::Writer {
  const WriteBatch* batch = nullptr;
  bool done = false;
  Status status;
};

WriteQueue::WriteQueue(ApplyFn apply, size_t max_group_bytes)
    : apply_(std::move(apply)), max_group_bytes_(max_group_bytes) {}

Status WriteQueue::Write(const WriteBatch& batch) {
  Writer self;
  self.batch = &batch;
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&self);
  // Wait until a leader has applied our batch, or we are at the front and
  // so lead the next group ourselves.
  cv_.wait(lock, [&] { return self.done || queue_.front() == &self; });
  if (self.done) return self.status;

  // Leader: take every waiting writer up to the byte budget. Writers queued
  // behind the group stay queued until it is done.
  std::vector<Writer*> group;
  std::vector<const WriteBatch*> batches;
  size_t bytes = 0;
  for (Writer* w : queue_) {
    if (!group.empty() && bytes + w->batch->ByteSize() > max_group_bytes_) break;
    group.push_back(w);
    batches.push_back(w->batch);
    bytes += w->batch->ByteSize();
  }
  ++groups_;
  lock.unlock();

  Status s = apply_(batches);
  std::vector<Status> results(group.size(), s);
  if (!s.ok() && group.size() > 1) {
    // The group failed as a whole (and so applied nothing): find out whose
    // batch it was by applying each alone.
    for (size_t i = 0; i < group.size(); ++i) {
      const WriteBatch* one[] = {group[i]->batch};
      results[i] = apply_(one);
    }
  }

  lock.lock();
  for (size_t i = 0; i < group.size(); ++i) {
    queue_.pop_front();
    group[i]->status = std::move(results[i]);
    group[i]->done = true;
  }
  cv_.notify_all();
  return self.status;
}

uint64_t WriteQueue::Groups() const {
  std::lock_guard<std::mutex> lock(mu_);
  return groups_;
}

}  // namespace kvfs
