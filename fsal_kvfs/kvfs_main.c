/* FSAL_KVFS module registration: what Ganesha calls when it loads
 * libfsalkvfs.so for an `FSAL { Name = KVFS; }` block.
 */
#include "config.h"

#include <string.h>

#include "FSAL/fsal_init.h"
#include "fsal_convert.h"
#include "kvfs_int.h"

static const char kvfs_name[] = "KVFS";

/* Static file system information, the same for every export. */
struct kvfs_fsal_module KVFS = {
    .fsal =
        {
            .fs_info =
                {
                    .maxfilesize = INT64_MAX,
                    .maxlink = UINT32_MAX,
                    .maxnamelen = KVFS_MAX_NAME,
                    .maxpathlen = 4096,
                    .no_trunc = true,
                    .chown_restricted = true,
                    .case_insensitive = false,
                    .case_preserving = true,
                    .link_support = true,
                    .symlink_support = true,
                    /* Locks are arbitrated by Ganesha's SAL; the FSAL only
                     * has to accept them (one server owns the store). */
                    .lock_support = true,
                    .lock_support_async_block = false,
                    .named_attr = false,
                    .unique_handles = true,
                    .acl_support = 0,
                    .cansettime = true,
                    .homogenous = true,
                    .supported_attrs = ATTRS_POSIX,
                    .maxread = FSAL_MAXIOSIZE,
                    .maxwrite = FSAL_MAXIOSIZE,
                    .umask = 0,
                    .auth_exportpath_xdev = false,
                    .delegations = FSAL_OPTION_NO_DELEGATIONS,
                    .link_supports_permission_checks = false,
                    .rename_changes_key = false,
                    /* Cookies come from the core and can be computed from
                     * a name (kvfs_core_cookie_of), so MDCACHE keeps its
                     * directory chunks across creates and renames. */
                    .compute_readdir_cookie = true,
                    .whence_is_name = false,
                    .readdir_plus = true,
                    .compliant_eof_behavior = true,
                    .xattr_support = false,
                    .expire_time_parent = -1,
                },
        },
};

/* Module-wide configuration: there is none (all parameters are per export),
 * so this only publishes the static fs_info. */
static fsal_status_t kvfs_init_config(struct fsal_module* fsal_hdl, config_file_t config_struct,
                                      struct config_error_type* err_type) {
  (void)config_struct;
  (void)err_type;
  display_fsinfo(fsal_hdl);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

MODULE_INIT void kvfs_init(void) {
  struct fsal_module* myself = &KVFS.fsal;

  if (register_fsal(myself, kvfs_name, FSAL_MAJOR_VERSION, FSAL_MINOR_VERSION, FSAL_ID_NO_PNFS) !=
      0) {
    LogCrit(COMPONENT_FSAL, "KVFS module failed to register.");
    return;
  }
  myself->m_ops.create_export = kvfs_create_export;
  myself->m_ops.update_export = kvfs_update_export;
  myself->m_ops.init_config = kvfs_init_config;
  kvfs_handle_ops_init(&KVFS.handle_ops);
}

MODULE_FINI void kvfs_finish(void) {
  if (unregister_fsal(&KVFS.fsal) != 0) LogCrit(COMPONENT_FSAL, "Unable to unload the KVFS FSAL.");
}
