// Deliberately broken backend plugins for the loader's error tests
// (KVBackendTest.BrokenPluginsAreClearErrors): built twice, as
// libkvfs-kv-badabi.so (entry point with a wrong ABI version) and
// libkvfs-kv-nosymbol.so (no entry point at all).
#include "common/kv/kv_plugin.h"

#ifdef KVFS_BAD_PLUGIN_WRONG_ABI
extern "C" __attribute__((visibility("default"))) const kvfs::KVPlugin* kvfs_kv_plugin_v1() {
  static const kvfs::KVPlugin plugin{{999, "badabi"}, nullptr};
  return &plugin;
}
#else
extern "C" __attribute__((visibility("default"))) int kvfs_not_a_plugin() { return 0; }
#endif
