// The client side of the ingest service: what kvfs-ingest, kvfs-export and
// kvfs-evict do with a request (docs/ingest.md).
#pragma once

#include <string>

#include "common/kv/kv_backend.h"
#include "common/status.h"
#include "ingest/service.h"

namespace kvfs::ingest {

// Largest frame either side sends or accepts.
inline constexpr size_t kMaxFrame = 1 << 20;

// Socket a server that has the store at db_path open listens on.
std::string ControlSocketPath(const std::string& db_path);
// Staging directory for bulk loads into the store at db_path (inside the
// database directory, so SST files are moved into it, not copied).
std::string StagingDirFor(const std::string& db_path);

// Frames on a stream socket: [length:4 LE][bytes].
Status WriteFrame(int fd, std::string_view payload);
Status ReadFrame(int fd, std::string* payload);

// Sends `request` to the server at socket_path and waits for its response
// (as long as the request takes). ENOENT or ECONNREFUSED if no server
// listens there.
Status CallControlServer(const std::string& socket_path, const Message& request, Message* response);

// Asks the server at socket_path how far the transfer registered under `id`
// is (op=progress); false if no server answers or it has no such transfer in
// progress.
bool AskProgress(const std::string& socket_path, const std::string& id,
                 progress::ProgressSnapshot* out);

// Runs `request` against the store store.path: through the server that has
// it open if one listens on ControlSocketPath(store.path) (*via_server =
// true; store.options are then unused), else by opening the store here with
// store.backend and store.options (created for an ingest if missing), which
// fails if another process holds it without serving the socket. A backend
// other than the one recorded in store.path is refused either way. A non-OK
// status is a failure to deliver the request; the request's own outcome is
// ResponseStatus(*response). A request opened here registers its progress
// in `progress` (if not null and the request has a progress_id).
Status RunRequest(const KVStoreSpec& store, const Message& request, Message* response,
                  bool* via_server, progress::ProgressRegistry* progress = nullptr);

}  // namespace kvfs::ingest
