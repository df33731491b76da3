#include "common/fs/path.h"

#include <deque>

namespace kvfs {

namespace {

// Appends the components of `path` to the front of *pending, in order,
// dropping empty ones and ".".
void PushComponents(std::string_view path, std::deque<std::string>* pending) {
  std::deque<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(pos, slash - pos);
    if (!part.empty() && part != ".") parts.emplace_back(part);
    pos = slash + 1;
  }
  pending->insert(pending->begin(), parts.begin(), parts.end());
}

}  // namespace

Status ResolvePath(FileSystem* fs, std::string_view path, Attributes* out, bool follow_last) {
  if (path.empty() || path.front() != '/') {
    return Status::InvalidArgument("path '" + std::string(path) + "' is not absolute");
  }
  const bool follow_final = follow_last || path.back() == '/';
  std::deque<std::string> pending;
  PushComponents(path, &pending);
  Attributes cur;
  KVFS_RETURN_IF_ERROR(fs->GetAttr(kRootIno, &cur));
  int follows = 0;
  while (!pending.empty()) {
    std::string name = std::move(pending.front());
    pending.pop_front();
    if (cur.type != FileType::kDirectory) {
      return Status::FromErrno(ENOTDIR, "a component of '" + std::string(path) + "' before '" +
                                            name + "' is not a directory");
    }
    Attributes next;
    Status s = fs->Lookup(cur.ino, name, &next);
    if (!s.ok()) {
      return Status::FromErrno(s.posix_errno(), "'" + std::string(path) + "': " + s.message());
    }
    const bool last = pending.empty();
    if (next.type != FileType::kSymlink || (last && !follow_final)) {
      cur = next;
      continue;
    }
    if (++follows > kMaxSymlinkFollows) {
      return Status::FromErrno(ELOOP, "too many symbolic links in '" + std::string(path) + "'");
    }
    std::string target;
    KVFS_RETURN_IF_ERROR(fs->Readlink(next.ino, &target));
    if (target.empty()) {
      return Status::NotFound("empty symbolic link in '" + std::string(path) + "'");
    }
    if (target.front() == '/') KVFS_RETURN_IF_ERROR(fs->GetAttr(kRootIno, &cur));
    PushComponents(target, &pending);
  }
  if (path.back() == '/' && cur.type != FileType::kDirectory) {
    return Status::FromErrno(ENOTDIR, "'" + std::string(path) + "' is not a directory");
  }
  *out = cur;
  return Status::OK();
}

Status ResolveParent(FileSystem* fs, std::string_view path, Attributes* parent, std::string* name) {
  if (path.empty() || path.front() != '/') {
    return Status::InvalidArgument("path '" + std::string(path) + "' is not absolute");
  }
  std::string_view trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.remove_suffix(1);
  const size_t slash = trimmed.rfind('/');
  std::string_view last = trimmed.substr(slash + 1);
  if (last.empty() || last == "." || last == "..") {
    return Status::InvalidArgument("'" + std::string(path) + "' does not end in a name");
  }
  // The directory part keeps its trailing slash: it must resolve to a
  // directory, following a final symbolic link.
  KVFS_RETURN_IF_ERROR(ResolvePath(fs, trimmed.substr(0, slash + 1), parent));
  name->assign(last);
  return Status::OK();
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (p.empty() || p.back() != '/') p.push_back('/');
  p.append(name);
  return p;
}

}  // namespace kvfs
