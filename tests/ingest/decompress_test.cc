// OpenDecompressor: gzip, xz and zstd made by the standard tools come out
// byte for byte, in one piece or several members/streams/frames; corrupt,
// truncated or trailing data fails with EINVAL; anything else passes
// through unchanged.
#include "ingest/decompress.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/file_contents.h"
#include "tests/ingest/ingest_test_util.h"

namespace kvfs::ingest {
namespace {

using ingest_test::RandomBytes;
using kvfs::testing::ReadFileContents;
using kvfs::testing::TempDir;
using kvfs::testing::WriteFileContents;

// Decompresses file `path` (small reads, to cross buffer boundaries).
Status Decompress(const std::string& path, std::string* out) {
  std::unique_ptr<ObjectReader> in, d;
  KVFS_RETURN_IF_ERROR(OpenLocalFile(path, &in));
  KVFS_RETURN_IF_ERROR(OpenDecompressor(std::move(in), 2, &d));
  out->clear();
  std::string buf(10007, '\0');
  for (;;) {
    size_t got = 0;
    KVFS_RETURN_IF_ERROR(d->Read(buf.data(), buf.size(), &got));
    if (got == 0) return Status::OK();
    out->append(buf.data(), got);
  }
}

class DecompressTest : public ::testing::TestWithParam<std::string> {
 protected:
  // Compresses `data` with the tool (gzip, xz, zstd) into a file.
  std::string Compress(const std::string& data, const std::string& name) {
    const std::string raw = dir_.path() + "/" + name;
    WriteFileContents(raw, data);
    const std::string tool = GetParam() == "xz" ? "xz -T2 --block-size=1MiB" : GetParam();
    EXPECT_EQ(std::system((tool + " -q -f -k " + raw).c_str()), 0);
    return raw + "." + (GetParam() == "gzip" ? "gz" : GetParam() == "xz" ? "xz" : "zst");
  }

  TempDir dir_{"kvfs-decompress"};
};

TEST_P(DecompressTest, RoundTripsWholeAndConcatenated) {
  // Compressible and incompressible parts, several buffers long.
  const std::string a = RandomBytes(3 << 20, 1) + std::string(2 << 20, 'z');
  const std::string b = RandomBytes(700000, 2);
  const std::string whole = ReadFileContents(Compress(a, "a"));
  const std::string second = ReadFileContents(Compress(b, "b"));
  WriteFileContents(dir_.path() + "/cat", whole + second);
  std::string out;
  ASSERT_OK(Decompress(dir_.path() + "/cat", &out));
  EXPECT_TRUE(out == a + b);
}

TEST_P(DecompressTest, TruncatedFails) {
  const std::string c = ReadFileContents(Compress(RandomBytes(1 << 20, 3), "t"));
  for (size_t cut : {c.size() - 1, c.size() / 2, size_t{10}}) {
    WriteFileContents(dir_.path() + "/cut", c.substr(0, cut));
    std::string out;
    Status s = Decompress(dir_.path() + "/cut", &out);
    EXPECT_EQ(s.posix_errno(), EINVAL) << cut << ": " << s.ToString();
    EXPECT_NE(s.message().find("archive: "), std::string::npos) << s.ToString();
  }
}

TEST_P(DecompressTest, CorruptionIsDetected) {
  // Flip one byte in the middle of the compressed data, and one near its
  // end (where the checksums are).
  const std::string c =
      ReadFileContents(Compress(std::string(1 << 20, 'q') + RandomBytes(100, 4), "c"));
  for (size_t at : {c.size() / 2, c.size() - 6}) {
    std::string bad = c;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    WriteFileContents(dir_.path() + "/bad", bad);
    std::string out;
    Status s = Decompress(dir_.path() + "/bad", &out);
    EXPECT_EQ(s.posix_errno(), EINVAL) << at << ": " << s.ToString();
  }
}

TEST_P(DecompressTest, TrailingGarbageFailsButZeroPaddingDoesNot) {
  const std::string data = RandomBytes(5000, 5);
  const std::string c = ReadFileContents(Compress(data, "g"));
  WriteFileContents(dir_.path() + "/padded", c + std::string(10240, '\0'));
  std::string out;
  if (GetParam() == "gzip") {
    // Tape-style padding after a gzip stream is common.
    ASSERT_OK(Decompress(dir_.path() + "/padded", &out));
    EXPECT_TRUE(out == data);
  }
  WriteFileContents(dir_.path() + "/garbage", c + "garbage after the stream");
  EXPECT_EQ(Decompress(dir_.path() + "/garbage", &out).posix_errno(), EINVAL);
}

INSTANTIATE_TEST_SUITE_P(Tools, DecompressTest, ::testing::Values("gzip", "xz", "zstd"),
                         [](const auto& info) { return info.param; });

TEST(Decompress, OtherDataPassesThrough) {
  TempDir dir("kvfs-decompress");
  for (const std::string& data : {std::string(), std::string("x"), RandomBytes(3000000, 6),
                                  std::string("BZh91AY&SY") + RandomBytes(100, 7)}) {
    WriteFileContents(dir.path() + "/plain", data);
    std::string out;
    ASSERT_OK(Decompress(dir.path() + "/plain", &out));
    EXPECT_TRUE(out == data) << data.size();
  }
}

}  // namespace
}  // namespace kvfs::ingest
