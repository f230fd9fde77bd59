#include "protocol/cursor.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace herald::protocol;

TEST(Cursor, RoundTripsOneAndManyChannels) {
  std::vector<cursor_entry> one{{channel_tag("news"), 0xdeadbeef, 42}};
  auto decoded = decode_cursor(encode_cursor(one));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, one);

  std::vector<cursor_entry> many;
  for (int i = 0; i < 10; ++i)
    many.push_back({channel_tag("room:" + std::to_string(i)), 1u + i, std::uint64_t{1} << (6 * i)});
  many.push_back({1, 2, UINT64_MAX});
  auto d2 = decode_cursor(encode_cursor(many));
  ASSERT_TRUE(d2);
  EXPECT_EQ(*d2, many);
}

TEST(Cursor, IsUrlSafeAndSmall) {
  std::vector<cursor_entry> one{{channel_tag("news"), 7, 5}};
  auto token = encode_cursor(one);
  EXPECT_EQ(token.size(), 16u);  // 12 bytes -> 16 base64url characters
  std::vector<cursor_entry> ten;
  for (int i = 0; i < 10; ++i) ten.push_back({channel_tag(std::to_string(i)), 7, 1000});
  auto t10 = encode_cursor(ten);
  EXPECT_LE(t10.size(), 150u);
  for (char c : t10) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << c;
}

TEST(Cursor, RejectsGarbageTruncationAndTampering) {
  EXPECT_FALSE(decode_cursor(""));
  EXPECT_FALSE(decode_cursor("not a cursor"));
  EXPECT_FALSE(decode_cursor("AAAA"));
  EXPECT_FALSE(decode_cursor(std::string(2000, 'A')));
  std::vector<cursor_entry> one{{channel_tag("news"), 12345, 99}};
  auto token = encode_cursor(one);
  EXPECT_FALSE(decode_cursor(token.substr(0, token.size() - 1)));
  EXPECT_FALSE(decode_cursor(token + "A"));
  // Every single-character change is caught by the check.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (std::size_t i = 0; i < token.size(); ++i)
    for (char c : {'A', 'z', '0', '-'}) {
      if (token[i] == c) continue;
      std::string t = token;
      t[i] = c;
      auto d = decode_cursor(t);
      EXPECT_TRUE(!d || *d != one) << "position " << i;
    }
}

TEST(Cursor, RandomBytesNeverCrashTheDecoder) {
  std::mt19937 rng(1);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ";
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 40, ' ');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    if (decode_cursor(s)) ++accepted;
  }
  // A 16-bit check lets about 1 in 65536 random tokens through; far fewer here.
  EXPECT_LT(accepted, 5);
}

TEST(Cursor, TagsDifferForDifferentNames) {
  EXPECT_NE(channel_tag("a"), channel_tag("b"));
  EXPECT_EQ(channel_tag("chat:1"), channel_tag("chat:1"));
}

TEST(CompactCursor, RoundTripsAndGrowsWithTheOffset) {
  const std::uint32_t tag = channel_tag("news");
  struct row {
    std::uint64_t offset;
    std::size_t chars;
  };
  for (auto [offset, chars] : {row{0, 15}, row{1, 15}, row{4095, 15}, row{4096, 16}, row{262143, 16},
                               row{262144, 17}, row{UINT64_MAX >> 4, 23}, row{UINT64_MAX, 24}}) {
    cursor_entry e{tag, 0xdeadbeef, offset};
    auto token = encode_compact_cursor(e);
    EXPECT_EQ(token.size(), chars) << offset;
    EXPECT_TRUE(token[0] >= 'g' && token[0] <= 'v') << token;  // marker bits 10
    auto d = decode_cursor(token);
    ASSERT_TRUE(d) << token;
    ASSERT_EQ(d->size(), 1u);
    EXPECT_EQ(d->front(), e) << token;
  }
}

TEST(CompactCursor, RefusesCorruptionAndOtherSpellings) {
  auto token = encode_compact_cursor({channel_tag("news"), 7, 3});
  ASSERT_TRUE(decode_cursor(token));
  for (std::size_t i = 0; i < token.size(); ++i) {
    std::string bad = token;
    bad[i] = bad[i] == 'B' ? 'C' : 'B';
    EXPECT_FALSE(decode_cursor(bad)) << bad;  // the check (or the marker) catches one changed character
  }
  EXPECT_FALSE(decode_cursor(token.substr(0, 14)));
  EXPECT_FALSE(decode_cursor(token + "A"));  // 16 characters holding a 12-bit offset: not minimal
  EXPECT_FALSE(decode_cursor(token.substr(0, 13) + "!!"));
}

TEST(CompactCursor, SitsBesideTheLongFormInOneRequest) {
  // Both forms name the same position; which one a client holds does not matter.
  cursor_entry e{channel_tag("chat:room1"), 99, 100000};
  EXPECT_EQ(*decode_cursor(encode_compact_cursor(e)), *decode_cursor(encode_cursor({&e, 1})));
  EXPECT_LT(encode_compact_cursor(e).size(), encode_cursor({&e, 1}).size());
}
