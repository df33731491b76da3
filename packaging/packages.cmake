# packaging/: Debian packages built from the tree with CPack's DEB generator
# (docs/operations.md):
#   kvfs-plugins      the key/value and persistent store plugins (<libdir>/kvfs)
#   nfs-ganesha-kvfs  libfsalkvfs.so in Ganesha's FSAL directory and the sample
#                     ganesha.conf; depends on the nfs-ganesha it was built for
#   kvfs-tools        kvfs, kvfs-ingest, kvfs-export, kvfs-evict, kvfs-fuse
# `cmake --build build --target package` writes them into build/packages.
# Included at the end of the top-level CMakeLists.txt (CPack's place).
# Packages install under /usr only: with another CMAKE_INSTALL_PREFIX there is
# no package target.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "Debian packages: not built (they need -DCMAKE_INSTALL_PREFIX=/usr; "
                 "this build installs into ${CMAKE_INSTALL_PREFIX})")
  return()
endif()

# The nfs-ganesha the module was built against: it loads only into that one.
execute_process(COMMAND dpkg-query -W -f=\${Version} nfs-ganesha
                OUTPUT_VARIABLE KVFS_GANESHA_DEB_VERSION RESULT_VARIABLE _ganesha_query
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT TARGET fsalkvfs OR NOT _ganesha_query EQUAL 0 OR KVFS_GANESHA_DEB_VERSION STREQUAL "")
  message(STATUS "Debian packages: not built (they need the FSAL and the nfs-ganesha package)")
  return()
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kvfs)
set(CPACK_PACKAGE_VENDOR "KVFS")
set(CPACK_PACKAGE_CONTACT "KVFS maintainers <kvfs@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "file server for huge trees of small, write-once files")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL plugins fsal tools)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Dependencies on shared libraries come from dpkg-shlibdeps; libganesha_nfsd
# lives in Ganesha's private directory.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS /usr/lib/ganesha)
# Dependencies between components become exact-version Depends.
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_PLUGINS_PACKAGE_NAME kvfs-plugins)
set(CPACK_COMPONENT_PLUGINS_DESCRIPTION
    "KVFS key/value and persistent store plugins\n The RocksDB, LMDB and LevelDB key/value backends and the directory and S3\n persistent stores that the KVFS server and commands load.")

set(CPACK_DEBIAN_FSAL_PACKAGE_NAME nfs-ganesha-kvfs)
set(CPACK_COMPONENT_FSAL_DEPENDS plugins)
set(CPACK_DEBIAN_FSAL_PACKAGE_DEPENDS "nfs-ganesha (= ${KVFS_GANESHA_DEB_VERSION})")
set(CPACK_COMPONENT_FSAL_DESCRIPTION
    "nfs-ganesha KVFS FSAL module\n Serves KVFS stores (trees of small files in RocksDB, backed by tarballs in a\n directory or an S3 bucket) over NFSv3 and NFSv4 with NFS-Ganesha. A sample\n configuration is in /usr/share/doc/nfs-ganesha-kvfs/examples.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME kvfs-tools)
set(CPACK_COMPONENT_TOOLS_DEPENDS plugins)
set(CPACK_DEBIAN_TOOLS_PACKAGE_RECOMMENDS fuse3)
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "KVFS commands and FUSE mount\n kvfs (inspect and edit a store), kvfs-ingest, kvfs-export and kvfs-evict\n (trees to and from tarballs) and kvfs-fuse (mount a store through FUSE).")

include(CPack)
