// PersistentStore: where the durable copy of every tree lives, as tarballs.
//
// Each top-level directory of the file system is one object NAME.tar (or
// NAME.tar.gz, NAME.tar.zst, NAME.tar.xz) in a flat namespace: a local or
// NAS-mounted directory (plugin "posix"), or an S3 bucket (plugin "s3"). A
// store is opened from a URL by OpenStore (store/store.h), which loads the
// plugin (store/store_plugin.h). The interface is what ingest, export and
// the cache manager need: list, stat, read sequentially (as a stream),
// write a whole object atomically (invisible until committed, then
// replacing any previous version at once), delete, and exclusive-create
// claims of inode range numbers and of top-level names that keep them
// unique across independent writers sharing the store (docs/ingest.md,
// docs/cache.md, docs/stores.md).
//
// Object names are non-empty, at most 255 bytes, contain no '/' or NUL and
// do not start with '.' (names starting with '.' are the store's own, such as
// the claims). All methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/claims.h"

namespace kvfs::store {

// Reads one object from its start to its end.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Reads up to n bytes into buf; *got is 0 only at the end of the object.
  virtual Status Read(char* buf, size_t n, size_t* got) = 0;
  // The object's size in bytes when it was opened.
  virtual uint64_t size() const = 0;
};

// Writes one object. Nothing is visible under the object's name until
// Commit() succeeds; then the whole object replaces any previous one at once.
// Destroying a writer without a successful Commit() discards what was
// written.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual Status Append(std::string_view data) = 0;
  // Makes the object durable and visible under its name. Call at most once.
  virtual Status Commit() = 0;
  // Bytes appended so far.
  virtual uint64_t size() const = 0;
};

// One object of a listing.
struct ObjectInfo {
  std::string name;
  uint64_t size = 0;
  // When the object was last written (its modification time; whole seconds
  // in a bucket).
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  // Changes whenever the object is replaced (a local store: a hash of the
  // file's inode number, size and mtime; a bucket: a hash of its ETag).
  // List and Stat give the same value for the same object.
  uint64_t version = 0;
};

class PersistentStore : public Claims {
 public:
  virtual ~PersistentStore() = default;

  // The store's objects (not its own dot-names), sorted by name.
  virtual Status List(std::vector<ObjectInfo>* out) = 0;
  // Information about one object; ENOENT if there is none of that name.
  virtual Status Stat(const std::string& name, ObjectInfo* out) = 0;
  // Opens an object for reading; ENOENT if absent.
  virtual Status OpenRead(const std::string& name, std::unique_ptr<ObjectReader>* out) = 0;
  // Starts writing object `name` (see ObjectWriter).
  virtual Status OpenWrite(const std::string& name, std::unique_ptr<ObjectWriter>* out) = 0;
  // Deletes an object; ENOENT if absent.
  virtual Status Delete(const std::string& name) = 0;

  // The Claims (store/claims.h) are kept in the store itself (its dot-names);
  // Describe() says where the store is: its directory ("/srv/trees") or URL
  // ("s3://bucket/trees").
};

// Checks an object name (see the file comment); EINVAL with the reason.
Status CheckObjectName(std::string_view name);

}  // namespace kvfs::store
