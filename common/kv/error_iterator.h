// Internal to common/kv: an iterator that is never positioned.
#pragma once

#include <memory>

#include "common/kv/kv_store.h"
#include "common/status.h"

namespace kvfs {

// Returns an iterator that is never Valid() and whose status() is `s`, for
// NewIterator calls that fail before an iterator exists (bad column, bad
// snapshot, injected fault). Seek, SeekBefore and Next leave it unchanged.
std::unique_ptr<Iterator> NewErrorIterator(Status s);

}  // namespace kvfs
