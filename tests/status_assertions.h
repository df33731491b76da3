// GoogleTest assertions on kvfs::Status: ASSERT_OK(expr) / EXPECT_OK(expr)
// check that `expr` is OK and print the status (errno text and message) if
// it is not.
#pragma once

#include <gtest/gtest.h>

#include "common/status.h"

#define ASSERT_OK(expr)                                     \
  do {                                                      \
    ::kvfs::Status _s = (expr);                             \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                     \
  do {                                                      \
    ::kvfs::Status _s = (expr);                             \
    EXPECT_TRUE(_s.ok()) << #expr << ": " << _s.ToString(); \
  } while (0)
