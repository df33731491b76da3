// Helpers shared by the file system tests: status assertions, temporary
// directories, a colliding name hash, fsck and tree comparison against a
// local directory.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/fs/file_system.h"
#include "common/kv/kv_store.h"
#include "common/status.h"
#include "tests/status_assertions.h"
#include "tests/temp_dir.h"

namespace kvfs::testing {

// A deliberately weak hash: only the first byte of a name counts, so every
// name with the same first byte lands in the same entry bucket.
NameHasher FirstByteHasher();

// Runs Fsck on `store`; returns its problems (and a line for a failure to
// run it).
std::vector<std::string> FsckProblems(KVStore* store, const NameHasher& hasher);
// The same on the file system's store.
inline std::vector<std::string> FsckProblems(FileSystem* fs, const NameHasher& hasher) {
  return FsckProblems(fs->store(), hasher);
}

// The whole contents of regular file `ino`.
Status ReadAll(FileSystem* fs, Ino ino, std::string* out);

// Contents of local file `path` (not following a final symlink); false if it
// cannot be read.
bool ReadLocalFile(const std::string& path, std::string* out);

// What CompareTrees compares beyond names, types, permissions, link counts,
// sizes, contents, symlink targets and hard-link identity.
struct TreeCompareOptions {
  // Owners (uid, gid).
  bool owners = true;
  // Compare every mtime (a copy that preserves times); otherwise only where
  // the KVFS or the local mtime lies in [pinned_mtime_begin,
  // pinned_mtime_end), the times a test set explicitly: one side keeping such
  // a time while the other updated it is a difference.
  bool all_mtimes = false;
  int64_t pinned_mtime_begin = 0;
  int64_t pinned_mtime_end = 0;
};

// Compares KVFS directory `dir` with local directory `local_dir`, both
// recursively, and returns each difference as one line. Also checks that
// Lookup agrees with ReadDir for every entry. Local FIFOs, sockets and
// devices are compared by type only.
std::vector<std::string> CompareTrees(FileSystem* fs, Ino dir, const std::string& local_dir,
                                      const TreeCompareOptions& options);

}  // namespace kvfs::testing
