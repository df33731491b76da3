// Path resolution over FileSystem's inode-number API.
//
// FileSystem works on inode numbers only; front ends that receive paths (the
// kvfs tool, the ingest sidecar, tests) turn them into inodes here. A path is
// absolute ("/a/b/c"), interpreted from kRootIno, with POSIX semantics:
// repeated slashes and "." are ignored, ".." goes to the parent (the root's
// parent is the root), and symbolic links met in the middle of a path are
// followed (relative targets from the directory holding the link, absolute
// ones from the root; ELOOP after kMaxSymlinkFollows of them). A symbolic link
// in the last component is followed only if asked to (stat vs lstat) or if
// the path ends with a slash, which also requires the result to be a
// directory.
#pragma once

#include <string>
#include <string_view>

#include "common/fs/file_system.h"
#include "common/status.h"

namespace kvfs {

// How many symbolic links one resolution follows before failing with ELOOP.
inline constexpr int kMaxSymlinkFollows = 40;

// Resolves absolute `path` to the object it names and sets *out to its
// attributes; with `follow_last`, a symbolic link in the last component is
// replaced by its target. EINVAL for a relative or empty path, ENOENT /
// ENOTDIR / ELOOP / ENAMETOOLONG as the POSIX path walk would report them.
Status ResolvePath(FileSystem* fs, std::string_view path, Attributes* out,
                   bool follow_last = false);

// Resolves every component of absolute `path` but the last, which must be a
// directory, into *parent, and sets *name to the last component (trailing
// slashes ignored). For the operations that create, remove or rename a name.
// EINVAL if the path has no last component ("/") or it is "." or "..".
Status ResolveParent(FileSystem* fs, std::string_view path, Attributes* parent, std::string* name);

// Joins a directory path and a name with exactly one slash between them.
std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace kvfs
