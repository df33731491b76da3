#include "tests/cache/other_server.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <thread>
#include <utility>

#include "tests/ingest/ingest_test_util.h"

namespace kvfs::cache_test {

Status OpenOtherServer(const std::string& dir, std::unique_ptr<ingest::PersistentStore> store,
                       std::shared_ptr<coord::Coordination> coordination,
                       std::unique_ptr<cache::TreeCache>* out) {
  cache::TreeCacheOptions o;
  o.refresh_seconds = 0;
  o.writeback_delay_seconds = 0;
  o.staging_dir = dir + "/staging";
  o.owner = "other server";
  o.coordination = std::move(coordination);
  std::error_code ec;
  std::filesystem::create_directories(o.staging_dir, ec);
  if (ec) return Status::IOError("create " + o.staging_dir + ": " + ec.message());
  std::unique_ptr<FileSystem> fs;
  Status s = ingest_test::OpenRocksFileSystem(dir + "/db", &fs);
  if (!s.ok()) return s;
  return cache::TreeCache::Open(std::move(fs), std::move(store), o, out);
}

void ExpectOneMkdirWinsEachName(cache::TreeCache* other,
                                const std::function<int(const std::string& path)>& nfs_mkdir,
                                int rounds) {
  for (int round = 0; round < rounds; ++round) {
    const std::string name = "race" + std::to_string(round);
    Status other_status;
    std::thread t([&] {
      Attributes a;
      other_status = other->Mkdir(kRootIno, name, NewObject{0755, 0, 0}, &a);
    });
    const int nfs_rc = nfs_mkdir("/" + name);
    t.join();
    EXPECT_NE(nfs_rc == 0, other_status.ok())
        << name << ": " << nfs_rc << " / " << other_status.ToString();
    if (nfs_rc != 0) {
      EXPECT_EQ(nfs_rc, -EEXIST) << name;
    }
    if (!other_status.ok()) {
      EXPECT_EQ(other_status.posix_errno(), EEXIST) << name;
    }
  }
}

}  // namespace kvfs::cache_test
