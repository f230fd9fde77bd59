#include "protocol/channel_name.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using herald::protocol::namespace_of;
using herald::protocol::valid_channel_name;

TEST(ChannelName, AcceptsTheContractAlphabet) {
  EXPECT_TRUE(valid_channel_name("news"));
  EXPECT_TRUE(valid_channel_name("chat:room-1"));
  EXPECT_TRUE(valid_channel_name("a.b_c@d/e:f-G9"));
  EXPECT_TRUE(valid_channel_name(std::string(255, 'x')));
}

TEST(ChannelName, RejectsEmptyTooLongAndForeignBytes) {
  EXPECT_FALSE(valid_channel_name(""));
  EXPECT_FALSE(valid_channel_name(std::string(256, 'x')));
  for (std::string bad : std::vector<std::string>{"a b", "a\"b", "a\\b", "a?b", "a#b", "a%20", "é", std::string("a\0b", 3)})
    EXPECT_FALSE(valid_channel_name(bad)) << bad;
}

TEST(ChannelName, NamespaceIsThePartBeforeTheFirstColon) {
  EXPECT_EQ(namespace_of("chat:room1"), "chat");
  EXPECT_EQ(namespace_of("chat:room:1"), "chat");
  EXPECT_EQ(namespace_of("news"), "");
  EXPECT_EQ(namespace_of(":x"), "");
}
