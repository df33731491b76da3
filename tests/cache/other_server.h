// A second server inside a test's process, for tests of two servers sharing
// one persistent store: the cache manager every server runs (TreeCache) with
// a RocksDB store of its own, against the NFS server under test.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cache/tree_cache.h"
#include "common/status.h"
#include "coord/coordination.h"
#include "ingest/persistent_store.h"

namespace kvfs::cache_test {

// Opens the other server in `dir` (created: its key/value store and staging
// directory go there) over `store`, as owner "other server", without
// periodic refreshes and with immediate write-backs. Names are claimed
// through `coordination` if it is not null, else in the store.
Status OpenOtherServer(const std::string& dir, std::unique_ptr<ingest::PersistentStore> store,
                       std::shared_ptr<coord::Coordination> coordination,
                       std::unique_ptr<cache::TreeCache>* out);

// For `rounds` fresh names "race0", "race1", ...: runs `nfs_mkdir("/NAME")`
// (the NFS client's MKDIR; 0 or -errno) and other->Mkdir of NAME in the root
// at the same time, and expects exactly one of them to get each name, the
// other to fail with EEXIST (gtest expectations).
void ExpectOneMkdirWinsEachName(cache::TreeCache* other,
                                const std::function<int(const std::string& path)>& nfs_mkdir,
                                int rounds = 10);

}  // namespace kvfs::cache_test
