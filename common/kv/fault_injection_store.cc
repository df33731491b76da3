#include "common/kv/fault_injection_store.h"

#include <bit>
#include <utility>

#include "common/kv/error_iterator.h"

namespace kvfs {
namespace {

const char* OperationName(FaultInjectionStore::Operation op) {
  switch (op) {
    case FaultInjectionStore::kGet:
      return "Get";
    case FaultInjectionStore::kWrite:
      return "Write";
    case FaultInjectionStore::kNewIterator:
      return "NewIterator";
    case FaultInjectionStore::kIteratorSeek:
      return "Iterator::Seek";
    case FaultInjectionStore::kIteratorNext:
      return "Iterator::Next";
    case FaultInjectionStore::kSync:
      return "Sync";
    case FaultInjectionStore::kGetSnapshot:
      return "GetSnapshot";
    default:
      return "?";
  }
}

// A snapshot of the wrapped store, or a poisoned one (base null) standing for
// a failed GetSnapshot.
class FaultSnapshot final : public Snapshot {
 public:
  explicit FaultSnapshot(std::unique_ptr<Snapshot> base) : base_(std::move(base)) {}
  const Snapshot* base() const { return base_.get(); }

 private:
  const std::unique_ptr<Snapshot> base_;
};

class FaultIterator final : public Iterator {
 public:
  // `failure`, if not OK, makes the iterator failed from the start.
  FaultIterator(FaultInjectionStore* store, std::unique_ptr<Iterator> base, Status failure)
      : store_(store), base_(std::move(base)), failure_(std::move(failure)) {}

  void Seek(std::string_view target) override {
    if (Check(FaultInjectionStore::kIteratorSeek)) base_->Seek(target);
  }
  void SeekBefore(std::string_view target) override {
    if (Check(FaultInjectionStore::kIteratorSeek)) base_->SeekBefore(target);
  }
  void Next() override {
    // Next on an unpositioned iterator is a no-op, as for the other stores.
    if (Check(FaultInjectionStore::kIteratorNext) && base_->Valid()) base_->Next();
  }
  bool Valid() const override { return failure_.ok() && base_->Valid(); }
  std::string_view key() const override { return base_->key(); }
  std::string_view value() const override { return base_->value(); }
  Status status() const override { return failure_.ok() ? base_->status() : failure_; }

 private:
  // Counts the call; false if the iterator is (now) failed.
  bool Check(FaultInjectionStore::Operation op) {
    Status s = store_->CountCall(op);
    if (failure_.ok() && !s.ok()) failure_ = std::move(s);
    return failure_.ok();
  }

  FaultInjectionStore* const store_;
  const std::unique_ptr<Iterator> base_;
  Status failure_;  // sticky injected failure
};

}  // namespace

FaultInjectionStore::FaultInjectionStore(std::unique_ptr<KVStore> base)
    : owned_(std::move(base)), base_(owned_.get()) {}

FaultInjectionStore::FaultInjectionStore(KVStore* base) : base_(base) {}

FaultInjectionStore::~FaultInjectionStore() = default;

uint64_t FaultInjectionStore::CallCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

uint64_t FaultInjectionStore::CallCount(uint32_t op_mask) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (int i = 0; i < kNumOperations; ++i) {
    if (op_mask & (1u << i)) n += calls_by_kind_[i];
  }
  return n;
}

uint64_t FaultInjectionStore::FailureCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

void FaultInjectionStore::FailCall(uint64_t k) { FailNth(kAllOperations, k); }

void FaultInjectionStore::FailNth(uint32_t op_mask, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(Rule{op_mask, n, false});
}

void FaultInjectionStore::FailAfter(uint32_t op_mask, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(Rule{op_mask, n, true});
}

void FaultInjectionStore::Heal() {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.clear();
}

Status FaultInjectionStore::CountCall(Operation op) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t call = calls_++;
  ++calls_by_kind_[std::countr_zero(static_cast<uint32_t>(op))];
  bool fail = false;
  for (auto it = rules_.begin(); it != rules_.end();) {
    if ((it->mask & op) == 0) {
      ++it;
    } else if (it->countdown > 0) {
      --it->countdown;
      ++it;
    } else {
      fail = true;
      it = it->persistent ? it + 1 : rules_.erase(it);
    }
  }
  if (!fail) return Status::OK();
  ++failures_;
  return Status::IOError("injected fault: " + std::string(OperationName(op)) + " (call #" +
                         std::to_string(call) + ")");
}

Status FaultInjectionStore::Get(const ReadOptions& opts, Column c, std::string_view key,
                                std::string* value) {
  KVFS_RETURN_IF_ERROR(CountCall(kGet));
  ReadOptions base_opts = opts;
  if (opts.snapshot != nullptr) {
    auto* snap = dynamic_cast<const FaultSnapshot*>(opts.snapshot);
    if (snap == nullptr) return Status::InvalidArgument("snapshot of another store");
    if (snap->base() == nullptr) return Status::IOError("injected fault: poisoned snapshot");
    base_opts.snapshot = snap->base();
  }
  return base_->Get(base_opts, c, key, value);
}

Status FaultInjectionStore::Write(const WriteOptions& opts, const WriteBatch& batch) {
  KVFS_RETURN_IF_ERROR(CountCall(kWrite));
  return base_->Write(opts, batch);
}

std::unique_ptr<Iterator> FaultInjectionStore::NewIterator(Column c, const IteratorOptions& opts) {
  // Failed iterators are FaultIterators too, so that their calls count.
  auto failed = [this](Status s) {
    return std::make_unique<FaultIterator>(this, NewErrorIterator(s), s);
  };
  Status s = CountCall(kNewIterator);
  if (!s.ok()) return failed(std::move(s));
  IteratorOptions base_opts = opts;
  if (opts.snapshot != nullptr) {
    auto* snap = dynamic_cast<const FaultSnapshot*>(opts.snapshot);
    if (snap == nullptr) return failed(Status::InvalidArgument("snapshot of another store"));
    if (snap->base() == nullptr)
      return failed(Status::IOError("injected fault: poisoned snapshot"));
    base_opts.snapshot = snap->base();
  }
  return std::make_unique<FaultIterator>(this, base_->NewIterator(c, base_opts), Status::OK());
}

std::unique_ptr<Snapshot> FaultInjectionStore::GetSnapshot() {
  if (!CountCall(kGetSnapshot).ok()) return std::make_unique<FaultSnapshot>(nullptr);
  return std::make_unique<FaultSnapshot>(base_->GetSnapshot());
}

Status FaultInjectionStore::Sync() {
  KVFS_RETURN_IF_ERROR(CountCall(kSync));
  return base_->Sync();
}

std::string FaultInjectionStore::Name() const { return "fault_injection(" + base_->Name() + ")"; }

}  // namespace kvfs
