// Whole local files as strings, for tests that compare what a program wrote.
#pragma once

#include <fstream>
#include <iterator>
#include <string>

namespace kvfs::testing {

// The bytes of local file `path`; "" if it cannot be read (the comparison
// that follows then fails).
inline std::string ReadFileContents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Replaces local file `path` with `data`.
inline void WriteFileContents(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

}  // namespace kvfs::testing
