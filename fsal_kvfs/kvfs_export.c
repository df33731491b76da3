/* FSAL_KVFS exports: configuration, creation/release and export operations.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/param.h>

#include "kvfs_int.h"

#include "config_parsing.h"
#include "export_mgr.h"
#include "fsal_convert.h"
#include "nfs_exports.h"

/* Parameters of the FSAL block inside an EXPORT block. Ranges are checked by
 * Ganesha's parser; an out-of-range or malformed value fails the export. */
static struct config_item kvfs_export_params[] = {
    CONF_ITEM_NOOP("name"), /* the FSAL's name: Ganesha's, not ours */
    CONF_MAND_PATH("db_path", 1, MAXPATHLEN, NULL, kvfs_export, db_path),
    CONF_ITEM_PATH("subtree", 1, MAXPATHLEN, "/", kvfs_export, subtree),
    CONF_ITEM_UI64("capacity_bytes", UINT64_C(1) << 20, UINT64_C(1) << 62,
                   KVFS_DEFAULT_CAPACITY_BYTES, kvfs_export, capacity_bytes),
    CONF_ITEM_UI64("capacity_inodes", 1, UINT64_C(1) << 62, KVFS_DEFAULT_CAPACITY_INODES,
                   kvfs_export, capacity_inodes),
    CONF_ITEM_STR("kv_backend", 1, 64, NULL, kvfs_export, kv_backend),
    CONF_ITEM_STR("kv_options", 1, 4096, NULL, kvfs_export, kv_options),
    CONF_ITEM_STR("persistent_store", 1, MAXPATHLEN, NULL, kvfs_export, persistent_store),
#define KVFS_STORE_SETTING_ITEM(name) \
  CONF_ITEM_STR(#name, 1, 4096, NULL, kvfs_export, store_settings[KVFS_STORE_SETTING_##name]),
    KVFS_STORE_SETTINGS(KVFS_STORE_SETTING_ITEM)
#undef KVFS_STORE_SETTING_ITEM
        CONF_ITEM_UI64("cache_quota_bytes", 0, UINT64_C(1) << 62, 0, kvfs_export,
                       cache_quota_bytes),
    CONF_ITEM_UI64("cache_quota_inodes", 0, UINT64_C(1) << 62, 0, kvfs_export, cache_quota_inodes),
    CONF_ITEM_I32("cache_refresh_seconds", 0, 86400, 60, kvfs_export, cache_refresh_seconds),
    CONF_ITEM_I32("cache_writeback_delay_seconds", 0, 86400, 30, kvfs_export,
                  cache_writeback_delay_seconds),
    CONF_ITEM_I32("cache_retry_seconds", 0, 86400, 10, kvfs_export, cache_retry_seconds),
    CONF_ITEM_STR("cache_compression", 1, 16, NULL, kvfs_export, cache_compression),
    CONF_ITEM_STR("metrics_port", 1, 64, NULL, kvfs_export, metrics_port),
    CONF_ITEM_STR("coordination", 1, 4096, NULL, kvfs_export, coordination),
    /* Any number: the bridge checks the range (2..3600) with a message that
     * names the setting, where Ganesha's parser would name only the line. */
    CONF_ITEM_I32("coordination_lease", INT32_MIN, INT32_MAX, 10, kvfs_export, coordination_lease),
    CONFIG_EOL};

/* What the parameters must look like, for the log line of a rejected block
 * (Ganesha's own messages, logged after it, give only the line number). */
static const char kvfs_params_help[] =
    "Ganesha's config errors for this block follow; expected: db_path = absolute path "
    "(required), subtree = absolute path in the store, capacity_bytes in [2^20, 2^62], "
    "capacity_inodes in [1, 2^62], kv_backend = backend name, kv_options = \"name=value,...\", "
    "persistent_store = absolute path, file:///path or s3://bucket[/prefix], s3_* = strings "
    "(docs/stores.md), cache_quota_bytes and cache_quota_inodes in [0, 2^62], "
    "cache_refresh_seconds, cache_writeback_delay_seconds and cache_retry_seconds in "
    "[0, 86400], cache_compression = none|gzip|zstd|xz, metrics_port = PORT or ADDRESS:PORT, "
    "coordination = etcd://host:port[,host:port...]/prefix, coordination_lease in [2, 3600] "
    "seconds (0: 10) (docs/coordination.md)";

static struct config_block kvfs_export_param_block = {
    .dbus_interface_name = "org.ganesha.nfsd.config.fsal.kvfs-export%d",
    .blk_desc.name = "FSAL",
    .blk_desc.type = CONFIG_BLOCK,
    .blk_desc.u.blk.init = noop_conf_init,
    .blk_desc.u.blk.params = kvfs_export_params,
    .blk_desc.u.blk.commit = noop_conf_commit};

/* Frees what the config parser and the bridge allocated for exp. */
static void kvfs_free_export_fields(struct kvfs_export* exp) {
  kvfs_fs_release(exp->fs);
  exp->fs = NULL;
  free(exp->canonical_db_path);
  exp->canonical_db_path = NULL;
  gsh_free(exp->db_path);
  exp->db_path = NULL;
  gsh_free(exp->subtree);
  exp->subtree = NULL;
  gsh_free(exp->kv_backend);
  exp->kv_backend = NULL;
  gsh_free(exp->kv_options);
  exp->kv_options = NULL;
  gsh_free(exp->persistent_store);
  exp->persistent_store = NULL;
  gsh_free(exp->coordination);
  exp->coordination = NULL;
  for (int i = 0; i < KVFS_STORE_SETTING_COUNT; i++) {
    gsh_free(exp->store_settings[i]);
    exp->store_settings[i] = NULL;
  }
  gsh_free(exp->cache_compression);
  exp->cache_compression = NULL;
  gsh_free(exp->metrics_port);
  exp->metrics_port = NULL;
}

/* True if both strings are NULL or equal. */
static bool kvfs_same_string(const char* a, const char* b) {
  return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* True if the two exports have the same persistent store settings. */
static bool kvfs_same_store_settings(const struct kvfs_export* a, const struct kvfs_export* b) {
  for (int i = 0; i < KVFS_STORE_SETTING_COUNT; i++)
    if (!kvfs_same_string(a->store_settings[i], b->store_settings[i])) return false;
  return true;
}

/* A tree was ingested, replaced or evicted (docs/ingest.md): drop what
 * MDCACHE holds of `ino` so clients see the change without a restart. */
static void kvfs_invalidate(void* arg, uint64_t ino) {
  struct kvfs_export* exp = arg;
  unsigned char wire[KVFS_HANDLE_SIZE];
  struct gsh_buffdesc key = {.addr = wire, .len = KVFS_HANDLE_SIZE};

  kvfs_handle_encode(exp->identity, ino, wire);
  exp->export.up_ops->invalidate(exp->export.up_ops, &key, FSAL_UP_INVALIDATE_CACHE);
}

static void kvfs_release_export(struct fsal_export* exp_hdl) {
  struct kvfs_export* exp = container_of(exp_hdl, struct kvfs_export, export);

  kvfs_fs_remove_invalidate_hook(exp->fs, exp);
  LogDebug(COMPONENT_FSAL, "KVFS: releasing export of %s:%s", exp->canonical_db_path, exp->subtree);
  fsal_detach_export(exp_hdl->fsal, &exp_hdl->exports);
  free_export_ops(exp_hdl);
  kvfs_free_export_fields(exp);
  gsh_free(exp);
}

static fsal_status_t kvfs_get_dynamic_info(struct fsal_export* exp_hdl,
                                           struct fsal_obj_handle* obj_hdl,
                                           fsal_dynamicfsinfo_t* info) {
  struct kvfs_export* exp = container_of(exp_hdl, struct kvfs_export, export);
  struct kvfs_statfs st;
  uint64_t capacity_bytes, capacity_inodes;
  int err;

  (void)obj_hdl;
  err = kvfs_core_statfs(exp->fs, &st);
  if (err != 0) {
    LogMajor(COMPONENT_FSAL, "KVFS: statfs of %s failed: %s", exp->canonical_db_path,
             kvfs_last_error());
    return kvfs_status(err);
  }

  /* Capacity is per export (config), or the cache manager's quota; usage is
   * the store's. */
  capacity_bytes = exp->cache_quota_bytes != 0 ? exp->cache_quota_bytes
                                               : atomic_fetch_uint64_t(&exp->capacity_bytes);
  capacity_inodes = exp->cache_quota_inodes != 0 ? exp->cache_quota_inodes
                                                 : atomic_fetch_uint64_t(&exp->capacity_inodes);
  info->total_bytes = capacity_bytes;
  info->free_bytes = st.used_bytes < capacity_bytes ? capacity_bytes - st.used_bytes : 0;
  info->avail_bytes = info->free_bytes;
  info->total_files = capacity_inodes;
  info->free_files = st.used_inodes < capacity_inodes ? capacity_inodes - st.used_inodes : 0;
  info->avail_files = info->free_files;
  /* Times are stored with nanoseconds. */
  info->time_delta.tv_sec = 0;
  info->time_delta.tv_nsec = 1;
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

/* Checks a handle from the wire: our format, and this export's. */
static fsal_status_t kvfs_wire_to_host(struct fsal_export* exp_hdl, fsal_digesttype_t in_type,
                                       struct gsh_buffdesc* fh_desc, int flags) {
  struct kvfs_export* exp = container_of(exp_hdl, struct kvfs_export, export);
  uint64_t ino;

  /* The handle is little endian by definition: `flags`
   * (FH_FSAL_BIG_ENDIAN) does not matter. */
  (void)in_type;
  (void)flags;
  switch (kvfs_handle_decode(fh_desc->addr, fh_desc->len, exp->identity, &ino)) {
    case KVFS_HANDLE_OK:
      fh_desc->len = KVFS_HANDLE_SIZE;
      return fsalstat(ERR_FSAL_NO_ERROR, 0);
    case KVFS_HANDLE_OTHER_EXPORT:
      LogDebug(COMPONENT_FSAL, "KVFS: handle of another export presented to %s:%s",
               exp->canonical_db_path, exp->subtree);
      return fsalstat(ERR_FSAL_STALE, ESTALE);
    case KVFS_HANDLE_MALFORMED:
    default:
      LogDebug(COMPONENT_FSAL, "KVFS: malformed handle (%zu bytes)", fh_desc->len);
      return fsalstat(ERR_FSAL_BADHANDLE, 0);
  }
}

/* A state_t followed by this FSAL's fd, as fsal_find_fd() expects. */
static struct state_t* kvfs_alloc_state(struct fsal_export* exp_hdl, enum state_type state_type,
                                        struct state_t* related_state) {
  struct state_t* state = gsh_calloc(1, sizeof(struct state_t) + sizeof(struct kvfs_fd));

  return init_state(state, exp_hdl, state_type, related_state);
}

static void kvfs_export_ops_init(struct export_ops* ops) {
  ops->release = kvfs_release_export;
  ops->lookup_path = kvfs_lookup_path;
  ops->wire_to_host = kvfs_wire_to_host;
  ops->create_handle = kvfs_create_handle;
  ops->get_fs_dynamic_info = kvfs_get_dynamic_info;
  ops->alloc_state = kvfs_alloc_state;
}

/* The cache manager's log lines (failed loads and write-backs, conflicts). */
static void kvfs_cache_log(const char* line) { LogEvent(COMPONENT_FSAL, "KVFS cache: %s", line); }

/* Opens (or shares) the database and finds the subtree; logs why not. */
static fsal_status_t kvfs_open_export(struct kvfs_export* exp, const char* export_path) {
  struct kvfs_fs_options opts = {
      .db_path = exp->db_path,
      .kv_backend = exp->kv_backend,
      .kv_options = exp->kv_options,
      .persistent_store = exp->persistent_store,
      .store_settings = (const char* const*)exp->store_settings,
      .cache_quota_bytes = exp->cache_quota_bytes,
      .cache_quota_inodes = exp->cache_quota_inodes,
      .cache_refresh_seconds = exp->cache_refresh_seconds,
      .cache_writeback_delay_seconds = exp->cache_writeback_delay_seconds,
      .cache_retry_seconds = exp->cache_retry_seconds,
      .cache_compression = exp->cache_compression,
      .metrics_port = exp->metrics_port,
      .coordination = exp->coordination,
      .coordination_lease = exp->coordination_lease,
      .log = kvfs_cache_log,
  };
  struct kvfs_attr root;
  int err;

  if (exp->db_path[0] != '/') {
    LogCrit(COMPONENT_FSAL, "KVFS export %s: db_path \"%s\" must be an absolute path", export_path,
            exp->db_path);
    return fsalstat(ERR_FSAL_INVAL, EINVAL);
  }
  if (exp->subtree[0] != '/') {
    LogCrit(COMPONENT_FSAL, "KVFS export %s: subtree \"%s\" must start with '/'", export_path,
            exp->subtree);
    return fsalstat(ERR_FSAL_INVAL, EINVAL);
  }

  err = kvfs_fs_acquire(&opts, &exp->fs, &exp->canonical_db_path);
  if (err != 0 && exp->persistent_store != NULL) {
    LogCrit(COMPONENT_FSAL, "KVFS export %s: cannot open database %s with persistent store %s: %s",
            export_path, exp->db_path, exp->persistent_store, kvfs_last_error());
    return kvfs_status(err);
  }
  if (err != 0) {
    LogCrit(COMPONENT_FSAL, "KVFS export %s: cannot open database %s: %s", export_path,
            exp->db_path, kvfs_last_error());
    return kvfs_status(err);
  }

  err = kvfs_core_resolve_path(exp->fs, exp->subtree, true, &root);
  if (err == 0 && root.type != KVFS_TYPE_DIRECTORY) err = ENOTDIR;
  if (err != 0) {
    LogCrit(COMPONENT_FSAL, "KVFS export %s: subtree %s of %s is unusable: %s", export_path,
            exp->subtree, exp->canonical_db_path,
            err == ENOTDIR ? "not a directory" : kvfs_last_error());
    return kvfs_status(err);
  }

  exp->root_ino = root.ino;
  /* With a coordination, every server sharing the store presents the same
   * handles and fsid (docs/coordination.md): the identity comes from what
   * they share, not from this server's database path. */
  if (exp->coordination != NULL && exp->coordination[0] != '\0' && exp->persistent_store != NULL) {
    char* shared = gsh_concat_sep(exp->coordination, '\n', exp->persistent_store);
    exp->identity = kvfs_export_identity(shared, root.ino);
    gsh_free(shared);
  } else {
    exp->identity = kvfs_export_identity(exp->canonical_db_path, root.ino);
  }
  exp->check_subtree = root.ino != KVFS_ROOT_INO;
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

fsal_status_t kvfs_create_export(struct fsal_module* fsal_hdl, void* parse_node,
                                 struct config_error_type* err_type,
                                 const struct fsal_up_vector* up_ops) {
  struct kvfs_export* exp = gsh_calloc(1, sizeof(struct kvfs_export));
  const char* export_path = CTX_FULLPATH(op_ctx);
  fsal_status_t status;
  int rc;

  fsal_export_init(&exp->export);
  kvfs_export_ops_init(&exp->export.exp_ops);

  rc = load_config_from_node(parse_node, &kvfs_export_param_block, exp, true, err_type);
  if (rc != 0) {
    LogCrit(COMPONENT_FSAL, "KVFS export %s: invalid FSAL parameters. %s", export_path,
            kvfs_params_help);
    status = fsalstat(ERR_FSAL_INVAL, EINVAL);
    goto err_free;
  }

  status = kvfs_open_export(exp, export_path);
  if (FSAL_IS_ERROR(status)) goto err_free;

  rc = fsal_attach_export(fsal_hdl, &exp->export.exports);
  if (rc != 0) {
    LogCrit(COMPONENT_FSAL, "KVFS export %s: could not attach", export_path);
    status = posix2fsal_status(rc);
    goto err_free;
  }
  exp->export.fsal = fsal_hdl;
  exp->export.up_ops = up_ops;
  op_ctx->fsal_export = &exp->export;
  if (kvfs_fs_add_invalidate_hook(exp->fs, kvfs_invalidate, exp) != 0)
    LogWarn(COMPONENT_FSAL, "KVFS export %s: kvfs-ingest cannot reach this server: %s", export_path,
            kvfs_last_error());

  LogEvent(COMPONENT_FSAL,
           "KVFS export %s: database %s, subtree %s (inode %" PRIu64 "), capacity %" PRIu64
           " bytes / %" PRIu64 " inodes",
           export_path, exp->canonical_db_path, exp->subtree, exp->root_ino, exp->capacity_bytes,
           exp->capacity_inodes);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);

err_free:
  kvfs_free_export_fields(exp);
  free_export_ops(&exp->export);
  gsh_free(exp);
  return status;
}

/* Config reload: capacities may change; the database and subtree may not,
 * since clients hold handles of the running export. */
fsal_status_t kvfs_update_export(struct fsal_module* fsal_hdl, void* parse_node,
                                 struct config_error_type* err_type, struct fsal_export* original,
                                 struct fsal_module* updated_super) {
  struct kvfs_export* orig = container_of(original, struct kvfs_export, export);
  struct kvfs_export parsed;
  fsal_status_t status;
  bool same;
  int rc;

  status = update_export(fsal_hdl, parse_node, err_type, original, updated_super);
  if (FSAL_IS_ERROR(status)) return status;

  memset(&parsed, 0, sizeof(parsed));
  rc = load_config_from_node(parse_node, &kvfs_export_param_block, &parsed, true, err_type);
  if (rc != 0) {
    LogCrit(COMPONENT_FSAL, "KVFS export %s: invalid FSAL parameters in the updated config. %s",
            CTX_FULLPATH(op_ctx), kvfs_params_help);
    kvfs_free_export_fields(&parsed);
    return fsalstat(ERR_FSAL_INVAL, EINVAL);
  }

  same = strcmp(parsed.db_path, orig->db_path) == 0 && strcmp(parsed.subtree, orig->subtree) == 0;
  if (!same) {
    LogCrit(COMPONENT_FSAL,
            "KVFS export %s: db_path and subtree cannot change under a running export (%s:%s -> "
            "%s:%s); restart the server instead",
            CTX_FULLPATH(op_ctx), orig->db_path, orig->subtree, parsed.db_path, parsed.subtree);
    kvfs_free_export_fields(&parsed);
    return fsalstat(ERR_FSAL_INVAL, EINVAL);
  }

  atomic_store_uint64_t(&orig->capacity_bytes, parsed.capacity_bytes);
  atomic_store_uint64_t(&orig->capacity_inodes, parsed.capacity_inodes);
  if (!kvfs_same_string(parsed.kv_backend, orig->kv_backend) ||
      !kvfs_same_string(parsed.kv_options, orig->kv_options))
    LogWarn(COMPONENT_FSAL,
            "KVFS: kv_backend and kv_options changes take effect at the next restart");
  if (!kvfs_same_string(parsed.persistent_store, orig->persistent_store) ||
      !kvfs_same_store_settings(&parsed, orig) ||
      !kvfs_same_string(parsed.cache_compression, orig->cache_compression) ||
      !kvfs_same_string(parsed.metrics_port, orig->metrics_port) ||
      !kvfs_same_string(parsed.coordination, orig->coordination) ||
      parsed.coordination_lease != orig->coordination_lease ||
      parsed.cache_quota_bytes != orig->cache_quota_bytes ||
      parsed.cache_quota_inodes != orig->cache_quota_inodes ||
      parsed.cache_refresh_seconds != orig->cache_refresh_seconds ||
      parsed.cache_writeback_delay_seconds != orig->cache_writeback_delay_seconds ||
      parsed.cache_retry_seconds != orig->cache_retry_seconds)
    LogWarn(COMPONENT_FSAL,
            "KVFS: persistent_store, s3_*, cache_*, metrics_port and coordination changes take "
            "effect at the next restart");
  kvfs_free_export_fields(&parsed);
  LogEvent(COMPONENT_FSAL,
           "KVFS export of %s:%s updated: capacity %" PRIu64 " bytes / %" PRIu64 " inodes",
           orig->db_path, orig->subtree, orig->capacity_bytes, orig->capacity_inodes);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}
