// FSAL_KVFS end to end, server-level behaviour: restarts and crashes, file
// handles (persistent, stale, foreign, malformed, outside the subtree),
// several exports of one or more databases, readdir cookies across changes
// and restarts, and configuration errors. Mostly NFSv3, whose raw calls let
// the tests present handles of their choosing.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fsal_kvfs/kvfs_bridge.h"
#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/file_contents.h"
#include "tests/fsal/fsal_test_util.h"
#include "tests/fsal/raw_nfs3.h"
#include "tests/ingest/ingest_test_util.h"

namespace kvfs::fsal_test {
namespace {

using e2e::GaneshaOptions;
using e2e::GaneshaServer;
using e2e::NfsClient;
using e2e::NfsFile;
using e2e::NfsStat;
using e2e::NfsVersion;

// Offsets in Ganesha 4.3's NFSv3 handle (file_handle_v3 in nfs_fh.h):
// version, flags, export id (big endian), length of the FSAL part, FSAL part.
constexpr size_t kFhExportId = 2;
constexpr size_t kFhFsalLen = 4;
constexpr size_t kFhFsal = 5;

std::unique_ptr<NfsClient> Mount(NfsVersion v, const std::string& path) {
  auto c = std::make_unique<NfsClient>(v);
  int rc = c->Mount(path);
  EXPECT_EQ(rc, 0) << path << ": " << c->LastError();
  return rc == 0 ? std::move(c) : nullptr;
}

void SetExportId(FileHandle* fh, int id) {
  (*fh)[kFhExportId] = static_cast<uint8_t>(id >> 8);
  (*fh)[kFhExportId + 1] = static_cast<uint8_t>(id);
}

int Getattr(NfsClient& c, const FileHandle& fh, uint64_t* fileid = nullptr) {
  int status = -1;
  uint64_t id = 0;
  EXPECT_EQ(RawGetattr(c, fh, &status, &id), 0);
  if (fileid != nullptr) *fileid = id;
  return status;
}

KvfsExport Export(int id, const std::string& path, const std::string& db,
                  const std::string& subtree) {
  KvfsExport e;
  e.export_id = id;
  e.path = path;
  e.db_path = db;
  e.subtree = subtree;
  return e;
}

void StartOrDie(GaneshaServer& server) {
  Status s = server.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST(KvfsServer, RestartKeepsDataAndHandles) {
  TempDir dir;
  KvfsExport e;
  e.db_path = dir.path() + "/db";
  GaneshaServer server(KvfsServerOptions({e}));
  ASSERT_NO_FATAL_FAILURE(StartOrDie(server));

  auto c3 = Mount(NfsVersion::kV3, "/kvfs");
  ASSERT_NE(c3, nullptr);
  const std::string data = Pattern(300000, 11);
  ASSERT_EQ(c3->Mkdir("/r"), 0);
  ASSERT_EQ(c3->WriteFile("/r/f", data), 0);
  ASSERT_EQ(c3->Symlink("f", "/r/link"), 0);
  NfsFile f;
  ASSERT_EQ(c3->Open("/r/f", O_RDONLY, &f), 0);
  FileHandle file_fh, dir_fh;
  ASSERT_EQ(HandleOf(*c3, "/r/f", &file_fh), 0);
  ASSERT_EQ(HandleOf(*c3, "/r", &dir_fh), 0);
  uint64_t fileid_before = 0;
  ASSERT_EQ(Getattr(*c3, file_fh, &fileid_before), kNfs3Ok);

  Status s = server.Restart();
  ASSERT_TRUE(s.ok()) << s.ToString();

  // The NFSv3 client carries on with the handles it holds.
  std::string buf(data.size(), '\0');
  EXPECT_EQ(f.Pread(buf.data(), buf.size(), 0), static_cast<int64_t>(data.size()));
  EXPECT_TRUE(buf == data);
  uint64_t fileid_after = 0;
  EXPECT_EQ(Getattr(*c3, file_fh, &fileid_after), kNfs3Ok);
  EXPECT_EQ(fileid_after, fileid_before);
  std::vector<RawDirEntry> entries;
  uint64_t verifier = 0;
  bool eof = false;
  int status = -1;
  ASSERT_EQ(RawReaddir(*c3, dir_fh, 0, &verifier, 8192, &entries, &eof, &status), 0);
  EXPECT_EQ(status, kNfs3Ok);
  std::set<std::string> names;
  for (const RawDirEntry& d : entries) names.insert(d.name);
  EXPECT_EQ(names, (std::set<std::string>{".", "..", "f", "link"}));
  EXPECT_TRUE(eof);
  EXPECT_EQ(f.Close(), 0);

  // A new NFSv4 client sees the same data (libnfs cannot recover v4 state).
  auto c4 = Mount(NfsVersion::kV4, "/kvfs");
  ASSERT_NE(c4, nullptr);
  std::string back;
  ASSERT_EQ(c4->ReadFile("/r/f", &back), 0);
  EXPECT_TRUE(back == data);
  std::string target;
  ASSERT_EQ(c4->Readlink("/r/link", &target), 0);
  EXPECT_EQ(target, "f");
}

// Writes acknowledged as stable or committed survive SIGKILL of the server.
TEST(KvfsServer, CommittedDataSurvivesAKill) {
  TempDir dir;
  KvfsExport e;
  e.db_path = dir.path() + "/db";
  GaneshaServer server(KvfsServerOptions({e}));
  ASSERT_NO_FATAL_FAILURE(StartOrDie(server));
  const std::string data = Pattern(200000, 12);
  {
    auto c = Mount(NfsVersion::kV3, "/kvfs");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->Mkdir("/made"), 0);
    NfsFile f;
    ASSERT_EQ(c->Create("/made/committed", O_WRONLY, 0644, &f), 0);
    for (size_t off = 0; off < data.size(); off += 32768) {
      ASSERT_GT(f.Pwrite(std::string_view(data).substr(off, 32768), off), 0);
    }
    ASSERT_EQ(f.Fsync(), 0);  // COMMIT
    ASSERT_EQ(c->Rename("/made/committed", "/made/file"), 0);
  }
  ASSERT_TRUE(server.Kill9().ok());
  ASSERT_NO_FATAL_FAILURE(StartOrDie(server));
  auto c = Mount(NfsVersion::kV4, "/kvfs");
  ASSERT_NE(c, nullptr);
  std::string back;
  ASSERT_EQ(c->ReadFile("/made/file", &back), 0);
  EXPECT_TRUE(back == data);
}

TEST(KvfsServer, HandlesOfRemovedObjectsAreStale) {
  TempDir dir;
  KvfsExport e;
  e.db_path = dir.path() + "/db";
  GaneshaServer server(KvfsServerOptions({e}));
  ASSERT_NO_FATAL_FAILURE(StartOrDie(server));
  auto c = Mount(NfsVersion::kV3, "/kvfs");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->Mkdir("/d"), 0);
  ASSERT_EQ(c->Mkdir("/d/sub"), 0);
  ASSERT_EQ(c->WriteFile("/d/f", "gone soon"), 0);
  FileHandle file_fh, dir_fh;
  ASSERT_EQ(HandleOf(*c, "/d/f", &file_fh), 0);
  ASSERT_EQ(HandleOf(*c, "/d/sub", &dir_fh), 0);
  NfsFile f;
  ASSERT_EQ(c->Open("/d/f", O_RDONLY, &f), 0);

  ASSERT_EQ(c->Unlink("/d/f"), 0);
  ASSERT_EQ(c->Rmdir("/d/sub"), 0);
  EXPECT_EQ(Getattr(*c, file_fh), kNfs3ErrStale);
  EXPECT_EQ(Getattr(*c, dir_fh), kNfs3ErrStale);
  NfsStat st;
  EXPECT_EQ(f.Fstat(&st), -ESTALE);
  std::vector<RawDirEntry> entries;
  uint64_t verifier = 0;
  bool eof = false;
  int status = -1;
  ASSERT_EQ(RawReaddir(*c, dir_fh, 0, &verifier, 4096, &entries, &eof, &status), 0);
  EXPECT_EQ(status, kNfs3ErrStale);

  // Also when the handle has to be decoded afresh (empty cache).
  ASSERT_TRUE(server.Restart().ok());
  EXPECT_EQ(Getattr(*c, file_fh), kNfs3ErrStale);
  EXPECT_EQ(Getattr(*c, dir_fh), kNfs3ErrStale);
  f.Close();
}

// NFSv3 EXCLUSIVE create: the verifier is stored with the file, so a
// retransmission (same verifier) succeeds with the same file while another
// client's create (other verifier) fails, also after a restart.
TEST(KvfsServer, ExclusiveCreateVerifier) {
  TempDir dir;
  KvfsExport e;
  e.db_path = dir.path() + "/db";
  GaneshaServer server(KvfsServerOptions({e}));
  ASSERT_NO_FATAL_FAILURE(StartOrDie(server));
  auto c = Mount(NfsVersion::kV3, "/kvfs");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->Mkdir("/x"), 0);
  FileHandle dir_fh;
  ASSERT_EQ(HandleOf(*c, "/x", &dir_fh), 0);

  int status = -1;
  uint64_t first = 0, again = 0;
  ASSERT_EQ(RawCreateExclusive(*c, dir_fh, "f", 0x1122334455667788ull, &status, &first), 0);
  ASSERT_EQ(status, kNfs3Ok);
  ASSERT_EQ(RawCreateExclusive(*c, dir_fh, "f", 0x1122334455667788ull, &status, &again), 0);
  EXPECT_EQ(status, kNfs3Ok);
  EXPECT_EQ(again, first);
  ASSERT_EQ(RawCreateExclusive(*c, dir_fh, "f", 0x99ull, &status, &again), 0);
  EXPECT_EQ(status, kNfs3ErrExist);

  // The client then sets the real times; the file is an ordinary file.
  struct timeval times[2] = {{1600000000, 0}, {1600000000, 0}};
  ASSERT_EQ(c->Utimes("/x/f", times), 0);
  ASSERT_EQ(c->WriteFile("/x/f", "content"), 0);

  ASSERT_TRUE(server.Restart().ok());
  ASSERT_EQ(RawCreateExclusive(*c, dir_fh, "g", 42, &status, &first), 0);
  ASSERT_EQ(status, kNfs3Ok);
  ASSERT_TRUE(server.Restart().ok());
  ASSERT_EQ(RawCreateExclusive(*c, dir_fh, "g", 42, &status, &again), 0);
  EXPECT_EQ(status, kNfs3Ok);
  ASSERT_EQ(RawCreateExclusive(*c, dir_fh, "g", 43, &status, &again), 0);
  EXPECT_EQ(status, kNfs3ErrExist);
}

// Two databases, three exports of the first (its root and two subtrees) and
// one of the second.
class MultiExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_x_ = dir_.path() + "/x";
    db_y_ = dir_.path() + "/y";
    server_ = std::make_unique<GaneshaServer>(KvfsServerOptions({
        Export(1, "/a", db_x_, "/a"),
        Export(2, "/b", db_x_, "/b"),
        Export(3, "/y", db_y_, "/"),
        Export(4, "/x", db_x_, "/"),
    }));
    ASSERT_NO_FATAL_FAILURE(StartOrDie(*server_));
  }

  TempDir dir_;
  std::string db_x_, db_y_;
  std::unique_ptr<GaneshaServer> server_;
};

TEST_F(MultiExportTest, ExportsAreSeparateViewsOfTheirDatabases) {
  auto a = Mount(NfsVersion::kV3, "/a");
  auto b = Mount(NfsVersion::kV4, "/b");
  auto y = Mount(NfsVersion::kV3, "/y");
  auto x = Mount(NfsVersion::kV4, "/x");
  ASSERT_TRUE(a && b && y && x);
  ASSERT_EQ(a->WriteFile("/in-a", "A"), 0);
  ASSERT_EQ(b->WriteFile("/in-b", "B"), 0);
  ASSERT_EQ(y->WriteFile("/in-y", "Y"), 0);

  NfsStat st;
  EXPECT_EQ(b->Stat("/in-a", &st), -ENOENT);
  EXPECT_EQ(a->Stat("/in-b", &st), -ENOENT);
  EXPECT_EQ(x->Stat("/in-y", &st), -ENOENT);
  std::vector<std::string> names;
  ASSERT_EQ(x->ListDir("/", &names), 0);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  std::string data;
  ASSERT_EQ(x->ReadFile("/a/in-a", &data), 0);
  EXPECT_EQ(data, "A");
  ASSERT_EQ(x->ReadFile("/b/in-b", &data), 0);
  EXPECT_EQ(data, "B");
  ASSERT_EQ(y->ListDir("/", &names), 0);
  EXPECT_EQ(names, (std::vector<std::string>{"in-y"}));

  // Each export reports its own file system id.
  NfsStat sa, sb;
  ASSERT_EQ(a->Stat("/", &sa), 0);
  ASSERT_EQ(b->Stat("/", &sb), 0);
  EXPECT_NE(sa.nfs_dev, sb.nfs_dev);
}

TEST_F(MultiExportTest, ForeignAndMalformedHandlesAreRejected) {
  auto a = Mount(NfsVersion::kV3, "/a");
  auto b = Mount(NfsVersion::kV3, "/b");
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->WriteFile("/f", "file of a"), 0);
  ASSERT_EQ(b->WriteFile("/g", "file of b"), 0);
  FileHandle fh;
  ASSERT_EQ(HandleOf(*a, "/f", &fh), 0);
  ASSERT_GE(fh.size(), kFhFsal + KVFS_HANDLE_SIZE);
  ASSERT_EQ(fh[kFhFsalLen], KVFS_HANDLE_SIZE);
  ASSERT_EQ(fh[kFhExportId] << 8 | fh[kFhExportId + 1], 1);
  uint64_t fileid = 0;
  ASSERT_EQ(Getattr(*a, fh, &fileid), kNfs3Ok);

  // The same handle routed to the other exports (same database, other
  // subtree; other database; same database's root): another export's.
  for (int other : {2, 3, 4}) {
    FileHandle forged = fh;
    SetExportId(&forged, other);
    EXPECT_EQ(Getattr(*a, forged), kNfs3ErrStale) << "export " << other;
  }

  // Corrupted FSAL parts are malformed.
  for (size_t i = kFhFsal; i < kFhFsal + KVFS_HANDLE_SIZE; i += 5) {
    FileHandle bad = fh;
    bad[i] ^= 0x20;
    EXPECT_EQ(Getattr(*a, bad), kNfs3ErrBadHandle) << "byte " << i;
  }

  // A well-formed handle of export b naming an object outside b's subtree
  // (as a client could forge it) is stale; one inside works.
  NfsStat root_b, g;
  ASSERT_EQ(b->Stat("/", &root_b), 0);
  ASSERT_EQ(b->Stat("/g", &g), 0);
  std::string canonical = std::filesystem::canonical(db_x_).string();
  uint64_t identity_b = kvfs_export_identity(canonical.c_str(), root_b.nfs_ino);
  FileHandle forged = fh;
  SetExportId(&forged, 2);
  kvfs_handle_encode(identity_b, fileid, &forged[kFhFsal]);
  EXPECT_EQ(Getattr(*b, forged), kNfs3ErrStale);
  kvfs_handle_encode(identity_b, g.nfs_ino, &forged[kFhFsal]);
  uint64_t got = 0;
  EXPECT_EQ(Getattr(*b, forged, &got), kNfs3Ok);
  EXPECT_EQ(got, g.nfs_ino);
}

// READDIR cookies stay valid while the directory changes and across a
// restart: paging from any cookie never skips or repeats a surviving entry.
// (Ganesha's cookie verifier is off: it would reject every cookie after a
// change of the directory, while KVFS cookies stay meaningful.)
TEST(KvfsServer, ReaddirCookiesSurviveChangesAndRestarts) {
  TempDir dir;
  KvfsExport e;
  e.db_path = dir.path() + "/db";
  e.export_extra = "UseCookieVerifier = false;";
  GaneshaServer server(KvfsServerOptions({e}));
  ASSERT_NO_FATAL_FAILURE(StartOrDie(server));
  auto c = Mount(NfsVersion::kV3, "/kvfs");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->Mkdir("/d"), 0);
  std::set<std::string> initial;
  for (int i = 0; i < 600; i++) {
    std::string name = "n" + std::to_string(i);
    NfsFile f;
    ASSERT_EQ(c->Create("/d/" + name, O_WRONLY, 0644, &f), 0);
    initial.insert(name);
  }
  FileHandle dir_fh;
  ASSERT_EQ(HandleOf(*c, "/d", &dir_fh), 0);

  // Pages of at most 2 KiB until 200 entries are in.
  std::vector<RawDirEntry> seen;
  uint64_t cookie = 0, verifier = 0;
  bool eof = false;
  int status = -1, pages = 0;
  while (seen.size() < 200 && !eof) {
    std::vector<RawDirEntry> page;
    ASSERT_EQ(RawReaddir(*c, dir_fh, cookie, &verifier, 2048, &page, &eof, &status), 0);
    ASSERT_EQ(status, kNfs3Ok);
    ASSERT_FALSE(page.empty());
    cookie = page.back().cookie;
    for (auto& d : page) {
      if (d.name != "." && d.name != "..") seen.push_back(d);
    }
    pages++;
  }
  ASSERT_GT(pages, 2);
  ASSERT_FALSE(eof);
  std::set<std::string> seen_names;
  for (auto& d : seen) seen_names.insert(d.name);

  // Change the directory: remove 50 seen and 50 unseen entries, add 100.
  std::set<std::string> removed_unseen, removed;
  int removed_seen = 0;
  for (const std::string& name : initial) {
    bool was_seen = seen_names.count(name) != 0;
    if (was_seen && removed_seen < 50) {
      removed_seen++;
    } else if (!was_seen && removed_unseen.size() < 50) {
      removed_unseen.insert(name);
    } else {
      continue;
    }
    ASSERT_EQ(c->Unlink("/d/" + name), 0);
    removed.insert(name);
  }
  for (int i = 0; i < 100; i++) {
    NfsFile f;
    ASSERT_EQ(c->Create("/d/added" + std::to_string(i), O_WRONLY, 0644, &f), 0);
  }

  // Remember a cookie in the middle, then continue to the end.
  const uint64_t middle_cookie = seen[seen.size() / 2].cookie;
  while (!eof) {
    std::vector<RawDirEntry> page;
    ASSERT_EQ(RawReaddir(*c, dir_fh, cookie, &verifier, 2048, &page, &eof, &status), 0);
    ASSERT_EQ(status, kNfs3Ok);
    if (!page.empty()) cookie = page.back().cookie;
    for (auto& d : page) seen.push_back(d);
  }
  std::map<std::string, int> count;
  for (auto& d : seen) count[d.name]++;
  for (const std::string& name : initial) {
    if (removed_unseen.count(name) != 0) {
      EXPECT_EQ(count[name], 0) << name << " was removed before it was reached";
    } else {
      EXPECT_EQ(count[name], 1) << name;
    }
  }
  for (auto& [name, n] : count) EXPECT_LE(n, 1) << name << " listed twice";

  // From a saved cookie, the listing is the same before and after a restart.
  auto list_from = [&](uint64_t from) {
    std::vector<std::string> names;
    uint64_t ck = from, verf = 0;
    bool end = false;
    while (!end) {
      std::vector<RawDirEntry> page;
      int st = -1;
      EXPECT_EQ(RawReaddir(*c, dir_fh, ck, &verf, 4096, &page, &end, &st), 0);
      EXPECT_EQ(st, kNfs3Ok);
      if (st != kNfs3Ok || page.empty()) break;
      ck = page.back().cookie;
      for (auto& d : page) names.push_back(d.name);
    }
    return names;
  };
  std::vector<std::string> before = list_from(middle_cookie);
  ASSERT_TRUE(server.Restart().ok());
  std::vector<std::string> after = list_from(middle_cookie);
  EXPECT_EQ(before, after);
  EXPECT_GT(after.size(), 100u);
}

// The sample configuration's MDCACHE and EXPORT blocks (config/ganesha.conf)
// parse without a diagnostic and serve, with its paths moved to a temporary
// directory.
TEST(KvfsServer, SampleConfigurationServes) {
  std::string text =
      kvfs::testing::ReadFileContents(std::string(KVFS_SOURCE_DIR) + "/config/ganesha.conf");
  ASSERT_FALSE(text.empty());
  size_t begin = text.find("\nMDCACHE {");
  size_t end = text.find("\nLOG {");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  std::string blocks = text.substr(begin, end - begin);
  TempDir dir;
  for (size_t at; (at = blocks.find("/srv/kvfs")) != std::string::npos;) {
    blocks.replace(at, std::strlen("/srv/kvfs"), dir.path());
  }
  // The persistent store of the first export must exist; one tarball in it.
  ASSERT_EQ(::mkdir((dir.path() + "/trees").c_str(), 0755), 0);
  ingest_test::WriteTarball(dir.path() + "/trees/sample.tar",
                            {ingest_test::File("sample/hello", "hello\n")});

  GaneshaOptions opts = KvfsServerOptions({});
  opts.raw_exports = blocks;
  for (const char* path : {"/kvfs", "/projects", "/datasets"}) {
    opts.probes.push_back({NfsVersion::kV3, path});
    opts.probes.push_back({NfsVersion::kV4, path});
  }
  GaneshaServer server(opts);
  ASSERT_NO_FATAL_FAILURE(StartOrDie(server));
  EXPECT_EQ(server.ConfigDiagnostics(), "");

  auto projects = Mount(NfsVersion::kV3, "/projects");
  ASSERT_NE(projects, nullptr);
  e2e::NfsStatVfs st;
  ASSERT_EQ(projects->StatVfs("/", &st), 0);
  EXPECT_EQ(st.f_blocks * st.f_frsize, 100ull << 30);
  EXPECT_EQ(st.f_files, 10000000u);
  // The first export shows its persistent store, under the quota.
  auto whole = Mount(NfsVersion::kV4, "/kvfs");
  ASSERT_NE(whole, nullptr);
  std::vector<std::string> names;
  EXPECT_EQ(whole->ListDir("/", &names), 0);
  EXPECT_EQ(names, std::vector<std::string>{"sample"});
  std::string hello;
  EXPECT_EQ(whole->ReadFile("/sample/hello", &hello), 0);
  EXPECT_EQ(hello, "hello\n");
  ASSERT_EQ(whole->StatVfs("/", &st), 0);
  EXPECT_EQ(st.f_blocks * st.f_frsize, 512ull << 30);
}

// SIGHUP reloads the exports: a new capacity applies at once; a changed
// db_path is refused and the export keeps serving its database.
TEST(KvfsServer, ConfigReloadUpdatesCapacity) {
  TempDir dir;
  KvfsExport e;
  e.db_path = dir.path() + "/db";
  e.capacity_bytes = 1ull << 30;
  GaneshaServer server(KvfsServerOptions({e}));
  ASSERT_NO_FATAL_FAILURE(StartOrDie(server));
  auto c = Mount(NfsVersion::kV3, "/kvfs");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->WriteFile("/f", "data"), 0);
  e2e::NfsStatVfs st;
  ASSERT_EQ(c->StatVfs("/", &st), 0);
  EXPECT_EQ(st.f_blocks * st.f_frsize, 1ull << 30);

  auto rewrite = [&](const std::string& from, const std::string& to) {
    std::string text = kvfs::testing::ReadFileContents(server.config_path());
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    kvfs::testing::WriteFileContents(server.config_path(), text);
  };
  auto reload_and_wait = [&](const std::string& log_line) {
    size_t before = server.LogSinceStart().size();
    ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
    for (int i = 0; i < 500; i++) {
      if (server.LogSinceStart().find(log_line, before) != std::string::npos) return;
      usleep(10000);
    }
    FAIL() << "no \"" << log_line << "\" in the log after SIGHUP:\n" << server.LogTail();
  };

  rewrite("capacity_bytes = 1073741824", "capacity_bytes = 2147483648");
  ASSERT_NO_FATAL_FAILURE(reload_and_wait("capacity 2147483648 bytes"));
  ASSERT_EQ(c->StatVfs("/", &st), 0);
  EXPECT_EQ(st.f_blocks * st.f_frsize, 2ull << 30);

  rewrite(e.db_path, dir.path() + "/other");
  ASSERT_NO_FATAL_FAILURE(reload_and_wait("cannot change under a running export"));
  EXPECT_TRUE(server.running());
  std::string data;
  ASSERT_EQ(c->ReadFile("/f", &data), 0);
  EXPECT_EQ(data, "data");
}

// A broken FSAL block stops that export with a clear log line; the server
// and its other exports keep running.
TEST(KvfsServer, BadConfigurationStopsOnlyThatExport) {
  TempDir dir;
  std::string a_file = dir.path() + "/plain-file";
  std::ofstream(a_file) << "not a database";

  KvfsExport good;
  good.db_path = dir.path() + "/good";
  GaneshaOptions opts = KvfsServerOptions({good});
  opts.config_errors_fatal = false;
  struct Bad {
    int id;
    std::string path;
    std::string fsal;
    std::string log;  // expected in the log
  };
  const std::vector<Bad> bad = {
      {2, "/relative", "db_path = \"relative/db\";", "db_path \"relative/db\" must be an absolute"},
      {3, "/range", "db_path = \"" + dir.path() + "/range\"; capacity_bytes = 5;",
       "KVFS export /range: invalid FSAL parameters"},
      {4, "/notdb", "db_path = \"" + a_file + "\";", "cannot open database"},
      {5, "/nodb", "subtree = \"/x\";", "db_path is missing"},
      {6, "/subtree", "db_path = \"" + dir.path() + "/sub\"; subtree = \"x/y\";",
       "subtree \"x/y\" must start with '/'"},
      {7, "/cache", "db_path = \"" + dir.path() + "/cache\"; block_cache_size = 12;",
       "KVFS export /cache: invalid FSAL parameters"},
      {8, "/backend", "db_path = \"" + dir.path() + "/backend\"; kv_backend = \"nosuch\";",
       "unknown key/value backend 'nosuch'"},
      {9, "/kvopts", "db_path = \"" + dir.path() + "/kvopts\"; kv_options = \"cache\";",
       "key/value store option 'cache' is not name=value"},
      {10, "/kvopt", "db_path = \"" + dir.path() + "/kvopt\"; kv_options = \"typo=1\";",
       "unknown option 'typo'"},
      {11, "/nostore",
       "db_path = \"" + dir.path() + "/nostore\"; persistent_store = \"" + dir.path() +
           "/missing\";",
       "No such file or directory: persistent store " + dir.path() + "/missing"},
      {12, "/compress",
       "db_path = \"" + dir.path() + "/compress\"; persistent_store = \"" + dir.path() +
           "\"; cache_compression = \"rar\";",
       "unknown cache_compression 'rar'"},
      {13, "/quota", "db_path = \"" + dir.path() + "/quota\"; cache_retry_seconds = -1;",
       "KVFS export /quota: invalid FSAL parameters"},
      // Persistent stores (docs/stores.md).
      {14, "/s3set",
       "db_path = \"" + dir.path() + "/s3set\"; persistent_store = \"" + dir.path() +
           "\"; s3_region = \"eu-west-1\";",
       "setting s3_region applies to s3 stores, not to the posix store " + dir.path()},
      {15, "/s3addr",
       "db_path = \"" + dir.path() +
           "/s3addr\"; persistent_store = \"s3://kvfs-bucket/trees\"; "
           "s3_addressing = \"sideways\";",
       "s3_addressing 'sideways' is neither path nor virtual"},
      {16, "/gs", "db_path = \"" + dir.path() + "/gs\"; persistent_store = \"gs://bucket\";",
       "unknown persistent store 'gs'"},
      {17, "/bucket",
       "db_path = \"" + dir.path() + "/bucket\"; persistent_store = \"s3://Bad_Bucket\";",
       "bucket name 'Bad_Bucket' is not 3-63 lower-case letters"},
      // Coordination (docs/coordination.md): a lease length out of range.
      {18, "/lease",
       "db_path = \"" + dir.path() + "/lease\"; persistent_store = \"" + dir.path() +
           "\"; coordination = \"etcd://127.0.0.1:1/x\"; coordination_lease = 1;",
       "KVFS export /lease: cannot open database " + dir.path() + "/lease with persistent store " +
           dir.path() +
           ": Invalid argument: coordination lease of 1 s is out of range: 2 to 3600 seconds"},
  };
  for (const Bad& b : bad) {
    opts.raw_exports += "EXPORT {\n  Export_Id = " + std::to_string(b.id) + ";\n  Path = \"" +
                        b.path + "\";\n  Pseudo = \"" + b.path +
                        "\";\n  Access_Type = RW;\n  Squash = No_Root_Squash;\n"
                        "  FSAL { Name = KVFS; " +
                        b.fsal + " }\n}\n";
  }
  GaneshaServer server(opts);
  ASSERT_NO_FATAL_FAILURE(StartOrDie(server));

  auto c = Mount(NfsVersion::kV3, "/kvfs");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->WriteFile("/ok", "fine"), 0);
  std::string log = server.LogSinceStart();
  for (const Bad& b : bad) {
    NfsClient probe(NfsVersion::kV3);
    EXPECT_NE(probe.Mount(b.path), 0) << b.path << " should not be exported";
    EXPECT_NE(log.find(b.log), std::string::npos) << "no log line with: " << b.log;
  }
  EXPECT_NE(log.find("KVFS export /relative"), std::string::npos);
  EXPECT_TRUE(server.running());
  Status s = server.Stop();
  EXPECT_TRUE(s.ok()) << s.ToString();
}

}  // namespace
}  // namespace kvfs::fsal_test
