// The ingest service: requests (ingest, export, evict) as key/value
// messages, and their execution against a FileSystem. The same code runs in
// the server process (ControlServer, reached over a Unix socket) and in
// kvfs-ingest/kvfs-export/kvfs-evict when no server has the store open
// (docs/ingest.md).
//
// Request fields ("op" selects the operation; flags are "1" or absent):
//   op=ingest  tarball=ABSOLUTE_PATH | (store=URL object=NAME)
//              [name=TREE] [replace=1] [skip_special=1] [claims=URL]
//              [coordination=etcd://HOSTS/PREFIX]
//              [max_archive_bytes=N] [max_tree_bytes=N]
//   op=export  name=TREE store=URL [compression=none|gzip|zstd|xz] [evict=1]
//   op=evict   name=TREE
//   op=ping
//   op=checkpoint dest=ABSOLUTE_PATH   a consistent copy of the key/value
//              store, taken while it serves (CheckpointKVStore): a new
//              directory that opens as a store (docs/operations.md#back-up)
//   op=progress id=ID   how far the transfer of the ingest or export that
//              carried progress_id=ID is: what, done_bytes, total_bytes
//              (0: not known), seconds; ENOENT if it is not (or no longer)
//              in progress
// An ingest or export may carry progress_id=ID (any string the client
// chose) to be asked about with op=progress while it runs.
// A store URL is an absolute directory, file:///DIR or s3://BUCKET[/PREFIX]
// (store/store.h); the store settings go along as fields of their own names
// (s3_endpoint=..., store::kStoreSettings) and apply to store= and claims=.
// Whoever executes the request opens the stores: through a server, with the
// server's credentials (docs/stores.md). A store given for ingest also holds
// the range claims unless claims= names another, or coordination= names
// the etcd that holds every claim (docs/coordination.md). Responses carry errno ("0" on success)
// and message, plus numbers describing what was done (see ExecuteRequest).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs/file_system.h"
#include "common/status.h"
#include "ingest/external_sorter.h"
#include "progress/transfer_progress.h"

namespace kvfs::ingest {

using Message = std::map<std::string, std::string>;

// [count:4 LE] then per field [size:4 LE][key][size:4 LE][value].
std::string EncodeMessage(const Message& m);
Status DecodeMessage(std::string_view data, Message* m);

// Policy of a service, fixed by whoever runs it.
struct ServiceOptions {
  // Staging directory for bulk loads (on the store's file system).
  std::string staging_dir;
  // Quotas applied to every ingest (0: none); a request can only make them
  // stricter.
  uint64_t max_archive_bytes = 0;
  uint64_t max_tree_bytes = 0;
  // Sort memory per ingest.
  size_t sort_memory_bytes = kDefaultSortMemoryBytes;
  // Recorded with range claims ("host=... pid=...").
  std::string claim_owner;
  // The coordination that holds the range claims of requests that name none
  // (coordination=): the server's own (docs/coordination.md); "": the
  // persistent store's claims.
  std::string coordination;
  NameHasher hasher = DefaultNameHasher();
  // Receives the log lines of the persistent stores requests open
  // (store::StoreSpec::log); null: standard error.
  std::function<void(const std::string&)> log;
  // Where ingests and exports with a progress_id register their progress,
  // and what op=progress answers from; null: requests are not tracked
  // (op=progress answers ENOENT).
  progress::ProgressRegistry* progress = nullptr;
};

// Executes `request` on fs and fills *response: errno and message, and
// for ingest: name, range, replaced_range, directories, files, symlinks,
// hard_links, skipped, bytes, archive_bytes, loaded_bytes, sort_runs,
// build_seconds, load_seconds, publish_seconds; for export: object,
// members, bytes, object_bytes, seconds (and evicted_range if evicted);
// for evict: range, freed_bytes, freed_inodes. *changed (if not null)
// receives the inodes whose cached attributes or contents are now wrong:
// the root, and the top directory of a replaced or evicted tree.
void ExecuteRequest(FileSystem* fs, const ServiceOptions& options, const Message& request,
                    Message* response, std::vector<Ino>* changed);

// Writes `p` into `m` as the fields PREFIXwhat, PREFIXdone_bytes,
// PREFIXtotal_bytes and PREFIXseconds (how op=progress answers, and
// cache-list describes a tree's transfer).
void PutProgress(const progress::ProgressSnapshot& p, const std::string& prefix, Message* m);
// Reads what PutProgress wrote; false if the fields are absent or malformed.
bool GetProgress(const Message& m, const std::string& prefix, progress::ProgressSnapshot* out);

// The outcome a response reports.
Status ResponseStatus(const Message& response);

// "host=<hostname> pid=<pid>": the default claim owner of this process.
std::string DefaultClaimOwner();

}  // namespace kvfs::ingest
