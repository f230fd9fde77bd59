#include "protocol/user_command.hpp"

#include <gtest/gtest.h>

namespace herald::protocol {
namespace {

using op = user_command::op;

std::string error_code(op what, std::string_view body) {
  auto r = parse_user_command(what, body);
  return std::holds_alternative<util::api_error>(r) ? std::get<util::api_error>(r).code : "";
}

TEST(UserCommand, DisconnectCodesSayWhetherToReconnect) {
  auto d = std::get<user_command>(parse_user_command(op::disconnect, R"({"user":"u"})"));
  EXPECT_EQ(d.code, disconnect_final);
  EXPECT_FALSE(d.reconnect());
  auto r = std::get<user_command>(parse_user_command(op::disconnect, R"({"user":"u","reconnect":true})"));
  EXPECT_EQ(r.code, disconnect_reconnect);
  EXPECT_TRUE(r.reconnect());
  auto c = std::get<user_command>(parse_user_command(op::disconnect, R"({"user":"u","code":4042,"reason":"bye"})"));
  EXPECT_EQ(c.code, 4042);
  EXPECT_TRUE(c.reconnect());
  EXPECT_EQ(c.reason, "bye");
}

TEST(UserCommand, BadBodiesAreClearErrors) {
  EXPECT_EQ(error_code(op::disconnect, "{"), "bad_json");
  EXPECT_EQ(error_code(op::disconnect, "1"), "bad_request");
  EXPECT_EQ(error_code(op::disconnect, R"({"user":3})"), "bad_request");
  EXPECT_EQ(error_code(op::disconnect, R"({"user":"u","code":5000})"), "bad_request");
  EXPECT_EQ(error_code(op::disconnect, R"({"user":"u","reason":")" + std::string(121, 'r') + "\"}"), "bad_request");
  EXPECT_EQ(error_code(op::subscribe, R"({"user":"u"})"), "bad_request");
  EXPECT_EQ(error_code(op::unsubscribe, R"({"user":"u","channel":"a b"})"), "invalid_channel");
}

TEST(UserCommand, RoundTripsBetweenNodes) {
  user_command c;
  c.what = op::subscribe;
  c.user = "a\"b";
  c.channel = "room:x";
  auto back = user_command_from_json(user_command_json(c));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->what, op::subscribe);
  EXPECT_EQ(back->user, "a\"b");
  EXPECT_EQ(back->channel, "room:x");
  user_command d;
  d.user = "u";
  d.code = 4105;
  d.reason = "r";
  auto db = user_command_from_json(user_command_json(d));
  ASSERT_TRUE(db);
  EXPECT_EQ(db->code, 4105);
  EXPECT_EQ(db->reason, "r");
  EXPECT_FALSE(user_command_from_json("{\"op\":\"explode\",\"user\":\"u\"}"));
  EXPECT_FALSE(user_command_from_json("garbage"));
}

TEST(UserCommand, WhatConnectionsAreTold) {
  user_command d;
  d.user = "u";
  d.reason = "bye";
  EXPECT_EQ(sse_disconnect_event(d),
            "event: disconnect\ndata: {\"code\":4105,\"reason\":\"bye\",\"reconnect\":false}\n\n");
  user_command s;
  s.what = op::unsubscribe;
  s.channel = "c";
  EXPECT_EQ(sse_resubscribe_event(s), "event: resubscribe\ndata: {\"unsubscribe\":\"c\"}\n\n");
  EXPECT_EQ(ws_unsubscribed_push("c"), R"({"unsubscribed":{"channel":"c"}})");
}

}  // namespace
}  // namespace herald::protocol
