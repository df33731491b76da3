// Error injection on every key/value call path: for each operation, every KV
// call it makes is failed in turn. The operation must fail cleanly with EIO
// (or succeed, if the failed call was one it could do without), the store
// must stay consistent (Fsck), and the tree must equal either the state
// before the operation or the state after it: never anything in between.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <sstream>

#include "common/fs/file_system.h"
#include "common/fs/fsck.h"
#include "common/fs/schema.h"
#include "common/kv/fault_injection_store.h"
#include "common/kv/memory_store.h"

namespace kvfs {
namespace {

// A printable description of the whole tree, contents included.
Status DescribeTree(FileSystem* fs, Ino dir, const std::string& path, std::string* out) {
  std::vector<DirEntry> entries;
  bool eof;
  KVFS_RETURN_IF_ERROR(fs->ReadDir(
      dir, kStartCookie,
      [&](const DirEntry& e) {
        entries.push_back(e);
        return true;
      },
      &eof));
  std::sort(entries.begin(), entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  for (const auto& e : entries) {
    const Attributes& a = e.attrs;
    std::ostringstream line;
    line << path << "/" << e.name << " ino=" << a.ino << " type=" << static_cast<int>(a.type)
         << " mode=" << a.mode << " uid=" << a.uid << " nlink=" << a.nlink << " size=" << a.size;
    if (a.type == FileType::kRegular) {
      std::string data;
      bool feof;
      KVFS_RETURN_IF_ERROR(fs->Read(a.ino, 0, a.size, &data, &feof));
      line << " data=" << std::hash<std::string>()(data);
    } else if (a.type == FileType::kSymlink) {
      std::string target;
      KVFS_RETURN_IF_ERROR(fs->Readlink(a.ino, &target));
      line << " target=" << target;
    }
    *out += line.str() + "\n";
    if (a.type == FileType::kDirectory) {
      KVFS_RETURN_IF_ERROR(DescribeTree(fs, a.ino, path + "/" + e.name, out));
    }
  }
  StatFsInfo st;
  KVFS_RETURN_IF_ERROR(fs->StatFs(&st));
  if (dir == kRootIno) {
    *out += "used_bytes=" + std::to_string(st.used_bytes) +
            " used_inodes=" + std::to_string(st.used_inodes) + "\n";
  }
  return Status::OK();
}

// The tree every scenario starts from.
struct Fixture {
  Ino top = 0, dir = 0, empty = 0, small = 0, big = 0, linked = 0;
};

void Build(FileSystem* fs, Fixture* fx) {
  Attributes a;
  ASSERT_TRUE(fs->Mkdir(kRootIno, "top", NewObject{0755, 0, 0}, &a).ok());
  fx->top = a.ino;
  ASSERT_TRUE(fs->Mkdir(fx->top, "dir", NewObject{0755, 0, 0}, &a).ok());
  fx->dir = a.ino;
  ASSERT_TRUE(fs->Mkdir(fx->top, "empty", NewObject{0755, 0, 0}, &a).ok());
  fx->empty = a.ino;
  ASSERT_TRUE(fs->Create(fx->dir, "small", NewObject{0644, 0, 0}, true, &a).ok());
  fx->small = a.ino;
  ASSERT_TRUE(fs->Write(fx->small, 0, "small contents", Stability::kStable, &a).ok());
  ASSERT_TRUE(fs->Create(fx->top, "big", NewObject{0644, 0, 0}, true, &a).ok());
  fx->big = a.ino;
  ASSERT_TRUE(fs->Write(fx->big, 0, std::string(150000, 'B'), Stability::kStable, &a).ok());
  ASSERT_TRUE(fs->Create(fx->top, "linked", NewObject{0644, 0, 0}, true, &a).ok());
  fx->linked = a.ino;
  ASSERT_TRUE(fs->Link(fx->linked, fx->dir, "linked2", &a).ok());
}

struct Scenario {
  const char* name;
  std::function<Status(FileSystem*, const Fixture&)> op;
};

std::vector<Scenario> Scenarios() {
  return {
      {"create",
       [](FileSystem* fs, const Fixture& f) {
         Attributes a;
         return fs->Create(f.dir, "new", NewObject(), true, &a);
       }},
      {"mkdir_top_level",
       [](FileSystem* fs, const Fixture&) {
         Attributes a;
         return fs->Mkdir(kRootIno, "top2", NewObject(), &a);
       }},
      {"symlink",
       [](FileSystem* fs, const Fixture& f) {
         Attributes a;
         return fs->Symlink(f.dir, "sl", "target", NewObject(), &a);
       }},
      {"write_inline",
       [](FileSystem* fs, const Fixture& f) {
         Attributes a;
         return fs->Write(f.small, 5, "XYZ", Stability::kStable, &a);
       }},
      {"write_to_blocks",
       [](FileSystem* fs, const Fixture& f) {
         Attributes a;
         return fs->Write(f.small, 70000, "past the threshold", Stability::kStable, &a);
       }},
      {"write_blocks",
       [](FileSystem* fs, const Fixture& f) {
         Attributes a;
         return fs->Write(f.big, 65000, std::string(3000, 'w'), Stability::kStable, &a);
       }},
      {"truncate_to_inline",
       [](FileSystem* fs, const Fixture& f) {
         SetAttrRequest r;
         r.size = 100;
         Attributes a;
         return fs->SetAttr(f.big, r, &a);
       }},
      {"chmod",
       [](FileSystem* fs, const Fixture& f) {
         SetAttrRequest r;
         r.mode = 0600;
         Attributes a;
         return fs->SetAttr(f.small, r, &a);
       }},
      {"unlink", [](FileSystem* fs, const Fixture& f) { return fs->Unlink(f.top, "big"); }},
      {"unlink_hard_link",
       [](FileSystem* fs, const Fixture& f) { return fs->Unlink(f.dir, "linked2"); }},
      {"link",
       [](FileSystem* fs, const Fixture& f) {
         Attributes a;
         return fs->Link(f.small, f.top, "small2", &a);
       }},
      {"rmdir", [](FileSystem* fs, const Fixture& f) { return fs->Rmdir(f.top, "empty"); }},
      {"rename_replace",
       [](FileSystem* fs, const Fixture& f) { return fs->Rename(f.dir, "small", f.top, "big"); }},
      {"rename_dir",
       [](FileSystem* fs, const Fixture& f) { return fs->Rename(f.top, "empty", f.dir, "moved"); }},
      {"open_unlink_close",
       [](FileSystem* fs, const Fixture& f) {
         KVFS_RETURN_IF_ERROR(fs->OpenFile(f.big));
         Status s = fs->Unlink(f.top, "big");
         Status c = fs->CloseFile(f.big);
         return s.ok() ? c : s;
       }},
  };
}

TEST(ErrorPathTest, EveryKVCallFailureIsCleanAndAtomic) {
  int injected = 0;
  for (const Scenario& sc : Scenarios()) {
    SCOPED_TRACE(sc.name);
    // Reference run without faults: the states before and after.
    std::string before, after;
    uint64_t calls;
    {
      auto mem = NewMemoryStore();
      auto* fi = new FaultInjectionStore(std::move(mem));
      std::unique_ptr<FileSystem> fs;
      ASSERT_TRUE(FileSystem::Open(FileSystemOptions(), std::unique_ptr<KVStore>(fi), &fs).ok());
      Fixture fx;
      Build(fs.get(), &fx);
      ASSERT_TRUE(DescribeTree(fs.get(), kRootIno, "", &before).ok());
      uint64_t start = fi->CallCount();
      Status s = sc.op(fs.get(), fx);
      ASSERT_TRUE(s.ok()) << s.ToString();
      calls = fi->CallCount() - start;
      ASSERT_TRUE(DescribeTree(fs.get(), kRootIno, "", &after).ok());
      ASSERT_NE(before, after);
    }
    ASSERT_GT(calls, 0u);
    for (uint64_t k = 0; k < calls; ++k) {
      SCOPED_TRACE("failing call " + std::to_string(k) + " of " + std::to_string(calls));
      auto mem = NewMemoryStore();
      KVStore* base = mem.get();
      auto* fi = new FaultInjectionStore(base);  // non-owning: `mem` outlives it
      std::unique_ptr<FileSystem> fs;
      ASSERT_TRUE(FileSystem::Open(FileSystemOptions(), std::unique_ptr<KVStore>(fi), &fs).ok());
      Fixture fx;
      Build(fs.get(), &fx);
      fi->FailCall(k);
      Status s = sc.op(fs.get(), fx);
      fi->Heal();
      EXPECT_TRUE(s.ok() || s.posix_errno() == EIO) << s.ToString();
      if (!s.ok()) {
        ++injected;
        // A failed operation is judged after a restart, which also drops
        // what only lived in memory (open files, orphans).
        fs.reset();
        ASSERT_TRUE(
            FileSystem::Open(FileSystemOptions(), std::make_unique<FaultInjectionStore>(base), &fs)
                .ok());
      }
      FsckReport report;
      ASSERT_TRUE(Fsck(base, DefaultNameHasher(), &report).ok());
      for (const auto& p : report.problems) ADD_FAILURE() << "fsck: " << p;
      std::string now;
      ASSERT_TRUE(DescribeTree(fs.get(), kRootIno, "", &now).ok());
      if (s.ok()) {
        EXPECT_EQ(now, after);
      } else {
        EXPECT_TRUE(now == before || now == after) << now;
      }
      // The file system keeps working after the failure.
      Attributes a;
      EXPECT_TRUE(fs->Create(fx.top, "afterwards", NewObject(), true, &a).ok());
    }
  }
  EXPECT_GT(injected, 50);
}

}  // namespace
}  // namespace kvfs

namespace kvfs {
namespace {

// Fsck must notice each kind of damage (otherwise the tests that rely on it
// prove nothing).
TEST(FsckTest, DetectsDamage) {
  struct Damage {
    const char* name;
    std::function<void(KVStore*, const Fixture&)> apply;
    const char* expect;  // substring of one reported problem
  };
  std::vector<Damage> damages = {
      {"stray block",
       [](KVStore* kv, const Fixture& f) {
         ASSERT_TRUE(kv->Put(Column::kBlocks, schema::BlockKey(f.small, 0), "x").ok());
       },
       "not in blocks"},
      {"block past end",
       [](KVStore* kv, const Fixture& f) {
         ASSERT_TRUE(kv->Put(Column::kBlocks, schema::BlockKey(f.big, 9), "x").ok());
       },
       "past the end"},
      {"index entry lost",
       [](KVStore* kv, const Fixture& f) {
         ASSERT_TRUE(kv->Delete(Column::kInodes, schema::InodeKey(f.small)).ok());
       },
       "not in the inode index"},
      {"usage counter off",
       [](KVStore* kv, const Fixture&) {
         WriteBatch b;
         b.Add(Column::kMeta, schema::TotalBytesKey(), 1);
         ASSERT_TRUE(kv->Write(WriteOptions(), b).ok());
       },
       "total bytes"},
      {"nlink wrong",
       [](KVStore* kv, const Fixture& f) {
         std::string v;
         ASSERT_TRUE(kv->Get(Column::kInodes, schema::InodeKey(f.linked), &v).ok());
         schema::InodeLocation loc;
         ASSERT_TRUE(schema::DecodeLocation(v, &loc).ok());
         loc.record.nlink = 3;
         ASSERT_TRUE(
             kv->Put(Column::kInodes, schema::InodeKey(f.linked), schema::EncodeLocation(loc))
                 .ok());
       },
       "nlink 3"},
      {"entries of a removed directory",
       [](KVStore* kv, const Fixture&) {
         schema::Bucket b;
         schema::Entry e;
         e.name = "ghost";
         e.ino = 12345;
         b.Insert(e);
         ASSERT_TRUE(
             kv->Put(Column::kEntries, schema::EntryKey(999999, 5), schema::EncodeBucket(b)).ok());
       },
       "does not exist"},
      {"corrupt value",
       [](KVStore* kv, const Fixture& f) {
         ASSERT_TRUE(kv->Put(Column::kInodes, schema::InodeKey(f.top), "\x07garbage").ok());
       },
       "bad inode index"},
  };
  for (const auto& d : damages) {
    SCOPED_TRACE(d.name);
    auto mem = NewMemoryStore();
    std::unique_ptr<FileSystem> fs;
    ASSERT_TRUE(
        FileSystem::Open(FileSystemOptions(), std::make_unique<FaultInjectionStore>(mem.get()), &fs)
            .ok());
    Fixture fx;
    Build(fs.get(), &fx);
    FsckReport clean;
    ASSERT_TRUE(Fsck(mem.get(), DefaultNameHasher(), &clean).ok());
    ASSERT_TRUE(clean.ok());
    d.apply(mem.get(), fx);
    FsckReport report;
    ASSERT_TRUE(Fsck(mem.get(), DefaultNameHasher(), &report).ok());
    bool found = false;
    for (const auto& p : report.problems) found |= p.find(d.expect) != std::string::npos;
    EXPECT_TRUE(found) << "problems: " << ::testing::PrintToString(report.problems);
  }
}

}  // namespace
}  // namespace kvfs
