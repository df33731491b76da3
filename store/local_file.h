// Reading a local file as an ObjectReader: tarballs given by path (kvfs-ingest
// FILE) and the objects of the posix store.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "store/persistent_store.h"

namespace kvfs::store {

// Opens regular file `path` for sequential reading (the kernel is told so).
// ENOENT etc. from open(2); EINVAL if it is not a regular file.
Status OpenLocalFile(const std::string& path, std::unique_ptr<ObjectReader>* out);

}  // namespace kvfs::store
