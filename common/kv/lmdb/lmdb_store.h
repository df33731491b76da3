// The LMDB backend (libkvfs-kv-lmdb.so): a KVStore on one LMDB environment.
//
// Layout on disk, in the store directory KVStoreSpec::path:
//   data.mdb  the B+trees (LMDB's copy-on-write pages, grown as needed; the
//             file is never bigger than the data plus free pages, whatever
//             map_size says)
//   lock.mdb  LMDB's reader table (rebuilt on open; no data)
//   LOCK      an flock()ed file making the store exclusive to one open
//             KVStore (in this process or another): LMDB itself would let
//             several processes share it, but the file system core keeps
//             state (inode allocation, locks) in memory, and LMDB forbids
//             opening one environment twice in a process.
// One named LMDB database per Column, named ColumnName() ("meta",
// "entries", "inodes", "blocks"). LMDB refuses empty keys, which the
// KVStore contract allows, so every key is stored behind a one-byte prefix
// (0x00): order is unchanged, and the longest key is
// mdb_env_get_maxkeysize() - 1 = 510 bytes. Writing a longer key is
// InvalidArgument; reading or deleting one finds nothing.
//
// Durability: every Write goes through a WriteQueue (group commit): the
// batches of concurrent writers are applied in one LMDB write transaction,
// committed with LMDB's default full sync (data pages fdatasync'ed, then the
// meta page written and fdatasync'ed; no MDB_NOSYNC, MDB_NOMETASYNC or
// MDB_WRITEMAP). So every Write is durable when it returns, whatever
// WriteOptions::sync says, and Sync() has nothing left to do. A machine
// crash leaves the last committed transaction: no recovery step, no torn
// batches.
//
// Concurrency: one writer at a time (LMDB's rule), readers never block and
// are never blocked. The environment is opened with MDB_NOTLS, so read
// transactions are not tied to threads: Get without a snapshot uses a short
// read transaction from a small pool (mdb_txn_reset/renew, no reader-table
// locking in the common case); a Snapshot owns a read transaction; an
// Iterator owns one (or shares its snapshot's) plus a cursor. An LMDB
// transaction must not be used by two threads at once, so each read
// transaction has a mutex taken around every LMDB call on it (uncontended
// except when threads share a snapshot). Keys and values an iterator
// returns point into the memory map and stay valid while its transaction
// lives. Long-lived snapshots and iterators keep the pages of their version
// from being reused, so the file grows while they live (LMDB's usual
// caveat).
//
// Emulated operations (LMDB has neither range deletes nor merge operators):
//   DeleteRange  a cursor walks [begin, end) deleting key by key: cost
//                proportional to the keys deleted (each touched leaf page is
//                copied once per transaction; overflow pages of big values
//                are just freed).
//   Add          the counter is read inside the write transaction, added to
//                and written back: one B+tree lookup plus one put. The
//                WriteQueue applies groups one at a time, so no other
//                synchronisation is needed.
//   Sync         nothing to do (returns OK): every Write is already durable.
//
// Bulk loads (NewBulkLoader): Add appends the keys and values to an
// unlinked temporary file in the staging directory (memory: a 1 MiB
// buffer; other writers are not held up, however long the load takes).
// Commit reads the file back into one LMDB write transaction, putting each
// key with MDB_APPEND when it lies beyond its column's last key (the usual
// case, a fresh inode range: pages are filled, never split) and normally
// (overwriting) otherwise, and commits it with a full sync: atomic and
// durable. Costs: the data is written twice (staging file, then LMDB);
// other writers wait while Commit runs; and LMDB keeps a write
// transaction's dirty pages in memory (it spills them to the file only
// after 131071 page allocations, and a big value's overflow pages count as
// one), so Commit's peak memory is about the size of the load, returned to
// the system (malloc_trim) when it ends. MDB_WRITEMAP would avoid that
// memory, but it makes data.mdb a sparse file of map_size whose pages fault
// with SIGBUS when the disk is full, so it is not used.
//
// Options (KVStoreSpec::options; unknown names are refused):
//   map_size     size of the memory map, hence the largest the data file may
//                grow: default 1T. Address space only (the file grows as
//                needed), so a large value costs nothing; when the data
//                reaches it, writes fail with ENOSPC. Reopen with a larger
//                value to grow.
//   max_readers  read transactions open at once (snapshots, iterators, Gets
//                in progress): default 1024 (64 bytes each in lock.mdb).
//   read_ahead   false opens with MDB_NORDAHEAD (helps random reads when the
//                data is much larger than RAM): default true.
//
// Iterators and snapshots must be destroyed before the store.
#pragma once

#include <memory>

#include "common/kv/kv_backend.h"
#include "common/kv/kv_store.h"
#include "common/status.h"

namespace kvfs {

// Opens (creating it if spec.create_if_missing) the LMDB store in directory
// spec.path and sets *out to it. Errors never crash and leave *out
// untouched: an empty path or a bad or unknown option gives
// InvalidArgument; no store there with create_if_missing=false gives
// NotFound; a path that is unusable (not a directory, no permission,
// already open in this or another process) gives IOError naming the path.
// Name() of the store is "lmdb".
Status OpenLmdbStore(const KVStoreSpec& spec, std::unique_ptr<KVStore>* out);

}  // namespace kvfs
