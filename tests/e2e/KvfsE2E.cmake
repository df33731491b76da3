# kvfs_add_e2e_test(): registers an end-to-end NFS test (GoogleTest) that ctest
# runs through ci/run-in-namespace.sh, i.e. in fresh private net/mount/pid
# namespaces with rpcbind running, where GaneshaServer may start ganesha.nfsd.
#
#   kvfs_add_e2e_test(<name>
#     SOURCES <file>...            test sources (required)
#     [LIBRARIES <lib>...]         linked besides kvfs_e2e_harness + GTest::gtest_main
#     [FSAL_TARGETS <target>...]   FSAL module targets (e.g. fsal_kvfs): built before
#                                  the test; their output directories are passed
#                                  as KVFS_E2E_FSAL_DIRS="dir1:dir2" (a C string
#                                  macro, see SplitPathList() in ganesha_server.h)
#     [TIMEOUT <seconds>]          ctest timeout, default 300
#     [ARGS <arg>...]              extra arguments for the test binary
#     [LABELS <label>...])         ctest labels besides "e2e"
#
# The tests are registered with add_test, not gtest_discover_tests: discovery
# would run the binary outside the namespaces. Run one by hand with
#   ci/run-in-namespace.sh build/tests/e2e/<name> --gtest_filter=...
include_guard(GLOBAL)

set(KVFS_RUN_IN_NAMESPACE "${CMAKE_CURRENT_LIST_DIR}/../../ci/run-in-namespace.sh")
cmake_path(NORMAL_PATH KVFS_RUN_IN_NAMESPACE)

function(kvfs_add_e2e_test name)
  cmake_parse_arguments(PARSE_ARGV 1 E2E "" "TIMEOUT" "SOURCES;LIBRARIES;FSAL_TARGETS;ARGS;LABELS")
  if(NOT E2E_SOURCES)
    message(FATAL_ERROR "kvfs_add_e2e_test(${name}): SOURCES is required")
  endif()
  if(E2E_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "kvfs_add_e2e_test(${name}): unknown arguments ${E2E_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT E2E_TIMEOUT)
    set(E2E_TIMEOUT 300)
  endif()

  add_executable(${name} ${E2E_SOURCES})
  target_link_libraries(${name} PRIVATE kvfs_e2e_harness GTest::gtest_main ${E2E_LIBRARIES})

  set(fsal_dirs "")
  foreach(fsal IN LISTS E2E_FSAL_TARGETS)
    add_dependencies(${name} ${fsal})
    list(APPEND fsal_dirs "$<TARGET_FILE_DIR:${fsal}>")
  endforeach()
  list(JOIN fsal_dirs ":" fsal_dirs)
  target_compile_definitions(${name} PRIVATE "KVFS_E2E_FSAL_DIRS=\"${fsal_dirs}\"")

  add_test(NAME ${name} COMMAND "${KVFS_RUN_IN_NAMESPACE}" $<TARGET_FILE:${name}> ${E2E_ARGS})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${E2E_TIMEOUT} LABELS "e2e;${E2E_LABELS}")
endfunction()
