// What kvfs-ingest, kvfs-export and kvfs-evict share: argument parsing and
// running their requests (through the server or directly, RunRequest) with
// one line of output per request.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "ingest/service.h"

namespace kvfs::ingest {

struct CommandLine {
  std::map<std::string, std::string> options;  // "--x" -> value ("1" for flags)
  std::vector<std::string> args;
  bool help = false;  // -h or --help was given
};

// Parses argv[1..]: "--name value" or "--name=value" for names in `valued`
// and for the options every command takes (--db, --backend, --kv-options,
// and the persistent store settings --s3-endpoint etc.: kStoreUsage; the
// flag --no-progress),
// "--name" for names in `flags` (stored as "1"), anything else is an
// argument ("--" ends the options); "-h" and "--help" set `help`. EINVAL for
// an unknown option or a missing value.
Status ParseCommandLine(int argc, char** argv, const std::set<std::string>& flags,
                        const std::set<std::string>& valued, CommandLine* out);

// The usage lines of the store options, printed by UsageError after the
// command's own usage (and store::kStoreSettingsUsage, for --store and
// --claims; through a server, the server opens the persistent store with its
// own credentials).
inline constexpr const char* kStoreUsage = R"(
store options (every command):
  --db PATH             the KVFS store (required)
  --backend NAME        its key/value backend (default: the one recorded in
                        PATH, rocksdb for a new store; see docs/kv-stores.md)
  --kv-options LIST     the backend's options, name=value,... (used when the
                        store is opened here, not through a server)
  --no-progress         no progress line (bytes, rate, time left); it is
                        drawn on standard error only when that is a terminal

)";

// Runs each request against the store given by the store options of `cl`
// in turn and prints one line per request (stdout on success, stderr with
// the error otherwise). While a request runs, a progress line is drawn on
// stderr if it is a terminal (and --no-progress was not given). Returns the exit status: 0 if every
// request succeeded, 2 otherwise (also for bad store options).
int RunRequests(const CommandLine& cl, const std::vector<Message>& requests);

// Prints `usage`, kStoreUsage and `error` (if any) to stderr; returns exit
// status 2.
int UsageError(const char* usage, const std::string& error);

// Prints `usage` and kStoreUsage to stdout (for --help); returns exit status 0.
int PrintUsage(const char* usage);

}  // namespace kvfs::ingest
