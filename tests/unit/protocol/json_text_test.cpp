#include "protocol/json_text.hpp"

#include <gtest/gtest.h>

#include <variant>

#include "protocol/json_fields.hpp"
#include "protocol/ws_protocol.hpp"

namespace p = herald::protocol;

TEST(JsonText, ValidatesWithoutBuilding) {
  EXPECT_TRUE(p::valid_json(R"({"a":[1,2.5e3,"x"],"b":null})"));
  EXPECT_TRUE(p::valid_json(" 1e999 "));
  EXPECT_FALSE(p::valid_json("[1,]"));
  EXPECT_FALSE(p::valid_json("{} {}"));
  EXPECT_FALSE(p::valid_json("/* c */ 1"));
  EXPECT_FALSE(p::valid_json("\"\xff\""));
  EXPECT_FALSE(p::valid_json(std::string(100, '[') + std::string(100, ']')));
}

TEST(JsonText, CompactKeepsNumbersAndStringsAsWritten) {
  EXPECT_EQ(p::compact_json(R"({ "price" : 1.5, "qty":1.0 , "t":1234.5678 })"),
            R"({"price":1.5,"qty":1.0,"t":1234.5678})");
  EXPECT_EQ(p::compact_json("[12345678901234567890123 ,\n-0, 0.1e-5]"), "[12345678901234567890123,-0,0.1e-5]");
  EXPECT_EQ(p::compact_json(R"(" a \" b \u00e9 ")"), R"(" a \" b \u00e9 ")");
}

TEST(JsonText, MembersAndElementsAreTheTextAsWritten) {
  auto m = p::json_members(R"( { "a" : { "x" : [1, "}"] } , "b\u0063" : "s", "c":3 } )");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].key, "a");
  EXPECT_EQ((*m)[0].value, R"({ "x" : [1, "}"] })");
  EXPECT_EQ((*m)[1].key, "bc");
  EXPECT_EQ((*m)[1].value, R"("s")");
  EXPECT_EQ((*m)[2].value, "3");
  EXPECT_FALSE(p::json_members("[1]"));
  auto e = p::json_elements(R"([ "a" , {"b":[]} ,3 ])");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->size(), 3u);
  EXPECT_EQ((*e)[1], R"({"b":[]})");
  EXPECT_EQ(p::json_elements("[]")->size(), 0u);
}

TEST(JsonText, PublishKeepsTheDataAsPublished) {
  auto r = p::parse_publish(R"({"channel":"n","data":{"price":1.5, "n":123456789012345678901234567890}})", false, 1024, 8);
  ASSERT_TRUE(std::holds_alternative<p::publish_fields>(r));
  EXPECT_EQ(std::get<p::publish_fields>(r).data_json, R"({"price":1.5,"n":123456789012345678901234567890})");
  auto dup = p::parse_publish(R"({"channel":"n","data":1,"data":2})", false, 1024, 8);
  ASSERT_TRUE(std::holds_alternative<herald::util::api_error>(dup));
}

TEST(JsonText, WebSocketCommandEchoesItsIdAsWritten) {
  auto r = p::parse_ws_command(R"({"id":1.0,"method":"publish","channel":"c","data":[1.50]})", 1024);
  ASSERT_TRUE(std::holds_alternative<p::ws_command>(r));
  EXPECT_EQ(std::get<p::ws_command>(r).id, "1.0");
  EXPECT_EQ(std::get<p::ws_command>(r).data_json, "[1.50]");
  auto empty_since = p::parse_ws_command(R"({"id":1,"method":"subscribe","channel":"c","since":""})", 1024);
  ASSERT_TRUE(std::holds_alternative<p::ws_command_error>(empty_since));
  EXPECT_EQ(std::get<p::ws_command_error>(empty_since).error.code, "bad_cursor");
}
