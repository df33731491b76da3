// TreeWalk: lists a tree in the order an export writes it, on a thread of
// its own, and reads the contents of its small files, on that thread and on
// the caller's. So the listing and the reading (RocksDB's block reads and
// their decompression) run on both cores while the caller also encodes and
// writes the entries before them.
//
// Order: a directory, then its non-directories as ReadDir lists them, then
// each subdirectory the same way (depth first). Entries come in batches
// (one hand-off between the threads per batch, not per file), and the walk
// stays at most kMaxQueuedBatches batches ahead of the caller, so it holds
// 3 MiB of contents at most whatever the tree (tree_walk.cc), besides the
// names of the subdirectories still to visit.
//
// The walk lists batches ahead of the caller; a listed batch's small files
// are then read by whichever thread is free first: the walk while its queue
// is full, the caller while the batch it needs next is still being read by
// the walk. So neither core waits while there is reading to do.
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
  // Whether the batch holds the file's contents (ReadStream(ino, 0,
  // attrs.size)); if so, how the read ended, and where its bytes are in the
  // batch's contents. True for the files the walk was told to read.
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
  // whose member path is `top_path` (without a trailing '/'). The batches
  // hold the contents of the non-empty files for which `wants_contents` is
  // true and whose size is at most kMaxReadBytes (a regular file's); the
  // caller reads the others.
  TreeWalk(FileSystem* fs, const Attributes& top, std::string top_path,
           std::function<bool(const Attributes&)> wants_contents);
  // Stops the walk where it is.
  ~TreeWalk();
  TreeWalk(const TreeWalk&) = delete;
  TreeWalk& operator=(const TreeWalk&) = delete;

  // Replaces *batch (whose buffers the walk reuses) with the next entries;
  // an empty batch once the walk is over. Returns the listing's first error
  // once the entries before it have been handed out. While the next batch is
  // not read yet, reads it, or a later one, on the calling thread.
  Status Next(WalkBatch* batch);

  static constexpr uint64_t kMaxReadBytes = 256 << 10;
  static constexpr size_t kMaxQueuedBatches = 4;

 private:
  // A batch handed over by the listing, and how far its reading is.
  struct Slot {
    WalkBatch batch;
    enum class State { kListed, kReading, kRead } state = State::kListed;
  };

  void Run(const Attributes& top, const std::string& top_path);
  // Adds the entries of directory `dir`, whose member path is `prefix`
  // (ending with '/'), and of its subdirectories; false once stopped.
  bool WalkContents(Ino dir, const std::string& prefix);
  // Adds one entry to the batch being listed; queues the batch when it is
  // full.
  bool Add(const Attributes& a, std::string path);
  // Queues the batch being listed; while kMaxQueuedBatches are queued,
  // reads queued batches or waits. False once stopped.
  bool Publish();
  // Reads the first queued batch nobody reads yet, without holding `lock`
  // (on mu_) meanwhile; false if there is none.
  bool ReadAQueuedBatch(std::unique_lock<std::mutex>& lock);
  // Reads the contents of the batch's entries marked `read`.
  void ReadContents(WalkBatch* batch);

  FileSystem* const fs_;
  const std::function<bool(const Attributes&)> wants_contents_;
  // The walk thread's: the batch it lists, and the bytes its files to read
  // hold.
  WalkBatch listing_;
  uint64_t listing_bytes_ = 0;

  std::mutex mu_;
  // A batch queued, read or taken, the end of the listing, or stop_.
  std::condition_variable changed_;
  // References to the slots stay valid while others are added or taken.
  std::deque<Slot> queue_;
  std::vector<WalkBatch> spare_;  // taken batches, their buffers to be reused
  Status error_;                  // the listing's first error
  bool done_ = false;             // the listing ended (completely or at error_)
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kvfs::ingest
