// TreeWalk: lists a tree in the order an export writes it, on a thread of
// its own, and reads the contents of small files on the way. So the listing
// and part of the reading (RocksDB's block reads and their decompression)
// run on a second core while the caller encodes and writes the entries
// before them, and reads the files the walk left to it.
//
// Order: a directory, then its non-directories as ReadDir lists them, then
// each subdirectory the same way (depth first). Entries come in batches
// (one hand-off between the threads per batch, not per file), and the walk
// stays at most kMaxQueuedBatches batches ahead of the caller, so it holds
// 2.5 MiB of contents at most whatever the tree (tree_walk.cc), besides the
// names of the subdirectories still to visit.
//
// The walk reads files only while it is ahead of the caller (batches were
// still waiting when it handed over its last one); once the caller catches
// up, the walk lists on and leaves the reading to it. So the reading goes to
// whichever thread has time for it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/fs/file_system.h"
#include "common/status.h"

namespace kvfs::ingest {

// One entry of the tree.
struct WalkEntry {
  Attributes attrs;
  // The member path: the top's path and the names below it, joined by '/';
  // a directory's ends with '/'.
  std::string path;
  // Whether the walk read the file's contents (ReadStream(ino, 0,
  // attrs.size)); if so, how the read ended, and where its bytes are in the
  // batch's contents.
  bool read = false;
  Status read_status;
  size_t contents_offset = 0;
  size_t contents_size = 0;
};

// Consecutive entries, and the contents of those the walk read.
struct WalkBatch {
  std::vector<WalkEntry> entries;
  std::string contents;
  // The bytes the walk read for `e` (an entry of this batch with e.read).
  std::string_view ContentsOf(const WalkEntry& e) const {
    return std::string_view(contents).substr(e.contents_offset, e.contents_size);
  }
};

class TreeWalk {
 public:
  // Starts walking directory `top` of `fs` (which must outlive the walk),
  // whose member path is `top_path` (without a trailing '/'). The walk may
  // read the contents of the files for which `wants_contents` is true and
  // whose size is at most kMaxReadBytes (a regular file's); the caller reads
  // the others.
  TreeWalk(FileSystem* fs, const Attributes& top, std::string top_path,
           std::function<bool(const Attributes&)> wants_contents);
  // Stops the walk where it is.
  ~TreeWalk();
  TreeWalk(const TreeWalk&) = delete;
  TreeWalk& operator=(const TreeWalk&) = delete;

  // Replaces *batch (whose buffers the walk reuses) with the next entries;
  // an empty batch once the walk is over. Returns the listing's first error
  // once the entries before it have been handed out.
  Status Next(WalkBatch* batch);

  static constexpr uint64_t kMaxReadBytes = 256 << 10;
  static constexpr size_t kMaxQueuedBatches = 3;

 private:
  void Run(const Attributes& top, const std::string& top_path);
  // Adds the entries of directory `dir`, whose member path is `prefix`
  // (ending with '/'), and of its subdirectories; false once stopped.
  bool WalkContents(Ino dir, const std::string& prefix);
  // Adds one entry to the batch being filled, reading its contents if it is
  // the walk's to read; hands the batch over when it is full.
  bool Add(const Attributes& a, std::string path);
  // Queues the batch being filled; waits while kMaxQueuedBatches are
  // queued. False once stopped.
  bool Publish();

  FileSystem* const fs_;
  const std::function<bool(const Attributes&)> wants_contents_;
  // The walk thread's: the batch it fills, and how many batches were queued
  // before the last one it handed over (the caller's work in hand).
  WalkBatch filling_;
  size_t queued_when_published_ = 0;

  std::mutex mu_;
  std::condition_variable changed_;  // a batch queued or taken, the end, or stop_
  std::deque<WalkBatch> queue_;
  std::vector<WalkBatch> spare_;  // taken batches, their buffers to be reused
  Status error_;                  // the listing's first error
  bool done_ = false;             // the walk ended (completely or at error_)
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kvfs::ingest
