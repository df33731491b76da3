// Tests of the kvfs command-line tool (tools/kvfs.cc), run as a separate
// process on a RocksDB store: exit codes, output, and that what it writes
// reads back.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/fs/schema.h"
#include "common/kv/kv_backend.h"
#include "tests/file_contents.h"
#include "tests/fs/test_util.h"

namespace kvfs {
namespace {

using testing::ReadFileContents;

struct ToolResult {
  int exit_code = -1;
  std::string out, err;
};

class KvfsToolTest : public ::testing::Test {
 protected:
  // Runs `kvfs args...` with `input` on stdin.
  ToolResult Run(const std::vector<std::string>& args, const std::string& input = "") {
    const std::string in = tmp_.path() + "/stdin", out = tmp_.path() + "/stdout",
                      err = tmp_.path() + "/stderr";
    std::ofstream(in, std::ios::binary) << input;
    std::vector<std::string> argv_store = {KVFS_TOOL};
    argv_store.insert(argv_store.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);
    ToolResult r;
    pid_t pid = fork();
    if (pid == 0) {
      int i = open(in.c_str(), O_RDONLY);
      int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(99);
      execv(argv[0], argv.data());
      _exit(98);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
      ADD_FAILURE() << "running kvfs failed";
      return r;
    }
    r.exit_code = WEXITSTATUS(status);
    r.out = ReadFileContents(out);
    r.err = ReadFileContents(err);
    return r;
  }
  // Runs `kvfs command --db <store> args...`.
  ToolResult RunDb(const std::string& command, const std::vector<std::string>& args = {},
                   const std::string& input = "") {
    std::vector<std::string> all = {command, "--db", db_};
    all.insert(all.end(), args.begin(), args.end());
    return Run(all, input);
  }

  static bool Has(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
  }

  testing::TempDir tmp_{"kvfs_tool_test"};
  const std::string db_ = tmp_.path() + "/db";
};

TEST_F(KvfsToolTest, UsageAndArgumentErrors) {
  ToolResult r = Run({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, "usage: kvfs <command> --db PATH"));
  r = Run({"help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* cmd :
       {"fsck", "dump", "ls", "stat", "cat", "put", "mkdir", "rm", "import", "statfs", "demo"}) {
    EXPECT_TRUE(Has(r.out, std::string("\n  ") + cmd + " ")) << cmd;
  }
  EXPECT_EQ(Run({"frobnicate", "--db", db_}).exit_code, 2);
  r = Run({"ls"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, "--db PATH is required")) << r.err;
  EXPECT_EQ(RunDb("ls", {"--bogus"}).exit_code, 2);
  EXPECT_EQ(RunDb("ls", {"-z"}).exit_code, 2);
  EXPECT_EQ(RunDb("stat").exit_code, 2);
  EXPECT_EQ(RunDb("cat", {"/a", "/b"}).exit_code, 2);
  r = RunDb("stat", {"/"});  // no store there
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, "No such file or directory")) << r.err;
  r = RunDb("fsck");
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(KvfsToolTest, DemoListsAndChecks) {
  ToolResult r = RunDb("demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "/demo/generated:\n")) << r.out;
  EXPECT_TRUE(Has(r.out, " latest -> large.bin\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "fsck: consistent\n")) << r.out;
  r = RunDb("demo");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Has(r.out, "/demo exists already")) << r.out;
  r = RunDb("fsck");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "\nconsistent\n")) << r.out;
  r = RunDb("cat", {"/demo/generated/latest"});  // follows the symlink
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.size(), 200000u);
  r = RunDb("statfs");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Has(r.out, "inodes: ")) << r.out;
}

TEST_F(KvfsToolTest, PutCatStatLsMkdirRm) {
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13 + (i >> 9));
  const std::string local = tmp_.path() + "/local.bin";
  std::ofstream(local, std::ios::binary) << data;
  ASSERT_EQ(RunDb("put", {local, "/f"}).exit_code, 0);
  EXPECT_TRUE(RunDb("cat", {"/f"}).out == data);
  ASSERT_EQ(RunDb("put", {"-", "/f"}, "replaced").exit_code, 0);  // stdin, overwrite
  EXPECT_EQ(RunDb("cat", {"/f"}).out, "replaced");
  ToolResult r = RunDb("stat", {"/f"});
  EXPECT_TRUE(Has(r.out, "type: regular file\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "size: 8\n")) << r.out;

  ASSERT_EQ(RunDb("mkdir", {"-p", "/x/y/z", "/x/w"}).exit_code, 0);
  ASSERT_EQ(RunDb("put", {local, "/x/y"}).exit_code, 0);  // into the directory
  EXPECT_TRUE(RunDb("cat", {"/x/y/local.bin"}).out == data);
  r = RunDb("mkdir", {"/x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, "File exists")) << r.err;
  r = RunDb("ls", {"-R", "/x"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Has(r.out, "/x/y/z:\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "    300000 ")) << r.out;
  r = RunDb("rm", {"/x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, "Directory not empty")) << r.err;
  ASSERT_EQ(RunDb("rm", {"-r", "/x", "/f"}).exit_code, 0);
  r = RunDb("ls", {"/"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  r = RunDb("cat", {"/f"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, "No such file or directory")) << r.err;
  EXPECT_EQ(RunDb("fsck").exit_code, 0);
}

TEST_F(KvfsToolTest, ImportCopiesATree) {
  const std::string src = tmp_.path() + "/src";
  ASSERT_EQ(mkdir(src.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((src + "/sub").c_str(), 0700), 0);
  std::ofstream(src + "/sub/file") << "contents";
  ASSERT_EQ(symlink("sub/file", (src + "/link").c_str()), 0);
  ToolResult r = RunDb("import", {src, "/copy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "2 directories, 1 files (8 bytes), 1 symlinks")) << r.out;
  EXPECT_EQ(RunDb("cat", {"/copy/link"}).out, "contents");
  r = RunDb("stat", {"/copy/sub"});
  EXPECT_TRUE(Has(r.out, "mode: 0700 (drwx------)")) << r.out;
  r = RunDb("import", {tmp_.path() + "/nonexistent", "/other"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(KvfsToolTest, DumpDecodesEveryColumn) {
  ASSERT_EQ(RunDb("put", {"-", "/small"}, "tiny").exit_code, 0);
  ASSERT_EQ(RunDb("put", {"-", "/big"}, std::string(70000, 'b')).exit_code, 0);
  ToolResult r = RunDb("dump");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out,
                  "meta 7375706572  superblock hash=\"xxh3-64\" inline_threshold=4096 "
                  "block_size=65536\n"))
      << r.out;
  EXPECT_TRUE(Has(r.out, "range 0 owner=1 high_water=")) << r.out;
  EXPECT_TRUE(Has(r.out, "usage total bytes = 70004\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "name=\"small\"")) << r.out;
  EXPECT_TRUE(Has(r.out, "inline data=4B:74696e79")) << r.out;
  EXPECT_TRUE(Has(r.out, "ino=1 (range 0, local 1) detached type=dir")) << r.out;
  EXPECT_TRUE(Has(r.out, " block=1 length=4464 data=62626262")) << r.out;
  r = RunDb("dump", {"--column", "blocks"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(Has(r.out, "superblock")) << r.out;
  r = RunDb("dump", {"--key", "7375706572"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(RunDb("dump", {"--key", "00"}).exit_code, 2);
  EXPECT_EQ(RunDb("dump", {"--key", "xyz"}).exit_code, 2);
  EXPECT_EQ(RunDb("dump", {"--column", "nope"}).exit_code, 2);
}

TEST_F(KvfsToolTest, FsckReportsDamage) {
  ASSERT_EQ(RunDb("put", {"-", "/a"}, "aaa").exit_code, 0);
  ASSERT_EQ(RunDb("fsck").exit_code, 0);
  {
    // Damage: drop the index entry of /a and add an undecodable bucket.
    std::unique_ptr<KVStore> store;
    ASSERT_OK(OpenKVStore(KVStoreAt(db_), &store));
    ASSERT_OK(store->Delete(Column::kInodes, schema::InodeKey(2)));
    ASSERT_OK(store->Put(Column::kEntries, schema::EntryKey(kRootIno, 12345), "\x07garbage"));
  }
  ToolResult r = RunDb("fsck");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "problem: ")) << r.out;
  EXPECT_TRUE(Has(r.out, " problems\n")) << r.out;
  r = RunDb("dump", {"--column", "entries"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Has(r.out, "bucket=12345 UNDECODABLE")) << r.out;
}

// A store whose superblock says it is of a newer or an unknown format
// version is refused with a message saying so, and left as it is: once the
// version is back, it opens with its contents.
TEST_F(KvfsToolTest, StoresOfAnotherFormatVersionAreRefusedUntouched) {
  ASSERT_EQ(RunDb("put", {"-", "/a"}, "aaa").exit_code, 0);
  std::string superblock;
  auto set_version = [&](uint8_t version) {
    std::unique_ptr<KVStore> store;
    ASSERT_OK(OpenKVStore(KVStoreAt(db_), &store));
    if (superblock.empty()) ASSERT_OK(store->Get(Column::kMeta, schema::kSuperKey, &superblock));
    ASSERT_EQ(static_cast<uint8_t>(superblock[0]), schema::kFormatVersion);
    std::string changed = superblock;
    changed[0] = static_cast<char>(version);
    ASSERT_OK(store->Put(Column::kMeta, schema::kSuperKey, changed));
  };
  const std::string current = std::to_string(schema::kFormatVersion);
  const std::string future = std::to_string(schema::kFormatVersion + 1);

  set_version(schema::kFormatVersion + 1);
  ToolResult r = RunDb("cat", {"/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, "format version " + future + ", written by a newer KVFS")) << r.err;
  EXPECT_TRUE(Has(r.err, "reads format version " + current + " only")) << r.err;

  set_version(0);
  r = RunDb("cat", {"/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, "unknown format version 0 (this KVFS reads format version " + current))
      << r.err;

  set_version(schema::kFormatVersion);
  r = RunDb("cat", {"/a"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "aaa");
  EXPECT_EQ(RunDb("fsck").exit_code, 0);
}

}  // namespace
}  // namespace kvfs
