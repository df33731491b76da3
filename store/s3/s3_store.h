// The S3 persistent store: PersistentStore (store/persistent_store.h) over
// one bucket (and key prefix) of an S3 server, through S3Client.
//
//   object NAME          key PREFIX/NAME
//   range claim R        key PREFIX/.kvfs/ranges/<R, 10 digits>, created by a
//                        single PUT with If-None-Match: * (412: taken)
//   name claim NAME      key PREFIX/.kvfs/names/NAME, the same way
//
// List is ListObjectsV2 (1,000 keys a page, delimiter '/', so the claims and
// deeper keys are not listed); Stat is HEAD; OpenRead streams ranged GETs
// through a bounded buffer filled by a thread of its own, resuming a
// failed range where it stopped; OpenWrite buffers one part and uploads it
// (a single PUT if the whole object fits in a part, else a multipart upload
// whose parts go up while the next one fills), so the object appears only
// when complete; an upload that fails or is abandoned is aborted on the
// server. Servers that do not implement conditional PUTs (Swift's s3api
// answers 501) get claims checked with HEAD, then written: the log says
// once that this is safe only while this server is the bucket's only
// writer. docs/stores.md has the details.
#pragma once

#include <memory>

#include "common/status.h"
#include "store/persistent_store.h"
#include "store/s3/s3_client.h"

namespace kvfs::store::s3 {

struct S3StoreOptions {
  // Key prefix of the store's objects: "" or "PREFIX/".
  std::string prefix;
  // Multipart upload part size (at least 5 MiB, S3's minimum).
  uint64_t part_size = 16 << 20;
  // Unfinished multipart uploads of the store's objects older than this
  // are aborted when the store is opened (they belong to writers that died);
  // -1: never.
  int64_t stale_upload_seconds = 86400;
};

// Opens the store: checks that the bucket exists and answers with these
// credentials (ENOENT for a missing bucket, EACCES for refused credentials,
// the transport error for an unreachable server), then aborts stale
// uploads.
Status OpenS3Store(std::shared_ptr<S3Client> client, const S3StoreOptions& options,
                   std::unique_ptr<PersistentStore>* out);

}  // namespace kvfs::store::s3
