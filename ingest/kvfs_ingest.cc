// kvfs-ingest: loads tarballs into a KVFS store as top-level directories.
// See docs/ingest.md and the usage text below.
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "ingest/cli.h"

namespace {

constexpr const char* kUsage = R"(usage: kvfs-ingest --db PATH [options] TARBALL...
       kvfs-ingest --db PATH --store URL [options] NAME...

Loads each tarball (tar, pax or GNU; gzip, zstd, xz compressed or not) into
the KVFS store PATH as the top-level directory named after it
(linux-6.1.tar.xz -> /linux-6.1), in one atomic step. If a server has the
store open, it is asked to do the load (over PATH/control.sock) and its
clients see the tree at once; otherwise the store is opened here.
With --store, the NAMEs are trees (or tarball names) in the persistent
store URL (a directory or s3://BUCKET[/PREFIX]), and the inode range is
claimed there.

options:
  --replace             replace an existing tree of the same name atomically
                        (default: refuse with EEXIST)
  --name NAME           the tree's name (one tarball only)
  --skip-special        skip device nodes and FIFOs (default: refuse them)
  --max-archive-bytes N refuse tarballs larger than N bytes (quota)
  --max-tree-bytes N    refuse trees holding more than N bytes of files
  --claims URL          claim the inode range in persistent store URL
  --coordination URL    claim the inode range in etcd instead
                        (etcd://HOST:PORT[,HOST:PORT...]/PREFIX, as the
                        servers sharing the store; docs/coordination.md)

exit status: 0 success, 2 any error
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace kvfs::ingest;
  CommandLine cl;
  kvfs::Status s = ParseCommandLine(
      argc, argv, {"replace", "skip-special"},
      {"store", "name", "max-archive-bytes", "max-tree-bytes", "claims", "coordination"}, &cl);
  if (!s.ok()) return UsageError(kUsage, s.message());
  if (cl.help) return PrintUsage(kUsage);
  if (!cl.options.count("db") || cl.args.empty()) return UsageError(kUsage, "");
  if (cl.options.count("name") && cl.args.size() != 1) {
    return UsageError(kUsage, "--name takes one tarball");
  }
  std::vector<Message> requests;
  for (const std::string& arg : cl.args) {
    Message req{{"op", "ingest"}};
    if (cl.options.count("store")) {
      req["store"] = cl.options["store"];
      req["object"] = arg;
    } else {
      // The server resolves paths itself: send an absolute one.
      char resolved[PATH_MAX];
      req["tarball"] = realpath(arg.c_str(), resolved) != nullptr ? resolved : arg;
    }
    for (const char* key :
         {"name", "max-archive-bytes", "max-tree-bytes", "claims", "coordination"}) {
      if (cl.options.count(key)) {
        std::string field = key;
        for (char& c : field) c = c == '-' ? '_' : c;
        req[field] = cl.options[key];
      }
    }
    if (cl.options.count("replace")) req["replace"] = "1";
    if (cl.options.count("skip-special")) req["skip_special"] = "1";
    requests.push_back(std::move(req));
  }
  return RunRequests(cl, requests);
}
