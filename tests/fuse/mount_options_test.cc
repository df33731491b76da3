// kvfs-fuse's command line (fuse/mount_options.h): every option and its
// default, and each mistake a user can make, with its message.
#include "fuse/mount_options.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/fs/test_util.h"

namespace kvfs::fusefs {
namespace {

using kvfs::testing::TempDir;

Status Parse(std::vector<std::string> args, CommandLine* out) {
  args.insert(args.begin(), "kvfs-fuse");
  return ParseCommandLine(args, out);
}

// The message of a parse that must fail (EINVAL).
std::string ParseError(std::vector<std::string> args) {
  CommandLine cmd;
  Status s = Parse(std::move(args), &cmd);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.posix_errno(), EINVAL) << s.ToString();
  return s.message();
}

TEST(MountOptions, Defaults) {
  CommandLine cmd;
  ASSERT_OK(Parse({"--db", "/srv/db", "/mnt"}, &cmd));
  EXPECT_EQ(cmd.store.db_path, "/srv/db");
  EXPECT_EQ(cmd.mountpoint, "/mnt");
  EXPECT_EQ(cmd.store.persistent_store, "");
  EXPECT_EQ(cmd.store.subtree, "/");
  EXPECT_EQ(cmd.store.capacity_bytes, 0u);
  EXPECT_EQ(cmd.store.cache_refresh_seconds, 60);
  EXPECT_EQ(cmd.store.cache_writeback_delay_seconds, 30);
  EXPECT_EQ(cmd.store.cache_retry_seconds, 10);
  EXPECT_EQ(cmd.store.coordination_lease_seconds, 10);
  EXPECT_FALSE(cmd.foreground);
  EXPECT_FALSE(cmd.debug);
  const FuseSettings& f = cmd.fuse;
  EXPECT_EQ(f.fsname, "");
  EXPECT_EQ(f.subtype, "kvfs");
  EXPECT_FALSE(f.allow_other);
  EXPECT_FALSE(f.read_only);
  EXPECT_FALSE(f.dev);
  EXPECT_FALSE(f.suid);
  EXPECT_EQ(f.entry_timeout, 1.0);
  EXPECT_EQ(f.attr_timeout, 1.0);
  EXPECT_EQ(f.negative_timeout, 0.0);
  EXPECT_FALSE(f.direct_io);
  EXPECT_EQ(f.cache, CacheMode::kNone);
  EXPECT_EQ(f.max_read, 0u);
  EXPECT_EQ(f.max_write, 1u << 20);
  EXPECT_EQ(f.readdirplus, ReaddirPlus::kAuto);
  EXPECT_FALSE(f.writeback_cache);
  EXPECT_FALSE(f.single_thread);
  EXPECT_EQ(f.max_threads, 10u);
  EXPECT_FALSE(f.clone_fd);
  EXPECT_EQ(KernelMountOptions(cmd), "default_permissions,fsname=/srv/db,subtype=kvfs");
}

TEST(MountOptions, EveryOption) {
  CommandLine cmd;
  ASSERT_OK(Parse({"-f",
                   "--db=/srv/db",
                   "--store",
                   "/srv/trees",
                   "--subtree",
                   "/a/b",
                   "--kv-backend",
                   "lmdb",
                   "--kv-options",
                   "map_size=1G,read_ahead=false",
                   "--capacity-bytes",
                   "2T",
                   "--capacity-inodes",
                   "1000000",
                   "--cache-quota-bytes",
                   "100G",
                   "--cache-quota-inodes=5000000",
                   "--cache-refresh-seconds",
                   "0",
                   "--cache-writeback-delay-seconds",
                   "86400",
                   "--cache-retry-seconds",
                   "5",
                   "--cache-compression",
                   "zstd",
                   "--coordination",
                   "etcd://e1:2379,e2:2379/p",
                   "--coordination-lease",
                   "3",
                   "--log",
                   "/var/log/kvfs-fuse.log",
                   "-s",
                   "-o",
                   "fsname=trees,subtype=kvfs2,allow_other,default_permissions,ro,dev,suid",
                   "-oentry_timeout=0.5,attr_timeout=60,negative_timeout=2",
                   "-o",
                   "direct_io,kernel_cache,max_read=128K,max_write=256K,readdirplus=no",
                   "-o",
                   "writeback_cache,max_threads=4,clone_fd",
                   "/mnt/kvfs"},
                  &cmd));
  EXPECT_TRUE(cmd.foreground);
  EXPECT_EQ(cmd.store.db_path, "/srv/db");
  EXPECT_EQ(cmd.store.persistent_store, "/srv/trees");
  EXPECT_EQ(cmd.store.subtree, "/a/b");
  EXPECT_EQ(cmd.store.kv_backend, "lmdb");
  EXPECT_EQ(cmd.store.kv_options, "map_size=1G,read_ahead=false");
  EXPECT_EQ(cmd.store.capacity_bytes, 2ull << 40);
  EXPECT_EQ(cmd.store.capacity_inodes, 1000000u);
  EXPECT_EQ(cmd.store.cache_quota_bytes, 100ull << 30);
  EXPECT_EQ(cmd.store.cache_quota_inodes, 5000000u);
  EXPECT_EQ(cmd.store.cache_refresh_seconds, 0);
  EXPECT_EQ(cmd.store.cache_writeback_delay_seconds, 86400);
  EXPECT_EQ(cmd.store.cache_retry_seconds, 5);
  EXPECT_EQ(cmd.store.cache_compression, "zstd");
  EXPECT_EQ(cmd.store.coordination, "etcd://e1:2379,e2:2379/p");
  EXPECT_EQ(cmd.store.coordination_lease_seconds, 3);
  EXPECT_EQ(cmd.log_file, "/var/log/kvfs-fuse.log");
  const FuseSettings& f = cmd.fuse;
  EXPECT_TRUE(f.single_thread);
  EXPECT_EQ(f.fsname, "trees");
  EXPECT_EQ(f.subtype, "kvfs2");
  EXPECT_TRUE(f.allow_other);
  EXPECT_TRUE(f.read_only);
  EXPECT_TRUE(f.dev);
  EXPECT_TRUE(f.suid);
  EXPECT_EQ(f.entry_timeout, 0.5);
  EXPECT_EQ(f.attr_timeout, 60.0);
  EXPECT_EQ(f.negative_timeout, 2.0);
  EXPECT_TRUE(f.direct_io);
  EXPECT_EQ(f.cache, CacheMode::kKernel);
  EXPECT_EQ(f.max_read, 128u << 10);
  EXPECT_EQ(f.max_write, 256u << 10);
  EXPECT_EQ(f.readdirplus, ReaddirPlus::kNo);
  EXPECT_TRUE(f.writeback_cache);
  EXPECT_EQ(f.max_threads, 4u);
  EXPECT_TRUE(f.clone_fd);
  EXPECT_EQ(cmd.mountpoint, "/mnt/kvfs");
  EXPECT_EQ(KernelMountOptions(cmd),
            "default_permissions,fsname=trees,subtype=kvfs2,allow_other,ro,dev,suid,"
            "max_read=131072");
}

TEST(MountOptions, LaterOptionsWinAndFlagsToggle) {
  CommandLine cmd;
  ASSERT_OK(Parse({"--db", "/d", "-o", "ro,dev,suid,auto_cache,writeback_cache,readdirplus=yes",
                   "/m", "-o", "rw,nodev,nosuid,no_writeback_cache"},
                  &cmd));
  EXPECT_FALSE(cmd.fuse.read_only);
  EXPECT_FALSE(cmd.fuse.dev);
  EXPECT_FALSE(cmd.fuse.suid);
  EXPECT_FALSE(cmd.fuse.writeback_cache);
  EXPECT_EQ(cmd.fuse.cache, CacheMode::kAuto);
  EXPECT_EQ(cmd.fuse.readdirplus, ReaddirPlus::kYes);
  // -d implies -f.
  ASSERT_OK(Parse({"--db", "/d", "-d", "/m"}, &cmd));
  EXPECT_TRUE(cmd.debug);
  EXPECT_TRUE(cmd.foreground);
}

TEST(MountOptions, HelpAndVersionNeedNothingElse) {
  CommandLine cmd;
  ASSERT_OK(Parse({"--help"}, &cmd));
  EXPECT_TRUE(cmd.help);
  ASSERT_OK(Parse({"-V"}, &cmd));
  EXPECT_TRUE(cmd.version);
  // The help text names every -o option the parser knows.
  const std::string help = UsageText();
  for (const char* o : {"fsname=",
                        "subtype=",
                        "allow_other",
                        "default_permissions",
                        "ro, rw",
                        "dev, nodev",
                        "suid, nosuid",
                        "entry_timeout=",
                        "attr_timeout=",
                        "negative_timeout=",
                        "direct_io",
                        "kernel_cache",
                        "auto_cache",
                        "max_read=",
                        "max_write=",
                        "readdirplus=",
                        "writeback_cache",
                        "max_threads=",
                        "clone_fd",
                        "--db",
                        "--store",
                        "--subtree",
                        "--kv-backend",
                        "--kv-options",
                        "--capacity-bytes",
                        "--capacity-inodes",
                        "--cache-quota-bytes",
                        "--cache-quota-inodes",
                        "--cache-refresh-seconds",
                        "--cache-writeback-delay-seconds",
                        "--cache-retry-seconds",
                        "--cache-compression",
                        "--coordination",
                        "--coordination-lease",
                        "--log",
                        "--foreground",
                        "--debug"}) {
    EXPECT_NE(help.find(o), std::string::npos) << o;
  }
}

TEST(MountOptions, CommasInThePathAreEscapedForTheKernel) {
  CommandLine cmd;
  ASSERT_OK(Parse({"--db", "/srv/a,b\\c", "/m"}, &cmd));
  EXPECT_EQ(KernelMountOptions(cmd), "default_permissions,fsname=/srv/a\\,b\\\\c,subtype=kvfs");
}

TEST(MountOptions, MistakesSayWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string message;  // a part of the expected message
  };
  const std::vector<Case> cases = {
      {{"/m"}, "--db DIR is required"},
      {{"--db", "/d"}, "no mountpoint given"},
      {{"--db", "/d", "/m", "/n"}, "one mountpoint expected, got '/m' and '/n'"},
      {{"--db"}, "--db needs a value"},
      {{"--db", "/d", "--frobnicate", "1", "/m"}, "unknown option '--frobnicate'"},
      {{"--db", "/d", "-x", "/m"}, "unknown option '-x'"},
      {{"--db", "/d", "-o"}, "-o needs a list of options"},
      {{"--db", "/d", "-o", "frob", "/m"}, "unknown mount option 'frob' (-o knows: "},
      {{"--db", "/d", "-o", "allow_other=1", "/m"}, "-o allow_other takes no value"},
      {{"--db", "/d", "-o", "max_write", "/m"}, "-o max_write needs a value"},
      {{"--db", "/d", "-o", "max_write=2M", "/m"}, "max_write='2M' is not a number in [4096, "},
      {{"--db", "/d", "-o", "max_read=1", "/m"}, "max_read='1' is not a number in [4096, "},
      {{"--db", "/d", "-o", "max_threads=0", "/m"}, "max_threads='0' is not a number in [1, "},
      {{"--db", "/d", "-o", "entry_timeout=-1", "/m"}, "entry_timeout='-1' is not a number"},
      {{"--db", "/d", "-o", "attr_timeout=soon", "/m"}, "attr_timeout='soon' is not a number"},
      {{"--db", "/d", "-o", "negative_timeout=nan", "/m"}, "negative_timeout='nan' is not"},
      {{"--db", "/d", "-o", "readdirplus=maybe", "/m"}, "readdirplus='maybe' is not yes, no"},
      {{"--db", "/d", "-o", "fsname=", "/m"}, "fsname is empty"},
      {{"--db", "/d", "--subtree", "a/b", "/m"}, "--subtree 'a/b' is not an absolute path"},
      {{"--db", "/d", "--capacity-bytes", "12", "/m"}, "--capacity-bytes='12' is not a number"},
      {{"--db", "/d", "--capacity-bytes", "lots", "/m"}, "--capacity-bytes='lots' is not"},
      {{"--db", "/d", "--store", "/s", "--cache-retry-seconds", "86401", "/m"},
       "--cache-retry-seconds='86401' is not a number in [0, 86400]"},
      {{"--db", "/d", "--store", "/s", "--cache-compression", "rar", "/m"},
       "--cache-compression 'rar' is not none, gzip, zstd or xz"},
      {{"--db", "/d", "--cache-quota-bytes", "1G", "/m"},
       "--cache-*, --coordination* and --s3-* settings need --store"},
      {{"--db", "/d", "--s3-region", "eu-west-1", "/m"},
       "--cache-*, --coordination* and --s3-* settings need --store"},
      {{"--db", "/d", "--coordination", "etcd://e:2379/p", "/m"},
       "--cache-*, --coordination* and --s3-* settings need --store"},
      {{"--db", "/d", "--coordination-lease", "5", "/m"},
       "--cache-*, --coordination* and --s3-* settings need --store"},
      {{"--db", "/d", "--store", "/s", "--coordination-lease", "1", "/m"},
       "--coordination-lease='1' is not a number in [2, 3600]"},
      {{"--db", "/d", "--store", "/s", "--coordination-lease", "3601", "/m"},
       "--coordination-lease='3601' is not a number in [2, 3600]"},
      {{"--db", "/d", "--store", "s3://b", "--s3-colour", "red", "/m"},
       "unknown option '--s3-colour'"},
  };
  for (const Case& c : cases) {
    std::string joined;
    for (const std::string& a : c.args) joined += a + " ";
    EXPECT_NE(ParseError(c.args).find(c.message), std::string::npos)
        << "args: " << joined << "\nmessage: " << ParseError(c.args);
  }
}

TEST(MountOptions, RelativePathsBecomeAbsolute) {
  CommandLine cmd;
  ASSERT_OK(Parse({"--db", "data/../db", "--store", "trees", "--log", "l", "mnt"}, &cmd));
  MakePathsAbsolute(&cmd);
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  const std::string here = std::string(cwd) == "/" ? "" : cwd;
  EXPECT_EQ(cmd.store.db_path, here + "/db");
  EXPECT_EQ(cmd.store.persistent_store, here + "/trees");
  EXPECT_EQ(cmd.log_file, here + "/l");
  EXPECT_EQ(cmd.mountpoint, here + "/mnt");
  // A store URL is left alone.
  ASSERT_OK(Parse({"--db", "/d", "--store", "s3://bucket/trees", "/m"}, &cmd));
  MakePathsAbsolute(&cmd);
  EXPECT_EQ(cmd.store.persistent_store, "s3://bucket/trees");
}

// The persistent store's settings are the commands' --s3-* options, handed
// to the store plugin as its settings (which checks their values).
TEST(MountOptions, StoreSettingsReachTheStore) {
  CommandLine cmd;
  ASSERT_OK(Parse({"--db", "/d", "--store", "s3://bucket/trees", "--s3-endpoint",
                   "http://127.0.0.1:7480", "--s3-addressing=path", "--s3-retries", "3", "/m"},
                  &cmd));
  const std::map<std::string, std::string> want = {
      {"s3_endpoint", "http://127.0.0.1:7480"}, {"s3_addressing", "path"}, {"s3_retries", "3"}};
  EXPECT_EQ(cmd.store.store_options, want);
}

TEST(MountOptions, BadMountpoints) {
  TempDir dir("kvfs-fuse-opts");
  EXPECT_OK(CheckMountpoint(dir.path()));

  Status s = CheckMountpoint(dir.path() + "/missing");
  EXPECT_EQ(s.posix_errno(), ENOENT);
  EXPECT_EQ(s.message(), "mountpoint " + dir.path() + "/missing: No such file or directory");

  const std::string file = dir.path() + "/file";
  std::ofstream(file) << "x";
  s = CheckMountpoint(file);
  EXPECT_EQ(s.posix_errno(), ENOTDIR);
  EXPECT_EQ(s.message(), "mountpoint " + file + " is not a directory");

  s = CheckMountpoint(file + "/below");
  EXPECT_EQ(s.posix_errno(), ENOTDIR);
  EXPECT_NE(s.message().find("mountpoint " + file + "/below"), std::string::npos);
}

TEST(MountOptions, MissingFuseDeviceSaysWhatToDo) {
  TempDir dir("kvfs-fuse-dev");
  Status s = CheckFuseDevice(dir.path() + "/fuse");
  EXPECT_EQ(s.posix_errno(), ENOENT);
  EXPECT_NE(s.message().find("cannot open the FUSE device " + dir.path() + "/fuse"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("modprobe fuse"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace kvfs::fusefs
