// End to end: ganesha.nfsd with FSAL_KVFS serving a persistent store with
// metrics_port set (docs/operations.md#monitor). A libnfs client loads a
// tree, writes and reads files and looks a missing name up; the test scrapes
// http://127.0.0.1:PORT/metrics with curl before and after, checks that the
// counters moved by what was done (file bytes exactly; the load, the store's
// reads, the operations and errors by type), that the key/value store's
// statistics are there, that the endpoint listens on loopback only, and that
// `promtool check metrics` accepts the exposition.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/file_contents.h"
#include "tests/fsal/fsal_test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"

namespace kvfs::fsal_test {
namespace {

using e2e::GaneshaServer;
using e2e::NfsClient;
using e2e::NfsStat;
using e2e::NfsVersion;
using ingest_test::RandomBytes;
using ingest_test::RunCommand;

constexpr int kPort = 9587;

// "name{labels}" -> value, for every sample of an exposition.
using Samples = std::map<std::string, double>;

Samples Parse(const std::string& text) {
  Samples out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

class MetricsE2E : public ::testing::Test {
 protected:
  // The exposition, also written to `file` for promtool.
  std::string Scrape(const std::string& file) {
    std::string out;
    EXPECT_EQ(RunCommand("curl -sSf -o " + file + " http://127.0.0.1:" + std::to_string(kPort) +
                             "/metrics",
                         &out),
              0)
        << out;
    return kvfs::testing::ReadFileContents(file);
  }

  // The sample `key`, failing if it is not there.
  static double Value(const Samples& s, const std::string& key) {
    auto it = s.find(key);
    EXPECT_NE(it, s.end()) << "no sample " << key;
    return it == s.end() ? -1 : it->second;
  }
  static double Delta(const Samples& before, const Samples& after, const std::string& key) {
    return Value(after, key) - Value(before, key);
  }

  TempDir dir_;
};

TEST_F(MetricsE2E, CountsFollowNfsOperationsAndPassPromtool) {
  // One tree in the store: t/a (5,000 bytes).
  const std::string store = dir_.path() + "/store";
  std::filesystem::create_directories(store);
  const std::string a = RandomBytes(5000, 1);
  ingest_test::WriteTarball(store + "/t.tar", {ingest_test::File("t/a", a)});
  const double tarball_bytes = static_cast<double>(std::filesystem::file_size(store + "/t.tar"));

  KvfsExport e;
  e.db_path = dir_.path() + "/db";
  e.fsal_extra =
      "persistent_store = \"" + store + "\"; metrics_port = \"" + std::to_string(kPort) + "\";";
  GaneshaServer server(KvfsServerOptions({e}));
  ASSERT_OK(server.Start());

  // Loopback only unless an address is configured.
  std::string listeners;
  ASSERT_EQ(RunCommand("ss -ltnH", &listeners), 0) << listeners;
  EXPECT_NE(listeners.find("127.0.0.1:" + std::to_string(kPort)), std::string::npos) << listeners;
  EXPECT_EQ(listeners.find("0.0.0.0:" + std::to_string(kPort)), std::string::npos) << listeners;

  const Samples before = Parse(Scrape(dir_.path() + "/before.txt"));
  EXPECT_EQ(Value(before, "kvfs_cache_load_duration_seconds_count{result=\"ok\"}"), 0);

  NfsClient client(NfsVersion::kV4);
  ASSERT_EQ(client.Mount(e.path), 0) << client.LastError();
  std::string got;
  ASSERT_EQ(client.ReadFile("/t/a", &got), 0) << client.LastError();  // loads t
  EXPECT_EQ(got, a);
  const std::string b = RandomBytes(100000, 2);
  ASSERT_EQ(client.WriteFile("/t/b", b), 0) << client.LastError();
  ASSERT_EQ(client.ReadFile("/t/b", &got), 0) << client.LastError();
  EXPECT_EQ(got, b);
  NfsStat st;
  EXPECT_EQ(client.Stat("/t/missing", &st), -ENOENT);

  const std::string after_file = dir_.path() + "/after.txt";
  const Samples after = Parse(Scrape(after_file));
  // File contents: exactly what the client wrote and read.
  EXPECT_EQ(Delta(before, after, "kvfs_written_bytes_total"), 100000);
  EXPECT_EQ(Delta(before, after, "kvfs_read_bytes_total"), 105000);
  // Operations by type, and the failed lookup.
  EXPECT_GE(Delta(before, after, "kvfs_operation_duration_seconds_count{op=\"write\"}"), 1);
  EXPECT_GE(Delta(before, after, "kvfs_operation_duration_seconds_count{op=\"read\"}"), 2);
  EXPECT_GE(Delta(before, after, "kvfs_operation_duration_seconds_count{op=\"create\"}"), 1);
  EXPECT_GE(Delta(before, after, "kvfs_operation_errors_total{op=\"lookup\"}"), 1);
  EXPECT_EQ(Delta(before, after, "kvfs_operation_errors_total{op=\"write\"}"), 0);
  EXPECT_GE(Value(after, "kvfs_operation_duration_seconds_bucket{op=\"write\",le=\"+Inf\"}"), 1);
  // One load of the tree, from its tarball, through the store's reads.
  EXPECT_EQ(Delta(before, after, "kvfs_cache_load_duration_seconds_count{result=\"ok\"}"), 1);
  EXPECT_EQ(Delta(before, after, "kvfs_cache_load_bytes_total{result=\"ok\"}"), tarball_bytes);
  EXPECT_EQ(Value(after, "kvfs_cache_load_duration_seconds_count{result=\"error\"}"), 0);
  EXPECT_GE(Delta(before, after, "kvfs_store_request_duration_seconds_count{op=\"open_read\"}"), 1);
  EXPECT_EQ(Delta(before, after, "kvfs_store_read_bytes_total"), tarball_bytes);
  // RocksDB's own statistics.
  EXPECT_GT(Value(after, "kvfs_kv_estimate_num_keys{backend=\"rocksdb\"}"), 0);
  EXPECT_TRUE(after.count("kvfs_kv_live_sst_files_size_bytes{backend=\"rocksdb\"}"));

  std::string lint;
  EXPECT_EQ(RunCommand("promtool check metrics < " + after_file, &lint), 0) << lint;
}

// A port that is taken fails the export with a message naming it.
TEST_F(MetricsE2E, APortInUseFailsTheExportWithAMessage) {
  KvfsExport first;
  first.db_path = dir_.path() + "/db1";
  first.fsal_extra = "metrics_port = \"" + std::to_string(kPort) + "\";";
  KvfsExport second;
  second.export_id = 2;
  second.path = "/second";
  second.db_path = dir_.path() + "/db2";
  second.fsal_extra = first.fsal_extra;
  e2e::GaneshaOptions options = KvfsServerOptions({first, second});
  GaneshaServer server(options);
  // The server starts (the first export); the second is refused.
  Status s = server.Start();
  const std::string log = server.LogSinceStart();
  EXPECT_NE(log.find("metrics: cannot listen on 127.0.0.1:" + std::to_string(kPort)),
            std::string::npos)
      << s.ToString() << "\n"
      << log;
}

}  // namespace
}  // namespace kvfs::fsal_test
