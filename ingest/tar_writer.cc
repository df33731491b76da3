#include "ingest/tar_writer.h"

#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>

namespace kvfs::ingest {

namespace {

constexpr size_t kBlock = 512;
// Output is handed to the compressor in pieces of about this size.
constexpr size_t kFlushBytes = 1 << 20;

// Offsets and widths of the ustar header fields.
struct Field {
  size_t offset, width;
};
constexpr Field kName{0, 100}, kMode{100, 8}, kUid{108, 8}, kGid{116, 8}, kSize{124, 12},
    kMtime{136, 12}, kChecksum{148, 8}, kLinkname{157, 100}, kMagic{257, 6}, kVersion{263, 2},
    kDevMajor{329, 8}, kDevMinor{337, 8}, kPrefix{345, 155};
constexpr size_t kTypeflag = 156;

uint64_t Padding(uint64_t size) { return (kBlock - size % kBlock) % kBlock; }

// Writes `v` as width-1 octal digits and a NUL; if it does not fit, in GNU's
// base-256 form (0x80, then the value big-endian), which GNU tar and
// libarchive read, and returns false so that a pax record carries it too.
bool PutNumber(char* header, Field f, uint64_t v) {
  char* p = header + f.offset;
  if (v < (1ull << (3 * (f.width - 1)))) {
    uint64_t x = v;
    for (size_t i = f.width - 1; i-- > 0;) {
      p[i] = static_cast<char>('0' + (x & 7));
      x >>= 3;
    }
    p[f.width - 1] = '\0';
    return true;
  }
  std::memset(p, 0, f.width);
  p[0] = static_cast<char>(0x80);
  uint64_t x = v;
  for (size_t i = f.width; i-- > 1 && x != 0;) {
    p[i] = static_cast<char>(x & 0xff);
    x >>= 8;
  }
  return false;
}

void PutString(char* header, Field f, std::string_view s) {
  std::memcpy(header + f.offset, s.data(), std::min(s.size(), f.width));
}

// A pax record "LEN key=value\n", where LEN counts the whole record.
void AddRecord(std::string* pax, std::string_view key, std::string_view value) {
  const size_t body = 1 + key.size() + 1 + value.size() + 1;  // ' ' key '=' value '\n'
  size_t len = body + std::to_string(body).size();
  if (std::to_string(len).size() + body != len) ++len;  // one more digit
  pax->append(std::to_string(len)).append(" ").append(key).append("=").append(value).append("\n");
}

// Seconds and nanoseconds as a pax time: "-1.5", "12", "12.000000001".
std::string PaxTime(const Timespec& t) {
  int64_t sec = t.sec;
  uint32_t nsec = t.nsec;
  std::string sign;
  if (sec < 0) {
    sign = "-";
    if (nsec != 0) {
      sec += 1;
      nsec = 1000000000 - nsec;
    }
    sec = -sec;
  }
  std::string s = sign + std::to_string(sec);
  if (nsec != 0) {
    std::string frac = std::to_string(nsec);
    frac.insert(0, 9 - frac.size(), '0');
    frac.erase(frac.find_last_not_of('0') + 1);
    s += "." + frac;
  }
  return s;
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    // No overlong forms, no surrogates, nothing past U+10FFFF.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return false;
    i += n + 1;
  }
  return true;
}

// Puts `path` into the ustar name and prefix fields if it fits there
// (ASCII, and at most 100 bytes or split at a '/' into at most 155 + 100).
bool PutUstarName(char* header, std::string_view path) {
  if (path.empty() || !IsAscii(path)) return false;
  if (path.size() <= kName.width) {
    PutString(header, kName, path);
    return true;
  }
  const size_t from = path.size() - kName.width - 1;
  for (size_t i = path.find('/', from); i != std::string_view::npos; i = path.find('/', i + 1)) {
    if (i > kPrefix.width) break;
    if (i + 1 < path.size()) {
      PutString(header, kPrefix, path.substr(0, i));
      PutString(header, kName, path.substr(i + 1));
      return true;
    }
  }
  return false;
}

// Sets the checksum of header block `h`: the sum of its bytes with the
// checksum field counted as spaces, as 6 octal digits, a NUL and a space.
void SetChecksum(char* h) {
  std::memset(h + kChecksum.offset, ' ', kChecksum.width);
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(h[i]);
  PutNumber(h, Field{kChecksum.offset, kChecksum.width - 1}, sum);
}

// The last component of a member path ("a/b/" -> "b/").
std::string_view BaseName(std::string_view path) {
  const size_t end = path.ends_with('/') ? path.size() - 1 : path.size();
  const size_t slash = path.rfind('/', end == 0 ? 0 : end - 1);
  return slash == std::string_view::npos || slash >= end ? path : path.substr(slash + 1);
}

}  // namespace

TarWriter::TarWriter(std::unique_ptr<Compressor> out) : out_(std::move(out)) {}

TarWriter::~TarWriter() = default;

Status TarWriter::Open(ObjectWriter* out, Compression compression,
                       std::unique_ptr<TarWriter>* writer) {
  std::unique_ptr<Compressor> c;
  KVFS_RETURN_IF_ERROR(Compressor::Open(out, compression, /*threads=*/0, &c));
  writer->reset(new TarWriter(std::move(c)));
  return Status::OK();
}

Status TarWriter::Emit(std::string_view bytes) {
  if (buffer_.size() + bytes.size() < kFlushBytes) {
    buffer_.append(bytes);
    return Status::OK();
  }
  if (!buffer_.empty()) {
    KVFS_RETURN_IF_ERROR(out_->Write(buffer_));
    buffer_.clear();
  }
  return out_->Write(bytes);
}

Status TarWriter::EmitZeros(uint64_t n) {
  static const char kZeros[kBlock] = {};
  for (; n > 0; n -= std::min<uint64_t>(n, kBlock)) {
    KVFS_RETURN_IF_ERROR(Emit(std::string_view(kZeros, std::min<uint64_t>(n, kBlock))));
  }
  return Status::OK();
}

Status TarWriter::EndMember() {
  uint64_t short_by = 0;
  for (size_t i = piece_; i < pieces_.size(); ++i) short_by += pieces_[i].length;
  if (short_by != 0) {
    return Status::InvalidArgument("tar: the previous member is " + std::to_string(short_by) +
                                   " bytes short of its size");
  }
  pieces_.clear();
  piece_ = 0;
  return Status::OK();
}

Status TarWriter::WriteHeaderBlocks(const Member& m, std::string_view name, bool name_in_pax,
                                    uint64_t size, std::string pax) {
  char h[kBlock] = {};
  // Names: the ustar fields when they hold them, pax records otherwise.
  bool binary = false;
  auto long_text = [&](std::string_view key, std::string_view value) {
    AddRecord(&pax, key, value);
    binary = binary || !IsUtf8(value);
  };
  if (!PutUstarName(h, name)) {
    if (name_in_pax) long_text("path", name);
    PutString(h, kName, name.substr(0, kName.width));
  }
  const bool linked = m.type == MemberType::kSymlink || m.type == MemberType::kHardLink;
  if (linked) {
    if (m.link_target.size() <= kLinkname.width && IsAscii(m.link_target)) {
      PutString(h, kLinkname, m.link_target);
    } else {
      long_text("linkpath", m.link_target);
      PutString(h, kLinkname, std::string_view(m.link_target).substr(0, kLinkname.width));
    }
  }
  if (binary) pax.insert(0, "21 hdrcharset=BINARY\n");

  // Numbers: octal fields, with pax records for what they cannot hold.
  PutNumber(h, kMode, m.mode & 07777);
  if (!PutNumber(h, kUid, m.uid)) AddRecord(&pax, "uid", std::to_string(m.uid));
  if (!PutNumber(h, kGid, m.gid)) AddRecord(&pax, "gid", std::to_string(m.gid));
  if (!PutNumber(h, kSize, size)) AddRecord(&pax, "size", std::to_string(size));
  const bool mtime_fits = PutNumber(h, kMtime, m.mtime.sec < 0 ? 0 : m.mtime.sec);
  if (!mtime_fits || m.mtime.sec < 0 || m.mtime.nsec != 0) {
    AddRecord(&pax, "mtime", PaxTime(m.mtime));
  }
  if (m.has_atime) AddRecord(&pax, "atime", PaxTime(m.atime));
  char type = '0';
  switch (m.type) {
    case MemberType::kRegular:
      break;
    case MemberType::kHardLink:
      type = '1';
      break;
    case MemberType::kSymlink:
      type = '2';
      break;
    case MemberType::kCharDevice:
    case MemberType::kBlockDevice: {
      type = m.type == MemberType::kCharDevice ? '3' : '4';
      const dev_t dev = static_cast<dev_t>(m.rdev);
      if (!PutNumber(h, kDevMajor, major(dev))) {
        AddRecord(&pax, "SCHILY.devmajor", std::to_string(major(dev)));
      }
      if (!PutNumber(h, kDevMinor, minor(dev))) {
        AddRecord(&pax, "SCHILY.devminor", std::to_string(minor(dev)));
      }
      break;
    }
    case MemberType::kDirectory:
      type = '5';
      break;
    case MemberType::kFifo:
      type = '6';
      break;
    case MemberType::kSocket:
      return Status::NotSupported("tar cannot hold sockets ('" + m.path + "')");
  }
  h[kTypeflag] = type;
  PutString(h, kMagic, std::string_view("ustar\0", 6));
  PutString(h, kVersion, "00");

  if (!pax.empty()) {
    // The extended header: a member of type 'x' whose contents are the
    // records, named after the member for people listing the tarball raw.
    char x[kBlock] = {};
    const std::string xname = "PaxHeaders/" + std::string(BaseName(name).substr(0, 80));
    if (!PutUstarName(x, xname)) PutString(x, kName, "PaxHeaders/member");
    PutNumber(x, kMode, 0644);
    PutNumber(x, kUid, 0);
    PutNumber(x, kGid, 0);
    PutNumber(x, kSize, pax.size());
    PutNumber(x, kMtime, m.mtime.sec < 0 ? 0 : m.mtime.sec);
    x[kTypeflag] = 'x';
    PutString(x, kMagic, std::string_view("ustar\0", 6));
    PutString(x, kVersion, "00");
    SetChecksum(x);
    KVFS_RETURN_IF_ERROR(Emit(std::string_view(x, kBlock)));
    pax.append(Padding(pax.size()), '\0');
    KVFS_RETURN_IF_ERROR(Emit(pax));
  }
  SetChecksum(h);
  return Emit(std::string_view(h, kBlock));
}

Status TarWriter::WriteHeader(const Member& m) {
  if (m.path.empty()) return Status::InvalidArgument("tar: member without a path");
  KVFS_RETURN_IF_ERROR(EndMember());
  const uint64_t size = m.type == MemberType::kRegular ? m.size : 0;
  KVFS_RETURN_IF_ERROR(WriteHeaderBlocks(m, m.path, /*name_in_pax=*/true, size, std::string()));
  if (size > 0) pieces_.push_back(Piece{size, Padding(size)});
  return Status::OK();
}

Status TarWriter::WriteSparseHeader(const Member& m, const std::vector<DataExtent>& extents) {
  if (m.path.empty()) return Status::InvalidArgument("tar: member without a path");
  if (m.type != MemberType::kRegular) {
    return Status::InvalidArgument("tar: only regular files can be sparse ('" + m.path + "')");
  }
  KVFS_RETURN_IF_ERROR(EndMember());
  // The map (GNU sparse 1.0): the number of runs, then each run's offset
  // and length, one number a line; a file that ends in a hole ends with a
  // run of length 0 at its size, so readers restore the size.
  // Runs are padded to whole blocks (but not past the size).
  uint64_t data = 0, end = 0;
  std::string runs;
  size_t count = 0;
  for (const DataExtent& e : extents) {
    if (e.offset < end || e.offset % kBlock != 0 || e.length > m.size ||
        e.offset > m.size - e.length) {
      return Status::InvalidArgument("tar: bad data extents for '" + m.path + "'");
    }
    if (e.length == 0) continue;
    const uint64_t stored = std::min(e.length + Padding(e.length), m.size - e.offset);
    runs += std::to_string(e.offset) + "\n" + std::to_string(stored) + "\n";
    ++count;
    pieces_.push_back(Piece{e.length, stored - e.length});
    data += stored;
    end = e.offset + stored;
  }
  if (!pieces_.empty()) pieces_.back().zeros += Padding(data);
  const bool tail = end < m.size || count == 0;
  std::string map = std::to_string(count + (tail ? 1 : 0)) + "\n" + runs;
  if (tail) map += std::to_string(m.size) + "\n0\n";
  map.append(Padding(map.size()), '\0');

  std::string pax;
  if (!IsUtf8(m.path)) pax = "21 hdrcharset=BINARY\n";
  AddRecord(&pax, "GNU.sparse.major", "1");
  AddRecord(&pax, "GNU.sparse.minor", "0");
  AddRecord(&pax, "GNU.sparse.name", m.path);
  AddRecord(&pax, "GNU.sparse.realsize", std::to_string(m.size));
  // The ustar name is for readers that know no sparse files (GNU tar's
  // convention, cut short if need be); GNU.sparse.name is the name.
  const std::string_view base = BaseName(m.path);
  const std::string name =
      m.path.substr(0, m.path.size() - base.size()) + "GNUSparseFile.0/" + std::string(base);
  KVFS_RETURN_IF_ERROR(
      WriteHeaderBlocks(m, name, /*name_in_pax=*/false, map.size() + data, std::move(pax)));
  return Emit(map);
}

Status TarWriter::WriteData(std::string_view data) {
  while (!data.empty()) {
    if (piece_ == pieces_.size()) {
      return Status::InvalidArgument("tar: more data than the member holds");
    }
    Piece& p = pieces_[piece_];
    const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), p.length));
    KVFS_RETURN_IF_ERROR(Emit(data.substr(0, n)));
    data.remove_prefix(n);
    p.length -= n;
    if (p.length == 0) {
      KVFS_RETURN_IF_ERROR(EmitZeros(p.zeros));
      ++piece_;
    }
  }
  return Status::OK();
}

Status TarWriter::Close() {
  if (closed_) return Status::InvalidArgument("tar: closed twice");
  closed_ = true;
  KVFS_RETURN_IF_ERROR(EndMember());
  // End of archive: two zero blocks.
  static const char kEnd[2 * kBlock] = {};
  KVFS_RETURN_IF_ERROR(Emit(std::string_view(kEnd, sizeof(kEnd))));
  if (!buffer_.empty()) {
    KVFS_RETURN_IF_ERROR(out_->Write(buffer_));
    buffer_.clear();
  }
  return out_->Finish();
}

}  // namespace kvfs::ingest
