// Claims: exclusive, durable claims that keep inode range numbers and
// top-level names unique among the writers (servers, ingests) sharing one
// persistent store. A persistent store keeps them itself (PersistentStore:
// docs/ingest.md, docs/cache.md); servers with a coordination keep them in
// etcd instead (coord/coordination.h, docs/coordination.md). All methods are
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kvfs::store {

class Claims {
 public:
  virtual ~Claims() = default;

  // Claims inode range number `range` for the caller, exclusively and
  // durably: EEXIST if any writer sharing these claims claimed it before
  // (claims are never given back). `owner` is recorded with the claim for
  // people reading it (who claimed it, for which tree).
  virtual Status ClaimRange(uint64_t range, std::string_view owner) = 0;
  // The highest range number claimed so far, 0 if none.
  virtual Status HighestClaimedRange(uint64_t* range) = 0;

  // Claims top-level name `name` (a valid object name) for the caller,
  // exclusively and durably: EEXIST if a writer claimed it before and has
  // not released it. A server claims the name of a top-level directory a
  // client creates, so two servers cannot both create it (docs/cache.md).
  // `owner` is recorded for people.
  virtual Status ClaimName(const std::string& name, std::string_view owner) = 0;
  // Gives a name claim back; ENOENT if there is none.
  virtual Status ReleaseName(const std::string& name) = 0;
  // Whether `name` is claimed (by anyone).
  virtual Status IsNameClaimed(const std::string& name, bool* claimed) = 0;

  // Where the claims are, for messages.
  virtual std::string Describe() const = 0;
};

}  // namespace kvfs::store
