#include "metrics/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <array>
#include <cerrno>
#include <exception>
#include <mutex>
#include <vector>

#include "cache/tree_cache.h"
#include "common/kv/kv_store.h"

namespace kvfs::metrics {
namespace {

constexpr std::array<const char*, static_cast<size_t>(Op::kCount)> kOpNames = {
    "lookup", "getattr", "setattr", "create",  "mkdir",     "mknod", "symlink",      "readlink",
    "link",   "unlink",  "rmdir",   "rename",  "read",      "write", "data_extents", "fsync",
    "sync",   "open",    "close",   "readdir", "cookie_of", "statfs"};

constexpr std::array<const char*, static_cast<size_t>(StoreOp::kCount)> kStoreOpNames = {
    "list",       "stat",         "open_read",      "read",        "open_write",
    "append",     "commit",       "delete",         "claim_range", "highest_claimed_range",
    "claim_name", "release_name", "is_name_claimed"};

// Operation latencies: 20 us to 10 s.
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,   0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}
// Cache loads, evictions and write-backs: 1 ms to 30 min.
prometheus::Histogram::BucketBoundaries CacheBuckets() {
  return {0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
}

// The key/value store's statistics, read at scrape time.
class KVStatistics final : public prometheus::Collectable {
 public:
  void Set(KVStore* kv) {
    std::lock_guard<std::mutex> l(mu_);
    kv_ = kv;
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<prometheus::MetricFamily> out;
    if (kv_ == nullptr) return out;
    const std::string backend = kv_->Name();
    for (const auto& [name, value] : kv_->Statistics()) {
      prometheus::MetricFamily family;
      family.name = "kvfs_kv_" + name;
      family.help = "The key/value store's statistic " + name + " (KVStore::Statistics)";
      family.type = prometheus::MetricType::Gauge;
      prometheus::ClientMetric metric;
      metric.label.push_back({"backend", backend});
      metric.gauge.value = static_cast<double>(value);
      family.metric.push_back(std::move(metric));
      out.push_back(std::move(family));
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  KVStore* kv_ = nullptr;
};

// A counter without labels.
prometheus::Counter* NewCounter(prometheus::Registry& r, const std::string& name,
                                const std::string& help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

// Requests of N kinds (label `op`): how long each took, and which failed.
template <size_t N>
class TimedRequests {
 public:
  TimedRequests(prometheus::Registry& r, const std::string& prefix, const std::string& what,
                const std::array<const char*, N>& ops) {
    auto& durations = prometheus::BuildHistogram()
                          .Name(prefix + "_duration_seconds")
                          .Help(what + " by type and how long they took")
                          .Register(r);
    auto& errors = prometheus::BuildCounter()
                       .Name(prefix + "_errors_total")
                       .Help(what + " that failed, by type")
                       .Register(r);
    for (size_t i = 0; i < N; ++i) {
      duration_[i] = &durations.Add({{"op", ops[i]}}, LatencyBuckets());
      errors_[i] = &errors.Add({{"op", ops[i]}});
    }
  }
  void Record(size_t op, double seconds, bool ok) {
    duration_[op]->Observe(seconds);
    if (!ok) errors_[op]->Increment();
  }

 private:
  std::array<prometheus::Histogram*, N> duration_{};
  std::array<prometheus::Counter*, N> errors_{};
};

// One kind of cache work (label `result`: ok, error): durations and bytes.
class CacheWork {
 public:
  CacheWork(prometheus::Registry& r, const std::string& kind, const std::string& what) {
    auto& durations = prometheus::BuildHistogram()
                          .Name("kvfs_cache_" + kind + "_duration_seconds")
                          .Help(what + " and how long it took, by result")
                          .Register(r);
    auto& bytes = prometheus::BuildCounter()
                      .Name("kvfs_cache_" + kind + "_bytes_total")
                      .Help(what + ": bytes (tarballs; evictions: the trees' bytes), by result")
                      .Register(r);
    for (int ok = 0; ok < 2; ++ok) {
      const char* result = ok ? "ok" : "error";
      duration_[ok] = &durations.Add({{"result", result}}, CacheBuckets());
      bytes_[ok] = &bytes.Add({{"result", result}});
    }
  }
  void Record(bool ok, uint64_t bytes, double seconds) {
    duration_[ok]->Observe(seconds);
    bytes_[ok]->Increment(static_cast<double>(bytes));
  }

 private:
  prometheus::Histogram* duration_[2];
  prometheus::Counter* bytes_[2];
};

}  // namespace

const char* OpName(Op op) { return kOpNames[static_cast<size_t>(op)]; }
const char* StoreOpName(StoreOp op) { return kStoreOpNames[static_cast<size_t>(op)]; }

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<KVStatistics> kv_statistics = std::make_shared<KVStatistics>();
  TimedRequests<kOpNames.size()> operations{*registry, "kvfs_operation", "File system operations",
                                            kOpNames};
  prometheus::Counter* read_bytes =
      NewCounter(*registry, "kvfs_read_bytes_total", "File contents read");
  prometheus::Counter* written_bytes =
      NewCounter(*registry, "kvfs_written_bytes_total", "File contents written");
  TimedRequests<kStoreOpNames.size()> store_requests{*registry, "kvfs_store_request",
                                                     "Persistent store requests", kStoreOpNames};
  prometheus::Counter* store_read_bytes =
      NewCounter(*registry, "kvfs_store_read_bytes_total", "Bytes read from the persistent store");
  prometheus::Counter* store_written_bytes = NewCounter(*registry, "kvfs_store_written_bytes_total",
                                                        "Bytes written to the persistent store");
  // By CacheEvent::Kind.
  std::array<CacheWork, 3> cache{
      CacheWork(*registry, "load", "Trees loaded from their tarballs"),
      CacheWork(*registry, "eviction", "Trees evicted from the key/value store"),
      CacheWork(*registry, "writeback", "Trees written back to the persistent store")};
  // Last: stopped first, while everything it serves still exists.
  std::unique_ptr<prometheus::Exposer> exposer;
};

Metrics::Metrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Metrics::~Metrics() { impl_->exposer.reset(); }

Status Metrics::Start(const std::string& listen, std::unique_ptr<Metrics>* out) {
  std::string address = listen;
  if (address.find(':') == std::string::npos) address = "127.0.0.1:" + address;
  const std::string port = address.substr(address.rfind(':') + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535 ||
      address.rfind(':') == 0) {
    return Status::InvalidArgument("metrics: '" + listen +
                                   "' is not PORT or ADDRESS:PORT (e.g. 9587, 0.0.0.0:9587)");
  }
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(address, 1);
  } catch (const std::exception& e) {
    return Status::FromErrno(EADDRINUSE, "metrics: cannot listen on " + address + ": " + e.what());
  }
  impl->exposer->RegisterCollectable(impl->registry);
  impl->exposer->RegisterCollectable(impl->kv_statistics);
  out->reset(new Metrics(std::move(impl)));
  return Status::OK();
}

int Metrics::port() const {
  std::vector<int> ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Metrics::RecordOperation(Op op, double seconds, bool ok) {
  impl_->operations.Record(static_cast<size_t>(op), seconds, ok);
}

void Metrics::AddBytesRead(uint64_t bytes) {
  impl_->read_bytes->Increment(static_cast<double>(bytes));
}
void Metrics::AddBytesWritten(uint64_t bytes) {
  impl_->written_bytes->Increment(static_cast<double>(bytes));
}

void Metrics::RecordStoreRequest(StoreOp op, double seconds, bool ok) {
  impl_->store_requests.Record(static_cast<size_t>(op), seconds, ok);
}

void Metrics::AddStoreBytesRead(uint64_t bytes) {
  impl_->store_read_bytes->Increment(static_cast<double>(bytes));
}
void Metrics::AddStoreBytesWritten(uint64_t bytes) {
  impl_->store_written_bytes->Increment(static_cast<double>(bytes));
}

void Metrics::RecordCacheEvent(const cache::CacheEvent& event) {
  impl_->cache[static_cast<size_t>(event.kind)].Record(event.ok, event.bytes, event.seconds);
}

void Metrics::SetKVStore(KVStore* kv) { impl_->kv_statistics->Set(kv); }

}  // namespace kvfs::metrics
