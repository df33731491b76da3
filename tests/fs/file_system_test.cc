// Operation tests of the file system core, run against every store
// configuration: the in-memory store, every key/value backend plugin built,
// and RocksDB and memory with a weak name hash that puts many names into one
// bucket (hash collisions). After every test, Fsck must find the store
// consistent.
#include "common/fs/file_system.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "common/fs/fsck.h"
#include "common/kv/fault_injection_store.h"
#include "common/kv/memory_store.h"
#include "tests/status_assertions.h"
#include "tests/test_backends.h"

namespace kvfs {
namespace {

// A hash with 16 possible values: thousands of names collide.
NameHasher WeakHasher() {
  return NameHasher{"weak-test", [](std::string_view s) {
                      uint64_t h = 0;
                      for (char c : s) h += static_cast<uint8_t>(c);
                      return (h % 16) << 60;
                    }};
}

struct Config {
  std::string backend;  // "memory" or a plugin's name
  bool weak_hash;
};

// Every backend with the real name hash, plus two with the weak one.
std::vector<Config> Configs() {
  std::vector<Config> configs;
  for (const std::string& b : testing::AllBackends()) configs.push_back({b, false});
  configs.push_back({"rocksdb", true});
  configs.push_back({"memory", true});
  return configs;
}

class FileSystemTest : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kvfs_fs_test_" + std::to_string(getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    if (GetParam().weak_hash) options_.name_hasher = WeakHasher();
    // The boundaries the tests below aim at.
    options_.inline_threshold = 4096;
    options_.block_size = 65536;
    Reopen();
  }

  void TearDown() override {
    if (fs_) {
      FsckReport report;
      ASSERT_TRUE(Fsck(fs_->store(), options_.name_hasher, &report).ok());
      for (const auto& p : report.problems) ADD_FAILURE() << "fsck: " << p;
    }
    fs_.reset();
    memory_store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Opens the store of this test: a persistent backend's store in dir_, or
  // (memory) a non-owning view of the memory store kept across reopens.
  void OpenStore(std::unique_ptr<KVStore>* store) {
    if (GetParam().backend != "memory") {
      ASSERT_OK(testing::OpenTestStore(GetParam().backend, dir_.string(), store));
      return;
    }
    if (!memory_store_) memory_store_ = NewMemoryStore();
    *store = std::make_unique<FaultInjectionStore>(memory_store_.get());  // non-owning
  }

  // Opens the file system again on the same store (RocksDB: closes and
  // reopens the database; memory: keeps the store object).
  void Reopen() {
    fs_.reset();
    std::unique_ptr<KVStore> store;
    ASSERT_NO_FATAL_FAILURE(OpenStore(&store));
    Status s = FileSystem::Open(options_, std::move(store), &fs_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  Ino MkFile(Ino dir, const std::string& name, const std::string& contents = "") {
    Attributes a;
    Status s = fs_->Create(dir, name, NewObject{0644, 1000, 1000}, true, &a);
    EXPECT_TRUE(s.ok()) << name << ": " << s.ToString();
    if (!contents.empty()) {
      Status w = fs_->Write(a.ino, 0, contents, Stability::kStable, &a);
      EXPECT_TRUE(w.ok()) << w.ToString();
    }
    return a.ino;
  }

  Ino MkDir(Ino dir, const std::string& name) {
    Attributes a;
    Status s = fs_->Mkdir(dir, name, NewObject{0755, 0, 0}, &a);
    EXPECT_TRUE(s.ok()) << name << ": " << s.ToString();
    return a.ino;
  }

  std::string ReadAll(Ino ino) {
    Attributes a;
    EXPECT_TRUE(fs_->GetAttr(ino, &a).ok());
    std::string out;
    bool eof = false;
    EXPECT_TRUE(fs_->Read(ino, 0, a.size + 10, &out, &eof).ok());
    EXPECT_TRUE(eof);
    return out;
  }

  Attributes Get(Ino ino) {
    Attributes a;
    Status s = fs_->GetAttr(ino, &a);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return a;
  }

  int Errno(const Status& s) { return s.posix_errno(); }

  std::vector<std::string> List(Ino dir) {
    std::vector<std::string> names;
    bool eof = false;
    Status s = fs_->ReadDir(
        dir, kStartCookie,
        [&](const DirEntry& e) {
          names.push_back(e.name);
          return true;
        },
        &eof);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(eof);
    std::sort(names.begin(), names.end());
    return names;
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  FileSystemOptions options_;
  std::unique_ptr<KVStore> memory_store_;
  std::unique_ptr<FileSystem> fs_;
};

TEST_P(FileSystemTest, RootExists) {
  Attributes a = Get(kRootIno);
  EXPECT_EQ(a.type, FileType::kDirectory);
  EXPECT_EQ(a.nlink, 2u);
  EXPECT_EQ(a.ino, kRootIno);
  Attributes up;
  ASSERT_TRUE(fs_->Lookup(kRootIno, "..", &up).ok());
  EXPECT_EQ(up.ino, kRootIno);
}

TEST_P(FileSystemTest, CreateLookupGetattr) {
  Ino f = MkFile(kRootIno, "hello.txt", "hello world");
  Attributes a;
  ASSERT_TRUE(fs_->Lookup(kRootIno, "hello.txt", &a).ok());
  EXPECT_EQ(a.ino, f);
  EXPECT_EQ(a.size, 11u);
  EXPECT_EQ(a.mode, 0644u);
  EXPECT_EQ(a.uid, 1000u);
  EXPECT_EQ(a.nlink, 1u);
  EXPECT_EQ(a.type, FileType::kRegular);
  EXPECT_EQ(ReadAll(f), "hello world");
  EXPECT_EQ(Get(kRootIno).size, 1u);
  EXPECT_EQ(Errno(fs_->Lookup(kRootIno, "missing", &a)), ENOENT);
  EXPECT_EQ(Errno(fs_->Create(kRootIno, "hello.txt", NewObject(), true, &a)), EEXIST);
  // Non-exclusive create of an existing file returns it.
  ASSERT_TRUE(fs_->Create(kRootIno, "hello.txt", NewObject(), false, &a).ok());
  EXPECT_EQ(a.ino, f);
  // ... but not an existing directory or special file.
  MkDir(kRootIno, "dir");
  EXPECT_EQ(Errno(fs_->Create(kRootIno, "dir", NewObject(), false, &a)), EISDIR);
  ASSERT_TRUE(fs_->Symlink(kRootIno, "sl", "x", NewObject(), &a).ok());
  EXPECT_EQ(Errno(fs_->Create(kRootIno, "sl", NewObject(), false, &a)), EEXIST);
  EXPECT_EQ(Errno(fs_->GetAttr(987654321, &a)), ESTALE);
}

TEST_P(FileSystemTest, NamesAreValidated) {
  Attributes a;
  EXPECT_EQ(Errno(fs_->Create(kRootIno, std::string(256, 'x'), NewObject(), true, &a)),
            ENAMETOOLONG);
  EXPECT_TRUE(fs_->Create(kRootIno, std::string(255, 'x'), NewObject(), true, &a).ok());
  EXPECT_EQ(Errno(fs_->Create(kRootIno, "a/b", NewObject(), true, &a)), EINVAL);
  EXPECT_EQ(Errno(fs_->Create(kRootIno, std::string("a\0b", 3), NewObject(), true, &a)), EINVAL);
  EXPECT_EQ(Errno(fs_->Create(kRootIno, ".", NewObject(), true, &a)), EINVAL);
  EXPECT_EQ(Errno(fs_->Mkdir(kRootIno, "..", NewObject(), &a)), EINVAL);
  EXPECT_EQ(Errno(fs_->Create(kRootIno, "", NewObject(), true, &a)), EINVAL);
  EXPECT_EQ(Errno(fs_->Unlink(kRootIno, ".")), EINVAL);
  EXPECT_EQ(Errno(fs_->Rename(kRootIno, "..", kRootIno, "x")), EINVAL);
}

TEST_P(FileSystemTest, ReadWriteAcrossInlineThresholdAndBlocks) {
  // A reference model of the file's contents, checked after every step.
  Ino f = MkFile(kRootIno, "f");
  std::string model;
  std::mt19937_64 rng(42);
  auto write = [&](uint64_t off, size_t len) {
    std::string data(len, '\0');
    for (auto& c : data) c = static_cast<char>('a' + rng() % 26);
    Attributes a;
    ASSERT_TRUE(fs_->Write(f, off, data, Stability::kUnstable, &a).ok());
    if (model.size() < off + len) model.resize(off + len, '\0');
    model.replace(off, len, data);
    EXPECT_EQ(a.size, model.size());
  };
  auto truncate = [&](uint64_t size) {
    SetAttrRequest req;
    req.size = size;
    Attributes a;
    ASSERT_TRUE(fs_->SetAttr(f, req, &a).ok());
    model.resize(size, '\0');
    EXPECT_EQ(a.size, size);
  };
  auto check = [&]() {
    ASSERT_EQ(ReadAll(f), model);
    // Outside its data extents the file reads as zeros (holes).
    uint64_t covered = 0;
    ASSERT_OK(fs_->DataExtents(f, 0, [&](uint64_t off, uint64_t len) {
      EXPECT_GE(off, covered) << "extents overlap or go back";
      EXPECT_LE(off + len, model.size());
      for (uint64_t i = covered; i < off && i < model.size(); ++i) {
        EXPECT_EQ(model[i], '\0') << "byte " << i << " is data outside every extent";
      }
      covered = off + len;
      return true;
    }));
    for (uint64_t i = covered; i < model.size(); ++i) {
      ASSERT_EQ(model[i], '\0') << "byte " << i << " is data after the last extent";
    }
    // Partial reads at odd offsets.
    for (uint64_t off : {0ul, 1ul, 4095ul, 4096ul, 65535ul, 65536ul, 100000ul}) {
      std::string out;
      bool eof;
      ASSERT_TRUE(fs_->Read(f, off, 70000, &out, &eof).ok());
      std::string expect = off < model.size() ? model.substr(off, 70000) : "";
      ASSERT_EQ(out, expect) << "offset " << off;
      EXPECT_EQ(eof, off + 70000 >= model.size());
      // ReadStream hands out the same bytes in pieces (holes as zeros).
      std::string streamed;
      ASSERT_OK(fs_->ReadStream(f, off, 70000, [&](std::string_view piece) {
        EXPECT_FALSE(piece.empty());
        streamed.append(piece);
        return Status::OK();
      }));
      ASSERT_EQ(streamed, expect) << "ReadStream at offset " << off;
    }
    std::string whole;
    ASSERT_OK(fs_->ReadStream(f, 0, UINT64_MAX, [&](std::string_view piece) {
      whole.append(piece);
      return Status::OK();
    }));
    ASSERT_EQ(whole, model);
    // fn's error stops the stream and is what it returns.
    int calls = 0;
    Status stop = fs_->ReadStream(f, 0, UINT64_MAX, [&](std::string_view) {
      ++calls;
      return Status::FromErrno(EPIPE, "stop");
    });
    EXPECT_EQ(stop.posix_errno(), model.empty() ? 0 : EPIPE);
    EXPECT_EQ(calls, model.empty() ? 0 : 1);
  };
  write(0, 100);
  check();
  write(4000, 96);  // exactly at the inline threshold
  check();
  write(4096, 1);  // just past it: moves to blocks
  check();
  write(65530, 20);  // crosses a block boundary
  check();
  write(300000, 10);  // sparse: holes read as zeros
  check();
  truncate(70000);  // cuts inside block 1
  check();
  truncate(200000);  // extends: the cut part must read as zeros
  check();
  truncate(3000);  // back inline
  check();
  truncate(0);
  check();
  write(10, 5);  // sparse inline
  check();
  for (int i = 0; i < 50; ++i) {
    if (rng() % 5 == 0) {
      truncate(rng() % 150000);
    } else {
      write(rng() % 140000, 1 + rng() % 9000);
    }
    check();
  }
  Reopen();
  f = Get(f).ino;
  check();
}

// A file may be as large as kMaxFileSize but holds only what was written:
// every operation on it costs what it stores, never its size (a 2^62-byte
// file has 2^46 block numbers; a loop over them would never end).
TEST_P(FileSystemTest, SparseGiantFilesCostWhatTheyStore) {
  StatFsInfo st0, st;
  ASSERT_OK(fs_->StatFs(&st0));
  Ino top = MkDir(kRootIno, "top");
  Ino f = MkFile(top, "giant");
  const uint64_t giant = 1ull << 62;
  Attributes a;
  auto set_size = [&](uint64_t size) {
    SetAttrRequest req;
    req.size = size;
    return fs_->SetAttr(f, req, &a);
  };
  auto read = [&](uint64_t off, size_t n, bool* eof = nullptr) {
    std::string out;
    bool e;
    EXPECT_OK(fs_->Read(f, off, n, &out, &e));
    if (eof) *eof = e;
    return out;
  };
  auto extents = [&](uint64_t from) {
    std::vector<std::pair<uint64_t, uint64_t>> v;
    EXPECT_OK(fs_->DataExtents(f, from, [&](uint64_t off, uint64_t len) {
      v.emplace_back(off, len);
      return true;
    }));
    return v;
  };
  using Extents = std::vector<std::pair<uint64_t, uint64_t>>;

  // Past the largest size: EFBIG, and nothing changes.
  EXPECT_EQ(Errno(set_size(kMaxFileSize + 1)), EFBIG);
  EXPECT_EQ(Errno(fs_->Write(f, kMaxFileSize, "x", Stability::kStable, &a)), EFBIG);
  EXPECT_EQ(Get(f).size, 0u);
  ASSERT_OK(set_size(kMaxFileSize));
  EXPECT_EQ(a.size, kMaxFileSize);

  ASSERT_OK(set_size(giant));
  EXPECT_EQ(a.size, giant);
  EXPECT_EQ(a.space_used, 0u);
  ASSERT_OK(fs_->Write(f, giant - 1, "Z", Stability::kStable, &a));
  ASSERT_OK(fs_->Write(f, 0, "A", Stability::kStable, &a));
  EXPECT_EQ(a.size, giant);
  EXPECT_EQ(a.space_used, 2u * options_.block_size);  // one block each end
  bool eof;
  EXPECT_EQ(read(giant - 1, 100, &eof), "Z");
  EXPECT_TRUE(eof);
  EXPECT_EQ(read(0, 10), std::string("A") + std::string(9, '\0'));
  EXPECT_EQ(read(giant / 2, 200000, &eof), std::string(200000, '\0'));
  EXPECT_FALSE(eof);
  // A block is stored from its start: the last one holds a whole block.
  const uint64_t bs = options_.block_size;
  EXPECT_EQ(extents(0), (Extents{{0, 1}, {giant - bs, bs}}));
  EXPECT_EQ(extents(1), (Extents{{giant - bs, bs}}));
  EXPECT_EQ(extents(giant - 2), (Extents{{giant - 2, 2}}));
  ASSERT_OK(fs_->StatFs(&st));
  EXPECT_EQ(st.used_bytes, st0.used_bytes + 1 + bs);

  // Down to a size that keeps blocks, and up again.
  ASSERT_OK(set_size(giant / 2));
  EXPECT_EQ(extents(0), (Extents{{0, 1}}));
  ASSERT_OK(fs_->StatFs(&st));
  EXPECT_EQ(st.used_bytes, st0.used_bytes + 1);
  ASSERT_OK(set_size(kMaxFileSize));
  ASSERT_OK(fs_->Write(f, kMaxFileSize - 3, "end", Stability::kStable, &a));
  EXPECT_EQ(read(kMaxFileSize - 3, 10), "end");
  Reopen();
  EXPECT_EQ(Get(f).size, kMaxFileSize);
  EXPECT_EQ(extents(0), (Extents{{0, 1}, {kMaxFileSize / bs * bs, kMaxFileSize % bs}}));

  // Open, unlinked, still readable until the last close, then gone.
  ASSERT_OK(fs_->OpenFile(f));
  ASSERT_OK(fs_->Unlink(top, "giant"));
  EXPECT_EQ(read(kMaxFileSize - 3, 3), "end");
  ASSERT_OK(fs_->CloseFile(f));
  EXPECT_EQ(Errno(fs_->GetAttr(f, &a)), ESTALE);
  ASSERT_OK(fs_->StatFs(&st));
  EXPECT_EQ(st.used_bytes, st0.used_bytes);

  // Back to inline from a giant.
  f = MkFile(top, "giant2");
  ASSERT_OK(set_size(giant));
  ASSERT_OK(fs_->Write(f, 0, "abc", Stability::kStable, &a));
  ASSERT_OK(fs_->Write(f, giant - 1, "z", Stability::kStable, &a));
  ASSERT_OK(set_size(2));
  EXPECT_EQ(read(0, 10), "ab");
  EXPECT_EQ(Get(f).space_used, 2u);
  ASSERT_OK(fs_->StatFs(&st));
  EXPECT_EQ(st.used_bytes, st0.used_bytes + 2);
}

// Files with more blocks than one transaction deletes one by one: truncate
// and unlink delete them as ranges, and the stored byte count follows.
TEST_P(FileSystemTest, ManyBlocksAreDeletedAsRanges) {
  StatFsInfo st0, st;
  ASSERT_OK(fs_->StatFs(&st0));
  Ino f = MkFile(kRootIno, "f");
  const uint64_t bs = options_.block_size;
  const uint64_t blocks = 300;  // > Transaction::kMaxPointDeletes
  Attributes a;
  for (uint64_t b = 0; b < blocks; ++b) {
    ASSERT_OK(fs_->Write(f, b * bs + b % 7, std::string(1 + b % 5, 'x'), Stability::kUnstable, &a));
  }
  uint64_t stored = 0;
  for (uint64_t b = 0; b < blocks; ++b) stored += b % 7 + 1 + b % 5;  // block b holds up to its end
  ASSERT_OK(fs_->StatFs(&st));
  EXPECT_EQ(st.used_bytes, st0.used_bytes + stored);
  // Keep blocks 0 and 1 (cut inside block 1).
  SetAttrRequest req;
  req.size = bs + 2;
  ASSERT_OK(fs_->SetAttr(f, req, &a));
  ASSERT_OK(fs_->StatFs(&st));
  EXPECT_EQ(st.used_bytes, st0.used_bytes + (0 + 1) + 2);
  // Grow again over many blocks, then unlink: all of them go.
  for (uint64_t b = 2; b < blocks; ++b) {
    ASSERT_OK(fs_->Write(f, b * bs, std::string(bs, 'y'), Stability::kUnstable, &a));
  }
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  ASSERT_OK(fs_->StatFs(&st));
  EXPECT_EQ(st.used_bytes, st0.used_bytes);
  std::unique_ptr<Iterator> it = fs_->store()->NewIterator(Column::kBlocks, IteratorOptions());
  it->Seek("");
  EXPECT_FALSE(it->Valid()) << "a block survived the unlink";
}

TEST_P(FileSystemTest, LayoutParametersComeFromTheStore) {
  Ino f = MkFile(kRootIno, "f", std::string(5000, 'a'));  // in blocks at threshold 4096
  options_.inline_threshold = 8192;                       // ignored: the store says 4096
  options_.block_size = 16384;
  Reopen();
  Attributes a;
  ASSERT_TRUE(fs_->Write(f, 5000, std::string(70000, 'b'), Stability::kStable, &a).ok());
  EXPECT_EQ(ReadAll(f), std::string(5000, 'a') + std::string(70000, 'b'));
  Ino g = MkFile(kRootIno, "g", std::string(6000, 'c'));
  EXPECT_EQ(Get(g).space_used, 65536u);  // one 64 KiB block: the store's block size
  // A different name hash is refused with a clear error.
  options_.name_hasher = NameHasher{"other", [](std::string_view) { return uint64_t{0}; }};
  fs_.reset();
  std::unique_ptr<KVStore> store;
  ASSERT_NO_FATAL_FAILURE(OpenStore(&store));
  std::unique_ptr<FileSystem> other;
  Status s = FileSystem::Open(options_, std::move(store), &other);
  EXPECT_EQ(s.posix_errno(), EINVAL);
  EXPECT_NE(s.message().find("name hash"), std::string::npos) << s.ToString();
  other.reset();
  options_.name_hasher = GetParam().weak_hash ? WeakHasher() : DefaultNameHasher();
  Reopen();
}

TEST_P(FileSystemTest, WriteUpdatesTimesAndChange) {
  Ino f = MkFile(kRootIno, "f");
  Attributes before = Get(f);
  Attributes after;
  ASSERT_TRUE(fs_->Write(f, 0, "x", Stability::kStable, &after).ok());
  EXPECT_GT(after.change, before.change);
  EXPECT_TRUE(after.mtime.sec > before.mtime.sec ||
              (after.mtime.sec == before.mtime.sec && after.mtime.nsec >= before.mtime.nsec));
  Attributes dir_before = Get(kRootIno);
  MkFile(kRootIno, "g");
  EXPECT_GT(Get(kRootIno).change, dir_before.change);
}

TEST_P(FileSystemTest, SetAttr) {
  Ino f = MkFile(kRootIno, "f", "abc");
  SetAttrRequest req;
  req.mode = 0600;
  req.uid = 7;
  req.gid = 8;
  req.atime = Timespec{1000, 5};
  req.mtime = Timespec{2000, 999999999};
  Attributes a;
  ASSERT_TRUE(fs_->SetAttr(f, req, &a).ok());
  Reopen();
  a = Get(f);
  EXPECT_EQ(a.mode, 0600u);
  EXPECT_EQ(a.uid, 7u);
  EXPECT_EQ(a.gid, 8u);
  EXPECT_EQ(a.atime, (Timespec{1000, 5}));
  EXPECT_EQ(a.mtime, (Timespec{2000, 999999999}));
  Ino d = MkDir(kRootIno, "d");
  SetAttrRequest trunc;
  trunc.size = 0;
  EXPECT_EQ(Errno(fs_->SetAttr(d, trunc, &a)), EISDIR);
}

TEST_P(FileSystemTest, SetAttrSizeGrowOnly) {
  Ino f = MkFile(kRootIno, "f", "abcdef");
  SetAttrRequest req;
  req.size = 3;
  req.size_grow_only = true;
  Attributes a;
  ASSERT_TRUE(fs_->SetAttr(f, req, &a).ok());
  EXPECT_EQ(a.size, 6u);
  EXPECT_EQ(ReadAll(f), "abcdef");
  req.size = 100000;
  ASSERT_TRUE(fs_->SetAttr(f, req, &a).ok());
  EXPECT_EQ(a.size, 100000u);
  Reopen();
  EXPECT_EQ(ReadAll(f), "abcdef" + std::string(100000 - 6, '\0'));
}

TEST_P(FileSystemTest, MkdirRmdirAndLinkCounts) {
  Ino d = MkDir(kRootIno, "d");
  EXPECT_EQ(Get(kRootIno).nlink, 3u);
  Ino sub = MkDir(d, "sub");
  MkFile(d, "file");
  EXPECT_EQ(Get(d).nlink, 3u);
  EXPECT_EQ(Get(d).size, 2u);
  Attributes a;
  ASSERT_TRUE(fs_->Lookup(sub, "..", &a).ok());
  EXPECT_EQ(a.ino, d);
  EXPECT_EQ(Errno(fs_->Rmdir(kRootIno, "d")), ENOTEMPTY);
  EXPECT_EQ(Errno(fs_->Rmdir(d, "file")), ENOTDIR);
  EXPECT_EQ(Errno(fs_->Unlink(d, "sub")), EISDIR);
  EXPECT_EQ(Errno(fs_->Mkdir(d, "sub", NewObject(), &a)), EEXIST);
  EXPECT_EQ(Errno(fs_->Rmdir(d, "nothing")), ENOENT);
  ASSERT_TRUE(fs_->Rmdir(d, "sub").ok());
  ASSERT_TRUE(fs_->Unlink(d, "file").ok());
  EXPECT_EQ(Get(d).nlink, 2u);
  EXPECT_EQ(Errno(fs_->GetAttr(sub, &a)), ESTALE);
  ASSERT_TRUE(fs_->Rmdir(kRootIno, "d").ok());
  EXPECT_EQ(Get(kRootIno).nlink, 2u);
  EXPECT_TRUE(List(kRootIno).empty());
  // Operations inside a removed directory fail cleanly.
  EXPECT_EQ(Errno(fs_->Create(d, "x", NewObject(), true, &a)), ESTALE);
  // ENOTDIR when the parent is a file.
  Ino f = MkFile(kRootIno, "f");
  EXPECT_EQ(Errno(fs_->Create(f, "x", NewObject(), true, &a)), ENOTDIR);
  EXPECT_EQ(Errno(fs_->Lookup(f, "x", &a)), ENOTDIR);
}

TEST_P(FileSystemTest, TopLevelDirectoriesOwnInodeRanges) {
  Ino a = MkDir(kRootIno, "a");
  Ino b = MkDir(kRootIno, "b");
  EXPECT_NE(a >> 32, 0u);
  EXPECT_NE(a >> 32, b >> 32);
  Ino in_a = MkFile(a, "f");
  Ino deep = MkFile(MkDir(a, "sub"), "g");
  EXPECT_EQ(in_a >> 32, a >> 32);
  EXPECT_EQ(deep >> 32, a >> 32);
  Ino root_file = MkFile(kRootIno, "rf");
  EXPECT_EQ(root_file >> 32, 0u);
  // Numbers are never reused, even after a restart.
  ASSERT_TRUE(fs_->Unlink(a, "f").ok());
  Reopen();
  Ino again = MkFile(a, "f");
  EXPECT_GT(again, deep);
  Ino c = MkDir(kRootIno, "c");
  EXPECT_GT(c >> 32, b >> 32);
}

TEST_P(FileSystemTest, Rename) {
  Ino top = MkDir(kRootIno, "top");
  Ino d1 = MkDir(top, "d1");
  Ino d2 = MkDir(top, "d2");
  Ino f = MkFile(d1, "f", "data");
  Attributes a;
  // Same directory.
  ASSERT_TRUE(fs_->Rename(d1, "f", d1, "g").ok());
  EXPECT_EQ(Errno(fs_->Lookup(d1, "f", &a)), ENOENT);
  ASSERT_TRUE(fs_->Lookup(d1, "g", &a).ok());
  EXPECT_EQ(a.ino, f);
  // Across directories.
  ASSERT_TRUE(fs_->Rename(d1, "g", d2, "f").ok());
  EXPECT_EQ(ReadAll(f), "data");
  EXPECT_EQ(Get(d1).size, 0u);
  EXPECT_EQ(Get(d2).size, 1u);
  // Replacing a file.
  Ino other = MkFile(d2, "other", "old");
  ASSERT_TRUE(fs_->Rename(d2, "f", d2, "other").ok());
  EXPECT_EQ(Errno(fs_->GetAttr(other, &a)), ESTALE);
  ASSERT_TRUE(fs_->Lookup(d2, "other", &a).ok());
  EXPECT_EQ(a.ino, f);
  EXPECT_EQ(Get(d2).size, 1u);
  // Directory over empty directory; nlinks follow.
  Ino e = MkDir(d2, "empty");
  MkDir(d1, "moving");
  ASSERT_TRUE(fs_->Rename(d1, "moving", d2, "empty").ok());
  EXPECT_EQ(Errno(fs_->GetAttr(e, &a)), ESTALE);
  EXPECT_EQ(Get(d1).nlink, 2u);
  EXPECT_EQ(Get(d2).nlink, 3u);
  // Error cases.
  Ino full = MkDir(d1, "full");
  MkFile(full, "x");
  EXPECT_EQ(Errno(fs_->Rename(d2, "empty", d1, "full")), ENOTEMPTY);
  EXPECT_EQ(Errno(fs_->Rename(d2, "empty", d2, "other")), ENOTDIR);
  EXPECT_EQ(Errno(fs_->Rename(d2, "other", d1, "full")), EISDIR);
  EXPECT_EQ(Errno(fs_->Rename(d2, "missing", d1, "x")), ENOENT);
  EXPECT_EQ(Errno(fs_->Rename(top, "d1", full, "d1")), EINVAL);  // into its own subtree
  EXPECT_EQ(Errno(fs_->Rename(top, "d1", d1, "self")), EINVAL);
  // Leaving the top-level directory's inode range is EXDEV.
  MkDir(kRootIno, "other_top");
  EXPECT_EQ(Errno(fs_->Rename(d2, "other", kRootIno, "other")), EXDEV);
  Attributes ot;
  ASSERT_TRUE(fs_->Lookup(kRootIno, "other_top", &ot).ok());
  EXPECT_EQ(Errno(fs_->Rename(kRootIno, "other_top", top, "nested")), EXDEV);
  // Top-level directories can be renamed in the root.
  ASSERT_TRUE(fs_->Rename(kRootIno, "other_top", kRootIno, "renamed_top").ok());
  // Hard links to the same file: rename is a no-op.
  ASSERT_TRUE(fs_->Link(f, d2, "alias", &a).ok());
  ASSERT_TRUE(fs_->Rename(d2, "alias", d2, "other").ok());
  EXPECT_EQ(Get(f).nlink, 2u);
  // Renaming onto itself.
  ASSERT_TRUE(fs_->Rename(d2, "other", d2, "other").ok());
  Reopen();
  EXPECT_EQ(ReadAll(f), "data");
}

TEST_P(FileSystemTest, HardLinks) {
  Ino top = MkDir(kRootIno, "top");
  Ino d = MkDir(top, "d");
  Ino f = MkFile(top, "f", std::string(10000, 'z'));
  Attributes a;
  ASSERT_TRUE(fs_->Link(f, d, "f2", &a).ok());
  EXPECT_EQ(a.nlink, 2u);
  ASSERT_TRUE(fs_->Link(f, top, "f3", &a).ok());
  EXPECT_EQ(Get(f).nlink, 3u);
  Attributes via;
  ASSERT_TRUE(fs_->Lookup(d, "f2", &via).ok());
  EXPECT_EQ(via.ino, f);
  EXPECT_EQ(via.nlink, 3u);
  // Writes through one name show through the others.
  ASSERT_TRUE(fs_->Write(via.ino, 0, "hello", Stability::kStable, &a).ok());
  EXPECT_EQ(ReadAll(f).substr(0, 6), "helloz");
  EXPECT_EQ(Errno(fs_->Link(f, d, "f2", &a)), EEXIST);
  EXPECT_EQ(Errno(fs_->Link(d, top, "dirlink", &a)), EPERM);
  Ino other_top = MkDir(kRootIno, "other");
  EXPECT_EQ(Errno(fs_->Link(f, other_top, "x", &a)), EXDEV);
  ASSERT_TRUE(fs_->Unlink(top, "f").ok());
  EXPECT_EQ(Get(f).nlink, 2u);
  ASSERT_TRUE(fs_->Unlink(d, "f2").ok());
  EXPECT_EQ(Get(f).nlink, 1u);
  EXPECT_EQ(ReadAll(f).size(), 10000u);
  // readdir shows hard-linked entries with their attributes.
  bool found = false, eof;
  ASSERT_TRUE(fs_->ReadDir(
                     top, kStartCookie,
                     [&](const DirEntry& e) {
                       if (e.name == "f3") {
                         found = true;
                         EXPECT_EQ(e.attrs.ino, f);
                         EXPECT_EQ(e.attrs.size, 10000u);
                       }
                       return true;
                     },
                     &eof)
                  .ok());
  EXPECT_TRUE(found);
  ASSERT_TRUE(fs_->Unlink(top, "f3").ok());
  EXPECT_EQ(Errno(fs_->GetAttr(f, &a)), ESTALE);
}

TEST_P(FileSystemTest, SymlinksAndSpecialFiles) {
  Attributes a;
  ASSERT_TRUE(fs_->Symlink(kRootIno, "link", "some/where", NewObject{0777, 0, 0}, &a).ok());
  EXPECT_EQ(a.type, FileType::kSymlink);
  EXPECT_EQ(a.size, 10u);
  std::string target;
  ASSERT_TRUE(fs_->Readlink(a.ino, &target).ok());
  EXPECT_EQ(target, "some/where");
  Attributes l;
  ASSERT_TRUE(fs_->Lookup(kRootIno, "link", &l).ok());
  EXPECT_EQ(l.type, FileType::kSymlink);
  EXPECT_EQ(Errno(fs_->Symlink(kRootIno, "long", std::string(4096, 'a'), NewObject(), &a)),
            ENAMETOOLONG);
  ASSERT_TRUE(fs_->Symlink(kRootIno, "max", std::string(4095, 'a'), NewObject(), &a).ok());
  ASSERT_TRUE(fs_->Readlink(a.ino, &target).ok());
  EXPECT_EQ(target.size(), 4095u);
  Ino f = MkFile(kRootIno, "file");
  EXPECT_EQ(Errno(fs_->Readlink(f, &target)), EINVAL);
  ASSERT_TRUE(fs_->Mknod(kRootIno, "fifo", FileType::kFifo, NewObject(), 0, &a).ok());
  EXPECT_EQ(a.type, FileType::kFifo);
  ASSERT_TRUE(fs_->Mknod(kRootIno, "dev", FileType::kCharDevice, NewObject(), 0x0105, &a).ok());
  Reopen();
  EXPECT_EQ(Get(a.ino).rdev, 0x0105u);
  EXPECT_EQ(Get(a.ino).type, FileType::kCharDevice);
}

TEST_P(FileSystemTest, UnlinkedOpenFileStaysReadableUntilClose) {
  Ino f = MkFile(kRootIno, "f", std::string(100000, 'q'));
  ASSERT_TRUE(fs_->OpenFile(f).ok());
  ASSERT_TRUE(fs_->OpenFile(f).ok());
  ASSERT_TRUE(fs_->Unlink(kRootIno, "f").ok());
  Attributes a;
  EXPECT_EQ(Errno(fs_->Lookup(kRootIno, "f", &a)), ENOENT);
  EXPECT_EQ(ReadAll(f), std::string(100000, 'q'));
  ASSERT_TRUE(fs_->Write(f, 0, "still writable", Stability::kStable, &a).ok());
  EXPECT_EQ(a.nlink, 0u);
  ASSERT_TRUE(fs_->CloseFile(f).ok());
  EXPECT_TRUE(fs_->GetAttr(f, &a).ok());
  ASSERT_TRUE(fs_->CloseFile(f).ok());
  EXPECT_EQ(Errno(fs_->GetAttr(f, &a)), ESTALE);
  StatFsInfo st;
  ASSERT_TRUE(fs_->StatFs(&st).ok());
  EXPECT_EQ(st.used_bytes, 0u);
  EXPECT_EQ(st.used_inodes, 1u);
}

TEST_P(FileSystemTest, OrphansAreCleanedOnReopen) {
  Ino f = MkFile(kRootIno, "f", "x");
  ASSERT_TRUE(fs_->OpenFile(f).ok());
  ASSERT_TRUE(fs_->Unlink(kRootIno, "f").ok());
  Reopen();  // the open file does not survive a restart
  Attributes a;
  EXPECT_EQ(Errno(fs_->GetAttr(f, &a)), ESTALE);
}

TEST_P(FileSystemTest, ReadDirCookiesSurviveInsertsAndDeletes) {
  Ino d = MkDir(kRootIno, "d");
  std::set<std::string> names;
  for (int i = 0; i < 600; ++i) {
    std::string n = "file" + std::to_string(i);
    MkFile(d, n);
    names.insert(n);
  }
  // Read in pages of 50, mutating between pages.
  std::set<std::string> seen, removed, added;
  uint64_t cookie = kStartCookie;
  bool eof = false;
  int page = 0;
  while (!eof) {
    int n = 0;
    ASSERT_TRUE(fs_->ReadDir(
                       d, cookie,
                       [&](const DirEntry& e) {
                         EXPECT_TRUE(seen.insert(e.name).second) << "repeated " << e.name;
                         EXPECT_GE(e.cookie, kFirstCookie);
                         cookie = e.cookie;
                         return ++n < 50;
                       },
                       &eof)
                    .ok());
    ++page;
    // Remove two names not yet seen and add two new ones.
    for (const auto& name : names) {
      if (removed.size() >= static_cast<size_t>(2 * page)) break;
      if (!seen.count(name) && !removed.count(name)) {
        ASSERT_TRUE(fs_->Unlink(d, name).ok());
        removed.insert(name);
      }
    }
    for (int k = 0; k < 2; ++k) {
      std::string n = "new" + std::to_string(page) + "_" + std::to_string(k);
      MkFile(d, n);
      added.insert(n);
    }
  }
  // Every surviving original entry was seen exactly once; removed ones never.
  for (const auto& name : names) {
    if (removed.count(name)) {
      EXPECT_FALSE(seen.count(name)) << name;
    } else {
      EXPECT_TRUE(seen.count(name)) << name;
    }
  }
  EXPECT_GT(page, 10);
  uint64_t c;
  ASSERT_TRUE(fs_->CookieOf(d, "file599", &c).ok() || removed.count("file599"));
}

TEST_P(FileSystemTest, CookieOfResumesAfterName) {
  Ino d = MkDir(kRootIno, "d");
  for (int i = 0; i < 100; ++i) MkFile(d, "n" + std::to_string(i));
  std::vector<std::string> order;
  bool eof;
  ASSERT_TRUE(fs_->ReadDir(
                     d, kStartCookie,
                     [&](const DirEntry& e) {
                       order.push_back(e.name);
                       return true;
                     },
                     &eof)
                  .ok());
  ASSERT_EQ(order.size(), 100u);
  uint64_t cookie;
  ASSERT_TRUE(fs_->CookieOf(d, order[40], &cookie).ok());
  std::string next;
  ASSERT_TRUE(fs_->ReadDir(
                     d, cookie,
                     [&](const DirEntry& e) {
                       next = e.name;
                       return false;
                     },
                     &eof)
                  .ok());
  EXPECT_EQ(next, order[41]);
}

TEST_P(FileSystemTest, StatFsTracksUsage) {
  StatFsInfo st;
  ASSERT_TRUE(fs_->StatFs(&st).ok());
  EXPECT_EQ(st.used_inodes, 1u);
  EXPECT_EQ(st.total_bytes, options_.capacity_bytes);
  Ino top = MkDir(kRootIno, "top");
  Ino f = MkFile(top, "f", std::string(5000, 'a'));
  MkFile(kRootIno, "g", "12345");
  ASSERT_TRUE(fs_->StatFs(&st).ok());
  EXPECT_EQ(st.used_inodes, 4u);
  EXPECT_EQ(st.used_bytes, 5005u);
  SetAttrRequest req;
  req.size = 1000;
  Attributes a;
  ASSERT_TRUE(fs_->SetAttr(f, req, &a).ok());
  ASSERT_TRUE(fs_->StatFs(&st).ok());
  EXPECT_EQ(st.used_bytes, 1005u);
  ASSERT_TRUE(fs_->Unlink(top, "f").ok());
  ASSERT_TRUE(fs_->Rmdir(kRootIno, "top").ok());
  Reopen();
  ASSERT_TRUE(fs_->StatFs(&st).ok());
  EXPECT_EQ(st.used_inodes, 2u);
  EXPECT_EQ(st.used_bytes, 5u);
}

TEST_P(FileSystemTest, ManyCollidingNames) {
  // With the weak hash, all of these share 16 buckets.
  Ino d = MkDir(kRootIno, "d");
  std::vector<Ino> inos;
  for (int i = 0; i < 200; ++i)
    inos.push_back(MkFile(d, "c" + std::to_string(i), std::to_string(i)));
  for (int i = 0; i < 200; i += 3) ASSERT_TRUE(fs_->Unlink(d, "c" + std::to_string(i)).ok());
  for (int i = 0; i < 200; ++i) {
    Attributes a;
    Status s = fs_->Lookup(d, "c" + std::to_string(i), &a);
    if (i % 3 == 0) {
      EXPECT_EQ(Errno(s), ENOENT);
    } else {
      ASSERT_TRUE(s.ok());
      EXPECT_EQ(a.ino, inos[i]);
      EXPECT_EQ(ReadAll(a.ino), std::to_string(i));
    }
  }
  EXPECT_EQ(List(d).size(), 200u - 67u);
  ASSERT_TRUE(fs_->Rename(d, "c1", d, "c2").ok());
  EXPECT_EQ(List(d).size(), 200u - 68u);
}

TEST_P(FileSystemTest, ConcurrentCreatesReadsAndListings) {
  Ino top = MkDir(kRootIno, "top");
  Ino d = MkDir(top, "shared");
  constexpr int kThreads = 4, kPerThread = 150;
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string name = "t" + std::to_string(t) + "_" + std::to_string(i);
        Attributes a;
        Status s = fs_->Create(d, name, NewObject(), true, &a);
        ASSERT_TRUE(s.ok()) << s.ToString();
        ASSERT_TRUE(fs_->Write(a.ino, 0, name, Stability::kUnstable, &a).ok());
        // Own subdirectory too, for cross-directory work.
        if (i % 10 == 0) {
          ASSERT_TRUE(fs_->Mkdir(d, "dir" + name, NewObject(), &a).ok());
        }
      }
    });
  }
  std::thread reader([&] {
    while (!done) {
      bool eof;
      ASSERT_TRUE(fs_->ReadDir(
                         d, kStartCookie,
                         [&](const DirEntry& e) {
                           if (e.attrs.type == FileType::kRegular && e.attrs.size > 0) {
                             std::string out;
                             bool feof;
                             EXPECT_TRUE(fs_->Read(e.attrs.ino, 0, 100, &out, &feof).ok());
                             EXPECT_EQ(out, e.name);
                           }
                           return true;
                         },
                         &eof)
                      .ok());
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(List(d).size(),
            static_cast<size_t>(kThreads * kPerThread + kThreads * kPerThread / 10));
  Attributes a = Get(d);
  EXPECT_EQ(a.size, static_cast<uint64_t>(kThreads * kPerThread * 11 / 10));
  EXPECT_EQ(a.nlink, 2u + kThreads * kPerThread / 10);
}

TEST_P(FileSystemTest, ConcurrentRenamesKeepTreeConsistent) {
  Ino top = MkDir(kRootIno, "top");
  Ino a = MkDir(top, "a");
  Ino b = MkDir(top, "b");
  for (int i = 0; i < 40; ++i) MkFile(a, "f" + std::to_string(i), "x");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 300; ++i) {
        std::string n = "f" + std::to_string(rng() % 40);
        bool forward = rng() % 2;
        Status s = forward ? fs_->Rename(a, n, b, n) : fs_->Rename(b, n, a, n);
        EXPECT_TRUE(s.ok() || s.posix_errno() == ENOENT) << s.ToString();
        if (rng() % 10 == 0) {
          // Directory moves race with each other.
          Status m = fs_->Rename(top, "a", top, "a2");
          if (m.ok()) {
            EXPECT_TRUE(fs_->Rename(top, "a2", top, "a").ok());
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(List(a).size() + List(b).size(), 40u);
}

TEST_P(FileSystemTest, ReopenKeepsEverything) {
  Ino top = MkDir(kRootIno, "top");
  Ino f = MkFile(top, "big", std::string(200000, 'b'));
  Attributes a;
  ASSERT_TRUE(fs_->Symlink(top, "sl", "big", NewObject(), &a).ok());
  Reopen();
  ASSERT_TRUE(fs_->Lookup(top, "big", &a).ok());
  EXPECT_EQ(a.ino, f);
  EXPECT_EQ(ReadAll(f), std::string(200000, 'b'));
  EXPECT_EQ(List(top), (std::vector<std::string>{"big", "sl"}));
}

INSTANTIATE_TEST_SUITE_P(Stores, FileSystemTest, ::testing::ValuesIn(Configs()),
                         [](const auto& info) {
                           return info.param.backend + (info.param.weak_hash ? "_weak_hash" : "");
                         });

}  // namespace
}  // namespace kvfs
