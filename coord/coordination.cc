#include "coord/coordination.h"

#include <algorithm>
#include <cstdio>

#include "coord/etcd_coordination.h"

namespace kvfs::coord {

namespace {

class StoreClaimsImpl final : public Coordination {
 public:
  explicit StoreClaimsImpl(store::PersistentStore* store) : store_(store) {}

  Status ClaimRange(uint64_t range, std::string_view owner) override {
    return store_->ClaimRange(range, owner);
  }
  Status HighestClaimedRange(uint64_t* range) override {
    return store_->HighestClaimedRange(range);
  }
  Status ClaimName(const std::string& name, std::string_view owner) override {
    return store_->ClaimName(name, owner);
  }
  Status ReleaseName(const std::string& name) override { return store_->ReleaseName(name); }
  Status IsNameClaimed(const std::string& name, bool* claimed) override {
    return store_->IsNameClaimed(name, claimed);
  }
  std::string Describe() const override { return store_->Describe(); }

 private:
  store::PersistentStore* store_;
};

}  // namespace

Status CheckLeaseSeconds(int seconds) {
  if (seconds >= kMinLeaseSeconds && seconds <= kMaxLeaseSeconds) return Status::OK();
  return Status::InvalidArgument("coordination lease of " + std::to_string(seconds) +
                                 " s is out of range: " + std::to_string(kMinLeaseSeconds) +
                                 " to " + std::to_string(kMaxLeaseSeconds) +
                                 " seconds (coordination_lease, --coordination-lease)");
}

std::unique_ptr<Coordination> StoreClaims(store::PersistentStore* store) {
  return std::make_unique<StoreClaimsImpl>(store);
}

Status OpenCoordination(const std::string& url, store::PersistentStore* store,
                        const CoordinationOptions& options, std::unique_ptr<Coordination>* out) {
  if (url.empty()) {
    if (store == nullptr) {
      return Status::InvalidArgument("no coordination and no persistent store to keep claims");
    }
    *out = StoreClaims(store);
    return Status::OK();
  }
  KVFS_RETURN_IF_ERROR(CheckLeaseSeconds(options.lease_seconds));
  if (url.rfind("etcd://", 0) != 0) {
    return Status::InvalidArgument("coordination '" + url +
                                   "': expected etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]");
  }
  EtcdClientOptions eo;
  std::string prefix;
  KVFS_RETURN_IF_ERROR(ParseEtcdUrl(url, &eo.endpoints, &prefix));
  eo.request_timeout_ms = options.request_timeout_ms;
  eo.connect_timeout_ms = std::min(options.request_timeout_ms, 1000);
  eo.rounds = options.rounds;
  eo.log = options.log ? options.log : [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  std::unique_ptr<EtcdClient> client;
  KVFS_RETURN_IF_ERROR(EtcdClient::Open(eo, &client));
  // Serve nothing on a coordination that does not answer.
  std::vector<EtcdKeyValue> probe;
  Status s = client->List("/" + prefix + "/", 1, false, &probe);
  if (!s.ok()) return CoordinationError(url, s);
  *out = NewEtcdCoordination(std::move(client), prefix, url, options.lease_seconds);
  return Status::OK();
}

}  // namespace kvfs::coord
