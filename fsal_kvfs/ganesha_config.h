/* config.h for compiling against Debian 12's nfs-ganesha 4.3 (4.3-2) out of
 * tree. Ganesha generates config.h from src/include/config-h.in.cmake during
 * its own build and Debian ships none; this hand-made one matches Debian's
 * binary (copied from the team note shared/notes/ganesha-4.3-config.h).
 * _USE_9P and USE_DBUS change public structs and must stay as Debian built
 * them; USE_LTTNG is deliberately absent (its tracepoints only exist in
 * Ganesha's own build). CMake copies this file to <build>/ganesha/config.h
 * because Ganesha's headers `#include "config.h"`.
 */
#ifndef CONFIG_H
#define CONFIG_H
#define GSH_CHECK_VERSION(major, minor, micro, libmajor, libminor, libmicro) ((major) == 4)
#define GANESHA_VERSION_MAJOR 4
#define GANESHA_VERSION_MINOR 3
#define GANESHA_EXTRA_VERSION
#define GANESHA_VERSION "4.3"
#define GANESHA_BUILD_RELEASE 1
#define VERSION GANESHA_VERSION
#define VERSION_COMMENT ""
#define _GIT_HEAD_COMMIT ""
#define _GIT_DESCRIBE ""
#define BUILD_HOST "x"
#define FSAL_MODULE_LOC "/usr/lib/x86_64-linux-gnu/ganesha"
#define USE_NFSIDMAP 1
#define USE_DBUS 1
#define USE_CAPS 1
#define USE_BLKID 1
#define _USE_9P 1
#define _USE_NFS3 1
#define _USE_NLM 1
#define _USE_RQUOTA 1
#define RPCBIND 1
#define HAVE_KRB5 1
#define LINUX 1
#define _HAVE_GSSAPI 1
#define HAVE_STRING_H 1
#define HAVE_STRNLEN 1
#define LITTLEEND 1
#define HAVE_DAEMON 1
#define GSH_CAN_HOST_LOCAL_FS 1
#define NFS_GANESHA 1
#define GANESHA_CONFIG_PATH "/etc/ganesha/ganesha.conf"
#endif
