#include "ingest/tree_builder.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/fs/coding.h"

namespace kvfs::ingest {

namespace {

using schema::InodeRecord;

bool IsSpecial(MemberType t) {
  return t == MemberType::kCharDevice || t == MemberType::kBlockDevice || t == MemberType::kFifo ||
         t == MemberType::kSocket;
}

InodeRecord DefaultDirRecord(Timespec now) {
  InodeRecord r;
  r.type = FileType::kDirectory;
  r.mode = 0755;
  r.atime = r.mtime = r.ctime = now;
  r.change = 1;
  return r;
}

}  // namespace

Status ReadStoreLayout(KVStore* store, const NameHasher& hasher, StoreLayout* out) {
  std::string value;
  Status s = store->Get(Column::kMeta, schema::kSuperKey, &value);
  if (s.IsNotFound()) return Status::IOError("not a KVFS store: it has no superblock");
  KVFS_RETURN_IF_ERROR(s);
  schema::Superblock sb;
  KVFS_RETURN_IF_ERROR(schema::DecodeSuperblock(value, &sb));
  if (sb.hash_name != hasher.name) {
    return Status::InvalidArgument("store uses name hash " + sb.hash_name + ", not " + hasher.name);
  }
  if (sb.block_size == 0 || sb.inline_threshold > sb.block_size) {
    return Status::Corruption("superblock has a bad block size or inline threshold");
  }
  out->hasher = hasher;
  out->inline_threshold = sb.inline_threshold;
  out->block_size = sb.block_size;
  return Status::OK();
}

Status SplitMemberPath(std::string_view path, std::string_view top, std::string_view alias,
                       std::vector<std::string_view>* components) {
  components->clear();
  const std::string quoted = "'" + std::string(path.substr(0, 200)) + "'";
  if (path.empty()) return Status::InvalidArgument("member with an empty path");
  if (path.size() > kMaxPathLength) {
    return Status::FromErrno(
        ENAMETOOLONG,
        "member path longer than " + std::to_string(kMaxPathLength) + " bytes: " + quoted + "...");
  }
  if (path.front() == '/') {
    return Status::InvalidArgument("member " + quoted + " has an absolute path");
  }
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return Status::InvalidArgument("member " + quoted + " has a '..' component");
    }
    if (part.size() > kMaxNameLength) {
      return Status::FromErrno(ENAMETOOLONG,
                               "member " + quoted + " has a name longer than 255 bytes");
    }
    components->push_back(part);
  }
  if (!components->empty() &&
      (components->front() == top || (!alias.empty() && components->front() == alias))) {
    components->erase(components->begin());
  }
  return Status::OK();
}

TreeBuilder::TreeBuilder(const StoreLayout& layout, uint64_t range, std::string top_name,
                         BulkLoader* loader, const TreeBuilderOptions& options)
    : layout_(layout),
      range_(range),
      top_name_(std::move(top_name)),
      alias_(options.alias),
      loader_(loader),
      options_(options),
      entries_(options.work_dir, "entries", options.sort_memory_bytes / 4 * 3),
      index_(options.work_dir, "index", options.sort_memory_bytes / 4) {
  next_local_ = std::max<uint64_t>(2, options.first_local);
  Dir top;
  top.name = top_name_;
  top.record = DefaultDirRecord(options_.now);
  dirs_.emplace(schema::RangeOwnerIno(range_), std::move(top));
  stats_.directories = 1;
}

std::string TreeBuilder::ChildKey(Ino parent, std::string_view name) {
  std::string k;
  k.reserve(8 + name.size());
  PutBigEndian64(&k, parent);
  k.append(name);
  return k;
}

uint64_t TreeBuilder::FileKey(Ino parent, std::string_view name) {
  // The parent is hashed as data, not as XXH3's seed: for inputs of up to 8
  // bytes the seed is mixed in almost linearly, so short names in
  // neighbouring directories ("f13" under inode 5, "f19" under inode 7)
  // collided and were refused as duplicates.
  const std::string key = ChildKey(parent, name);
  return XXH3_64bits(key.data(), key.size());
}

InodeRecord TreeBuilder::RecordOf(const Member& m, FileType type) const {
  InodeRecord r;
  r.type = type;
  r.mode = m.mode & 07777;
  r.uid = m.uid;
  r.gid = m.gid;
  r.nlink = type == FileType::kDirectory ? 2 : 1;
  r.mtime = m.mtime;
  r.atime = m.has_atime ? m.atime : m.mtime;
  r.ctime = options_.now;
  r.change = 1;
  r.inline_data = true;
  return r;
}

Status TreeBuilder::Add(const Member& m, ArchiveReader* archive) {
  ++stats_.members;
  if (next_local_ > schema::kLocalMask) {
    return Status::FromErrno(ENOSPC, "the archive has more members than an inode range holds");
  }
  std::vector<std::string_view> parts;
  KVFS_RETURN_IF_ERROR(SplitMemberPath(m.path, top_name_, alias_, &parts));
  if (parts.empty()) {
    if (m.type != MemberType::kDirectory) {
      return Status::InvalidArgument(Where(m) + " is the top of the tree but not a directory");
    }
    Dir& top = dirs_[schema::RangeOwnerIno(range_)];
    top.record = RecordOf(m, FileType::kDirectory);
    return Status::OK();
  }
  if (IsSpecial(m.type)) {
    if (options_.skip_special) {
      ++stats_.skipped;
      return Status::OK();
    }
    return Status::InvalidArgument(Where(m) +
                                   " is a device node, FIFO or socket; these are refused "
                                   "(ask to skip them)");
  }
  Ino parent;
  KVFS_RETURN_IF_ERROR(ParentDir(parts, &parent));
  const std::string_view name = parts.back();
  switch (m.type) {
    case MemberType::kDirectory:
      return AddDirectory(m, parent, name);
    case MemberType::kHardLink:
      return AddHardLink(m, parent, name);
    default:
      return AddNonDirectory(m, parent, name, archive);
  }
}

Status TreeBuilder::MakeDir(Ino parent, std::string_view name, const InodeRecord& rec, Ino* ino) {
  if (files_.count(FileKey(parent, name))) {
    return Status::InvalidArgument("'" + std::string(name) +
                                   "' is both a directory and a non-directory in the archive");
  }
  *ino = NewIno();
  Dir d;
  d.parent = parent;
  d.name.assign(name);
  d.record = rec;
  dirs_.emplace(*ino, std::move(d));
  dir_children_.emplace(ChildKey(parent, name), *ino);
  Dir& p = dirs_[parent];
  ++p.entries;
  ++p.subdirs;
  ++stats_.directories;
  ++usage_inodes_;
  schema::InodeLocation loc;
  loc.parent = parent;
  loc.bucket = BucketOf(name);
  return index_.Add(schema::InodeKey(*ino), schema::EncodeLocation(loc));
}

Status TreeBuilder::ParentDir(const std::vector<std::string_view>& parts, Ino* dir) {
  const size_t n = parts.size() - 1;
  size_t k = 0;
  while (k < n && k < last_parts_.size() && last_parts_[k] == parts[k]) ++k;
  Ino cur = k == 0 ? schema::RangeOwnerIno(range_) : last_dirs_[k - 1];
  last_parts_.resize(k);
  last_dirs_.resize(k);
  for (size_t i = k; i < n; ++i) {
    auto it = dir_children_.find(ChildKey(cur, parts[i]));
    Ino next;
    if (it != dir_children_.end()) {
      next = it->second;
    } else {
      KVFS_RETURN_IF_ERROR(MakeDir(cur, parts[i], DefaultDirRecord(options_.now), &next));
    }
    last_parts_.emplace_back(parts[i]);
    last_dirs_.push_back(next);
    cur = next;
  }
  *dir = cur;
  return Status::OK();
}

Status TreeBuilder::AddDirectory(const Member& m, Ino parent, std::string_view name) {
  auto it = dir_children_.find(ChildKey(parent, name));
  if (it != dir_children_.end()) {
    // Seen before (implied by a deeper member, or listed twice): the header
    // sets its attributes.
    dirs_[it->second].record = RecordOf(m, FileType::kDirectory);
    return Status::OK();
  }
  Ino ino;
  Status s = MakeDir(parent, name, RecordOf(m, FileType::kDirectory), &ino);
  if (!s.ok()) return Status::InvalidArgument(Where(m) + ": " + s.message());
  return Status::OK();
}

Status TreeBuilder::EmitEntry(Ino parent, const schema::Entry& e, bool index) {
  const uint64_t bucket = BucketOf(e.name);
  std::string key = schema::EntryKey(parent, bucket);
  PutBigEndian64(&key, seq_++);
  schema::Bucket one;
  one.entries.push_back(e);
  KVFS_RETURN_IF_ERROR(entries_.Add(key, schema::EncodeBucket(one)));
  if (!index) return Status::OK();
  schema::InodeLocation loc;
  loc.parent = parent;
  loc.bucket = bucket;
  return index_.Add(schema::InodeKey(e.ino), schema::EncodeLocation(loc));
}

Status TreeBuilder::AddNonDirectory(const Member& m, Ino parent, std::string_view name,
                                    ArchiveReader* archive) {
  const uint64_t key = FileKey(parent, name);
  if (dir_children_.count(ChildKey(parent, name)) || files_.count(key)) {
    return Status::InvalidArgument(Where(m) + " appears twice in the archive");
  }
  schema::Entry e;
  e.name.assign(name);
  e.ino = NewIno();
  e.embedded = true;
  switch (m.type) {
    case MemberType::kRegular:
      e.type = FileType::kRegular;
      e.record = RecordOf(m, e.type);
      KVFS_RETURN_IF_ERROR(ReadContents(m, e.ino, &e.record, archive));
      ++stats_.files;
      break;
    case MemberType::kSymlink:
      if (m.link_target.empty()) {
        return Status::InvalidArgument(Where(m) + " is a symlink with an empty target");
      }
      if (m.link_target.size() > kMaxSymlinkLength) {
        return Status::FromErrno(ENAMETOOLONG,
                                 Where(m) + " is a symlink with a target over 4095 bytes");
      }
      e.type = FileType::kSymlink;
      e.record = RecordOf(m, e.type);
      e.record.data = m.link_target;
      e.record.size = m.link_target.size();
      ++stats_.symlinks;
      break;
    default:
      return Status::InvalidArgument(Where(m) + " has an unsupported type");
  }
  files_.emplace(key, FileRef{e.ino, e.type});
  ++dirs_[parent].entries;
  ++usage_inodes_;
  usage_bytes_ += schema::UsageBytes(e.record);
  return EmitEntry(parent, e, /*index=*/true);
}

Status TreeBuilder::ReadContents(const Member& m, Ino ino, InodeRecord* rec,
                                 ArchiveReader* archive) {
  // The quota counts what the tree stores (usage), so holes are free.
  auto charge = [&](uint64_t bytes) -> Status {
    if (options_.max_tree_bytes != 0 &&
        usage_bytes_ + rec->stored + bytes > options_.max_tree_bytes) {
      return Status::FromErrno(EDQUOT, "the tree holds more than the quota of " +
                                           std::to_string(options_.max_tree_bytes) + " bytes (at " +
                                           Where(m) + ")");
    }
    return Status::OK();
  };
  rec->size = m.size;
  rec->stored = 0;
  stats_.bytes += m.size;
  const bool inline_data = m.size <= layout_.inline_threshold;
  rec->inline_data = inline_data;
  if (inline_data) {
    KVFS_RETURN_IF_ERROR(charge(m.size));
    rec->data.assign(m.size, '\0');
  }
  const uint32_t bs = layout_.block_size;
  uint64_t current = UINT64_MAX;  // the block being filled in block_, if any
  uint64_t next_block = 0;        // blocks below this one are written
  block_.clear();
  auto add = [&](uint64_t block, std::string_view bytes) -> Status {
    KVFS_RETURN_IF_ERROR(charge(bytes.size()));
    ++stats_.blocks;
    next_block = block + 1;
    rec->stored += bytes.size();
    return loader_->Add(Column::kBlocks, schema::BlockKey(ino, block), bytes);
  };
  auto flush = [&]() -> Status {
    if (current == UINT64_MAX) return Status::OK();
    const uint64_t block = std::exchange(current, UINT64_MAX);
    return block_.empty() ? Status::OK() : add(block, block_);
  };
  for (;;) {
    uint64_t offset;
    std::string_view data;
    bool end;
    KVFS_RETURN_IF_ERROR(archive->ReadData(&offset, &data, &end));
    if (end) break;
    if (offset > m.size || data.size() > m.size - offset) {
      return Status::InvalidArgument(Where(m) + " has contents past its size");
    }
    if (inline_data) {
      std::memcpy(rec->data.data() + offset, data.data(), data.size());
      continue;
    }
    while (!data.empty()) {
      const uint64_t block = offset / bs;
      const size_t within = static_cast<size_t>(offset % bs);
      const size_t n = std::min<size_t>(data.size(), bs - within);
      if (block != current) {
        KVFS_RETURN_IF_ERROR(flush());
        if (block < next_block) {
          return Status::InvalidArgument(Where(m) + " has contents out of order");
        }
      }
      if (block != current && within == 0 && n == bs) {
        // A whole block in this piece: straight from the archive's buffer.
        KVFS_RETURN_IF_ERROR(add(block, data.substr(0, n)));
      } else {
        if (block != current) {
          current = block;
          block_.clear();
        }
        if (block_.size() < within + n) block_.resize(within + n, '\0');
        std::memcpy(block_.data() + within, data.data(), n);
      }
      offset += n;
      data.remove_prefix(n);
    }
  }
  return flush();
}

Status TreeBuilder::AddHardLink(const Member& m, Ino parent, std::string_view name) {
  std::vector<std::string_view> target;
  KVFS_RETURN_IF_ERROR(SplitMemberPath(m.link_target, top_name_, alias_, &target));
  // Resolve the target without creating anything.
  Ino dir = schema::RangeOwnerIno(range_);
  bool found = !target.empty();
  for (size_t i = 0; found && i + 1 < target.size(); ++i) {
    auto it = dir_children_.find(ChildKey(dir, target[i]));
    found = it != dir_children_.end();
    if (found) dir = it->second;
  }
  auto ref = found ? files_.find(FileKey(dir, target.back())) : files_.end();
  if (ref == files_.end()) {
    return Status::InvalidArgument(Where(m) + " is a hard link to '" + m.link_target +
                                   "', which is not an earlier file of the archive");
  }
  const uint64_t key = FileKey(parent, name);
  if (dir_children_.count(ChildKey(parent, name)) || files_.count(key)) {
    return Status::InvalidArgument(Where(m) + " appears twice in the archive");
  }
  const FileRef target_ref = ref->second;
  schema::Entry e;
  e.name.assign(name);
  e.ino = target_ref.ino;
  e.type = target_ref.type;
  e.embedded = false;
  ++extra_links_[e.ino];
  files_.emplace(key, target_ref);
  ++dirs_[parent].entries;
  ++stats_.hard_links;
  return EmitEntry(parent, e, /*index=*/false);
}

Status TreeBuilder::WriteEntries() {
  std::string current_key;
  schema::Bucket bucket;
  auto flush = [&]() -> Status {
    if (bucket.entries.empty()) return Status::OK();
    if (bucket.entries.size() > static_cast<size_t>(schema::kMaxSlots)) {
      Ino dir;
      uint64_t b;
      schema::ParseEntryKey(current_key, &dir, &b);
      return Status::FromErrno(ENOSPC, "more than " + std::to_string(schema::kMaxSlots) +
                                           " names of directory '" + dirs_[dir].name +
                                           "' share a hash bucket");
    }
    uint8_t slot = 0;
    for (schema::Entry& e : bucket.entries) e.slot = slot++;
    Status s = loader_->Add(Column::kEntries, current_key, schema::EncodeBucket(bucket));
    bucket.entries.clear();
    return s;
  };
  schema::Bucket one;
  Status s = entries_.Finish([&](std::string_view key, std::string_view value) -> Status {
    std::string_view entry_key = key.substr(0, 16);
    if (entry_key != current_key) {
      KVFS_RETURN_IF_ERROR(flush());
      current_key.assign(entry_key);
    }
    KVFS_RETURN_IF_ERROR(schema::DecodeBucket(value, &one));
    schema::Entry& e = one.entries.front();
    auto links = extra_links_.find(e.ino);
    if (e.embedded && links != extra_links_.end()) {
      // A hard-linked file: its record moves to the inode index.
      InodeRecord rec = std::move(e.record);
      rec.nlink = 1 + links->second;
      detached_.emplace(e.ino, std::move(rec));
      e.embedded = false;
      e.record = InodeRecord();
    }
    bucket.entries.splice(bucket.entries.end(), one.entries);
    return Status::OK();
  });
  KVFS_RETURN_IF_ERROR(s);
  return flush();
}

Status TreeBuilder::WriteIndex() {
  return index_.Finish([&](std::string_view key, std::string_view value) -> Status {
    Ino ino;
    if (!schema::ParseInodeKey(key, &ino)) return Status::Corruption("bad inode key in sort run");
    auto d = detached_.find(ino);
    if (d == detached_.end()) return loader_->Add(Column::kInodes, key, value);
    schema::InodeLocation loc;
    loc.detached = true;
    loc.record = std::move(d->second);
    return loader_->Add(Column::kInodes, key, schema::EncodeLocation(loc));
  });
}

Status TreeBuilder::Finish(LoadedTree* tree) {
  const Ino top_ino = schema::RangeOwnerIno(range_);
  for (auto& [ino, d] : dirs_) {
    d.record.nlink = 2 + d.subdirs;
    d.record.size = d.entries;
    if (ino == top_ino) continue;
    schema::Entry e;
    e.name = d.name;
    e.ino = ino;
    e.type = FileType::kDirectory;
    e.embedded = true;
    e.record = d.record;
    KVFS_RETURN_IF_ERROR(EmitEntry(d.parent, e, /*index=*/false));
  }
  KVFS_RETURN_IF_ERROR(WriteEntries());
  KVFS_RETURN_IF_ERROR(WriteIndex());
  stats_.sort_runs = entries_.runs() + index_.runs();

  const InodeRecord& top = dirs_[top_ino].record;
  tree->range = range_;
  tree->name = top_name_;
  Attributes& a = tree->attrs;
  a = Attributes();
  a.ino = top_ino;
  a.type = FileType::kDirectory;
  a.mode = top.mode;
  a.uid = top.uid;
  a.gid = top.gid;
  a.nlink = top.nlink;
  a.size = top.size;
  a.atime = top.atime;
  a.mtime = top.mtime;
  a.ctime = top.ctime;
  a.change = top.change;
  tree->high_water = next_local_;
  tree->bytes = usage_bytes_;
  tree->inodes = usage_inodes_;
  tree->replace = false;
  return Status::OK();
}

}  // namespace kvfs::ingest
