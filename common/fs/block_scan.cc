#include "common/fs/block_scan.h"

#include "common/fs/schema.h"

namespace kvfs {

Status ScanBlocks(KVStore* store, Ino ino, uint64_t first, uint64_t end,
                  const std::function<bool(uint64_t block, std::string_view data)>& fn,
                  bool fill_cache) {
  if (end <= first) return Status::OK();
  IteratorOptions io;
  io.upper_bound = schema::BlockKey(ino, end);
  io.fill_cache = fill_cache;
  auto it = store->NewIterator(Column::kBlocks, io);
  for (it->Seek(schema::BlockKey(ino, first)); it->Valid(); it->Next()) {
    Ino key_ino;
    uint64_t block;
    if (!schema::ParseBlockKey(it->key(), &key_ino, &block) || key_ino != ino) {
      return Status::Corruption("bad block key");
    }
    if (!fn(block, it->value())) return Status::OK();
  }
  return it->status();
}

}  // namespace kvfs
