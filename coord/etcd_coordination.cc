#include "coord/etcd_coordination.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

namespace kvfs::coord {

namespace {

class EtcdCoordination final : public Coordination {
 public:
  EtcdCoordination(std::unique_ptr<EtcdClient> client, const std::string& prefix,
                   const std::string& url, int lease_seconds)
      : client_(std::move(client)),
        root_("/" + prefix + "/"),
        url_(url),
        lease_seconds_(std::max(lease_seconds, kMinLeaseSeconds)) {
    std::random_device rd;
    nonce_base_ = (uint64_t(rd()) << 32) ^ rd();
  }

  // The lease is not revoked: trees this server changed stay its own until
  // the lease expires (their changes are written back when it returns).
  ~EtcdCoordination() override {
    {
      std::lock_guard<std::mutex> l(lease_mu_);
      stop_ = true;
    }
    lease_cv_.notify_all();
    if (keeper_.joinable()) keeper_.join();
  }

  bool OwnsTrees() const override { return true; }
  Status AcquireTree(const std::string& name, std::string_view owner) override;
  Status VerifyTreeOwned(const std::string& name) override;
  Status ReleaseTree(const std::string& name) override;

  Status ClaimRange(uint64_t range, std::string_view owner) override {
    return Claim(RangeKey(range), owner, "range " + std::to_string(range));
  }

  Status HighestClaimedRange(uint64_t* range) override {
    std::vector<EtcdKeyValue> top;
    KVFS_RETURN_IF_ERROR(Wrap(client_->List(root_ + "ranges/", 1, true, &top)));
    *range = 0;
    if (top.empty()) return Status::OK();
    const std::string hex = top[0].key.substr(root_.size() + 7);
    if (hex.size() != 16 || std::sscanf(hex.c_str(), "%" SCNx64, range) != 1) {
      return Status::Corruption("etcd key " + top[0].key + " of " + url_ + " is not a range claim");
    }
    return Status::OK();
  }

  Status ClaimName(const std::string& name, std::string_view owner) override {
    KVFS_RETURN_IF_ERROR(store::CheckObjectName(name));
    return Claim(root_ + "names/" + name, owner, "name '" + name + "'");
  }

  Status ReleaseName(const std::string& name) override {
    KVFS_RETURN_IF_ERROR(store::CheckObjectName(name));
    int64_t deleted = 0;
    KVFS_RETURN_IF_ERROR(Wrap(client_->Delete(root_ + "names/" + name, &deleted)));
    if (deleted == 0) return Status::NotFound("no claim of '" + name + "' in " + url_);
    return Status::OK();
  }

  Status IsNameClaimed(const std::string& name, bool* claimed) override {
    KVFS_RETURN_IF_ERROR(store::CheckObjectName(name));
    EtcdKeyValue kv;
    Status s = client_->Get(root_ + "names/" + name, &kv);
    *claimed = s.ok();
    return s.IsNotFound() ? Status::OK() : Wrap(s);
  }

  std::string Describe() const override { return url_; }

  bool NumbersTrees() const override { return true; }

  Status VersionRanges(const std::vector<TarballVersion>& versions, std::string_view owner,
                       std::vector<uint64_t>* ranges) override;
  Status WatchVersions(std::function<void(const std::string& object)> on_new_version,
                       std::unique_ptr<VersionWatch>* out) override;

 private:
  using VersionKey = std::pair<std::string, uint64_t>;  // object, version

  std::string VersionEtcdKey(const VersionKey& v) const {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016" PRIx64, v.second);
    return root_ + "versions/" + v.first + "/" + hex;
  }
  // Reads the range a version key's value records ("range=<16 hex> ...").
  Status ParseVersionValue(const EtcdKeyValue& kv, uint64_t* range) const {
    if (kv.value.rfind("range=", 0) != 0 ||
        std::sscanf(kv.value.c_str() + 6, "%16" SCNx64, range) != 1 || *range == 0) {
      return Status::Corruption("etcd key " + kv.key + " of " + url_ +
                                " is not a version's range: '" + kv.value + "'");
    }
    return Status::OK();
  }
  // Reads every version's range into versions_ (once).
  Status LoadVersions();
  // Numbers `batch` (versions nobody had numbered when last read) with fresh
  // ranges in one transaction; those another server numbered meanwhile are
  // read instead. Requires versions_mu_.
  Status NumberBatch(std::vector<VersionKey> batch, std::string_view owner);

  std::string RangeKey(uint64_t range) const {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016" PRIx64, range);
    return root_ + "ranges/" + hex;
  }

  // Creates `key` unless it exists. The value carries a nonce: if a request
  // that timed out on one member was applied before the retry on another,
  // the retry finds its own value and the claim is ours.
  Status Claim(const std::string& key, std::string_view owner, const std::string& what) {
    char nonce[40];
    std::snprintf(nonce, sizeof nonce, " claim=%016" PRIx64, nonce_base_ + next_++);
    const std::string value = std::string(owner) + nonce;
    bool created = false;
    EtcdKeyValue existing;
    KVFS_RETURN_IF_ERROR(Wrap(client_->CreateIfAbsent(key, value, 0, &created, &existing)));
    if (created || existing.value == value) return Status::OK();
    return Status::Exists(what + " is claimed in " + url_ + " by " + existing.value);
  }

  Status Wrap(const Status& s) const { return CoordinationError(url_, s); }

  std::unique_ptr<EtcdClient> client_;
  const std::string root_;  // "/PREFIX/"
  const std::string url_;
  uint64_t nonce_base_ = 0;
  std::atomic<uint64_t> next_{0};

  using SteadyClock = std::chrono::steady_clock;
  std::string OwnerKey(const std::string& name) const { return root_ + "owners/" + name; }
  // A lease of our own that is still valid (granted or renewed less than
  // its TTL ago, counted from before the request); grants one if there is
  // none (and starts the keeper). Requires lease_mu_.
  Status ValidLease(std::unique_lock<std::mutex>* l, int64_t* lease);
  // Renews the lease every third of its TTL; drops it when etcd says it is
  // gone or it could not be renewed in time.
  void KeepAlive();

  const int lease_seconds_;
  std::mutex lease_mu_;
  std::condition_variable lease_cv_;
  bool stop_ = false;                    // guarded by lease_mu_
  bool granting_ = false;                // guarded by lease_mu_: a grant in flight
  int64_t lease_ = 0;                    // guarded by lease_mu_; 0: none
  SteadyClock::time_point valid_until_;  // guarded by lease_mu_
  std::set<std::string> owned_;          // guarded by lease_mu_: under lease_
  // Leases of ours given up as lost (not renewed in time, etcd unreachable)
  // that etcd may still hold, with owner keys attached, once it is back: we
  // revoke one when it keeps us from a tree. Guarded by lease_mu_.
  std::set<int64_t> past_leases_;
  std::thread keeper_;

  // The ranges of tarball versions, as read from and claimed in etcd; a
  // version's range never changes once recorded, so this only grows.
  std::mutex versions_mu_;
  bool versions_loaded_ = false;             // guarded by versions_mu_
  std::map<VersionKey, uint64_t> versions_;  // guarded by versions_mu_
};

Status EtcdCoordination::ValidLease(std::unique_lock<std::mutex>* l, int64_t* lease) {
  // One grant at a time: two leases would leave trees taken under one that
  // nobody renews.
  lease_cv_.wait(*l, [&] { return !granting_; });
  if (lease_ != 0 && SteadyClock::now() < valid_until_) {
    *lease = lease_;
    return Status::OK();
  }
  // None, or lost: every ownership under it is gone.
  if (lease_ != 0) past_leases_.insert(lease_);
  lease_ = 0;
  owned_.clear();
  const SteadyClock::time_point asked = SteadyClock::now();
  int64_t id = 0, ttl = 0;
  granting_ = true;
  l->unlock();
  Status s = Wrap(client_->LeaseGrant(lease_seconds_, &id, &ttl));
  l->lock();
  granting_ = false;
  lease_cv_.notify_all();
  KVFS_RETURN_IF_ERROR(s);
  lease_ = id;
  valid_until_ = asked + std::chrono::seconds(ttl > 0 ? ttl : lease_seconds_);
  if (!keeper_.joinable()) keeper_ = std::thread([this] { KeepAlive(); });
  *lease = id;
  return Status::OK();
}

void EtcdCoordination::KeepAlive() {
  std::unique_lock<std::mutex> l(lease_mu_);
  while (!stop_) {
    lease_cv_.wait_for(l, std::chrono::milliseconds(lease_seconds_ * 1000 / 3),
                       [&] { return stop_; });
    if (stop_ || lease_ == 0) continue;
    const int64_t id = lease_;
    const SteadyClock::time_point asked = SteadyClock::now();
    l.unlock();
    int64_t ttl = 0;
    Status s = client_->LeaseKeepAlive(id, &ttl);
    l.lock();
    if (lease_ != id) continue;
    if (s.ok()) {
      valid_until_ = asked + std::chrono::seconds(ttl);
    } else if (s.IsNotFound()) {
      valid_until_ = SteadyClock::now();  // gone: so is every ownership
    }
    // Otherwise (etcd unreachable) the lease stays valid until valid_until_.
  }
}

Status EtcdCoordination::AcquireTree(const std::string& name, std::string_view owner) {
  KVFS_RETURN_IF_ERROR(store::CheckObjectName(name));
  std::unique_lock<std::mutex> l(lease_mu_);
  int64_t lease = 0;
  KVFS_RETURN_IF_ERROR(ValidLease(&l, &lease));
  if (owned_.count(name) > 0) return Status::OK();
  bool created = false;
  EtcdKeyValue existing;
  // The owner key, created unless it exists (lease_mu_ released meanwhile).
  auto create = [&] {
    l.unlock();
    Status s = client_->CreateIfAbsent(OwnerKey(name),
                                       std::string(owner) + " lease=" + std::to_string(lease),
                                       lease, &created, &existing);
    l.lock();
    return s;
  };
  Status s = create();
  if (s.IsNotFound()) {
    // Our lease is gone (revoked, expired before the keeper noticed): a new
    // one, once.
    if (lease_ == lease) lease_ = 0;
    KVFS_RETURN_IF_ERROR(ValidLease(&l, &lease));
    s = create();
  }
  KVFS_RETURN_IF_ERROR(Wrap(s));
  if (!created && existing.lease != lease && past_leases_.count(existing.lease) > 0) {
    // The tree is still attached to a lease of ours we gave up as lost (etcd
    // was unreachable longer than the TTL, and etcd, back with a new leader,
    // extended that lease): nobody else took it. Revoke the old lease (every
    // tree under it was given up with it) and take the tree under the new.
    const int64_t old = existing.lease;
    past_leases_.erase(old);
    l.unlock();
    Status r = client_->LeaseRevoke(old);
    l.lock();
    if (!r.ok() && !r.IsNotFound()) return Wrap(r);
    s = create();
    KVFS_RETURN_IF_ERROR(Wrap(s));
  }
  if (created || existing.lease == lease) {
    if (lease_ == lease) owned_.insert(name);
    if (lease_ == lease) return Status::OK();
    return Status::FromErrno(
        EIO, "coordination " + url_ + ": lost the lease while taking '" + name + "'");
  }
  return Status::FromErrno(EROFS, "tree '" + name + "' is being changed on another server (" +
                                      existing.value + ", " + url_ +
                                      "): read-only here until it gives the tree up or its "
                                      "lease expires");
}

Status EtcdCoordination::VerifyTreeOwned(const std::string& name) {
  int64_t lease = 0;
  {
    std::lock_guard<std::mutex> l(lease_mu_);
    if (lease_ == 0 || SteadyClock::now() >= valid_until_ || owned_.count(name) == 0) {
      return Status::FromErrno(EROFS, "tree '" + name + "' is no longer this server's in " + url_ +
                                          " (its lease was lost)");
    }
    lease = lease_;
  }
  EtcdKeyValue kv;
  Status s = client_->Get(OwnerKey(name), &kv);
  if (s.IsNotFound() || (s.ok() && kv.lease != lease)) {
    std::lock_guard<std::mutex> l(lease_mu_);
    owned_.erase(name);
    return Status::FromErrno(EROFS, "tree '" + name + "' is no longer this server's in " + url_ +
                                        (s.ok() ? " (now " + kv.value + ")" : " (lease lost)"));
  }
  return Wrap(s);
}

Status EtcdCoordination::ReleaseTree(const std::string& name) {
  {
    std::lock_guard<std::mutex> l(lease_mu_);
    if (owned_.erase(name) == 0) return Status::OK();
  }
  // Only while it is still ours (attached to our lease).
  int64_t lease = 0;
  {
    std::lock_guard<std::mutex> l(lease_mu_);
    lease = lease_;
  }
  EtcdKeyValue kv;
  Status s = client_->Get(OwnerKey(name), &kv);
  if (s.IsNotFound() || (s.ok() && kv.lease != lease)) return Status::OK();
  KVFS_RETURN_IF_ERROR(Wrap(s));
  int64_t deleted = 0;
  return Wrap(client_->Delete(OwnerKey(name), &deleted));
}

Status EtcdCoordination::LoadVersions() {
  if (versions_loaded_) return Status::OK();
  std::vector<EtcdKeyValue> kvs;
  KVFS_RETURN_IF_ERROR(Wrap(client_->List(root_ + "versions/", 0, false, &kvs)));
  for (const EtcdKeyValue& kv : kvs) {
    const std::string rest = kv.key.substr(root_.size() + 9);
    const size_t slash = rest.rfind('/');
    uint64_t version = 0, range = 0;
    if (slash == std::string::npos ||
        std::sscanf(rest.c_str() + slash + 1, "%16" SCNx64, &version) != 1) {
      return Status::Corruption("etcd key " + kv.key + " of " + url_ + " is not a version");
    }
    KVFS_RETURN_IF_ERROR(ParseVersionValue(kv, &range));
    versions_[{rest.substr(0, slash), version}] = range;
  }
  versions_loaded_ = true;
  return Status::OK();
}

Status EtcdCoordination::NumberBatch(std::vector<VersionKey> batch, std::string_view owner) {
  for (int attempt = 0; attempt < 1000 && !batch.empty(); ++attempt) {
    uint64_t highest;
    KVFS_RETURN_IF_ERROR(HighestClaimedRange(&highest));
    // One transaction: ranges highest+1.. and the version keys naming them,
    // all created only if none exists.
    std::vector<std::pair<std::string, std::string>> kvs;
    for (size_t i = 0; i < batch.size(); ++i) {
      const uint64_t range = highest + 1 + i;
      char head[40];
      std::snprintf(head, sizeof head, "range=%016" PRIx64 " ", range);
      const std::string what = std::string(owner) + " version of " + batch[i].first;
      kvs.emplace_back(RangeKey(range), what);
      kvs.emplace_back(VersionEtcdKey(batch[i]), head + what);
    }
    bool created = false;
    KVFS_RETURN_IF_ERROR(Wrap(client_->CreateAllIfAbsent(kvs, &created)));
    if (created) {
      for (size_t i = 0; i < batch.size(); ++i) versions_[batch[i]] = highest + 1 + i;
      return Status::OK();
    }
    // Another server claimed one of the ranges or numbered one of the
    // versions (or our own earlier attempt was applied before a failover):
    // keep the versions numbered meanwhile, number the rest again.
    std::vector<VersionKey> rest;
    for (const VersionKey& v : batch) {
      EtcdKeyValue kv;
      Status s = client_->Get(VersionEtcdKey(v), &kv);
      if (s.IsNotFound()) {
        rest.push_back(v);
        continue;
      }
      KVFS_RETURN_IF_ERROR(Wrap(s));
      uint64_t range;
      KVFS_RETURN_IF_ERROR(ParseVersionValue(kv, &range));
      versions_[v] = range;
    }
    batch = std::move(rest);
  }
  if (batch.empty()) return Status::OK();
  return Status::FromErrno(EAGAIN,
                           "could not number tarball versions in " + url_ + " after 1000 attempts");
}

namespace {

// A thread running EtcdClient::Watch until destroyed.
class EtcdVersionWatch final : public VersionWatch {
 public:
  explicit EtcdVersionWatch(std::function<void(const std::atomic<bool>*)> run)
      : thread_([this, run = std::move(run)] { run(&stop_); }) {}
  ~EtcdVersionWatch() override {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

Status EtcdCoordination::WatchVersions(std::function<void(const std::string&)> on_new_version,
                                       std::unique_ptr<VersionWatch>* out) {
  *out = std::make_unique<EtcdVersionWatch>([this, on_new_version](const std::atomic<bool>* stop) {
    const std::string under = root_ + "versions/";
    auto on_put = [&](const EtcdKeyValue* kv) {
      if (kv == nullptr) return on_new_version("");
      if (kv->key.size() <= under.size()) return;
      const std::string rest = kv->key.substr(under.size());
      const size_t slash = rest.rfind('/');
      uint64_t version = 0, range = 0;
      if (slash == std::string::npos ||
          std::sscanf(rest.c_str() + slash + 1, "%16" SCNx64, &version) != 1 ||
          !ParseVersionValue(*kv, &range).ok()) {
        return;
      }
      const VersionKey k{rest.substr(0, slash), version};
      {
        // Known already (numbered here, or read): nothing new to this server.
        std::lock_guard<std::mutex> l(versions_mu_);
        if (versions_.count(k) > 0) return;
        if (versions_loaded_) versions_[k] = range;
      }
      on_new_version(k.first);
    };
    (void)client_->Watch(under, on_put, [stop] { return stop->load(); });
  });
  return Status::OK();
}

Status EtcdCoordination::VersionRanges(const std::vector<TarballVersion>& versions,
                                       std::string_view owner, std::vector<uint64_t>* ranges) {
  // Two keys per version and etcd's default limit of 128 operations per
  // transaction.
  constexpr size_t kBatch = 64;
  std::lock_guard<std::mutex> l(versions_mu_);
  KVFS_RETURN_IF_ERROR(LoadVersions());
  std::vector<VersionKey> missing;
  std::set<VersionKey> seen;
  for (const TarballVersion& v : versions) {
    KVFS_RETURN_IF_ERROR(store::CheckObjectName(v.object));
    VersionKey k{v.object, v.version};
    if (versions_.count(k) == 0 && seen.insert(k).second) missing.push_back(k);
  }
  for (size_t begin = 0; begin < missing.size(); begin += kBatch) {
    const size_t end = std::min(missing.size(), begin + kBatch);
    KVFS_RETURN_IF_ERROR(NumberBatch({missing.begin() + begin, missing.begin() + end}, owner));
  }
  ranges->clear();
  for (const TarballVersion& v : versions) ranges->push_back(versions_.at({v.object, v.version}));
  return Status::OK();
}

}  // namespace

std::unique_ptr<Coordination> NewEtcdCoordination(std::unique_ptr<EtcdClient> client,
                                                  const std::string& prefix, const std::string& url,
                                                  int lease_seconds) {
  return std::make_unique<EtcdCoordination>(std::move(client), prefix, url, lease_seconds);
}

Status CoordinationError(const std::string& url, const Status& s) {
  if (s.ok()) return s;
  int err = s.posix_errno();
  if (err == EHOSTUNREACH || err == EAGAIN || err == ETIMEDOUT) err = EIO;
  return Status::FromErrno(err, "coordination " + url + ": " + s.message());
}

Status ParseEtcdUrl(const std::string& url, std::vector<std::string>* endpoints,
                    std::string* prefix) {
  constexpr std::string_view kScheme = "etcd://";
  if (url.rfind(kScheme, 0) != 0) {
    return Status::InvalidArgument("'" + url + "' is not etcd://HOST[:PORT][,...][/PREFIX]");
  }
  const std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  Status s = ParseEtcdEndpoints(rest.substr(0, slash), endpoints);
  if (!s.ok()) return Status::InvalidArgument("coordination '" + url + "': " + s.message());
  std::string p = slash == std::string::npos ? "" : rest.substr(slash + 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.empty()) p = "kvfs";
  if (p.front() == '/' || p.find("//") != std::string::npos) {
    return Status::InvalidArgument("coordination '" + url + "': bad prefix '" + p + "'");
  }
  if (prefix != nullptr) *prefix = p;
  return Status::OK();
}

}  // namespace kvfs::coord
