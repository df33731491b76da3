// Fixed-width integer encoding for keys and values (after leveldb/util/coding.h).
//
// Keys use big-endian so that byte order equals numeric order; values use
// little-endian. Decoders consume from the front of a string_view and return
// false if it is too short.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kvfs {

void PutBigEndian64(std::string* dst, uint64_t v);
uint64_t DecodeBigEndian64(const char* p);

void PutFixed8(std::string* dst, uint8_t v);
void PutFixed32(std::string* dst, uint32_t v);
void PutFixed64(std::string* dst, uint64_t v);
// A 16-bit length followed by the bytes (s.size() must be < 65536).
void PutLengthPrefixed16(std::string* dst, std::string_view s);
// A 32-bit length followed by the bytes.
void PutLengthPrefixed32(std::string* dst, std::string_view s);

bool GetFixed8(std::string_view* in, uint8_t* v);
bool GetFixed32(std::string_view* in, uint32_t* v);
bool GetFixed64(std::string_view* in, uint64_t* v);
bool GetLengthPrefixed16(std::string_view* in, std::string_view* s);
bool GetLengthPrefixed32(std::string_view* in, std::string_view* s);

}  // namespace kvfs
