#include "util/parse_decimal.hpp"

#include <gtest/gtest.h>

using herald::util::parse_decimal;
using herald::util::query_integer_max;

TEST(ParseDecimal, AcceptsDigitsOnly) {
  EXPECT_EQ(parse_decimal("0"), 0u);
  EXPECT_EQ(parse_decimal("5"), 5u);
  EXPECT_EQ(parse_decimal("007"), 7u);
  EXPECT_EQ(parse_decimal("18446744073709551615"), UINT64_MAX);
  for (const char* bad : {"", " 5", "5 ", "+5", "-5", "-0", "0x10", "1e3", "5.0", "１", "5\n"})
    EXPECT_FALSE(parse_decimal(bad)) << '"' << bad << '"';
}

TEST(ParseDecimal, RefusesValuesPastTheBound) {
  EXPECT_FALSE(parse_decimal("18446744073709551616"));
  EXPECT_FALSE(parse_decimal("99999999999999999999"));
  EXPECT_EQ(parse_decimal("9223372036854775807", query_integer_max), query_integer_max);
  EXPECT_FALSE(parse_decimal("9223372036854775808", query_integer_max));
  EXPECT_EQ(parse_decimal("65535", 65535), 65535u);
  EXPECT_FALSE(parse_decimal("65536", 65535));
  EXPECT_FALSE(parse_decimal("10", 9));
  EXPECT_EQ(parse_decimal("9", 9), 9u);
}
