// FaultInjectionStore: a KVStore wrapper that fails chosen calls with EIO, so
// tests can drive every error path of code written against KVStore.
//
// Every call the wrapper forwards is counted and has a kind (Operation):
//   kGet          KVStore::Get (also the Get convenience wrapper)
//   kWrite        KVStore::Write (also the Put/Delete convenience wrappers)
//   kNewIterator  KVStore::NewIterator
//   kIteratorSeek Iterator::Seek and Iterator::SeekBefore
//   kIteratorNext Iterator::Next
//   kSync         KVStore::Sync
//   kGetSnapshot  KVStore::GetSnapshot
// Name(), Snapshot destruction and the Iterator accessors (Valid, key,
// value, status) are not counted and never fail.
//
// A failed call returns Status::IOError (errno EIO) with a message starting
// "injected fault" and has no effect on the wrapped store (a failed Write
// applies nothing, a failed Sync syncs nothing). Where a call has no Status:
//   - a failed NewIterator returns an iterator that is never Valid() and
//     whose status() is the IOError;
//   - a failed Seek, SeekBefore or Next leaves the iterator !Valid() with
//     status() IOError; the failure is sticky: the iterator stays so;
//   - calls on a failed iterator are still counted (and may be chosen to
//     fail) but do not reach a wrapped iterator;
//   - a failed GetSnapshot returns a non-null "poisoned" snapshot: every Get
//     or NewIterator through this wrapper that uses it fails with IOError
//     (those calls are counted as usual).
//
// To enumerate the calls an operation makes and fail each in turn:
//   uint64_t before = store.CallCount();
//   RunOperation();
//   uint64_t n = store.CallCount() - before;
//   for (uint64_t k = 0; k < n; ++k) {
//     store.FailCall(k);   // the k-th call from now fails
//     EXPECT_FALSE(RunOperation().ok());
//     store.Heal();
//   }
//
// Snapshots handed out by the wrapper are its own objects: use them only with
// this wrapper. Iterators and snapshots must be destroyed before the wrapper.
// Thread-safe; with concurrent callers "the k-th call from now" is the k-th
// to be counted, in whatever order the threads get there.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/kv/kv_store.h"

namespace kvfs {

class FaultInjectionStore final : public KVStore {
 public:
  // Kinds of calls, as bits so that a rule can match several kinds.
  enum Operation : uint32_t {
    kGet = 1u << 0,
    kWrite = 1u << 1,
    kNewIterator = 1u << 2,
    kIteratorSeek = 1u << 3,
    kIteratorNext = 1u << 4,
    kSync = 1u << 5,
    kGetSnapshot = 1u << 6,
    kAllOperations = (1u << 7) - 1,
  };
  static constexpr int kNumOperations = 7;

  // Wraps `base` and owns it.
  explicit FaultInjectionStore(std::unique_ptr<KVStore> base);
  // Wraps `base` without owning it; `base` must outlive the wrapper.
  explicit FaultInjectionStore(KVStore* base);
  ~FaultInjectionStore() override;

  FaultInjectionStore(const FaultInjectionStore&) = delete;
  FaultInjectionStore& operator=(const FaultInjectionStore&) = delete;

  // Total calls counted so far (all kinds), including failed ones.
  uint64_t CallCount() const;
  // Calls counted so far whose kind is in `op_mask`.
  uint64_t CallCount(uint32_t op_mask) const;
  // Injected failures so far.
  uint64_t FailureCount() const;

  // The k-th counted call from now, of any kind, fails (0 = the next one).
  // One-shot: later calls succeed again.
  void FailCall(uint64_t k);
  // The n-th call from now whose kind is in `op_mask` fails (0 = the next
  // such call). One-shot.
  void FailNth(uint32_t op_mask, uint64_t n);
  // After n more calls whose kind is in `op_mask` succeed, every further
  // call of those kinds fails until Heal() (n = 0: from the next one on).
  void FailAfter(uint32_t op_mask, uint64_t n);
  // Cancels every pending and persistent failure set above. Iterators that
  // already failed stay failed; poisoned snapshots stay poisoned.
  void Heal();

  // The wrapped store.
  KVStore* base() const { return base_; }

  // KVStore, with failures injected as described above.
  using KVStore::Get;  // the convenience overload, not hidden by the override
  Status Get(const ReadOptions& opts, Column c, std::string_view key, std::string* value) override;
  Status Write(const WriteOptions& opts, const WriteBatch& batch) override;
  std::unique_ptr<Iterator> NewIterator(Column c, const IteratorOptions& opts) override;
  std::unique_ptr<Snapshot> GetSnapshot() override;
  Status Sync() override;
  std::string Name() const override;

  // Counts a call of kind `op` (a single bit) and returns IOError if it is
  // chosen to fail, else OK. Used by the wrapper's iterators.
  Status CountCall(Operation op);

 private:
  struct Rule {
    uint32_t mask;       // kinds the rule applies to
    uint64_t countdown;  // matching calls to let through before failing
    bool persistent;     // keeps failing once it has fired
  };

  std::unique_ptr<KVStore> owned_;
  KVStore* const base_;

  mutable std::mutex mu_;
  std::vector<Rule> rules_;                      // guarded by mu_
  uint64_t calls_ = 0;                           // guarded by mu_
  uint64_t calls_by_kind_[kNumOperations] = {};  // guarded by mu_
  uint64_t failures_ = 0;                        // guarded by mu_
};

}  // namespace kvfs
