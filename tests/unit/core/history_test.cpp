#include "core/history.hpp"

#include <gtest/gtest.h>

using herald::core::history;
using herald::protocol::message;
using herald::protocol::message_ptr;

namespace {
message_ptr msg(std::uint64_t offset) {
  return std::make_shared<message>("c", offset, 1, 0, "", "{\"n\":" + std::to_string(offset) + "}");
}
std::vector<std::uint64_t> offsets(const std::vector<message_ptr>& v) {
  std::vector<std::uint64_t> out;
  for (auto& m : v) out.push_back(m->offset());
  return out;
}
}  // namespace

TEST(History, KeepsTheNewestMaxSizeMessages) {
  history h;
  for (std::uint64_t i = 1; i <= 10; ++i) h.push(msg(i), 0, 4);
  EXPECT_EQ(h.size(), 4u);
  EXPECT_EQ(h.first_offset(), 7u);
  std::vector<message_ptr> out;
  h.latest(100, out);
  EXPECT_EQ(offsets(out), (std::vector<std::uint64_t>{7, 8, 9, 10}));
}

TEST(History, SinceReturnsMessagesAfterAnOffsetUpToALimit) {
  history h;
  for (std::uint64_t i = 1; i <= 6; ++i) h.push(msg(i), 0, 100);
  std::vector<message_ptr> out;
  h.since(3, 100, out);
  EXPECT_EQ(offsets(out), (std::vector<std::uint64_t>{4, 5, 6}));
  out.clear();
  h.since(0, 2, out);
  EXPECT_EQ(offsets(out), (std::vector<std::uint64_t>{1, 2}));
  out.clear();
  h.since(6, 100, out);
  EXPECT_TRUE(out.empty());
}

TEST(History, ExpireDropsOldMessagesAndReleasesTheRing) {
  history h;
  h.push(msg(1), 1000, 10);
  h.push(msg(2), 2000, 10);
  h.push(msg(3), 3000, 10);
  h.expire(3500, 2000);  // keeps what was stored at or after 1500
  EXPECT_EQ(h.first_offset(), 2u);
  h.expire(10000, 2000);
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.bytes(), 0u);
  h.expire(10000, 0);  // 0: no age limit, no effect
}

TEST(History, ZeroSizeKeepsNothing) {
  history h;
  h.push(msg(1), 0, 0);
  EXPECT_TRUE(h.empty());
}

TEST(History, GrowsOnDemandAndWrapsAround) {
  history h;
  for (std::uint64_t i = 1; i <= 1000; ++i) {
    h.push(msg(i), 0, 37);
    ASSERT_EQ(h.size(), std::min<std::uint64_t>(i, 37));
    ASSERT_EQ(h.first_offset(), i > 37 ? i - 36 : 1);
  }
  std::vector<message_ptr> out;
  h.since(990, 100, out);
  EXPECT_EQ(offsets(out).front(), 991u);
  EXPECT_EQ(offsets(out).back(), 1000u);
  EXPECT_GT(h.bytes(), 0u);
}

TEST(History, AByteBoundDropsTheOldestButNeverTheNewest) {
  history h;
  const std::size_t one = msg(1)->footprint();
  for (std::uint64_t i = 1; i <= 10; ++i) h.push(msg(i), 0, 100, 3 * one + one / 2);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.first_offset(), 8u);
  EXPECT_LE(h.bytes(), 3 * one + one / 2);
  h.push(msg(11), 0, 100, 1);  // a bound smaller than one message: the newest stays alone
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.first_offset(), 11u);
}
