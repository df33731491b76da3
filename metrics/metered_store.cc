#include "metrics/metered_store.h"

#include <chrono>
#include <utility>

#include "metrics/metrics.h"

namespace kvfs::metrics {
namespace {

using Clock = std::chrono::steady_clock;
using store::ObjectInfo;
using store::ObjectReader;
using store::ObjectWriter;
using store::PersistentStore;

// Runs `fn` (returning a Status) and records it as one request `op`.
template <typename Fn>
Status Timed(Metrics* metrics, StoreOp op, Fn&& fn) {
  const Clock::time_point start = Clock::now();
  Status s = fn();
  metrics->RecordStoreRequest(op, std::chrono::duration<double>(Clock::now() - start).count(),
                              s.ok());
  return s;
}

class MeteredReader final : public ObjectReader {
 public:
  MeteredReader(std::unique_ptr<ObjectReader> base, Metrics* metrics)
      : base_(std::move(base)), metrics_(metrics) {}
  Status Read(char* buf, size_t n, size_t* got) override {
    Status s = Timed(metrics_, StoreOp::kRead, [&] { return base_->Read(buf, n, got); });
    if (s.ok()) metrics_->AddStoreBytesRead(*got);
    return s;
  }
  uint64_t size() const override { return base_->size(); }

 private:
  const std::unique_ptr<ObjectReader> base_;
  Metrics* const metrics_;
};

class MeteredWriter final : public ObjectWriter {
 public:
  MeteredWriter(std::unique_ptr<ObjectWriter> base, Metrics* metrics)
      : base_(std::move(base)), metrics_(metrics) {}
  Status Append(std::string_view data) override {
    Status s = Timed(metrics_, StoreOp::kAppend, [&] { return base_->Append(data); });
    if (s.ok()) metrics_->AddStoreBytesWritten(data.size());
    return s;
  }
  Status Commit() override {
    return Timed(metrics_, StoreOp::kCommit, [&] { return base_->Commit(); });
  }
  uint64_t size() const override { return base_->size(); }

 private:
  const std::unique_ptr<ObjectWriter> base_;
  Metrics* const metrics_;
};

class MeteredStore final : public PersistentStore {
 public:
  MeteredStore(std::unique_ptr<PersistentStore> base, Metrics* metrics)
      : base_(std::move(base)), metrics_(metrics) {}

  Status List(std::vector<ObjectInfo>* out) override {
    return Timed(metrics_, StoreOp::kList, [&] { return base_->List(out); });
  }
  Status Stat(const std::string& name, ObjectInfo* out) override {
    return Timed(metrics_, StoreOp::kStat, [&] { return base_->Stat(name, out); });
  }
  Status OpenRead(const std::string& name, std::unique_ptr<ObjectReader>* out) override {
    std::unique_ptr<ObjectReader> reader;
    KVFS_RETURN_IF_ERROR(
        Timed(metrics_, StoreOp::kOpenRead, [&] { return base_->OpenRead(name, &reader); }));
    *out = std::make_unique<MeteredReader>(std::move(reader), metrics_);
    return Status::OK();
  }
  Status OpenWrite(const std::string& name, std::unique_ptr<ObjectWriter>* out) override {
    std::unique_ptr<ObjectWriter> writer;
    KVFS_RETURN_IF_ERROR(
        Timed(metrics_, StoreOp::kOpenWrite, [&] { return base_->OpenWrite(name, &writer); }));
    *out = std::make_unique<MeteredWriter>(std::move(writer), metrics_);
    return Status::OK();
  }
  Status Delete(const std::string& name) override {
    return Timed(metrics_, StoreOp::kDelete, [&] { return base_->Delete(name); });
  }
  Status ClaimRange(uint64_t range, std::string_view owner) override {
    return Timed(metrics_, StoreOp::kClaimRange, [&] { return base_->ClaimRange(range, owner); });
  }
  Status HighestClaimedRange(uint64_t* range) override {
    return Timed(metrics_, StoreOp::kHighestClaimedRange,
                 [&] { return base_->HighestClaimedRange(range); });
  }
  Status ClaimName(const std::string& name, std::string_view owner) override {
    return Timed(metrics_, StoreOp::kClaimName, [&] { return base_->ClaimName(name, owner); });
  }
  Status ReleaseName(const std::string& name) override {
    return Timed(metrics_, StoreOp::kReleaseName, [&] { return base_->ReleaseName(name); });
  }
  Status IsNameClaimed(const std::string& name, bool* claimed) override {
    return Timed(metrics_, StoreOp::kIsNameClaimed,
                 [&] { return base_->IsNameClaimed(name, claimed); });
  }
  std::string Describe() const override { return base_->Describe(); }

 private:
  const std::unique_ptr<PersistentStore> base_;
  Metrics* const metrics_;
};

}  // namespace

std::unique_ptr<PersistentStore> NewMeteredStore(std::unique_ptr<PersistentStore> base,
                                                 Metrics* metrics) {
  return std::make_unique<MeteredStore>(std::move(base), metrics);
}

}  // namespace kvfs::metrics
