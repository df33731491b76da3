// `kvfs backup`: a consistent copy of a store taken while a server
// (ServerStack: the FSAL's and kvfs-fuse's stack, with its control socket)
// serves it and a writer keeps changing it; the copy opens as a store,
// passes fsck and holds every change acknowledged before the backup began,
// in the order they were made. Then the error cases: an existing
// destination, a backend that cannot copy itself while open, and the copy
// taken without a server.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include "common/kv/kv_backend.h"
#include "server/server_stack.h"
#include "tests/fs/test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"

namespace kvfs {
namespace {

using ingest_test::OpenRocksFileSystem;
using ingest_test::RunCommand;

std::string Contents(int i) { return "file " + std::to_string(i) + " " + std::string(i % 97, 'x'); }

// Checks that the store in `dir` opens, is consistent, and holds files
// f0..f(n-1) of /w (the last one possibly still empty: created, not yet
// written) and no others; returns n.
int CheckCopy(const std::string& dir) {
  std::string out;
  EXPECT_EQ(RunCommand(std::string(KVFS_TOOL_BIN) + " fsck --db " + dir, &out), 0) << out;
  std::unique_ptr<FileSystem> fs;
  Status s = OpenRocksFileSystem(dir, &fs);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return -1;
  Attributes w;
  if (!fs->Lookup(kRootIno, "w", &w).ok()) return 0;
  int n = 0;
  for (;; ++n) {
    Attributes a;
    if (!fs->Lookup(w.ino, "f" + std::to_string(n), &a).ok()) break;
    std::string data;
    bool eof = false;
    EXPECT_OK(fs->Read(a.ino, 0, 1 << 20, &data, &eof));
    if (data != Contents(n)) {
      // Only the newest file may be caught between its create and write.
      Attributes next;
      EXPECT_TRUE(data.empty()) << "f" << n << ": '" << data << "'";
      EXPECT_TRUE(fs->Lookup(w.ino, "f" + std::to_string(n + 1), &next).IsNotFound()) << n;
    }
  }
  return n;
}

TEST(Backup, AConsistentCopyWhileTheServerServesAndChanges) {
  testing::TempDir dir("kvfs-backup");
  const std::string db = dir.path() + "/db";
  const std::string backup = std::string(KVFS_TOOL_BIN) + " backup --db " + db + " ";
  server::ServerStackOptions o;
  o.db_path = db;
  std::unique_ptr<server::ServerStack> stack;
  ASSERT_OK(server::ServerStack::Open(o, &stack));
  FileSystem* fs = stack->fs();
  Attributes w;
  ASSERT_OK(fs->Mkdir(kRootIno, "w", NewObject{0755, 0, 0}, &w));

  // A writer: each file created, written and synced (acknowledged) in turn.
  std::atomic<int> acknowledged{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      Attributes a;
      Status s = fs->Create(w.ino, "f" + std::to_string(i), NewObject{0644, 0, 0}, true, &a);
      if (s.ok()) s = fs->Write(a.ino, 0, Contents(i), Stability::kUnstable, &a);
      if (s.ok()) s = fs->Sync();
      if (!s.ok()) {
        ADD_FAILURE() << s.ToString();
        return;
      }
      acknowledged = i + 1;
    }
  });
  while (acknowledged < 200) std::this_thread::yield();

  const int before = acknowledged;
  std::string out;
  const int status = RunCommand(backup + dir.path() + "/copy", &out);
  const int after = acknowledged;
  // The destination exists now: refused, nothing overwritten.
  std::string again;
  const int again_status = RunCommand(backup + dir.path() + "/copy/", &again);
  stop = true;
  writer.join();
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("copied " + db + " to " + dir.path() + "/copy [via server]"),
            std::string::npos)
      << out;
  EXPECT_EQ(again_status, 2) << again;
  EXPECT_NE(again.find("exists"), std::string::npos) << again;

  const int copied = CheckCopy(dir.path() + "/copy");
  EXPECT_GE(copied, before);
  EXPECT_LE(copied, after + 1);
  EXPECT_EQ(RecordedKVBackend(dir.path() + "/copy"), "rocksdb");

  // Without a server the command opens the store itself.
  const int total = acknowledged;
  stack.reset();
  ASSERT_EQ(RunCommand(backup + dir.path() + "/copy2", &out), 0) << out;
  EXPECT_EQ(out.find("[via server]"), std::string::npos) << out;
  EXPECT_EQ(CheckCopy(dir.path() + "/copy2"), total);
  // A relative destination is the caller's, not the server's.
  ASSERT_EQ(RunCommand("cd " + dir.path() + " && " + backup + "copy3", &out), 0) << out;
  EXPECT_EQ(CheckCopy(dir.path() + "/copy3"), total);
}

TEST(Backup, BackendsThatCannotCopyThemselvesSaySo) {
  testing::TempDir dir("kvfs-backup-leveldb");
  const std::string db = dir.path() + "/db";
  std::string out;
  ASSERT_EQ(
      RunCommand(std::string(KVFS_TOOL_BIN) + " mkdir --db " + db + " --backend leveldb /x", &out),
      0)
      << out;
  EXPECT_EQ(
      RunCommand(std::string(KVFS_TOOL_BIN) + " backup --db " + db + " " + dir.path() + "/copy",
                 &out),
      2)
      << out;
  EXPECT_NE(out.find("the leveldb backend cannot copy itself while open: stop the server and "
                     "copy its directory"),
            std::string::npos)
      << out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/copy"));
}

}  // namespace
}  // namespace kvfs
