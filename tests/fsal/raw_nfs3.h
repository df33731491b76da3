// Raw NFSv3 calls with file handles the test chooses (forged, stale, from
// another export), sent synchronously over a mounted NfsClient's connection
// with libnfs's low-level RPC API. NFSv3 only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/e2e/nfs_client.h"

namespace kvfs::fsal_test {

// An NFSv3 file handle as sent on the wire.
using FileHandle = std::vector<uint8_t>;

// NFSv3 status codes the tests look for (RFC 1813).
inline constexpr int kNfs3Ok = 0;
inline constexpr int kNfs3ErrNoEnt = 2;
inline constexpr int kNfs3ErrExist = 17;
inline constexpr int kNfs3ErrFbig = 27;
inline constexpr int kNfs3ErrStale = 70;
inline constexpr int kNfs3ErrBadHandle = 10001;
inline constexpr int kNfs3ErrBadCookie = 10003;

// Sets *fh to the handle of `path` (LOOKUP through libnfs's nfs_open, which
// over NFSv3 also works for directories). 0 or -errno.
int HandleOf(e2e::NfsClient& client, const std::string& path, FileHandle* fh);

// Sends GETATTR for fh; sets *status to the NFS status and, if OK, *fileid.
// Returns 0 when a reply arrived, -errno on RPC failure.
int RawGetattr(e2e::NfsClient& client, const FileHandle& fh, int* status, uint64_t* fileid);

// One entry of a READDIR reply.
struct RawDirEntry {
  std::string name;
  uint64_t fileid = 0;
  uint64_t cookie = 0;
};

// One READDIR call: `count` bytes of reply at most, from `cookie` with
// `*verifier` (8 bytes; updated from the reply). Appends the entries
// (including "." and "..") to *entries; sets *status and *eof.
int RawReaddir(e2e::NfsClient& client, const FileHandle& dir, uint64_t cookie, uint64_t* verifier,
               uint32_t count, std::vector<RawDirEntry>* entries, bool* eof, int* status);

// CREATE of `name` in `dir` in EXCLUSIVE mode with an 8-byte verifier; sets
// *status and, if OK, *fileid of the file (0 if the reply carries none).
int RawCreateExclusive(e2e::NfsClient& client, const FileHandle& dir, const std::string& name,
                       uint64_t verifier, int* status, uint64_t* fileid);

// READ of `count` bytes at `offset`; sets *status and, if OK, *data and
// *eof.
int RawRead(e2e::NfsClient& client, const FileHandle& fh, uint64_t offset, uint32_t count,
            int* status, std::string* data, bool* eof);

// WRITE of `data` at `offset` with FILE_SYNC; sets *status.
int RawWrite(e2e::NfsClient& client, const FileHandle& fh, uint64_t offset, const std::string& data,
             int* status);

}  // namespace kvfs::fsal_test
