// PersistentStore: where the durable copy of every tree lives, as tarballs.
//
// Each top-level directory of the file system is one object NAME.tar (or
// NAME.tar.gz, NAME.tar.zst, NAME.tar.xz) in a flat namespace: a bucket, or a
// local or NAS-mounted directory. The interface is what ingest and export
// need from a bucket, so an S3 backend can be added without touching them:
// list, stat, read sequentially, write a whole object atomically (invisible
// until committed, then replacing any previous version at once), delete, and
// an exclusive-create claim of inode range numbers that keeps ranges unique
// across independent writers sharing the store (docs/ingest.md), and the
// same for top-level names (docs/cache.md).
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

namespace kvfs::ingest {

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
  // When the object was last written (its modification time).
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  // Changes whenever the object is replaced (a local store: a hash of the
  // file's inode number, size and mtime; a bucket would use its ETag).
  uint64_t version = 0;
};

class PersistentStore {
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

  // Claims inode range number `range` for the caller, exclusively and
  // durably: EEXIST if any writer sharing this store claimed it before
  // (claims are never given back). `owner` is recorded with the claim for
  // people reading the store (who claimed it, for which tree).
  virtual Status ClaimRange(uint64_t range, std::string_view owner) = 0;
  // The highest range number claimed so far, 0 if none.
  virtual Status HighestClaimedRange(uint64_t* range) = 0;

  // Claims top-level name `name` (a valid object name) for the caller,
  // exclusively and durably: EEXIST if a writer sharing this store claimed it
  // before and has not released it. A server claims the name of a top-level
  // directory a client creates, so two servers cannot both create it
  // (docs/cache.md). `owner` is recorded for people.
  virtual Status ClaimName(const std::string& name, std::string_view owner) = 0;
  // Gives a name claim back; ENOENT if there is none.
  virtual Status ReleaseName(const std::string& name) = 0;
  // Whether `name` is claimed (by anyone).
  virtual Status IsNameClaimed(const std::string& name, bool* claimed) = 0;

  // A human-readable location ("dir:/srv/trees").
  virtual std::string Describe() const = 0;
};

// A store in local (or NAS-mounted) directory `dir`, which must exist.
// Objects are the regular files directly in `dir`. Writes go to a temporary
// file under `dir`/.kvfs/tmp, are fsynced and renamed into place (then the
// directory is fsynced). Range claims are files `dir`/.kvfs/ranges/<R>
// created with O_CREAT|O_EXCL, which is atomic on local file systems and on
// NFSv3/v4 (exclusive create), so concurrent writers on several machines get
// different ranges; name claims are files `dir`/.kvfs/names/<NAME>, made the
// same way.
Status OpenLocalStore(const std::string& dir, std::unique_ptr<PersistentStore>* out);

// Reads a local file (for tarballs given by path rather than from a store).
Status OpenLocalFile(const std::string& path, std::unique_ptr<ObjectReader>* out);

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
// Checks an object name (see the file comment); EINVAL with the reason.
Status CheckObjectName(std::string_view name);

}  // namespace kvfs::ingest
