// A FileSystem that counts every operation of the one it wraps into Metrics
// (metrics.h): its type, how long it took, whether it failed, and the bytes
// read and written. Everything else is the wrapped file system's.
#pragma once

#include <memory>

#include "common/fs/file_system.h"

namespace kvfs::metrics {

class Metrics;

// Wraps `base`; `metrics` must outlive the result.
std::unique_ptr<FileSystem> NewMeteredFileSystem(std::unique_ptr<FileSystem> base,
                                                 Metrics* metrics);

}  // namespace kvfs::metrics
