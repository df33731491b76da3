#include "cache/cache_record.h"

#include "common/fs/coding.h"
#include "common/fs/schema.h"

namespace kvfs::cache {

namespace {
constexpr uint8_t kVersion = 1;
constexpr uint8_t kFlagDirty = 1;
}  // namespace

std::string CacheRecordKey(uint64_t range) {
  std::string k(schema::kCachePrefix);
  PutBigEndian64(&k, range);
  return k;
}

std::string EncodeCacheRecord(const CacheRecord& r) {
  std::string v;
  PutFixed8(&v, kVersion);
  PutFixed8(&v, r.dirty ? kFlagDirty : 0);
  PutFixed64(&v, r.version);
  PutFixed64(&v, r.first_local);
  PutFixed64(&v, r.bytes);
  PutFixed64(&v, r.inodes);
  PutLengthPrefixed16(&v, r.object);
  return v;
}

Status DecodeCacheRecord(std::string_view value, CacheRecord* r) {
  uint8_t version, flags;
  std::string_view object;
  bool ok = GetFixed8(&value, &version) && version == kVersion && GetFixed8(&value, &flags) &&
            (flags & ~kFlagDirty) == 0 && GetFixed64(&value, &r->version) &&
            GetFixed64(&value, &r->first_local) && GetFixed64(&value, &r->bytes) &&
            GetFixed64(&value, &r->inodes) && GetLengthPrefixed16(&value, &object) && value.empty();
  if (!ok) return Status::Corruption("bad cache record");
  r->dirty = (flags & kFlagDirty) != 0;
  r->object = std::string(object);
  return Status::OK();
}

}  // namespace kvfs::cache
