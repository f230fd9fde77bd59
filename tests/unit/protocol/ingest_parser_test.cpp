// The ingest parsers fed whole and in every split: a read may end anywhere (in a line,
// between "\r" and "\n", inside a UTF-8 character); the messages must not depend on it.
#include "protocol/ingest_parser.hpp"

#include <gtest/gtest.h>

namespace p = herald::protocol;

namespace {

template <class Parser>
std::vector<p::ingest_item> feed_split(Parser& parser, std::string_view body, std::size_t at) {
  std::vector<p::ingest_item> out;
  EXPECT_FALSE(parser.feed(body.substr(0, at), out));
  EXPECT_FALSE(parser.feed(body.substr(at), out));
  return out;
}

std::vector<std::string> data_of(const std::vector<p::ingest_item>& items) {
  std::vector<std::string> out;
  for (auto& i : items) out.push_back(i.event.empty() ? i.data_json : i.event + " " + i.data_json);
  return out;
}

}  // namespace

TEST(NdjsonSplitter, OneMessagePerLineWhereverTheReadsEnd) {
  const std::string body = "{\"t\": \"a\"}\r\n\n  \n[1, 2.50]\n\"x\"";
  const std::vector<std::string> want = {R"({"t":"a"})", "[1,2.50]", R"("x")"};
  for (std::size_t at = 0; at <= body.size(); ++at) {
    p::ndjson_splitter s(1024);
    auto got = feed_split(s, body, at);
    EXPECT_FALSE(s.finish(got));
    EXPECT_EQ(data_of(got), want) << "split at " << at;
  }
}

TEST(NdjsonSplitter, ALineThatIsNotJsonOrTooLargeIsAnErrorNamingIt) {
  p::ndjson_splitter s(16);
  std::vector<p::ingest_item> out;
  auto err = s.feed("1\n{nope}\n", out);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, "bad_json");
  EXPECT_NE(err->message.find("line 2"), std::string::npos);
  EXPECT_EQ(out.size(), 1u);  // what came before stays accepted
  p::ndjson_splitter big(16);
  auto too = big.feed("\"" + std::string(40, 'x') + "\"\n", out);
  ASSERT_TRUE(too);
  EXPECT_EQ(too->status, 413);
  p::ndjson_splitter endless(16);
  auto unbounded = endless.feed(std::string(2000, ' '), out);  // never a newline: bounded anyway
  ASSERT_TRUE(unbounded);
  EXPECT_EQ(unbounded->status, 413);
}

TEST(SseEventParser, EventsOfAnUpstreamResponseWhereverTheReadsEnd) {
  const std::string body =
      "\xEF\xBB\xBF: keep-alive\r\n"
      "event: content_block_delta\r\n"
      "data: {\"delta\": {\"text\": \"Hi\"}}\r\n\r\n"
      "id: 7\n"
      "data: line one\n"
      "data: line two\n\n"
      "event: end\ndata: {}\n\n"
      "data: [DONE]\r\r"
      "data: cut off";
  const std::vector<std::string> want = {R"(content_block_delta {"delta":{"text":"Hi"}})", R"("line one\nline two")",
                                         "{}", R"("[DONE]")"};
  for (std::size_t at = 0; at <= body.size(); ++at) {
    p::sse_event_parser s(1024);
    EXPECT_EQ(data_of(feed_split(s, body, at)), want) << "split at " << at;
  }
}

TEST(SseEventParser, DataOverTheLimitIsRefused) {
  p::sse_event_parser s(8);
  std::vector<p::ingest_item> out;
  auto err = s.feed("data: 0123456789\n\n", out);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->status, 413);
}

TEST(TextDeltas, CharactersSplitOverReadsWaitForTheirEnd) {
  const std::string text = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80!";  // é, €, 😀
  for (std::size_t at = 0; at <= text.size(); ++at) {
    p::text_deltas d;
    ASSERT_TRUE(d.append(text.substr(0, at)));
    std::string first = d.take();
    EXPECT_TRUE(p::valid_utf8(first)) << "split at " << at;
    ASSERT_TRUE(d.append(text.substr(at)));
    EXPECT_TRUE(d.complete());
    EXPECT_EQ(first + d.take(), text);
  }
  p::text_deltas bad;
  EXPECT_FALSE(bad.append("ok \xFF"));
}
