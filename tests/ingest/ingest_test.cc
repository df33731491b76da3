// Ingest and export of tarballs: round trips over tar dialects and
// compressions, the path rule, a 100K-entry directory, hash-bucket
// collisions, every kind of bad input (which must change nothing),
// re-ingest and replacement, eviction.
#include "ingest/ingest.h"
#include "store/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/fs/fsck.h"
#include "common/fs/schema.h"
#include "tests/file_contents.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"
#include "tests/store/test_store.h"

namespace kvfs::ingest {
namespace {

using ingest_test::CompareManifests;
using ingest_test::Dir;
using ingest_test::DumpStore;
using ingest_test::File;
using ingest_test::HardLink;
using ingest_test::KeysInRange;
using ingest_test::Manifest;
using ingest_test::ManifestOptions;
using ingest_test::NewMemoryFileSystem;
using ingest_test::OpenRocksFileSystem;
using ingest_test::RandomBytes;
using ingest_test::ReadTarballManifest;
using ingest_test::ReadTreeManifest;
using ingest_test::Spec;
using ingest_test::Symlink;
using ingest_test::TarFormat;
using ingest_test::WriteTarball;
using kvfs::testing::FirstByteHasher;
using kvfs::testing::FsckProblems;
using kvfs::testing::ReadFileContents;
using kvfs::testing::TempDir;
using kvfs::testing::WriteFileContents;
using store_test::PluginStoreKinds;
using store_test::StoreKind;
using store_test::StoreKindName;
using store_test::TestStore;

using Strings = std::vector<std::string>;

// A tree with a bit of everything, under top name `top`. Long names and
// paths only where the format can hold them.
std::vector<Spec> RichTree(const std::string& top, TarFormat format) {
  std::vector<Spec> m;
  m.push_back(Dir(top + "/", 0750));
  m.back().uid = 0;
  m.back().gid = 0;
  m.push_back(Dir(top + "/src"));
  for (uint64_t size : {0, 1, 100, 4095, 4096, 4097, 65535, 65536, 65537, 300000}) {
    m.push_back(File(top + "/src/file-" + std::to_string(size), RandomBytes(size, size)));
  }
  m.push_back(File(top + "/src/setuid", "#!/bin/sh\n", 04755));
  m.push_back(File(top + "/src/private", "secret", 0600));
  m.back().uid = 4242;
  m.back().gid = 4343;
  m.back().mtime = Timespec{946684800, 999999999};
  m.push_back(Dir(top + "/src/sticky", 01777));
  m.push_back(Symlink(top + "/src/link", "file-100"));
  m.push_back(Symlink(top + "/src/dangling", "../nowhere/at/all"));
  m.push_back(Symlink(top + "/abs-link", "/etc/passwd"));
  m.push_back(HardLink(top + "/src/hard1", top + "/src/file-65537"));
  m.push_back(HardLink(top + "/hard2", top + "/src/file-65537"));
  m.push_back(HardLink(top + "/src/small-hard", top + "/src/file-100"));
  m.push_back(File(top + "/with space and ünïcødé", "utf-8 name"));
  // Deep nesting; the directories in between are implied.
  m.push_back(File(top + "/a/b/c/d/e/f/g/h/deep.txt", "deep"));
  if (format != TarFormat::kV7) {
    m.push_back(File(top + "/" + std::string(90, 'p') + "/" + std::string(99, 'q'), "ustar split"));
  }
  if (format == TarFormat::kPax || format == TarFormat::kGnu) {
    m.push_back(File(top + "/" + std::string(255, 'n'), "long name"));
    std::string path = top;
    for (int i = 0; i < 15; ++i) path += "/" + std::string(200, static_cast<char>('a' + i));
    m.push_back(File(path + "/x", "long path"));
    m.push_back(Symlink(top + "/long-target", std::string(1000, 't')));
  }
  return m;
}

// Which metadata a format keeps.
ManifestOptions OptionsFor(TarFormat format) {
  ManifestOptions o;
  o.mtime_nsec = format == TarFormat::kPax;
  return o;
}

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override { fs_ = NewMemoryFileSystem(); }

  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  IngestOptions Options() const {
    IngestOptions o;
    o.staging_dir = Path("staging");
    return o;
  }

  Status Ingest(const std::string& tarball, IngestOptions o, IngestStats* stats = nullptr) {
    IngestStats local;
    return IngestFile(fs_.get(), tarball, o, stats != nullptr ? stats : &local);
  }

  // Exports tree `name` to a local store in Path("store") and returns the
  // tarball's path.
  std::string Export(const std::string& name, Compression c = Compression::kNone) {
    std::filesystem::create_directories(Path("store"));
    std::unique_ptr<PersistentStore> store;
    EXPECT_OK(kvfs::store::OpenStore(kvfs::store::StoreAt(Path("store")), &store));
    ExportOptions o;
    o.compression = c;
    ExportStats st;
    EXPECT_OK(ExportTree(fs_.get(), name, store.get(), o, &st));
    return Path("store/" + st.object);
  }

  Strings Fsck() { return FsckProblems(fs_.get(), fs_hasher_); }

  TempDir dir_{"kvfs-ingest"};
  NameHasher fs_hasher_ = DefaultNameHasher();
  std::unique_ptr<FileSystem> fs_;
};

struct FormatCase {
  TarFormat format;
  Compression compression;
  std::string name;
};

// Test names and messages show the case's name, not its bytes.
void PrintTo(const FormatCase& c, std::ostream* os) { *os << c.name; }

class RoundTrip : public IngestTest, public ::testing::WithParamInterface<FormatCase> {};

// tarball -> KVFS -> tarball -> KVFS: every step keeps entries, metadata,
// contents, symlinks and hard links.
TEST_P(RoundTrip, KeepsEverything) {
  const FormatCase& c = GetParam();
  const std::string tarball = Path("rich" + std::string(TarballSuffix(c.compression)));
  WriteTarball(tarball, RichTree("rich", c.format), c.format, c.compression);
  IngestStats stats;
  ASSERT_OK(Ingest(tarball, Options(), &stats));
  EXPECT_EQ(stats.name, "rich");
  EXPECT_EQ(stats.build.hard_links, 3u);
  EXPECT_EQ(Fsck(), Strings{});

  Manifest original, loaded, exported, reloaded;
  ASSERT_OK(ReadTarballManifest(tarball, "rich", &original));
  ASSERT_OK(ReadTreeManifest(fs_.get(), "rich", &loaded));
  EXPECT_EQ(CompareManifests(original, loaded, OptionsFor(c.format), false), Strings{});

  const std::string out = Export("rich", c.compression);
  ASSERT_OK(ReadTarballManifest(out, "rich", &exported));
  // The export lists every directory: compare both ways.
  EXPECT_EQ(CompareManifests(loaded, exported, OptionsFor(TarFormat::kPax), true), Strings{});
  EXPECT_EQ(CompareManifests(original, exported, OptionsFor(c.format), false), Strings{});

  IngestOptions o = Options();
  o.name = "again";
  ASSERT_OK(Ingest(out, o));
  ASSERT_OK(ReadTreeManifest(fs_.get(), "again", &reloaded));
  EXPECT_EQ(CompareManifests(loaded, reloaded, OptionsFor(TarFormat::kPax), true), Strings{});
  EXPECT_EQ(Fsck(), Strings{});
}

INSTANTIATE_TEST_SUITE_P(
    Formats, RoundTrip,
    ::testing::Values(FormatCase{TarFormat::kPax, Compression::kNone, "pax"},
                      FormatCase{TarFormat::kGnu, Compression::kNone, "gnu"},
                      FormatCase{TarFormat::kUstar, Compression::kNone, "ustar"},
                      FormatCase{TarFormat::kV7, Compression::kNone, "v7"},
                      FormatCase{TarFormat::kPax, Compression::kGzip, "pax_gzip"},
                      FormatCase{TarFormat::kGnu, Compression::kZstd, "gnu_zstd"},
                      FormatCase{TarFormat::kPax, Compression::kXz, "pax_xz"}),
    [](const auto& info) { return info.param.name; });

// GNU tar's own output: sparse files and its long-name extension.
TEST_F(IngestTest, GnuTarSparseFiles) {
  const std::string src = Path("src");
  std::filesystem::create_directories(src + "/g");
  {
    std::ofstream f(src + "/g/sparse", std::ios::binary);
    f.seekp(5 << 20);
    f << "end";
    f.seekp(1 << 20);
    f << "middle";
  }
  std::ofstream(src + "/g/" + std::string(150, 'L')) << "long";
  const std::string tarball = Path("g.tar.gz");
  ASSERT_EQ(
      std::system(("tar -C " + src + " --sparse --format=gnu -czf " + tarball + " g").c_str()), 0);
  IngestStats stats;
  ASSERT_OK(Ingest(tarball, Options(), &stats));
  Manifest original, loaded;
  ASSERT_OK(ReadTarballManifest(tarball, "g", &original));
  ASSERT_OK(ReadTreeManifest(fs_.get(), "g", &loaded));
  EXPECT_EQ(CompareManifests(original, loaded, OptionsFor(TarFormat::kGnu), false), Strings{});
  EXPECT_EQ(loaded["sparse"].size, (5u << 20) + 3);
  // Holes stay holes: only the blocks holding data exist.
  EXPECT_EQ(stats.build.blocks, 2u);
  EXPECT_EQ(Fsck(), Strings{});
}

// GNU tar's pax archives store names as UTF-8 (or, for bytes that are not
// UTF-8, with hdrcharset=BINARY): both kinds come out byte for byte, also
// through an export, although the process runs in the C locale.
TEST_F(IngestTest, GnuTarPaxNamesAreBytes) {
  const std::string src = Path("src");
  std::filesystem::create_directories(src + "/u");
  const std::string utf8 =
      "\xc3\xbc"
      "n\xc3\xaf"
      "c\xc3\xb8"
      "d\xc3\xa9 \xe2\x82\xac";
  const std::string latin1 = "lat\xe9";
  std::ofstream(src + "/u/" + utf8) << "utf-8";
  std::ofstream(src + "/u/" + latin1) << "latin-1";
  std::filesystem::create_symlink(utf8, src + "/u/link-" + latin1);
  const std::string tarball = Path("u.tar");
  ASSERT_EQ(
      std::system(("LANG=C.UTF-8 tar -C " + src + " --format=pax -cf " + tarball + " u").c_str()),
      0);
  ASSERT_OK(Ingest(tarball, Options()));
  Attributes top, a;
  ASSERT_OK(fs_->Lookup(kRootIno, "u", &top));
  ASSERT_OK(fs_->Lookup(top.ino, utf8, &a));
  ASSERT_OK(fs_->Lookup(top.ino, latin1, &a));
  Manifest original, loaded, exported;
  ASSERT_OK(ReadTarballManifest(tarball, "u", &original));
  ASSERT_OK(ReadTreeManifest(fs_.get(), "u", &loaded));
  EXPECT_EQ(CompareManifests(original, loaded, ManifestOptions(), false), Strings{});
  EXPECT_EQ(loaded["link-" + latin1].link_target, utf8);
  ASSERT_OK(ReadTarballManifest(Export("u"), "u", &exported));
  EXPECT_EQ(CompareManifests(loaded, exported, ManifestOptions(), true), Strings{});
}

// The path rule: members under the tree's name and relative ones land in
// the same tree; "./" and empty components are ignored.
TEST_F(IngestTest, MembersUnderTheNameOrRelative) {
  const std::string tarball = Path("mix.tar");
  WriteTarball(tarball, {File("mix/a", "1"), File("b", "2"), File("./c/d", "3"),
                         File("mix//e/./f", "4"), File("sub/mix/g", "5"), Dir("./mix/", 0700)});
  ASSERT_OK(Ingest(tarball, Options()));
  Manifest m;
  ASSERT_OK(ReadTreeManifest(fs_.get(), "mix", &m));
  Strings paths;
  for (const auto& [p, e] : m) paths.push_back(p);
  EXPECT_EQ(paths, (Strings{"", "a", "b", "c", "c/d", "e", "e/f", "sub", "sub/mix", "sub/mix/g"}));
  EXPECT_EQ(m[""].mode, 0700u);   // the top's own member
  EXPECT_EQ(m["c"].mode, 0755u);  // implied
  EXPECT_EQ(m["c"].uid, 0u);
  EXPECT_EQ(Fsck(), Strings{});
}

// Short names spread over sibling directories are not mistaken for
// duplicates (the duplicate check once hashed names with the parent inode as
// XXH3's seed, which is nearly linear for short inputs: d1/s1/f19 "collided"
// with an earlier file).
TEST_F(IngestTest, ShortNamesInSiblingDirectoriesAreNotDuplicates) {
  const std::string tarball = Path("short.tar");
  std::vector<ingest_test::Spec> members;
  for (int i = 0; i < 300; ++i) {
    members.push_back(File(
        "short/d" + std::to_string(i % 3) + "/s" + std::to_string(i % 2) + "/f" + std::to_string(i),
        std::to_string(i)));
  }
  WriteTarball(tarball, members);
  ASSERT_OK(Ingest(tarball, Options()));
  Manifest m;
  ASSERT_OK(ReadTreeManifest(fs_.get(), "short", &m));
  EXPECT_EQ(m.size(), 1u + 3 + 6 + 300);
  EXPECT_EQ(Fsck(), Strings{});
}

// A directory's header after its contents still sets its attributes.
TEST_F(IngestTest, DirectoryHeaderAfterItsContents) {
  const std::string tarball = Path("late.tar");
  Spec d = Dir("late/d", 0700);
  d.uid = 55;
  d.mtime = Timespec{1234567890, 0};
  WriteTarball(tarball, {File("late/d/x", "x"), File("late/d/y", "y"), d});
  ASSERT_OK(Ingest(tarball, Options()));
  Manifest m;
  ASSERT_OK(ReadTreeManifest(fs_.get(), "late", &m));
  EXPECT_EQ(m["d"].mode, 0700u);
  EXPECT_EQ(m["d"].uid, 55u);
  EXPECT_EQ(m["d"].mtime.sec, 1234567890);
  EXPECT_EQ(Fsck(), Strings{});
}

// A directory of 100,000 entries, sorted with a small memory budget (many
// spilled runs), then exported and compared.
TEST_F(IngestTest, HundredThousandEntryDirectory) {
  std::vector<Spec> members{Dir("big/")};
  for (int i = 0; i < 100000; ++i) {
    members.push_back(File("big/huge/entry-" + std::to_string(i), std::to_string(i)));
  }
  members.push_back(File("big/other", RandomBytes(200000, 9)));
  const std::string tarball = Path("big.tar");
  WriteTarball(tarball, members);
  IngestOptions o = Options();
  o.sort_memory_bytes = 1 << 20;
  IngestStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(Ingest(tarball, o, &stats));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "100K entries: ingest " << seconds << " s, " << stats.build.sort_runs
            << " sort runs\n";
  EXPECT_GT(stats.build.sort_runs, 5u);
  EXPECT_EQ(stats.build.files, 100001u);
  Attributes top, huge;
  ASSERT_OK(fs_->Lookup(kRootIno, "big", &top));
  ASSERT_OK(fs_->Lookup(top.ino, "huge", &huge));
  EXPECT_EQ(huge.size, 100000u);
  Attributes e;
  ASSERT_OK(fs_->Lookup(huge.ino, "entry-99999", &e));
  EXPECT_EQ(Fsck(), Strings{});
  Manifest original, exported;
  ASSERT_OK(ReadTarballManifest(tarball, "big", &original));
  const std::string out = Export("big");
  ASSERT_OK(ReadTarballManifest(out, "big", &exported));
  EXPECT_EQ(CompareManifests(original, exported, ManifestOptions(), false), Strings{});
}

// Names colliding in hash buckets share a bucket value; more than 256 of
// them in one bucket of one directory cannot be stored.
TEST_F(IngestTest, HashBucketCollisions) {
  fs_hasher_ = FirstByteHasher();
  fs_ = NewMemoryFileSystem(fs_hasher_);
  IngestOptions o = Options();
  o.hasher = fs_hasher_;
  std::vector<Spec> ok{Dir("c/")};
  for (int i = 0; i < 256; ++i) ok.push_back(File("c/x" + std::to_string(i), "v"));
  for (int i = 0; i < 100; ++i) ok.push_back(File("c/y" + std::to_string(i), "w"));
  WriteTarball(Path("c.tar"), ok);
  ASSERT_OK(Ingest(Path("c.tar"), o));
  EXPECT_EQ(Fsck(), Strings{});
  Manifest original, loaded;
  ASSERT_OK(ReadTarballManifest(Path("c.tar"), "c", &original));
  ASSERT_OK(ReadTreeManifest(fs_.get(), "c", &loaded));
  EXPECT_EQ(CompareManifests(original, loaded, ManifestOptions(), true), Strings{});

  ok.push_back(File("c/x256", "too many"));
  WriteTarball(Path("d.tar"), ok);
  const auto before = DumpStore(fs_->store());
  Status s = Ingest(Path("d.tar"), o);
  EXPECT_EQ(s.posix_errno(), ENOSPC) << s.ToString();
  EXPECT_TRUE(DumpStore(fs_->store()) == before) << "the store changed";
  // The wrong hash is refused before anything happens.
  IngestOptions wrong = Options();
  wrong.name = "other";
  EXPECT_EQ(Ingest(Path("c.tar"), wrong).posix_errno(), EINVAL);
}

// ---- Bad input: a clear error, and the store exactly as before ---------------------

struct BadCase {
  std::string name;
  // Writes the bad tarball to `path`.
  std::function<void(const std::string& path)> make;
  int err;
  std::string message;  // part of the error message
  std::function<void(IngestOptions*)> options = nullptr;
};

std::string Corrupt(std::string data, size_t at) {
  data[at] = static_cast<char>(data[at] ^ 0x5a);
  return data;
}

std::vector<Spec> GoodMembers() {
  return {Dir("bad/"), File("bad/a", RandomBytes(100000, 1)), File("bad/b", "bee"),
          File("bad/c", RandomBytes(5000, 2))};
}

Spec Special(std::string path, MemberType type) {
  Spec s;
  s.path = std::move(path);
  s.type = type;
  s.rdev = makedev(1, 3);
  return s;
}

const BadCase kBadCases[] = {
    {"CorruptHeader",
     [](const std::string& p) {
       WriteTarball(p, GoodMembers(), TarFormat::kUstar);
       // Second member's header (after "bad/" and the first file's data).
       WriteFileContents(
           p, Corrupt(ReadFileContents(p), 512 + 512 + 100000 + (512 - 100000 % 512) + 10));
     },
     EINVAL, "archive"},
    {"CorruptCompressedStream",
     [](const std::string& p) {
       WriteTarball(p, GoodMembers(), TarFormat::kPax, Compression::kGzip);
       std::string d = ReadFileContents(p);
       WriteFileContents(p, Corrupt(d, d.size() / 2));
     },
     EINVAL, "archive"},
    {"TruncatedInContents",
     [](const std::string& p) {
       WriteTarball(p, GoodMembers(), TarFormat::kPax);
       WriteFileContents(p, ReadFileContents(p).substr(0, 50000));
     },
     EINVAL, "runcated"},
    {"TruncatedCompressed",
     [](const std::string& p) {
       WriteTarball(p, GoodMembers(), TarFormat::kPax, Compression::kXz);
       std::string d = ReadFileContents(p);
       WriteFileContents(p, d.substr(0, d.size() * 2 / 3));
     },
     EINVAL, "archive"},
    {"NotAnArchive", [](const std::string& p) { WriteFileContents(p, RandomBytes(100000, 3)); },
     EINVAL, "archive"},
    {"EmptyFile", [](const std::string& p) { WriteFileContents(p, ""); }, EINVAL, "archive"},
    {"AbsolutePath",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(File("/etc/evil", "x"));
       WriteTarball(p, m);
     },
     EINVAL, "absolute"},
    {"DotDotEscape",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(File("bad/../../evil", "x"));
       WriteTarball(p, m);
     },
     EINVAL, "'..'"},
    {"HardLinkEscape",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(HardLink("bad/h", "../outside"));
       WriteTarball(p, m);
     },
     EINVAL, "'..'"},
    {"CharDevice",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(Special("bad/null", MemberType::kCharDevice));
       WriteTarball(p, m);
     },
     EINVAL, "device node"},
    {"BlockDevice",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(Special("bad/sda", MemberType::kBlockDevice));
       WriteTarball(p, m);
     },
     EINVAL, "device node"},
    {"Fifo",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(Special("bad/fifo", MemberType::kFifo));
       WriteTarball(p, m);
     },
     EINVAL, "FIFO"},
    {"NameOver255",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(File("bad/" + std::string(256, 'n'), "x"));
       WriteTarball(p, m);
     },
     ENAMETOOLONG, "255"},
    {"PathOver4096",
     [](const std::string& p) {
       auto m = GoodMembers();
       std::string path = "bad";
       while (path.size() <= 4096) path += "/" + std::string(200, 'd');
       m.push_back(File(path, "x"));
       WriteTarball(p, m);
     },
     ENAMETOOLONG, "4096"},
    {"SymlinkTargetOver4095",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(Symlink("bad/s", std::string(4096, 't')));
       WriteTarball(p, m);
     },
     ENAMETOOLONG, "4095"},
    {"DuplicateFile",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(File("b", "again, relative"));
       WriteTarball(p, m);
     },
     EINVAL, "twice"},
    {"FileWhereADirectoryIs",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(File("bad/d/x", "x"));
       m.push_back(File("bad/d", "x"));
       WriteTarball(p, m);
     },
     EINVAL, "twice"},
    {"DirectoryWhereAFileIs",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(File("bad/b/x", "x"));
       WriteTarball(p, m);
     },
     EINVAL, "both a directory"},
    {"HardLinkToMissing",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(HardLink("bad/h", "bad/missing"));
       WriteTarball(p, m);
     },
     EINVAL, "not an earlier file"},
    {"HardLinkToDirectory",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(Dir("bad/dir"));
       m.push_back(HardLink("bad/h", "bad/dir"));
       WriteTarball(p, m);
     },
     EINVAL, "not an earlier file"},
    {"TopIsAFile",
     [](const std::string& p) {
       auto m = GoodMembers();
       m.push_back(File("bad", "x"));
       WriteTarball(p, m);
     },
     EINVAL, "top of the tree"},
    {"ArchiveQuota", [](const std::string& p) { WriteTarball(p, GoodMembers()); }, EDQUOT, "quota",
     [](IngestOptions* o) { o->max_archive_bytes = 50000; }},
    {"TreeQuota",
     [](const std::string& p) {
       WriteTarball(p, GoodMembers(), TarFormat::kPax, Compression::kXz);
     },
     EDQUOT, "quota", [](IngestOptions* o) { o->max_tree_bytes = 100100; }},
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BadInput : public IngestTest, public ::testing::WithParamInterface<BadCase> {};

TEST_P(BadInput, ClearErrorAndNothingChanges) {
  const BadCase& c = GetParam();
  // Something to disturb: an earlier tree and a file in the root.
  WriteTarball(Path("good.tar"), {File("good/f", "content")});
  ASSERT_OK(Ingest(Path("good.tar"), Options()));
  Attributes a;
  ASSERT_OK(fs_->Create(kRootIno, "rootfile", NewObject{}, true, &a));
  const auto before = DumpStore(fs_->store());

  const std::string tarball = Path("bad.tar");
  c.make(tarball);
  IngestOptions o = Options();
  if (c.options) c.options(&o);
  Status s = Ingest(tarball, o);
  EXPECT_EQ(s.posix_errno(), c.err) << s.ToString();
  EXPECT_NE(s.message().find(c.message), std::string::npos) << s.ToString();
  EXPECT_TRUE(DumpStore(fs_->store()) == before) << "the store changed";
  EXPECT_TRUE(std::filesystem::is_empty(Path("staging")));
}

INSTANTIATE_TEST_SUITE_P(Cases, BadInput, ::testing::ValuesIn(kBadCases),
                         [](const auto& info) { return info.param.name; });

TEST_F(IngestTest, SpecialFilesCanBeSkipped) {
  auto m = GoodMembers();
  m.push_back(Special("bad/null", MemberType::kCharDevice));
  m.push_back(Special("bad/fifo", MemberType::kFifo));
  WriteTarball(Path("bad.tar"), m);
  IngestOptions o = Options();
  o.skip_special = true;
  IngestStats stats;
  ASSERT_OK(Ingest(Path("bad.tar"), o, &stats));
  EXPECT_EQ(stats.build.skipped, 2u);
  EXPECT_EQ(stats.build.files, 3u);
  Attributes top, x;
  ASSERT_OK(fs_->Lookup(kRootIno, "bad", &top));
  EXPECT_TRUE(fs_->Lookup(top.ino, "null", &x).IsNotFound());
  EXPECT_EQ(Fsck(), Strings{});
}

TEST_F(IngestTest, TreeNames) {
  WriteTarball(Path("n.tgz"), {File("x", "1")}, TarFormat::kPax, Compression::kGzip);
  IngestStats stats;
  ASSERT_OK(Ingest(Path("n.tgz"), Options(), &stats));
  EXPECT_EQ(stats.name, "n");
  std::filesystem::copy_file(Path("n.tgz"), Path("noext"));
  EXPECT_EQ(Ingest(Path("noext"), Options()).posix_errno(), EINVAL);
  IngestOptions o = Options();
  o.name = "chosen";
  ASSERT_OK(Ingest(Path("noext"), o, &stats));
  Attributes a;
  ASSERT_OK(fs_->Lookup(kRootIno, "chosen", &a));
  o.name = ".hidden";
  EXPECT_EQ(Ingest(Path("noext"), o).posix_errno(), EINVAL);
  o.name = "a/b";
  EXPECT_EQ(Ingest(Path("noext"), o).posix_errno(), EINVAL);
  EXPECT_TRUE(Ingest(Path("missing.tar"), Options()).IsNotFound());
}

// ---- Re-ingest, replacement, eviction ----------------------------------------------

TEST_F(IngestTest, ReingestIsRefusedUnlessReplacing) {
  WriteTarball(Path("t.tar"), {File("t/old", RandomBytes(300000, 1)), File("t/keep", "v1")});
  IngestStats first;
  ASSERT_OK(Ingest(Path("t.tar"), Options(), &first));
  StatFsInfo one;
  ASSERT_OK(fs_->StatFs(&one));
  const auto before = DumpStore(fs_->store());
  Status s = Ingest(Path("t.tar"), Options());
  EXPECT_EQ(s.posix_errno(), EEXIST) << s.ToString();
  EXPECT_TRUE(DumpStore(fs_->store()) == before) << "the store changed";

  WriteTarball(Path("t2.tar"), {File("t/keep", "v2"), File("t/new", "n")});
  IngestOptions o = Options();
  o.name = "t";
  o.replace = true;
  IngestStats second;
  ASSERT_OK(Ingest(Path("t2.tar"), o, &second));
  EXPECT_EQ(second.replaced_range, first.range);
  EXPECT_NE(second.range, first.range);
  EXPECT_EQ(KeysInRange(fs_->store(), first.range), 0u);
  Manifest m;
  ASSERT_OK(ReadTreeManifest(fs_.get(), "t", &m));
  EXPECT_EQ(m.size(), 3u);
  EXPECT_FALSE(m.count("old"));
  StatFsInfo two;
  ASSERT_OK(fs_->StatFs(&two));
  EXPECT_EQ(two.used_bytes, 3u);  // "v2" + "n"
  EXPECT_EQ(two.used_inodes, one.used_inodes);
  Attributes root;
  ASSERT_OK(fs_->GetAttr(kRootIno, &root));
  EXPECT_EQ(root.size, 1u);
  EXPECT_EQ(Fsck(), Strings{});

  // Replacing something that is not a tree is refused.
  Attributes a;
  ASSERT_OK(fs_->Create(kRootIno, "f", NewObject{}, true, &a));
  o.name = "f";
  EXPECT_EQ(Ingest(Path("t2.tar"), o).posix_errno(), EEXIST);
}

TEST_F(IngestTest, EvictionDropsUsage) {
  StatFsInfo empty;
  ASSERT_OK(fs_->StatFs(&empty));
  WriteTarball(Path("a.tar"), RichTree("a", TarFormat::kPax));
  WriteTarball(Path("b.tar"), {File("b/x", RandomBytes(123456, 5)), Symlink("b/l", "x")});
  IngestStats a, b;
  ASSERT_OK(Ingest(Path("a.tar"), Options(), &a));
  StatFsInfo with_a;
  ASSERT_OK(fs_->StatFs(&with_a));
  ASSERT_OK(Ingest(Path("b.tar"), Options(), &b));
  StatFsInfo with_both;
  ASSERT_OK(fs_->StatFs(&with_both));
  EXPECT_EQ(with_both.used_bytes, with_a.used_bytes + 123456 + 1);
  EXPECT_EQ(with_both.used_inodes, with_a.used_inodes + 3);

  EvictStats st;
  ASSERT_OK(EvictTree(fs_.get(), "b", &st));
  EXPECT_EQ(st.range, b.range);
  EXPECT_EQ(st.bytes, 123457);
  EXPECT_EQ(st.inodes, 3);
  EXPECT_EQ(KeysInRange(fs_->store(), b.range), 0u);
  ASSERT_OK(EvictTree(fs_.get(), "a", &st));
  StatFsInfo after;
  ASSERT_OK(fs_->StatFs(&after));
  EXPECT_EQ(after.used_bytes, empty.used_bytes);
  EXPECT_EQ(after.used_inodes, empty.used_inodes);
  EXPECT_EQ(Fsck(), Strings{});
  EXPECT_TRUE(EvictTree(fs_.get(), "a", &st).IsNotFound());
  // The tree can come back (in a new range).
  IngestStats again;
  ASSERT_OK(Ingest(Path("b.tar"), Options(), &again));
  EXPECT_GT(again.range, b.range);
}

// The tests of ingest and export with a persistent store, on each plugin
// (tests/store/test_store.h: a directory, a bucket on radosgw).
class IngestStoreTest : public IngestTest, public ::testing::WithParamInterface<StoreKind> {
 protected:
  void SetUp() override {
    IngestTest::SetUp();
    Status s = TestStore::Create(GetParam(), &t_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_OK(t_->Open(&store_));
  }

  std::unique_ptr<TestStore> t_;
  std::unique_ptr<PersistentStore> store_;
};

// Export replaces the tree's tarball atomically and removes tarballs of it
// with another compression.
TEST_P(IngestStoreTest, ExportReplacesOtherCompressions) {
  WriteTarball(Path("e.tar"), {File("e/x", "1")});
  ASSERT_OK(Ingest(Path("e.tar"), Options()));
  ExportOptions o;
  o.compression = Compression::kGzip;
  ExportStats st;
  ASSERT_OK(ExportTree(fs_.get(), "e", store_.get(), o, &st));
  EXPECT_TRUE(t_->Exists("e.tar.gz"));
  o.compression = Compression::kZstd;
  ASSERT_OK(ExportTree(fs_.get(), "e", store_.get(), o, &st));
  EXPECT_TRUE(t_->Exists("e.tar.zst"));
  EXPECT_FALSE(t_->Exists("e.tar.gz"));
  EXPECT_EQ(st.removed_stale, 1u);
  EXPECT_TRUE(ExportTree(fs_.get(), "missing", store_.get(), ExportOptions(), &st).IsNotFound());
  std::vector<ObjectInfo> objects;
  ASSERT_OK(store_->List(&objects));
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].name, "e.tar.zst");
  // ... and ingest finds it by tree name, and reads it back whole.
  EvictStats evicted;
  ASSERT_OK(EvictTree(fs_.get(), "e", &evicted));
  IngestStats is;
  ASSERT_OK(IngestFromStore(fs_.get(), store_.get(), "e", Options(), &is));
  EXPECT_EQ(is.name, "e");
  EXPECT_EQ(is.build.files, 1u);
  EXPECT_TRUE(IngestFromStore(fs_.get(), store_.get(), "nope", Options(), &is).IsNotFound());
  // Two tarballs of one tree: ingest asks which.
  ASSERT_OK(t_->Put("e.tar", ""));
  EXPECT_EQ(IngestFromStore(fs_.get(), store_.get(), "e", Options(), &is).posix_errno(), EINVAL);
}

// A tree of the Linux source's size class (1,000 files of 0-64 KiB in
// nested directories, 30 MB) exported to the store and ingested back:
// identical, member by member.
TEST_P(IngestStoreTest, ARoundTripThroughTheStoreKeepsEverything) {
  std::vector<Spec> members = RichTree("r", TarFormat::kPax);
  for (int i = 0; i < 1000; ++i) {
    members.push_back(File("r/bulk/d" + std::to_string(i % 17) + "/f" + std::to_string(i),
                           RandomBytes((i * 7919) % 65536, i)));
  }
  WriteTarball(Path("r.tar"), members);
  ASSERT_OK(Ingest(Path("r.tar"), Options()));
  Manifest before;
  ASSERT_OK(ReadTreeManifest(fs_.get(), "r", &before));
  ExportStats st;
  ASSERT_OK(ExportTree(fs_.get(), "r", store_.get(), ExportOptions(), &st));
  EvictStats evicted;
  ASSERT_OK(EvictTree(fs_.get(), "r", &evicted));
  IngestStats is;
  ASSERT_OK(IngestFromStore(fs_.get(), store_.get(), "r", Options(), &is));
  Manifest after;
  ASSERT_OK(ReadTreeManifest(fs_.get(), "r", &after));
  EXPECT_EQ(CompareManifests(before, after, ManifestOptions(), true), Strings{});
  EXPECT_EQ(is.archive_bytes, st.object_bytes);
  EXPECT_EQ(Fsck(), Strings{});
}

// A local file that refuses to grow past a cap: a broken sparse export
// fails instead of filling the disk.
class CappedFileWriter final : public ObjectWriter {
 public:
  CappedFileWriter(const std::string& path, uint64_t cap)
      : out_(path, std::ios::binary), cap_(cap) {}
  Status Append(std::string_view data) override {
    if (size_ + data.size() > cap_) return Status::FromErrno(EFBIG, "over the test's cap");
    out_.write(data.data(), static_cast<std::streamsize>(data.size()));
    size_ += data.size();
    return out_ ? Status::OK() : Status::IOError("write");
  }
  Status Commit() override {
    out_.close();
    return out_ ? Status::OK() : Status::IOError("close");
  }
  uint64_t size() const override { return size_; }

 private:
  std::ofstream out_;
  const uint64_t cap_;
  uint64_t size_ = 0;
};

// What users extract exports with: GNU tar and bsdtar restore every member
// (long and UTF-8 names, links, a FIFO, large ids, nanosecond times, sparse
// files as sparse files) without a single warning, and archiving the result
// again with GNU tar gives the tree KVFS holds.
TEST_F(IngestTest, ExportsExtractSilentlyWithGnuTarAndBsdtar) {
  std::vector<Spec> tree = RichTree("x", TarFormat::kPax);
  tree.push_back(File("x/big-ids", "ids"));
  tree.back().uid = 3000000;  // past ustar's 7 octal digits
  tree.back().gid = 4000000;
  const std::string tarball = Path("x.tar");
  WriteTarball(tarball, tree);
  ASSERT_OK(Ingest(tarball, Options()));
  // A FIFO (ingest refuses them, the core has them), and sparse files: 1 TiB
  // holding two runs, and one that is all hole.
  Attributes top, a;
  ASSERT_OK(fs_->Lookup(kRootIno, "x", &top));
  ASSERT_OK(fs_->Mknod(top.ino, "fifo", FileType::kFifo, NewObject{0600, 7, 8}, 0, &a));
  const uint64_t tib = 1ull << 40;
  for (const char* name : {"sparse", "hole"}) {
    ASSERT_OK(fs_->Create(top.ino, name, NewObject{0640, 1000, 100}, true, &a));
    SetAttrRequest req;
    req.size = tib;
    ASSERT_OK(fs_->SetAttr(a.ino, req, &a));
    if (std::string_view(name) == "sparse") {
      ASSERT_OK(fs_->Write(a.ino, 3 << 20, RandomBytes(100000, 1), Stability::kStable, &a));
      ASSERT_OK(fs_->Write(a.ino, tib - 5, "tail!", Stability::kStable, &a));
    }
  }
  Manifest loaded;
  ASSERT_OK(ReadTreeManifest(fs_.get(), "x", &loaded));

  const std::string out = Path("x-export.tar");
  {
    CappedFileWriter w(out, 64 << 20);
    ExportStats st;
    ASSERT_OK(WriteTree(fs_.get(), "x", &w, Compression::kNone, &st));
    ASSERT_OK(w.Commit());
  }
  for (const std::string tool : {"tar", "bsdtar"}) {
    SCOPED_TRACE(tool);
    const std::string dest = Path("extract-" + tool);
    std::filesystem::create_directories(dest);
    std::string output;
    EXPECT_EQ(ingest_test::RunCommand(tool + " -xf " + out + " -C " + dest, &output), 0);
    EXPECT_EQ(output, "") << "the extraction is not silent";
    struct stat sb;
    ASSERT_EQ(::stat((dest + "/x/sparse").c_str(), &sb), 0);
    EXPECT_EQ(static_cast<uint64_t>(sb.st_size), tib);
    EXPECT_LT(static_cast<uint64_t>(sb.st_blocks) * 512, 4u << 20) << "holes were filled";
    ASSERT_EQ(::stat((dest + "/x/hole").c_str(), &sb), 0);
    EXPECT_EQ(static_cast<uint64_t>(sb.st_size), tib);
    EXPECT_EQ(sb.st_blocks, 0);
    // GNU tar's archive of what was extracted is the tree KVFS holds.
    const std::string again = Path("again-" + tool + ".tar");
    ASSERT_EQ(ingest_test::RunCommand(
                  "tar --format=pax --sparse -C " + dest + " -cf " + again + " x", &output),
              0)
        << output;
    Manifest extracted;
    ASSERT_OK(ReadTarballManifest(again, "x", &extracted));
    EXPECT_EQ(CompareManifests(loaded, extracted, ManifestOptions(), true), Strings{});
  }
}

// Two independent writers (each with its own store) ingest into ranges
// claimed in one shared persistent store, at the same time: every range is
// claimed once, so their trees never share inode numbers.
TEST_P(IngestStoreTest, TwoWritersRacingClaimDistinctRanges) {
  const std::string dir = Path("race");
  std::filesystem::create_directories(dir);
  constexpr int kWriters = 2, kTrees = 15;
  for (int t = 0; t < kTrees; ++t) {
    WriteTarball(dir + "/t" + std::to_string(t) + ".tar", {File("x", std::to_string(t))});
  }
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(go[1]);
      char c;
      if (read(go[0], &c, 1) != 0) _exit(1);  // released when the parent closes it
      auto fs = NewMemoryFileSystem();
      std::unique_ptr<PersistentStore> claims;
      if (!t_->Open(&claims).ok()) _exit(2);
      std::unique_ptr<coord::Coordination> in_store = coord::StoreClaims(claims.get());
      std::ofstream out(dir + "/ranges-" + std::to_string(w));
      for (int t = 0; t < kTrees; ++t) {
        IngestOptions o;
        o.staging_dir = dir + "/staging-" + std::to_string(w);
        o.claims = in_store.get();
        o.claim_owner = "writer " + std::to_string(w);
        IngestStats st;
        if (!IngestFile(fs.get(), dir + "/t" + std::to_string(t) + ".tar", o, &st).ok()) {
          _exit(3);
        }
        Attributes a;
        if (!fs->Lookup(kRootIno, "t" + std::to_string(t), &a).ok() ||
            schema::RangeOf(a.ino) != st.range) {
          _exit(4);
        }
        out << st.range << "\n";
      }
      out.close();
      _exit(FsckProblems(fs.get(), DefaultNameHasher()).empty() ? 0 : 5);
    }
    pids.push_back(pid);
  }
  close(go[0]);
  close(go[1]);  // both start now
  for (pid_t pid : pids) {
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  std::set<uint64_t> all;
  for (int w = 0; w < kWriters; ++w) {
    std::ifstream in(dir + "/ranges-" + std::to_string(w));
    uint64_t r;
    while (in >> r) EXPECT_TRUE(all.insert(r).second) << "range " << r << " used twice";
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kWriters * kTrees));
  for (uint64_t r : all) {
    char name[64];
    std::snprintf(name, sizeof(name), ".kvfs/ranges/%010llu", static_cast<unsigned long long>(r));
    EXPECT_TRUE(t_->Exists(name)) << name;
  }
  uint64_t highest = 0;
  ASSERT_OK(store_->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, *all.rbegin());
}

INSTANTIATE_TEST_SUITE_P(Stores, IngestStoreTest, ::testing::ValuesIn(PluginStoreKinds()),
                         StoreKindName());

// On RocksDB (SST files moved into the database) the same holds, and the
// staging directory is left empty.
TEST(IngestRocksDB, RoundTripAndCleanStaging) {
  TempDir dir("kvfs-ingest");
  std::unique_ptr<FileSystem> fs;
  ASSERT_OK(OpenRocksFileSystem(dir.path() + "/db", &fs));
  const std::string tarball = dir.path() + "/r.tar.zst";
  WriteTarball(tarball, RichTree("r", TarFormat::kPax), TarFormat::kPax, Compression::kZstd);
  IngestOptions o;
  o.staging_dir = dir.path() + "/db/ingest-staging";
  IngestStats stats;
  ASSERT_OK(IngestFile(fs.get(), tarball, o, &stats));
  EXPECT_GT(stats.loaded_bytes, 300000u);
  EXPECT_TRUE(std::filesystem::is_empty(o.staging_dir));
  Manifest original, loaded;
  ASSERT_OK(ReadTarballManifest(tarball, "r", &original));
  ASSERT_OK(ReadTreeManifest(fs.get(), "r", &loaded));
  EXPECT_EQ(CompareManifests(original, loaded, ManifestOptions(), false), Strings{});
  EXPECT_EQ(FsckProblems(fs.get(), DefaultNameHasher()), Strings{});
  // Bad input on RocksDB: nothing left behind either.
  WriteTarball(tarball, {File("r2/a", RandomBytes(400000, 3)), File("/abs", "x")});
  o.name = "r2";
  EXPECT_EQ(IngestFile(fs.get(), tarball, o, &stats).posix_errno(), EINVAL);
  EXPECT_EQ(KeysInRange(fs->store(), stats.range), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(o.staging_dir));
}

}  // namespace
}  // namespace kvfs::ingest
