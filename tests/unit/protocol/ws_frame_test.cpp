#include "protocol/ws_frame.hpp"

#include <gtest/gtest.h>

#include "protocol/deflate.hpp"

using namespace herald::protocol;

namespace {

// A masked client frame.
std::string client_frame(std::uint8_t first_byte, std::string_view payload, bool mask = true) {
  std::string f;
  f += static_cast<char>(first_byte);
  const auto n = payload.size();
  const char m = mask ? static_cast<char>(0x80) : 0;
  if (n < 126) {
    f += static_cast<char>(m | n);
  } else if (n <= 0xffff) {
    f += static_cast<char>(m | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(m | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff);
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (mask) f.append(key, 4);
  for (std::size_t i = 0; i < n; ++i) f += mask ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i];
  return f;
}

struct events : ws_reader::handler {
  std::vector<std::string> log;
  void on_ws_message(bool text, std::string_view p) override { log.push_back((text ? "text:" : "bin:") + std::string(p)); }
  void on_ws_ping(std::string_view p) override { log.push_back("ping:" + std::string(p)); }
  void on_ws_pong(std::string_view p) override { log.push_back("pong:" + std::string(p)); }
  void on_ws_close(std::uint16_t code, std::string_view r) override {
    log.push_back("close:" + std::to_string(code) + ":" + std::string(r));
  }
};

struct reader_run {
  ws_reader reader;
  events ev;
  bool ok = true;
  explicit reader_run(std::size_t max = 1 << 20, bool deflate = false) : reader(max, deflate) {}
  reader_run& feed(std::string bytes) {
    ok = reader.feed(bytes.data(), bytes.size(), ev) && ok;
    return *this;
  }
};

}  // namespace

TEST(WsFrame, ServerFramesUseTheShortestLength) {
  EXPECT_EQ(ws_frame(ws_opcode::text, std::string(125, 'a')).size(), 127u);
  EXPECT_EQ(ws_frame(ws_opcode::text, std::string(126, 'a')).size(), 130u);
  EXPECT_EQ(ws_frame(ws_opcode::text, std::string(70000, 'a')).size(), 70010u);
  EXPECT_EQ(static_cast<std::uint8_t>(ws_frame(ws_opcode::text, "x", true)[0]), 0xC1);
}

TEST(WsReader, DeliversWholeAndFragmentedMessagesWithInterleavedControl) {
  reader_run r;
  r.feed(client_frame(0x81, "hello"));
  r.feed(client_frame(0x01, "frag") + client_frame(0x89, "p") + client_frame(0x80, "ment"));
  r.feed(client_frame(0x82, std::string("\x00\xff", 2)));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.ev.log, (std::vector<std::string>{"text:hello", "ping:p", "text:fragment", std::string("bin:\x00\xff", 6)}));
}

TEST(WsReader, AcceptsBytesOneAtATime) {
  reader_run r;
  std::string f = client_frame(0x81, std::string(300, 'z'));
  for (char c : f) r.feed(std::string(1, c));
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.ev.log.size(), 1u);
  EXPECT_EQ(r.ev.log[0].size(), 305u);
  EXPECT_TRUE(r.reader.idle());
}

TEST(WsReader, RefusesProtocolViolationsWith1002) {
  for (std::string bad : std::vector<std::string>{
           client_frame(0xC1, "rsv1"),            // RSV1 without deflate
           client_frame(0xA1, "rsv2"),            // RSV2
           client_frame(0x83, "op3"),             // reserved opcode
           client_frame(0x8B, "op11"),            // reserved control opcode
           client_frame(0x09, "frag ping"),       // fragmented control
           client_frame(0x89, std::string(126, 'p')),  // control too long
           client_frame(0x80, "cont"),            // continuation without a message
           client_frame(0x81, "unmasked", false),
           client_frame(0x88, "x"),               // close with one byte
           client_frame(0x88, std::string("\x03\xed", 2)),  // close code 1005
       }) {
    reader_run r;
    r.feed(bad);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reader.error_code(), 1002) << r.reader.error_reason();
  }
  reader_run r;
  r.feed(client_frame(0x01, "a") + client_frame(0x81, "b"));  // new message inside one
  EXPECT_EQ(r.reader.error_code(), 1002);
}

TEST(WsReader, InvalidUtf8FailsFastWith1007) {
  reader_run whole;
  whole.feed(client_frame(0x81, "\xed\xa0\x80"));  // surrogate
  EXPECT_EQ(whole.reader.error_code(), 1007);

  reader_run early;
  early.feed(client_frame(0x01, "ok\xc0\xaf"));  // overlong, in the first fragment
  EXPECT_EQ(early.reader.error_code(), 1007);

  reader_run split;  // a valid 4-byte character split over fragments
  split.feed(client_frame(0x01, "\xf0\x9f")).feed(client_frame(0x80, "\x98\x80"));
  EXPECT_TRUE(split.ok);
  EXPECT_EQ(split.ev.log, (std::vector<std::string>{"text:\xf0\x9f\x98\x80"}));

  reader_run truncated;
  truncated.feed(client_frame(0x01, "a\xe2\x82")).feed(client_frame(0x80, ""));
  EXPECT_EQ(truncated.reader.error_code(), 1007);

  reader_run reason;
  reason.feed(client_frame(0x88, std::string("\x03\xe8\xff", 3)));
  EXPECT_EQ(reason.reader.error_code(), 1007);
}

TEST(WsReader, CloseCodesAndNothingAfterClose) {
  reader_run r;
  r.feed(client_frame(0x88, std::string("\x0f\xa0", 2) + "bye") + client_frame(0x81, "late"));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.ev.log, (std::vector<std::string>{"close:4000:bye"}));
  reader_run empty;
  empty.feed(client_frame(0x88, ""));
  EXPECT_EQ(empty.ev.log, (std::vector<std::string>{"close:1005:"}));
  for (std::uint16_t code : {0, 999, 1004, 1006, 1015, 1016, 2999, 5000}) EXPECT_FALSE(ws_valid_close_code(code)) << code;
  for (std::uint16_t code : {1000, 1001, 1011, 3000, 4999}) EXPECT_TRUE(ws_valid_close_code(code)) << code;
}

TEST(WsReader, MessageSizeLimitHoldsAcrossFragmentsWith1009) {
  reader_run big(100);
  big.feed(client_frame(0x81, std::string(101, 'a')));
  EXPECT_EQ(big.reader.error_code(), 1009);
  reader_run frags(100);
  frags.feed(client_frame(0x01, std::string(60, 'a'))).feed(client_frame(0x80, std::string(60, 'a')));
  EXPECT_EQ(frags.reader.error_code(), 1009);
  reader_run header_only(100);  // refused from the header, before the payload arrives
  header_only.feed(client_frame(0x81, std::string(70000, 'a')).substr(0, 10));
  EXPECT_EQ(header_only.reader.error_code(), 1009);
}

TEST(WsReader, InflatesCompressedMessagesAndStopsBombs) {
  reader_run r(1 << 20, true);
  std::string payload = R"({"id":1,"method":"ping"})";
  r.feed(client_frame(0xC1, deflate_message(payload)));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.ev.log, (std::vector<std::string>{"text:" + payload}));

  reader_run frag(1 << 20, true);  // compressed message in two fragments
  std::string z = deflate_message(payload);
  frag.feed(client_frame(0x41, z.substr(0, 5))).feed(client_frame(0x80, z.substr(5)));
  EXPECT_EQ(frag.ev.log, (std::vector<std::string>{"text:" + payload}));

  reader_run bomb(100000, true);
  bomb.feed(client_frame(0xC2, deflate_message(std::string(10'000'000, '\0'))));
  EXPECT_EQ(bomb.reader.error_code(), 1009);

  reader_run cont(1 << 20, true);
  cont.feed(client_frame(0x01, "a")).feed(client_frame(0xC0, "b"));  // RSV1 on a continuation
  EXPECT_EQ(cont.reader.error_code(), 1002);
}

TEST(Deflate, RoundTripsAndRefusesGarbage) {
  std::string text(5000, 'x');
  auto z = deflate_message(text);
  EXPECT_LT(z.size(), 100u);
  std::string back;
  ASSERT_EQ(inflate_message(z, 10000, back), inflate_error::none);
  EXPECT_EQ(back, text);
  EXPECT_EQ(inflate_message(z, 4999, back), inflate_error::too_big);
  EXPECT_EQ(inflate_message("\xff\xff\xff\xff garbage", 1000, back), inflate_error::corrupt);
}

TEST(Utf8, ValidatesTheRfc3629Ranges) {
  EXPECT_TRUE(valid_utf8("plain ascii, long enough for the fast path"));
  EXPECT_TRUE(valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"));
  for (std::string bad : std::vector<std::string>{"\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
                                                  "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",
                                                  "\xe2\x82"})
    EXPECT_FALSE(valid_utf8(bad)) << testing::PrintToString(bad);
}

namespace {
// Holds after `allow` events: the reader must stop and keep the rest.
struct holding_events : events {
  std::size_t allow = 1;
  bool hold() const noexcept override { return log.size() >= allow; }
};
}  // namespace

TEST(WsReader, AHoldStopsParsingAndKeepsTheRestUntilResumed) {
  ws_reader reader(1 << 20, false);
  holding_events ev;
  std::string bytes = client_frame(0x81, "one") + client_frame(0x89, "p") + client_frame(0x81, "two") +
                      client_frame(0x81, "thr");  // the last one cut in two feeds
  std::string tail = bytes.substr(bytes.size() - 3);
  bytes.resize(bytes.size() - 3);
  ASSERT_TRUE(reader.feed(bytes.data(), bytes.size(), ev));
  EXPECT_EQ(ev.log, (std::vector<std::string>{"text:one"}));
  EXPECT_FALSE(reader.idle());
  ev.allow = 2;
  ASSERT_TRUE(reader.feed(nullptr, 0, ev));
  EXPECT_EQ(ev.log, (std::vector<std::string>{"text:one", "ping:p"}));
  ev.allow = 100;
  ASSERT_TRUE(reader.feed(tail.data(), tail.size(), ev));
  EXPECT_EQ(ev.log, (std::vector<std::string>{"text:one", "ping:p", "text:two", "text:thr"}));
  EXPECT_TRUE(reader.idle());
}
