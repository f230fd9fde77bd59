#include "protocol/hook_json.hpp"

#include <gtest/gtest.h>

namespace herald::protocol {
namespace {

hook_decision decided(std::string_view body) {
  auto r = parse_hook_reply(body);
  EXPECT_TRUE(std::holds_alternative<hook_decision>(r)) << body;
  return std::holds_alternative<hook_decision>(r) ? std::get<hook_decision>(r) : hook_decision{};
}

std::string refused(std::string_view body) {
  auto r = parse_hook_reply(body);
  EXPECT_TRUE(std::holds_alternative<std::string>(r)) << body;
  return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : "";
}

TEST(HookJson, RequestCarriesWhoWhereAndTheDataAsPublished) {
  hook_call c;
  c.kind = hook_kind::publish;
  c.user = "al\"ice";
  c.client = "ab.1";
  c.transport = "ws";
  c.channel = "room:1";
  c.event = "chat";
  c.data_json = R"({"n":1.50})";
  c.ephemeral = true;
  EXPECT_EQ(
      hook_request_json(c),
      R"({"hook":"publish","user":"al\"ice","client":"ab.1","transport":"ws","channel":"room:1","event":"chat","data":{"n":1.50},"ephemeral":true})");
  hook_call anon;
  anon.kind = hook_kind::connect;
  anon.client = "x.2";
  anon.transport = "sse";
  anon.channels = R"(["a","b"])";
  EXPECT_EQ(hook_request_json(anon),
            R"({"hook":"connect","user":null,"client":"x.2","transport":"sse","channels":["a","b"]})");
}

TEST(HookJson, AllowRefuseAndReplace) {
  EXPECT_TRUE(decided(R"({"allow":true})").allow);
  auto no = decided(R"({"allow":false,"code":4123,"message":"muted"})");
  EXPECT_FALSE(no.allow);
  EXPECT_EQ(no.code, 4123);
  EXPECT_EQ(no.message, "muted");
  EXPECT_EQ(decided(R"({"allow":false})").code, 4403);
  auto rw = decided(R"({"allow":true, "data": { "n" : 1.50, "s":"a b" }, "extra":1})");
  ASSERT_TRUE(rw.data);
  EXPECT_EQ(*rw.data, R"({"n":1.50,"s":"a b"})");
  EXPECT_EQ(decided(std::string(R"({"allow":false,"message":")") + std::string(500, 'x') + "\"}").message.size(), 200u);
}

TEST(HookJson, MalformedRepliesAreRefusedWithAReason) {
  EXPECT_EQ(refused("{\"allow\": tru"), "the reply is not valid JSON");
  EXPECT_EQ(refused("[]"), "the reply is not a JSON object");
  EXPECT_EQ(refused("{}"), "the reply has no boolean \"allow\"");
  EXPECT_EQ(refused(R"({"allow":"yes"})"), "the reply has no boolean \"allow\"");
  EXPECT_EQ(refused(R"({"allow":false,"code":1000})"), "\"code\" must be an integer 4000-4999");
  EXPECT_EQ(refused(R"({"allow":false,"code":"4403"})"), "\"code\" must be an integer 4000-4999");
  EXPECT_EQ(refused(R"({"allow":false,"message":7})"), "\"message\" must be a string");
  EXPECT_FALSE(refused("").empty());
}

TEST(HookJson, ReplacePublishDataKeepsTheOtherMembers) {
  EXPECT_EQ(replace_publish_data(R"({"channel":"c","data":"old","event":"e"})", R"({"new":1})"),
            R"({"channel":"c","event":"e","data":{"new":1}})");
  EXPECT_EQ(replace_publish_data(R"({"channel":"c","data":1,"ephemeral":true})", "2"),
            R"({"channel":"c","ephemeral":true,"data":2})");
}

}  // namespace
}  // namespace herald::protocol
