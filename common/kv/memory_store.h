// An in-memory KVStore for unit tests of code written against KVStore.
//
// Each column is a std::map guarded by one std::shared_mutex. Columns are
// copy-on-write: snapshots and iterators share the current version of a
// column, and the first write to that column after one was taken copies the
// column, so iterators and snapshots never observe later writes and stay
// safe while other threads write. (Cost: a copy of the column per write that
// follows a new iterator or snapshot; fine for unit tests.) Nothing is
// durable: Sync() does nothing and returns OK.
#pragma once

#include <memory>

#include "common/kv/kv_store.h"

namespace kvfs {

// Returns a new, empty in-memory store. Name() is "memory".
std::unique_ptr<KVStore> NewMemoryStore();

}  // namespace kvfs
