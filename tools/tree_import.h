// Copying local files and directory trees into a KVFS FileSystem.
//
// Used by the kvfs tool (put, import, demo); the ingest sidecar can reuse it.
// Contents are written with Stability::kUnstable: callers call
// FileSystem::Sync() when they are done.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs/file_system.h"
#include "common/status.h"

namespace kvfs {

// Writes everything readable from local file descriptor `fd` (from its
// current offset) into regular file `ino` starting at offset 0, then sets the
// file's size to the number of bytes read. Holes of sparse local files
// (SEEK_DATA/SEEK_HOLE) stay holes. *bytes (if not null) is set to the size.
Status CopyFileContents(FileSystem* fs, int fd, Ino ino, uint64_t* bytes);

// What ImportTree did.
struct ImportStats {
  uint64_t directories = 0;
  uint64_t files = 0;
  uint64_t symlinks = 0;
  uint64_t specials = 0;    // FIFOs, sockets and device nodes
  uint64_t hard_links = 0;  // names created as links to an already imported file
  uint64_t bytes = 0;       // file contents copied
  // One line per local object that could not be imported ("<path>: <error>").
  std::vector<std::string> errors;
};

// Copies local directory `local_dir` into KVFS directory `dest` (an absolute
// path): directories, regular files, symbolic links, FIFOs, sockets and
// device nodes, with their permissions, owners, atimes and mtimes. Local
// files with several names become hard links in KVFS (or, where KVFS refuses
// the link with EXDEV because the names lie in different top-level
// directories, separate copies). `dest` is created if it does not exist (its
// parent must); an existing directory is merged into: its non-directories
// that the local tree also has are replaced, a directory where the local
// tree has a non-directory is an error. Local symbolic links are never
// followed.
//
// Objects that fail to import are recorded in stats->errors and skipped; the
// returned status is non-OK only if the import could not start (`local_dir`
// or `dest` unusable) or if any object failed (EIO, with the error count).
Status ImportTree(FileSystem* fs, const std::string& local_dir, std::string_view dest,
                  ImportStats* stats);

}  // namespace kvfs
