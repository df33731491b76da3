#include "coord/etcd_coordination.h"

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <random>

namespace kvfs::coord {

namespace {

class EtcdCoordination final : public Coordination {
 public:
  EtcdCoordination(std::unique_ptr<EtcdClient> client, const std::string& prefix,
                   const std::string& url)
      : client_(std::move(client)), root_("/" + prefix + "/"), url_(url) {
    std::random_device rd;
    nonce_base_ = (uint64_t(rd()) << 32) ^ rd();
  }

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

 private:
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
};

}  // namespace

std::unique_ptr<Coordination> NewEtcdCoordination(std::unique_ptr<EtcdClient> client,
                                                  const std::string& prefix,
                                                  const std::string& url) {
  return std::make_unique<EtcdCoordination>(std::move(client), prefix, url);
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
