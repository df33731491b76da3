// Coordination: what KVFS servers sharing one persistent store agree on
// through a coordination service (docs/coordination.md). Its one job is
// exclusive claims that every server sharing the store sees:
//   - inode range numbers, so that trees loaded by different servers never
//     share a range (the ingest claims each range it loads into);
//   - top-level names, so that of two servers creating the same top-level
//     directory exactly one wins (the cache manager claims each one).
// (Tree ownership under leases is the next step; not here yet.)
//
// Two implementations: the claims the persistent store keeps itself
// (StoreClaims: `coordination` unset, one or several servers without a
// coordination service, docs/cache.md), and etcd (`etcd://HOST:PORT
// [,HOST:PORT...]/PREFIX`, etcd_coordination.h). Every server sharing a
// store must use the same one. All methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/persistent_store.h"

namespace kvfs::coord {

class Coordination {
 public:
  virtual ~Coordination() = default;

  // Claims inode range number `range` for the caller, exclusively and
  // durably: EEXIST if any server sharing the coordination claimed it before
  // (claims are never given back). `owner` is recorded for people (who
  // claimed it, for which tree).
  virtual Status ClaimRange(uint64_t range, std::string_view owner) = 0;
  // The highest range number claimed so far, 0 if none.
  virtual Status HighestClaimedRange(uint64_t* range) = 0;

  // Claims top-level name `name` for the caller, exclusively and durably:
  // EEXIST if it is claimed and not released. `owner` is recorded for people.
  virtual Status ClaimName(const std::string& name, std::string_view owner) = 0;
  // Gives a name claim back; ENOENT if there is none.
  virtual Status ReleaseName(const std::string& name) = 0;
  // Whether `name` is claimed (by anyone).
  virtual Status IsNameClaimed(const std::string& name, bool* claimed) = 0;

  // Where the claims are, for messages ("etcd://h1:2379,h2:2379/kvfs", or
  // the persistent store's description).
  virtual std::string Describe() const = 0;
};

// The claims persistent store `store` keeps itself (not owned: it must
// outlive the result).
std::unique_ptr<Coordination> StoreClaims(store::PersistentStore* store);

struct CoordinationOptions {
  // One request to the coordination service fails after this long on one
  // member (then the next member is tried; see coord/etcd_client.h).
  int request_timeout_ms = 5000;
  // Passes over every member before a request fails.
  int rounds = 3;
  // Receives failovers and other lines for the operator; any thread. Null:
  // stderr.
  std::function<void(const std::string&)> log;
};

// Opens the coordination `url` names: "" for StoreClaims(store) (store may
// then not be null), "etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]" for etcd
// (PORT 2379, PREFIX "kvfs" by default). An etcd that does not answer is an
// error naming its endpoints (a server must not serve without the
// coordination it was configured with). EINVAL for a URL of another form.
Status OpenCoordination(const std::string& url, store::PersistentStore* store,
                        const CoordinationOptions& options, std::unique_ptr<Coordination>* out);

}  // namespace kvfs::coord
