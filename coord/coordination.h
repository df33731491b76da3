// Coordination: what KVFS servers sharing one persistent store agree on
// through a coordination service (docs/coordination.md). Its one job is
// exclusive claims that every server sharing the store sees:
//   - inode range numbers, so that trees loaded by different servers never
//     share a range (the ingest claims each range it loads into);
//   - top-level names, so that of two servers creating the same top-level
//     directory exactly one wins (the cache manager claims each one);
//   - with etcd, the inode range of each tarball version (VersionRanges), so
//     that every server loads the same version into the same range and
//     presents the same inode numbers (NFS handles) for it;
//   - with etcd, tree ownership under a lease (AcquireTree): one server at a
//     time changes a tree.
//
// Two implementations: the claims the persistent store keeps itself
// (StoreClaims: `coordination` unset, one or several servers without a
// coordination service, docs/cache.md), and etcd (`etcd://HOST:PORT
// [,HOST:PORT...]/PREFIX`, etcd_coordination.h). Every server sharing a
// store must use the same one. All methods are thread-safe.
#pragma once

#include <cerrno>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/persistent_store.h"

namespace kvfs::coord {

// One version of a tarball of the persistent store: its object name and its
// version identity (store::ObjectInfo::version).
struct TarballVersion {
  std::string object;
  uint64_t version = 0;
};

// A watch started by Coordination::WatchVersions; destroying it stops it
// (waits for its thread, up to about a second).
class VersionWatch {
 public:
  virtual ~VersionWatch() = default;
};

class Coordination : public store::Claims {
 public:
  // The claims (store/claims.h) of every server sharing the coordination;
  // Describe() is its URL ("etcd://h1:2379,h2:2379/kvfs"), or the persistent
  // store's description for StoreClaims.

  // Whether tarball versions are numbered here (VersionRanges works): etcd
  // yes, StoreClaims no (docs/coordination.md says why).
  virtual bool NumbersTrees() const { return false; }
  // For each of `versions`, the inode range every server loads that tarball
  // version into: the one recorded for it, or, for a version nobody numbered
  // yet, a fresh range claimed for it now (one claim wins among racing
  // servers; ranges are never given back, so a range names one version
  // forever). `owner` is recorded with new claims. ENOTSUP unless
  // NumbersTrees().
  virtual Status VersionRanges(const std::vector<TarballVersion>& versions, std::string_view owner,
                               std::vector<uint64_t>* ranges) {
    (void)versions, (void)owner, (void)ranges;
    return Status::FromErrno(ENOTSUP, Describe() + " does not number tarball versions");
  }

  // Calls `on_new_version(object)`, on a thread of the watch's own, each time
  // a version of tarball `object` is recorded that this coordination did not
  // know yet (another server wrote the tree back, or listed a new tarball
  // first); with "" when some may have been missed. Lets a server drop its
  // copy of an old version at once instead of at its next refresh. ENOTSUP
  // unless NumbersTrees().
  virtual Status WatchVersions(std::function<void(const std::string& object)> on_new_version,
                               std::unique_ptr<VersionWatch>* out) {
    (void)on_new_version, (void)out;
    return Status::FromErrno(ENOTSUP, Describe() + " does not number tarball versions");
  }

  // ---- Tree ownership (docs/coordination.md): one writer per tree ----------------
  // Whether trees have owners here (etcd yes; StoreClaims no: every server
  // may change every tree, the single-server behaviour).
  virtual bool OwnsTrees() const { return false; }
  // Makes this server the owner of tree `name` unless another server is:
  // OK if it is (now) ours; EROFS naming the holder if another server's
  // (until that server releases it or its lease expires); EIO if the
  // coordination cannot be reached. Ownership lives under this server's
  // lease, kept alive in the background; when the lease is lost (expired,
  // revoked, not renewed in time) every ownership is lost with it and
  // TreeOwned says so. `owner` is recorded for people. Fast when owned
  // already (no request).
  virtual Status AcquireTree(const std::string& name, std::string_view owner) {
    (void)name, (void)owner;
    return Status::OK();
  }
  // Checks with the coordination itself (one request) that tree `name` is
  // still ours: right before a write-back commits. EROFS if it is not.
  virtual Status VerifyTreeOwned(const std::string& name) {
    (void)name;
    return Status::OK();
  }
  // Gives ownership of `name` up (nothing if it is not ours).
  virtual Status ReleaseTree(const std::string& name) {
    (void)name;
    return Status::OK();
  }
};

// The claims persistent store `store` keeps itself (not owned: it must
// outlive the result).
std::unique_ptr<Coordination> StoreClaims(store::PersistentStore* store);

// The range of lease lengths (CoordinationOptions::lease_seconds, the
// `coordination_lease` setting): etcd grants no lease shorter than 2 s (its
// minimum with the default election timeout), and an hour is far past any
// useful length (a dead server's trees stay taken that long).
constexpr int kMinLeaseSeconds = 2;
constexpr int kMaxLeaseSeconds = 3600;

// OK if `seconds` is in [kMinLeaseSeconds, kMaxLeaseSeconds]; else EINVAL
// naming the value, the range and the settings (coordination_lease,
// --coordination-lease).
Status CheckLeaseSeconds(int seconds);

struct CoordinationOptions {
  // One request to the coordination service fails after this long on one
  // member (then the next member is tried; see coord/etcd_client.h).
  int request_timeout_ms = 5000;
  // Passes over every member before a request fails.
  int rounds = 3;
  // TTL of the lease tree ownership lives under (renewed every third of
  // it): how long after a server's death another may take its trees, and
  // how long a server that lost etcd keeps changing the trees it owns.
  // CheckLeaseSeconds: OpenCoordination refuses other values.
  int lease_seconds = 10;
  // Receives failovers and other lines for the operator; any thread. Null:
  // stderr.
  std::function<void(const std::string&)> log;
};

// Opens the coordination `url` names: "" for StoreClaims(store) (store may
// then not be null), "etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]" for etcd
// (PORT 2379, PREFIX "kvfs" by default). An etcd that does not answer is an
// error naming its endpoints (a server must not serve without the
// coordination it was configured with). EINVAL for a URL of another form or
// a lease length out of range (CheckLeaseSeconds).
Status OpenCoordination(const std::string& url, store::PersistentStore* store,
                        const CoordinationOptions& options, std::unique_ptr<Coordination>* out);

}  // namespace kvfs::coord
