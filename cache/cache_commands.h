// The cache manager's operator commands as requests of the control socket
// (ingest/control_server.h), so `kvfs cache` reaches a running server
// (docs/cache.md).
//
// Requests ("op" selects the command):
//   op=cache-list                 every tree: tree.<i>.{name,state,bytes,
//                                 inodes,last_use,open_files,in_use,object,
//                                 error}, tree.<i>.transfer_* (ingest::
//                                 PutProgress) while it loads or is written
//                                 back, and trees=<count>
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

#include <string>

#include "cache/tree_cache.h"
#include "ingest/service.h"

namespace kvfs::cache {

// Executes `request` on `cache` if its op is a cache command and returns
// true; returns false (response untouched) for any other op.
bool ExecuteCacheRequest(TreeCache* cache, const ingest::Message& request,
                         ingest::Message* response);

// The response of a successful cache request as text for people: a table
// for cache-list, one line otherwise.
std::string FormatCacheResponse(const ingest::Message& request, const ingest::Message& response);

}  // namespace kvfs::cache
