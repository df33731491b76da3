/* The settings of the persistent store plugins built here, once, for C and
 * C++: the FSAL block's parameters (fsal_kvfs/kvfs_export.c), the commands'
 * options (ingest/cli.cc), the control service's request fields
 * (ingest/service.cc) and store::kStoreSettings (store/store.h) are all made
 * from this list. Each plugin checks its own values (docs/stores.md has
 * their meaning and defaults). */
#ifndef KVFS_STORE_STORE_SETTINGS_H_
#define KVFS_STORE_STORE_SETTINGS_H_

/* X(name) for each setting, in a fixed order. */
#define KVFS_STORE_SETTINGS(X) \
  X(s3_endpoint)               \
  X(s3_region)                 \
  X(s3_addressing)             \
  X(s3_tls)                    \
  X(s3_ca_file)                \
  X(s3_profile)                \
  X(s3_part_size)              \
  X(s3_retries)                \
  X(s3_timeout_seconds)        \
  X(s3_stale_upload_seconds)

/* KVFS_STORE_SETTING_<name>: the index of each setting in the list, and
 * KVFS_STORE_SETTING_COUNT: how many there are. */
#define KVFS_STORE_SETTING_INDEX(name) KVFS_STORE_SETTING_##name,
enum { KVFS_STORE_SETTINGS(KVFS_STORE_SETTING_INDEX) KVFS_STORE_SETTING_COUNT };
#undef KVFS_STORE_SETTING_INDEX

#endif /* KVFS_STORE_STORE_SETTINGS_H_ */
