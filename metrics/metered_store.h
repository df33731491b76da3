// A PersistentStore that counts every request to the one it wraps into
// Metrics (metrics.h): its type, how long it took, whether it failed, and
// the bytes read and written through its readers and writers. Everything
// else is the wrapped store's.
#pragma once

#include <memory>

#include "store/persistent_store.h"

namespace kvfs::metrics {

class Metrics;

// Wraps `base`; `metrics` must outlive the result and every reader and
// writer it opens.
std::unique_ptr<store::PersistentStore> NewMeteredStore(
    std::unique_ptr<store::PersistentStore> base, Metrics* metrics);

}  // namespace kvfs::metrics
