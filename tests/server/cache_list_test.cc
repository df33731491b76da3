// `kvfs cache list` through a server (ServerStack: control socket and cache
// manager) over a store of thousands of tarballs: every tree is listed
// once, in name order, under one heading, although the whole listing is
// larger than a control frame (1 MiB): the server answers it in pages.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "server/server_stack.h"
#include "tests/fs/test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"

namespace kvfs {
namespace {

using ingest_test::RunCommand;

TEST(CacheList, AStoreOfThousandsOfTreesIsListedWholeInPages) {
  testing::TempDir dir("kvfs-cache-list");
  const std::string db = dir.path() + "/db";
  const std::string store = dir.path() + "/store";
  std::filesystem::create_directories(store);
  // Long names, so that the listing's fields pass 1 MiB with fewer trees.
  constexpr int kTrees = 3000;
  auto name_of = [](int i) {
    char n[16];
    std::snprintf(n, sizeof(n), "%05d", i);
    return std::string(n) + "-" + std::string(200, 't');
  };
  for (int i = 0; i < kTrees; ++i) {
    const std::string name = name_of(i);
    ingest_test::WriteTarball(store + "/" + name + ".tar", {ingest_test::File(name + "/f", "x")});
  }
  server::ServerStackOptions o;
  o.db_path = db;
  o.persistent_store = store;
  o.cache_refresh_seconds = 0;
  std::unique_ptr<server::ServerStack> stack;
  ASSERT_OK(server::ServerStack::Open(o, &stack));

  std::string out;
  ASSERT_EQ(RunCommand(std::string(KVFS_TOOL_BIN) + " cache --db " + db + " list", &out), 0)
      << out.substr(0, 2000);
  ASSERT_GT(out.size(), size_t{1} << 20);  // more than one frame could carry
  std::istringstream lines(out);
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(line.rfind("TREE", 0), 0u) << line;
  int i = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(i, kTrees) << line;
    std::istringstream row(line);
    std::string name, state;
    row >> name >> state;
    EXPECT_EQ(name, name_of(i)) << line;
    EXPECT_EQ(state, "unloaded") << line;
    EXPECT_NE(line.find(name_of(i) + ".tar"), std::string::npos) << line;
    ++i;
  }
  EXPECT_EQ(i, kTrees);
}

}  // namespace
}  // namespace kvfs
