/* FSAL_KVFS internal declarations shared by the C files of the module.
 *
 * The C layer only adapts Ganesha's FSAL API (operation tables, attribute
 * lists, share reservations, config parsing) to the C ABI of kvfs_bridge.h;
 * the file system itself is the C++ KVFS core behind that ABI.
 */
#ifndef KVFS_FSAL_KVFS_INT_H_
#define KVFS_FSAL_KVFS_INT_H_

#include "FSAL/fsal_commonlib.h"
#include "fsal.h"
#include "fsal_api.h"
#include "fsal_types.h"
#include "kvfs_bridge.h"

/* The module: Ganesha's fsal_module plus the handle operations vector. */
struct kvfs_fsal_module {
  struct fsal_module fsal;
  struct fsal_obj_ops handle_ops;
};

/* The single module instance (kvfs_main.c). */
extern struct kvfs_fsal_module KVFS;

/* Defaults and limits of the export parameters (see docs/fsal.md). */
#define KVFS_DEFAULT_CAPACITY_BYTES (UINT64_C(1) << 40)
#define KVFS_DEFAULT_CAPACITY_INODES (UINT64_C(1) << 32)

/* One export: Ganesha's fsal_export plus what this FSAL keeps for it. */
struct kvfs_export {
  struct fsal_export export;
  /* Parsed from the FSAL block of the EXPORT (owned strings). */
  char* db_path;
  char* subtree;
  uint64_t capacity_bytes;
  uint64_t capacity_inodes;
  /* Key/value backend and its options (NULL when not given). */
  char* kv_backend;
  char* kv_options;
  /* The cache manager (docs/cache.md): the persistent store's directory or
   * URL (NULL: none), the store's settings (docs/stores.md; in the order of
   * KVFS_STORE_SETTINGS, NULL when not given) and the cache's. */
  char* persistent_store;
  char* store_settings[KVFS_STORE_SETTING_COUNT];
  uint64_t cache_quota_bytes;
  uint64_t cache_quota_inodes;
  int32_t cache_refresh_seconds;
  int32_t cache_writeback_delay_seconds;
  int32_t cache_retry_seconds;
  char* cache_compression;
  /* Where the store's Prometheus metrics are served: "PORT" (127.0.0.1) or
   * "ADDRESS:PORT"; NULL: nowhere (docs/operations.md#monitor). */
  char* metrics_port;
  /* The coordination of servers sharing the persistent store
   * (docs/coordination.md): etcd://HOST:PORT[,...]/PREFIX, NULL: none. */
  char* coordination;
  /* Its lease length in seconds (coordination_lease; 2..3600, 0 for the
   * default 10, checked by the bridge: a bad value fails the export with a
   * clear log line). */
  int32_t coordination_lease;
  /* The shared file system (one reference held by this export). */
  kvfs_fs* fs;
  /* Canonical database path (malloc'ed by the bridge). */
  char* canonical_db_path;
  /* Inode number of the exported subtree's root. */
  uint64_t root_ino;
  /* kvfs_export_identity(canonical_db_path, root_ino): in every handle. */
  uint64_t identity;
  /* Whether handles must be checked to lie below root_ino. */
  bool check_subtree;
};

/* The "file descriptor" of KVFS. There is no OS descriptor: it records the
 * open mode for Ganesha's share-reservation helpers (fsal_find_fd() and
 * friends require struct fsal_fd first) and whether the core was told the
 * file is open (kvfs_open_file), which keeps an unlinked file readable.
 */
struct kvfs_fd {
  struct fsal_fd fsal_fd;
  bool core_open;
};

/* An object handle. */
struct kvfs_handle {
  struct fsal_obj_handle obj_handle;
  struct kvfs_export* export;
  uint64_t ino;
  unsigned char wire[KVFS_HANDLE_SIZE];
  /* Regular files only: share reservations and the global fd used by
   * stateless (NFSv3) I/O. Protected by obj_handle.obj_lock. */
  struct fsal_share share;
  struct kvfs_fd global_fd;
};

/* kvfs_handle.c */
void kvfs_handle_ops_init(struct fsal_obj_ops* ops);
fsal_status_t kvfs_lookup_path(struct fsal_export* exp_hdl, const char* path,
                               struct fsal_obj_handle** handle, struct fsal_attrlist* attrs_out);
fsal_status_t kvfs_create_handle(struct fsal_export* exp_hdl, struct gsh_buffdesc* hdl_desc,
                                 struct fsal_obj_handle** handle, struct fsal_attrlist* attrs_out);

/* kvfs_export.c */
fsal_status_t kvfs_create_export(struct fsal_module* fsal_hdl, void* parse_node,
                                 struct config_error_type* err_type,
                                 const struct fsal_up_vector* up_ops);
fsal_status_t kvfs_update_export(struct fsal_module* fsal_hdl, void* parse_node,
                                 struct config_error_type* err_type, struct fsal_export* original,
                                 struct fsal_module* updated_super);

/* kvfs_attrs.c: conversions between the bridge and Ganesha. */

/* Maps a bridge errno to a Ganesha status. */
fsal_status_t kvfs_status(int err);
/* Ganesha's object type of a bridge type. */
object_file_type_t kvfs_to_fsal_type(uint32_t type);
/* Fills attrs (as far as its request_mask allows) from a bridge attr. */
void kvfs_to_fsal_attrs(const struct kvfs_export* exp, const struct kvfs_attr* in,
                        struct fsal_attrlist* attrs);
/* Translates the settable part of attrs into a bridge setattr request,
 * applying the export's umask to a mode. */
void kvfs_from_fsal_attrs(const struct fsal_attrlist* attrs, uint32_t umask,
                          struct kvfs_setattr* req);

#endif /* KVFS_FSAL_KVFS_INT_H_ */
