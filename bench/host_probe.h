// What the benchmarks ask of the host: dropping the page cache (for cold
// reads) and how much disk a directory takes.
#pragma once

#include <cstdint>
#include <string>

namespace kvfs::bench {

// Syncs and drops the page cache, dentries and inodes. False without the
// right to (root is needed): the caller's reads are then warm, not cold.
bool DropPageCache();

// Bytes of disk allocated to the regular files below `dir` (st_blocks, so
// sparse files count what they use); 0 if it cannot be read.
uint64_t DiskUsage(const std::string& dir);

}  // namespace kvfs::bench
