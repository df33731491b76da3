// The persistent store as ingest, export and the cache manager see it: the
// store interface (store/persistent_store.h, opened from a URL by
// store/store.h) under ingest's names, and how tarballs are named in it.
//
// Each top-level directory of the file system is one object NAME.tar (or
// NAME.tar.gz, NAME.tar.zst, NAME.tar.xz; NAME.tgz is read too).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/local_file.h"
#include "store/persistent_store.h"

namespace kvfs::ingest {

using store::CheckObjectName;
using store::ObjectInfo;
using store::ObjectReader;
using store::ObjectWriter;
using store::OpenLocalFile;
using store::PersistentStore;

// The compressions a tarball can have, told apart by the object's suffix.
enum class Compression { kNone, kGzip, kZstd, kXz };

// ".tar", ".tar.gz", ".tar.zst" or ".tar.xz".
std::string_view TarballSuffix(Compression c);
// Every suffix TreeNameOf accepts: the four above and ".tgz".
std::vector<std::string_view> TarballSuffixes();
// Parses "gzip"/"gz", "zstd"/"zst", "xz" or "none"; false otherwise.
bool ParseCompression(std::string_view s, Compression* c);
// If `object` is a tarball name (NAME plus one of the suffixes above, also
// ".tgz"), sets *name (and *c if not null) and returns true.
bool TreeNameOf(std::string_view object, std::string* name, Compression* c = nullptr);

// The tarballs of tree `tree` in `store` (one Stat per suffix, never a
// listing: a bucket may hold 100,000 of them), in suffix order. An error
// other than ENOENT from the store is returned.
Status TarballsOf(PersistentStore* store, std::string_view tree, std::vector<ObjectInfo>* out);

}  // namespace kvfs::ingest
