// GroupCommit: shares one expensive durability call (fsync of a log) among
// concurrent callers without weakening its guarantee.
//
// Usage:
//   GroupCommit gc([db] { return SyncTheLog(db); });
//   ... write with sync=false ...
//   Status s = gc.Sync();  // the write above is durable if s.ok()
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "common/status.h"

namespace kvfs {

class GroupCommit {
 public:
  // `sync_fn` must make durable every write that completed before sync_fn
  // was called, and must not throw. It is never called concurrently with
  // itself by this object.
  explicit GroupCommit(std::function<Status()> sync_fn);
  ~GroupCommit();

  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Returns once a call of sync_fn that started after this call began has
  // finished, with that call's result. Hence on OK every write that returned
  // before Sync() was called is durable. Concurrent callers share calls: a
  // caller arriving while a sync_fn call is in flight (which may have started
  // before its writes) waits for it to end and then joins the next call,
  // which is shared by everyone who arrived during the in-flight one.
  Status Sync();

  // Number of sync_fn calls started so far (for tests and statistics).
  uint64_t SyncCalls() const;
  // Number of callers currently inside Sync() waiting for a sync_fn call
  // they did not start (for tests and statistics).
  int Waiters() const;

 private:
  struct Round;

  const std::function<Status()> sync_fn_;
  mutable std::mutex mu_;
  // The round whose sync_fn call is running, or null.
  std::shared_ptr<Round> running_;
  // The round that starts when running_ ends, joined by callers arriving
  // while running_ is in flight; null if nobody is waiting for one.
  std::shared_ptr<Round> next_;
  uint64_t calls_ = 0;
  int waiters_ = 0;
};

}  // namespace kvfs
