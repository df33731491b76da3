#include "common/fs/coding.h"

#include <cstring>

namespace kvfs {

void PutBigEndian64(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  dst->append(buf, 8);
}

uint64_t DecodeBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

namespace {
template <typename T>
void PutLittleEndian(std::string* dst, T v) {
  char buf[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) {
    buf[i] = static_cast<char>(v & 0xff);
    v = static_cast<T>(v >> 8);
  }
  dst->append(buf, sizeof(T));
}

template <typename T>
bool GetLittleEndian(std::string_view* in, T* v) {
  if (in->size() < sizeof(T)) return false;
  T out = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    out = static_cast<T>(out | (static_cast<T>(static_cast<uint8_t>((*in)[i])) << (8 * i)));
  }
  *v = out;
  in->remove_prefix(sizeof(T));
  return true;
}
}  // namespace

void PutFixed8(std::string* dst, uint8_t v) { dst->push_back(static_cast<char>(v)); }
void PutFixed32(std::string* dst, uint32_t v) { PutLittleEndian(dst, v); }
void PutFixed64(std::string* dst, uint64_t v) { PutLittleEndian(dst, v); }

void PutLengthPrefixed16(std::string* dst, std::string_view s) {
  PutLittleEndian(dst, static_cast<uint16_t>(s.size()));
  dst->append(s);
}

void PutLengthPrefixed32(std::string* dst, std::string_view s) {
  PutFixed32(dst, static_cast<uint32_t>(s.size()));
  dst->append(s);
}

bool GetFixed8(std::string_view* in, uint8_t* v) { return GetLittleEndian(in, v); }
bool GetFixed32(std::string_view* in, uint32_t* v) { return GetLittleEndian(in, v); }
bool GetFixed64(std::string_view* in, uint64_t* v) { return GetLittleEndian(in, v); }

bool GetLengthPrefixed16(std::string_view* in, std::string_view* s) {
  uint16_t n;
  if (!GetLittleEndian(in, &n) || in->size() < n) return false;
  *s = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

bool GetLengthPrefixed32(std::string_view* in, std::string_view* s) {
  uint32_t n;
  if (!GetFixed32(in, &n) || in->size() < n) return false;
  *s = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

}  // namespace kvfs
