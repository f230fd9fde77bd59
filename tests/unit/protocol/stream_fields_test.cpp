#include "protocol/stream_fields.hpp"

#include <gtest/gtest.h>

namespace p = herald::protocol;
using herald::util::api_error;

namespace {

std::string code_of(const std::variant<p::stream_end_fields, api_error>& r) {
  return std::holds_alternative<api_error>(r) ? std::get<api_error>(r).code : "";
}

}  // namespace

TEST(StreamFields, EndTakesChannelStateReasonAndExpectedOffset) {
  auto r = p::parse_stream_end(R"({"channel":"ai:1","state":"error","reason":"model \"gone\"","expected_offset":9})");
  ASSERT_TRUE(std::holds_alternative<p::stream_end_fields>(r));
  auto& f = std::get<p::stream_end_fields>(r);
  EXPECT_EQ(f.channel, "ai:1");
  EXPECT_EQ(f.state, "error");
  EXPECT_EQ(f.reason, "model \"gone\"");
  EXPECT_EQ(f.expected_offset, 9u);
  auto bare = std::get<p::stream_end_fields>(p::parse_stream_end(R"({"channel":"a","state":"completed"})"));
  EXPECT_TRUE(bare.reason.empty());
  EXPECT_FALSE(bare.expected_offset);
}

TEST(StreamFields, EndRefusesWhatItCannotUse) {
  EXPECT_EQ(code_of(p::parse_stream_end("")), "bad_json");
  EXPECT_EQ(code_of(p::parse_stream_end("[]")), "bad_request");
  EXPECT_EQ(code_of(p::parse_stream_end(R"({"state":"completed"})")), "bad_request");
  EXPECT_EQ(code_of(p::parse_stream_end(R"({"channel":"a b","state":"completed"})")), "invalid_channel");
  EXPECT_EQ(code_of(p::parse_stream_end(R"({"channel":"a","state":"aborted"})")), "bad_request");
  EXPECT_EQ(code_of(p::parse_stream_end(R"({"channel":"a","state":"completed","state":"error"})")), "bad_request");
  EXPECT_EQ(code_of(p::parse_stream_end(R"({"channel":"a","state":"completed","expected_offset":0})")), "bad_request");
  EXPECT_EQ(code_of(p::parse_stream_end(R"({"channel":"a","state":"completed","reason":1})")), "bad_request");
  auto long_reason = R"({"channel":"a","state":"error","reason":")" + std::string(2000, 'r') + "\"}";
  auto r = p::parse_stream_end(long_reason);
  ASSERT_TRUE(std::holds_alternative<api_error>(r));
  EXPECT_EQ(std::get<api_error>(r).status, 413);
}

TEST(StreamFields, StopTakesChannelAndReason) {
  auto r = p::parse_stream_stop(R"({"channel":"ai:1","reason":"user pressed stop"})");
  ASSERT_TRUE(std::holds_alternative<p::stream_stop_fields>(r));
  EXPECT_EQ(std::get<p::stream_stop_fields>(r).reason, "user pressed stop");
  EXPECT_TRUE(std::holds_alternative<api_error>(p::parse_stream_stop(R"({"reason":"x"})")));
}

TEST(StreamFields, EndDataIsStateAndReason) {
  EXPECT_EQ(p::end_data_json("completed", ""), R"({"state":"completed","reason":null})");
  EXPECT_EQ(p::end_data_json("error", "idle \"60\" s"), R"({"state":"error","reason":"idle \"60\" s"})");
}
