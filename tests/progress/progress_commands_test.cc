// kvfs-ingest and `kvfs cache` show how far a long transfer is (bytes, rate,
// time left) to a person at a terminal and print nothing of it to a script.
// Each command runs under a pseudo-terminal (script(1), as a person types it)
// and through a pipe (as a script runs it), on Debian's linux-source tarball
// (a load of many seconds), through a server (ServerStack: control socket,
// cache manager) and alone.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "server/server_stack.h"
#include "tests/fs/test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"

namespace kvfs {
namespace {

using ingest_test::kLinuxSourceTarball;
using ingest_test::RunCommand;

// `command` as run at a terminal: its output (stdout and stderr, as the
// terminal shows them) and exit status.
int RunAtATerminal(const std::string& command, std::string* output) {
  return RunCommand("script -qec '" + command + "' /dev/null", output);
}

TEST(ProgressCommands, KvfsIngestShowsProgressAtATerminalOnly) {
  testing::TempDir dir("kvfs-progress-ingest");
  const std::string db = dir.path() + "/db";
  const std::string ingest = std::string(KVFS_INGEST_BIN) + " --db " + db + " ";
  const std::string progress_text = std::string("ingesting ") + kLinuxSourceTarball + ": ";
  server::ServerStackOptions o;
  o.db_path = db;
  std::unique_ptr<server::ServerStack> stack;
  ASSERT_OK(server::ServerStack::Open(o, &stack));

  // Through the server: it answers the progress requests while it ingests.
  std::string out;
  ASSERT_EQ(RunAtATerminal(ingest + kLinuxSourceTarball, &out), 0) << out;
  EXPECT_NE(out.find("[via server]"), std::string::npos) << out;
  EXPECT_NE(out.find(progress_text), std::string::npos) << out;
  EXPECT_NE(out.find(" MiB of "), std::string::npos) << out;
  EXPECT_NE(out.find("/s, "), std::string::npos) << out;
  EXPECT_NE(out.find(" left"), std::string::npos) << out;
  // Erased before the result line.
  EXPECT_NE(out.find("\r\x1b[Kingested "), std::string::npos) << out;

  // In a script: the same work, only the result.
  ASSERT_EQ(RunCommand(ingest + "--replace " + kLinuxSourceTarball, &out), 0) << out;
  EXPECT_NE(out.find("ingested "), std::string::npos) << out;
  EXPECT_EQ(out.find("ingesting"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  // --no-progress silences a terminal too.
  ASSERT_EQ(RunAtATerminal(ingest + "--no-progress --replace " + kLinuxSourceTarball, &out), 0)
      << out;
  EXPECT_EQ(out.find("ingesting"), std::string::npos) << out;

  // Alone (no server has the store): the command's own progress.
  stack.reset();
  ASSERT_EQ(RunAtATerminal(ingest + "--replace " + kLinuxSourceTarball, &out), 0) << out;
  EXPECT_EQ(out.find("[via server]"), std::string::npos) << out;
  EXPECT_NE(out.find(progress_text), std::string::npos) << out;
  EXPECT_NE(out.find(" left"), std::string::npos) << out;
}

TEST(ProgressCommands, KvfsCacheShowsLoadsInProgress) {
  testing::TempDir dir("kvfs-progress-cache");
  const std::string db = dir.path() + "/db";
  const std::string store = dir.path() + "/store";
  std::filesystem::create_directories(store);
  std::filesystem::copy_file(kLinuxSourceTarball, store + "/linux-source-6.1.tar.xz");
  server::ServerStackOptions o;
  o.db_path = db;
  o.persistent_store = store;
  o.cache_refresh_seconds = 0;
  std::unique_ptr<server::ServerStack> stack;
  ASSERT_OK(server::ServerStack::Open(o, &stack));
  const std::string kvfs = std::string(KVFS_TOOL_BIN) + " cache --db " + db + " ";

  std::atomic<bool> loaded{false};
  std::string load_out;
  int load_status = -1;
  std::thread load([&] {
    load_status = RunAtATerminal(kvfs + "load linux-source-6.1", &load_out);
    loaded = true;
  });
  // Listings while it loads (from a script: the listing is the same).
  std::string list, seen;
  while (!loaded && seen.empty()) {
    if (RunCommand(kvfs + "list", &list) != 0) break;  // reported below
    if (list.find("  loading linux-source-6.1.tar.xz: ") != std::string::npos) seen = list;
  }
  load.join();
  ASSERT_EQ(load_status, 0) << load_out;
  ASSERT_EQ(RunCommand(kvfs + "list", &list), 0) << list;
  EXPECT_NE(load_out.find("loading linux-source-6.1.tar.xz: "), std::string::npos) << load_out;
  EXPECT_NE(load_out.find(" left"), std::string::npos) << load_out;
  EXPECT_NE(load_out.find("\r\x1b[Kloaded linux-source-6.1"), std::string::npos) << load_out;
  EXPECT_NE(seen.find(" of "), std::string::npos) << "no listing showed the load:\n" << list;
  EXPECT_NE(seen.find("%)"), std::string::npos) << seen;
  // Once loaded, the listing has no transfer.
  ASSERT_EQ(RunCommand(kvfs + "list", &list), 0) << list;
  EXPECT_EQ(list.find("loading"), std::string::npos) << list;
  EXPECT_NE(list.find("clean"), std::string::npos) << list;
}

}  // namespace
}  // namespace kvfs
