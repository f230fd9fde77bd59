#include "transport/request_head.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/message.hpp>

namespace http = boost::beast::http;
using herald::transport::check_request_head;
using herald::transport::head_refusal;
using herald::transport::parse_request_target;
using herald::transport::request_head;

namespace {

http::request_header<> head(std::string_view target, std::initializer_list<std::pair<http::field, std::string_view>> fields,
                            unsigned version = 11) {
  http::request_header<> h;
  h.method(http::verb::post);
  h.target(target);
  h.version(version);
  for (auto& [f, v] : fields) h.insert(f, v);
  return h;
}

int refusal_status(const http::request_header<>& h, bool chunked = false) {
  auto r = check_request_head(h, chunked);
  auto* refusal = std::get_if<head_refusal>(&r);
  return refusal ? refusal->error.status : 0;
}

}  // namespace

TEST(RequestHead, ATransferEncodingNotEndingInChunkedIsRefused) {
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "x"}, {http::field::transfer_encoding, "gzip"}})), 400);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "x"}, {http::field::transfer_encoding, "chunked, gzip"}})), 400);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "x"}, {http::field::transfer_encoding, ""}})), 400);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "x"}, {http::field::transfer_encoding, "chunked"}}), true), 0);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "x"}, {http::field::transfer_encoding, "gzip, chunked"}}), true), 501);
  EXPECT_EQ(refusal_status(head("/", {{http::field::transfer_encoding, "chunked"}}, 10), true), 400);
}

TEST(RequestHead, HttpOneOneNeedsExactlyOneValidHost) {
  EXPECT_EQ(refusal_status(head("/", {})), 400);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "a"}, {http::field::host, "a"}})), 400);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "a b"}})), 400);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "user@a"}})), 400);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "a.example:8080"}})), 0);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "[::1]:8080"}})), 0);
  EXPECT_EQ(refusal_status(head("/", {}, 10)), 0);
}

TEST(RequestHead, OnlyTheHundredContinueExpectationIsMet) {
  auto r = check_request_head(head("/", {{http::field::host, "x"}, {http::field::expect, "100-Continue"}}), false);
  ASSERT_TRUE(std::holds_alternative<request_head>(r));
  EXPECT_TRUE(std::get<request_head>(r).expects_continue);
  EXPECT_EQ(refusal_status(head("/", {{http::field::host, "x"}, {http::field::expect, "200-ok"}})), 417);
  auto old = check_request_head(head("/", {{http::field::expect, "100-continue"}}, 10), false);
  ASSERT_TRUE(std::holds_alternative<request_head>(old));
  EXPECT_FALSE(std::get<request_head>(old).expects_continue);  // ignored in HTTP/1.0
}

TEST(RequestHead, AbsoluteFormIsRoutedByItsPathAndNamesTheHost) {
  const auto req = head("http://app.example:8080/sse?channel=x", {{http::field::host, "other"}});
  auto r = check_request_head(req, false);  // views into req
  ASSERT_TRUE(std::holds_alternative<request_head>(r));
  auto& h = std::get<request_head>(r);
  EXPECT_EQ(h.target.path, "/sse");
  EXPECT_EQ((*h.target.params.find("channel")).value, "x");
  EXPECT_EQ(h.host, "app.example:8080");  // RFC 9112 3.2.2: the target's authority wins
}

TEST(RequestHead, TargetsOtherThanOriginAndAbsoluteFormAreRefused) {
  EXPECT_EQ(parse_request_target("https://h")->path, "/");
  EXPECT_EQ(parse_request_target("/a%20b?q=1")->path, "/a%20b");
  EXPECT_FALSE(parse_request_target("*"));
  EXPECT_FALSE(parse_request_target("host:8080"));
  EXPECT_FALSE(parse_request_target("ftp://h/x"));
  EXPECT_FALSE(parse_request_target("http:///x"));
  EXPECT_FALSE(parse_request_target("http://u@h/x"));
  EXPECT_FALSE(parse_request_target(""));
}
