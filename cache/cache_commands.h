// The cache manager's operator commands as requests of the control socket
// (ingest/control_server.h), so `kvfs cache` reaches a running server
// (docs/cache.md).
//
// Requests ("op" selects the command):
//   op=cache-list  [after=TREE]   one page of the trees (those after TREE):
//                                 tree.<i>.{name,state,bytes,inodes,
//                                 last_use,open_files,in_use,object,error,
//                                 conflict}, tree.<i>.transfer_* (ingest::
//                                 PutProgress) while it loads or is written
//                                 back, trees=<count in the page> and
//                                 more=0|1 (NextCacheListRequest)
//   op=cache-load   name=TREE     load it now
//   op=cache-flush  [name=TREE]   write it (or every dirty tree) back now;
//                                 written=0|1 for one tree
//   op=cache-drop   name=TREE     evict it (written back first if dirty)
//   op=cache-refresh              list the persistent store again; store
//   op=cache-quota                quota_bytes, quota_inodes, used_bytes,
//                                 used_inodes, trees, loaded, dirty, store
//                                 (store: the persistent store's directory
//                                 or URL)
// Responses carry errno and message like the ingest service's.
#pragma once

#include <cstddef>
#include <string>

#include "cache/tree_cache.h"
#include "ingest/service.h"

namespace kvfs::cache {

// A cache-list page holds at most this many trees, and stops after the tree
// that brings its fields to this many bytes: a page stays far below a
// control frame (ingest::kMaxFrame, 1 MiB) and costs the server a bounded
// number of store reads, however many trees the store has.
inline constexpr size_t kListPageTrees = 1000;
inline constexpr size_t kListPageBytes = 256 << 10;

// Executes `request` on `cache` if its op is a cache command and returns
// true; returns false (response untouched) for any other op.
bool ExecuteCacheRequest(TreeCache* cache, const ingest::Message& request,
                         ingest::Message* response);

// The response of a successful cache request as text for people: a table
// for cache-list (its heading only on the first page), one line otherwise.
std::string FormatCacheResponse(const ingest::Message& request, const ingest::Message& response);

// After cache-list page `response` to `request`: the request for the next
// page in *next, or false if that was the last.
bool NextCacheListRequest(const ingest::Message& request, const ingest::Message& response,
                          ingest::Message* next);

}  // namespace kvfs::cache
