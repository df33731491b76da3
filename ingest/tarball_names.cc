#include "ingest/persistent_store.h"

namespace kvfs::ingest {

namespace {
struct SuffixInfo {
  std::string_view suffix;
  Compression compression;
};
// Longest first, so ".tar.gz" is not taken for ".gz" of something else.
constexpr SuffixInfo kSuffixes[] = {
    {".tar.zst", Compression::kZstd}, {".tar.gz", Compression::kGzip},
    {".tar.xz", Compression::kXz},    {".tgz", Compression::kGzip},
    {".tar", Compression::kNone},
};
}  // namespace

std::vector<std::string_view> TarballSuffixes() {
  std::vector<std::string_view> v;
  for (const SuffixInfo& s : kSuffixes) v.push_back(s.suffix);
  return v;
}

std::string_view TarballSuffix(Compression c) {
  switch (c) {
    case Compression::kNone:
      return ".tar";
    case Compression::kGzip:
      return ".tar.gz";
    case Compression::kZstd:
      return ".tar.zst";
    case Compression::kXz:
      return ".tar.xz";
  }
  return ".tar";
}

bool ParseCompression(std::string_view s, Compression* c) {
  if (s == "none") {
    *c = Compression::kNone;
  } else if (s == "gzip" || s == "gz") {
    *c = Compression::kGzip;
  } else if (s == "zstd" || s == "zst") {
    *c = Compression::kZstd;
  } else if (s == "xz") {
    *c = Compression::kXz;
  } else {
    return false;
  }
  return true;
}

bool TreeNameOf(std::string_view object, std::string* name, Compression* c) {
  for (const SuffixInfo& s : kSuffixes) {
    if (object.size() > s.suffix.size() && object.ends_with(s.suffix)) {
      name->assign(object.substr(0, object.size() - s.suffix.size()));
      if (c != nullptr) *c = s.compression;
      return true;
    }
  }
  return false;
}

Status TarballsOf(PersistentStore* store, std::string_view tree, std::vector<ObjectInfo>* out) {
  out->clear();
  for (std::string_view suffix : TarballSuffixes()) {
    ObjectInfo info;
    Status s = store->Stat(std::string(tree) + std::string(suffix), &info);
    if (s.IsNotFound()) continue;
    KVFS_RETURN_IF_ERROR(s);
    out->push_back(std::move(info));
  }
  return Status::OK();
}

}  // namespace kvfs::ingest
