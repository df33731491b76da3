// The control socket: a ControlServer in this process serves a FileSystem
// while requests arrive from RunRequest and from the kvfs-ingest,
// kvfs-export and kvfs-evict commands; invalidation listeners hear about
// every change; bad clients and bad frames are answered without harm; with
// no server the commands open the store themselves.
#include "ingest/control_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <set>

#include "common/fs/schema.h"
#include "common/unique_fd.h"
#include "ingest/control_client.h"
#include "ingest/ingest.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"
#include "tests/store/test_store.h"

namespace kvfs::ingest {
namespace {

using ingest_test::File;
using ingest_test::OpenRocksFileSystem;
using ingest_test::RunCommand;
using ingest_test::WriteTarball;
using kvfs::testing::FsckProblems;
using kvfs::testing::TempDir;

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.path() + "/db";
    ASSERT_OK(OpenRocksFileSystem(db_, &fs_));
    StartServer();
    WriteTarball(dir_.path() + "/t.tar", {File("t/a", "alpha"), File("t/b", "beta")});
  }

  void StartServer(int request_timeout_seconds = 30) {
    ControlServerOptions o;
    o.request_timeout_seconds = request_timeout_seconds;
    o.socket_path = ControlSocketPath(db_);
    o.service.staging_dir = StagingDirFor(db_);
    ASSERT_OK(ControlServer::Start(fs_.get(), o, &server_));
    server_->AddInvalidateListener(this, [this](Ino ino) {
      std::lock_guard<std::mutex> l(mu_);
      invalidated_.push_back(ino);
    });
  }

  std::vector<Ino> TakeInvalidated() {
    std::lock_guard<std::mutex> l(mu_);
    return std::exchange(invalidated_, {});
  }

  // A connection to the server's socket, for frames the client library
  // would not send (or answers it would read).
  UniqueFd ConnectRaw() {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", ControlSocketPath(db_).c_str());
    EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }

  TempDir dir_{"kvfs-control"};
  std::string db_;
  std::unique_ptr<FileSystem> fs_;
  std::unique_ptr<ControlServer> server_;
  std::mutex mu_;
  std::vector<Ino> invalidated_;
};

TEST_F(ControlTest, RequestsGoThroughTheServer) {
  Message resp;
  bool via_server = false;
  ASSERT_OK(RunRequest(KVStoreAt(db_), {{"op", "ping"}}, &resp, &via_server));
  EXPECT_TRUE(via_server);
  ASSERT_OK(ResponseStatus(resp));

  Message req{{"op", "ingest"}, {"tarball", dir_.path() + "/t.tar"}};
  ASSERT_OK(RunRequest(KVStoreAt(db_), req, &resp, &via_server));
  ASSERT_OK(ResponseStatus(resp));
  EXPECT_EQ(resp["name"], "t");
  EXPECT_EQ(resp["files"], "2");
  EXPECT_EQ(TakeInvalidated(), std::vector<Ino>{kRootIno});
  // The server's file system (what NFS clients use) sees it at once.
  Attributes top, a;
  ASSERT_OK(fs_->Lookup(kRootIno, "t", &top));
  ASSERT_OK(fs_->Lookup(top.ino, "a", &a));
  EXPECT_EQ(a.size, 5u);

  // Errors travel back with their errno.
  ASSERT_OK(RunRequest(KVStoreAt(db_), req, &resp, &via_server));
  EXPECT_EQ(ResponseStatus(resp).posix_errno(), EEXIST);
  EXPECT_TRUE(TakeInvalidated().empty());
  ASSERT_OK(RunRequest(KVStoreAt(db_), {{"op", "frobnicate"}}, &resp, &via_server));
  EXPECT_EQ(ResponseStatus(resp).posix_errno(), EINVAL);
  req["tarball"] = "relative/t.tar";
  ASSERT_OK(RunRequest(KVStoreAt(db_), req, &resp, &via_server));
  EXPECT_EQ(ResponseStatus(resp).posix_errno(), EINVAL);
  EXPECT_EQ(server_->requests(), 5u);
}

// The commands with a persistent store, on each plugin
// (tests/store/test_store.h: a directory, a bucket on radosgw).
class ControlStoreTest : public ControlTest,
                         public ::testing::WithParamInterface<store_test::StoreKind> {
 protected:
  void SetUp() override {
    ControlTest::SetUp();
    Status s = store_test::TestStore::Create(GetParam(), &t_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::unique_ptr<store_test::TestStore> t_;
};

TEST_P(ControlStoreTest, TheCommandsUseTheServer) {
  std::string out;
  const std::string db = " --db " + db_ + " ";
  const std::string store = " " + t_->CommandOptions() + " ";
  ASSERT_EQ(RunCommand(KVFS_INGEST_BIN + db + dir_.path() + "/t.tar", &out), 0) << out;
  EXPECT_NE(out.find("ingested"), std::string::npos) << out;
  EXPECT_NE(out.find("[via server]"), std::string::npos) << out;
  EXPECT_EQ(TakeInvalidated(), std::vector<Ino>{kRootIno});
  Attributes top;
  ASSERT_OK(fs_->Lookup(kRootIno, "t", &top));

  EXPECT_EQ(RunCommand(KVFS_INGEST_BIN + db + dir_.path() + "/t.tar", &out), 2) << out;
  EXPECT_NE(out.find("exists"), std::string::npos) << out;

  ASSERT_EQ(RunCommand(KVFS_EXPORT_BIN + db + store + "--compression zstd t", &out), 0) << out;
  EXPECT_NE(out.find("[via server]"), std::string::npos) << out;
  EXPECT_TRUE(t_->Exists("t.tar.zst")) << out;

  // Replace from the store (claiming the range there), by tree name.
  WriteTarball(dir_.path() + "/new.tar.zst", {File("t/a", "alpha, again")},
               ingest_test::TarFormat::kPax, Compression::kZstd);
  ASSERT_OK(t_->PutFile("t.tar.zst", dir_.path() + "/new.tar.zst"));
  ASSERT_EQ(RunCommand(KVFS_INGEST_BIN + db + "--replace" + store + "t", &out), 0) << out;
  EXPECT_EQ(TakeInvalidated(), (std::vector<Ino>{kRootIno, top.ino}));
  Attributes new_top, a;
  ASSERT_OK(fs_->Lookup(kRootIno, "t", &new_top));
  ASSERT_OK(fs_->Lookup(new_top.ino, "a", &a));
  EXPECT_EQ(a.size, 12u);
  EXPECT_TRUE(t_->Exists(
      ".kvfs/ranges/" + std::string(10 - std::to_string(schema::RangeOf(new_top.ino)).size(), '0') +
      std::to_string(schema::RangeOf(new_top.ino))));
  // A store the server cannot open: its error comes back.
  EXPECT_EQ(RunCommand(KVFS_EXPORT_BIN + db + store + "--s3-region '' t", &out), 2) << out;
  EXPECT_NE(out.find(t_->is_s3() ? "s3_region is empty" : "applies to s3 stores"),
            std::string::npos)
      << out;

  ASSERT_EQ(RunCommand(KVFS_EVICT_BIN + db + "t", &out), 0) << out;
  EXPECT_NE(out.find("evicted /t"), std::string::npos) << out;
  EXPECT_EQ(TakeInvalidated(), (std::vector<Ino>{kRootIno, new_top.ino}));
  EXPECT_TRUE(fs_->Lookup(kRootIno, "t", &top).IsNotFound());
  EXPECT_EQ(FsckProblems(fs_.get(), DefaultNameHasher()), std::vector<std::string>{});

  // Without a server the commands open the persistent store themselves.
  server_.reset();
  fs_.reset();
  ASSERT_EQ(RunCommand(KVFS_INGEST_BIN + db + store + "t", &out), 0) << out;
  EXPECT_EQ(out.find("[via server]"), std::string::npos) << out;
  ASSERT_EQ(RunCommand(KVFS_EXPORT_BIN + db + store + "--compression gzip t", &out), 0) << out;
  EXPECT_TRUE(t_->Exists("t.tar.gz")) << out;
  EXPECT_FALSE(t_->Exists("t.tar.zst")) << out;
}

INSTANTIATE_TEST_SUITE_P(Stores, ControlStoreTest,
                         ::testing::ValuesIn(store_test::PluginStoreKinds()),
                         store_test::StoreKindName());

TEST_F(ControlTest, OnlyTheServersUserOrRootMayAsk) {
  // The socket is private; even opened up, the server checks the peer.
  struct stat st;
  ASSERT_EQ(stat(ControlSocketPath(db_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  for (bool opened : {false, true}) {
    if (opened) {
      ASSERT_EQ(chmod(dir_.path().c_str(), 0711), 0);
      ASSERT_EQ(chmod(db_.c_str(), 0711), 0);
      ASSERT_EQ(chmod(ControlSocketPath(db_).c_str(), 0666), 0);
    }
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
      Message resp;
      Status s = CallControlServer(ControlSocketPath(db_), {{"op", "ping"}}, &resp);
      if (!opened) _exit(s.posix_errno() == EACCES ? 0 : 11);
      if (!s.ok()) _exit(12);
      _exit(ResponseStatus(resp).posix_errno() == EPERM ? 0 : 13);
    }
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << opened << " " << status;
  }
}

TEST_F(ControlTest, BadFramesAreSurvived) {
  {
    // A frame that is not a message: an error reply.
    UniqueFd fd = ConnectRaw();
    ASSERT_OK(WriteFrame(fd.get(), "garbage"));
    std::string payload;
    ASSERT_OK(ReadFrame(fd.get(), &payload));
    Message resp;
    ASSERT_OK(DecodeMessage(payload, &resp));
    EXPECT_EQ(ResponseStatus(resp).posix_errno(), EINVAL);
  }
  {
    // A frame announcing too much, and a client that hangs up early.
    UniqueFd fd = ConnectRaw();
    const char huge[4] = {'\xff', '\xff', '\xff', '\x7f'};
    ASSERT_EQ(write(fd.get(), huge, 4), 4);
    UniqueFd gone = ConnectRaw();
  }
  Message resp;
  ASSERT_OK(CallControlServer(ControlSocketPath(db_), {{"op", "ping"}}, &resp));
  ASSERT_OK(ResponseStatus(resp));
}

// A response larger than a frame is not cut off: the client gets a clear
// error, and the server goes on answering.
TEST_F(ControlTest, AResponseLargerThanAFrameIsAnError) {
  server_->SetRequestHandler([](const Message& request, Message* response) {
    if (request.at("op") != "huge") return false;
    (*response)["data"] = std::string(kMaxFrame, 'x');
    return true;
  });
  Message resp;
  ASSERT_OK(CallControlServer(ControlSocketPath(db_), {{"op", "huge"}}, &resp));
  const Status s = ResponseStatus(resp);
  EXPECT_EQ(s.posix_errno(), EMSGSIZE) << s.ToString();
  EXPECT_NE(s.message().find("larger than a control frame"), std::string::npos) << s.ToString();
  ASSERT_OK(CallControlServer(ControlSocketPath(db_), {{"op", "ping"}}, &resp));
  ASSERT_OK(ResponseStatus(resp));
}

// A client that asks and then stops reading its (large) answer holds up the
// requests queued behind it for the request timeout, not forever.
TEST_F(ControlTest, AClientThatStopsReadingHoldsUpOthersOnlyForTheTimeout) {
  server_.reset();
  StartServer(/*request_timeout_seconds=*/2);
  server_->SetRequestHandler([](const Message& request, Message* response) {
    if (request.at("op") == "large") (*response)["data"] = std::string(kMaxFrame / 2, 'x');
    (*response)["errno"] = "0";
    return request.at("op") == "large" || request.at("op") == "small";
  });
  // Far more than the socket buffers hold, never read.
  UniqueFd stuck = ConnectRaw();
  ASSERT_FALSE(::testing::Test::HasFailure());
  ASSERT_OK(WriteFrame(stuck.get(), EncodeMessage({{"op", "large"}})));

  // The next request runs after it: answered once the stuck answer is given
  // up, within the timeout.
  auto answered = std::async(std::launch::async, [&] {
    Message resp;
    Status s = CallControlServer(ControlSocketPath(db_), {{"op", "small"}}, &resp);
    return s.ok() ? ResponseStatus(resp) : s;
  });
  const bool in_time = answered.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  stuck.Reset(-1);  // lets the server go on if it did not (the test failed)
  EXPECT_TRUE(in_time) << "a client that does not read blocked the next request";
  EXPECT_OK(answered.get());
}

TEST_F(ControlTest, WithoutAServerTheStoreIsOpenedDirectly) {
  // The server's process holds the database: without the socket the
  // commands cannot open it, and say why.
  server_.reset();
  EXPECT_FALSE(std::filesystem::exists(ControlSocketPath(db_)));
  Message resp;
  bool via_server = true;
  Status s = RunRequest(KVStoreAt(db_), {{"op", "ping"}}, &resp, &via_server);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("control.sock"), std::string::npos) << s.ToString();

  // Once it is closed, they open it themselves, even with a stale socket
  // file left behind.
  fs_.reset();
  {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM, 0));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", ControlSocketPath(db_).c_str());
    ASSERT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  std::string out;
  ASSERT_EQ(RunCommand(std::string(KVFS_INGEST_BIN) + " --db " + db_ + " " + dir_.path() + "/t.tar",
                       &out),
            0)
      << out;
  EXPECT_EQ(out.find("[via server]"), std::string::npos) << out;
  ASSERT_EQ(RunCommand(std::string(KVFS_EVICT_BIN) + " --db " + db_ + " t", &out), 0) << out;
  ASSERT_OK(OpenRocksFileSystem(db_, &fs_));
  Attributes a;
  EXPECT_TRUE(fs_->Lookup(kRootIno, "t", &a).IsNotFound());
  // A new server replaces the stale socket.
  StartServer();
  ASSERT_OK(RunRequest(KVStoreAt(db_), {{"op", "ping"}}, &resp, &via_server));
  EXPECT_TRUE(via_server);
}

}  // namespace
}  // namespace kvfs::ingest
