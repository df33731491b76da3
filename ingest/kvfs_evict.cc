// kvfs-evict: drops top-level directories from a KVFS store. See
// docs/ingest.md and the usage text below.
#include <string>
#include <vector>

#include "ingest/cli.h"

namespace {

constexpr const char* kUsage = R"(usage: kvfs-evict --db PATH NAME...

Drops each top-level directory /NAME with everything below it from the KVFS
store PATH (a constant number of range deletes; the store's usage drops by
what the tree held). Export it first if the persistent store does not have
it. If a server has the store open, it is asked to do it.

exit status: 0 success, 2 any error
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace kvfs::ingest;
  CommandLine cl;
  kvfs::Status s = ParseCommandLine(argc, argv, {}, {}, &cl);
  if (!s.ok()) return UsageError(kUsage, s.message());
  if (cl.help) return PrintUsage(kUsage);
  if (!cl.options.count("db") || cl.args.empty()) return UsageError(kUsage, "");
  std::vector<Message> requests;
  for (const std::string& name : cl.args) {
    requests.push_back(Message{{"op", "evict"}, {"name", name}});
  }
  return RunRequests(cl, requests);
}
