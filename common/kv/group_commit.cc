#include "common/kv/group_commit.h"

#include <utility>

namespace kvfs {

// One call of sync_fn and the callers it serves. Each round has its own
// condition variable, so that ending one round wakes only its callers and
// one caller of the next (to lead it), not everyone waiting: on a machine
// where a thread wake-up costs ~12 us of CPU (docs/benchmarks.md), waking
// the next round's callers only to send them back to sleep doubled the
// wake-ups per sync.
struct GroupCommit::Round {
  std::condition_variable cv;
  bool done = false;
  Status status;
};

GroupCommit::GroupCommit(std::function<Status()> sync_fn) : sync_fn_(std::move(sync_fn)) {}

GroupCommit::~GroupCommit() = default;

uint64_t GroupCommit::SyncCalls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

int GroupCommit::Waiters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiters_;
}

Status GroupCommit::Sync() {
  std::unique_lock<std::mutex> lock(mu_);
  std::shared_ptr<Round> round;
  if (running_ == nullptr) {
    // Nothing in flight: a call started now covers our writes. (If next_ is
    // set its waiters have not yet woken to start it; we start it for them,
    // which also serves us since it starts after our arrival.)
    round = next_ != nullptr ? std::move(next_) : std::make_shared<Round>();
    next_ = nullptr;
  } else {
    // The running call may have started before our writes returned, so it
    // does not count for us. Join the round after it.
    if (next_ == nullptr) next_ = std::make_shared<Round>();
    round = next_;
    // Wait until our round is finished by someone else, or until nothing is
    // running, in which case our round (still next_) is ours to lead.
    ++waiters_;
    round->cv.wait(lock, [&] { return round->done || running_ == nullptr; });
    --waiters_;
    if (round->done) return round->status;
    // Invariant: a round that is neither done nor running is next_.
    next_ = nullptr;
  }

  // Lead `round`: run sync_fn outside the lock so followers can queue up.
  running_ = round;
  ++calls_;
  lock.unlock();
  Status s = sync_fn_();
  lock.lock();
  round->status = s;
  round->done = true;
  running_ = nullptr;
  // One caller of the next round, if any, wakes to lead it (or finds that a
  // newcomer already does, and waits on).
  const std::shared_ptr<Round> next = next_;
  lock.unlock();
  round->cv.notify_all();
  if (next != nullptr) next->cv.notify_one();
  return s;
}

}  // namespace kvfs
