// kvfs-export: writes top-level directories of a KVFS store back to the
// persistent store as tarballs. See docs/ingest.md and the usage text below.
#include <string>
#include <vector>

#include "ingest/cli.h"

namespace {

constexpr const char* kUsage = R"(usage: kvfs-export --db PATH --store URL [options] NAME...

Writes each top-level directory /NAME of the KVFS store PATH to the
persistent store URL (a directory or s3://BUCKET[/PREFIX]) as one pax
tarball NAME.tar (or .tar.gz, .tar.zst, .tar.xz), atomically: the new
tarball replaces the old one at once, and other tarballs of the same tree
are removed after. If a server has the store open,
it is asked to do it (over PATH/control.sock).

options:
  --compression C   none (default), gzip, zstd or xz
  --evict           drop the tree from the store after exporting it

exit status: 0 success, 2 any error
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace kvfs::ingest;
  CommandLine cl;
  kvfs::Status s = ParseCommandLine(argc, argv, {"evict"}, {"store", "compression"}, &cl);
  if (!s.ok()) return UsageError(kUsage, s.message());
  if (cl.help) return PrintUsage(kUsage);
  if (!cl.options.count("db") || !cl.options.count("store") || cl.args.empty()) {
    return UsageError(kUsage, "");
  }
  std::vector<Message> requests;
  for (const std::string& name : cl.args) {
    Message req;
    req["op"] = "export";
    req["name"] = name;
    req["store"] = cl.options["store"];
    if (cl.options.count("compression")) req["compression"] = cl.options["compression"];
    if (cl.options.count("evict")) req["evict"] = "1";
    requests.push_back(std::move(req));
  }
  return RunRequests(cl, requests);
}
