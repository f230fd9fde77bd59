// The server's own wire forms against tests/golden/: a change of any byte fails here, and
// the browser client's tests read the same files. HERALD_UPDATE_GOLDEN=1 rewrites them
// (then review the diff: it is a protocol change).
#include "protocol/replies.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "protocol/cursor.hpp"

namespace p = herald::protocol;

namespace {

void golden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(HERALD_GOLDEN_DIR) + "/" + name;
  if (std::getenv("HERALD_UPDATE_GOLDEN")) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing golden file " << path;
  std::ostringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(actual, expected.str()) << "wire form " << name << " changed";
}

const std::string cursor = "AUa8x0u8vhicA6NE";
const std::vector<std::string> two = {"news", "chat:room1"};

p::message_ptr msg(std::uint64_t offset, std::string event, std::string data) {
  return std::make_shared<p::message>("news", offset, 0x1234u, 1795851218010, std::move(event), data);
}

}  // namespace

TEST(Replies, SseForms) {
  golden("sse-retry.txt", p::sse_retry(3000));
  golden("sse-position.txt", p::sse_position(cursor));
  golden("sse-id-line.txt", p::sse_id_line(cursor));
  golden("sse-reset.txt", p::sse_reset(cursor, two));
  golden("sse-token-expired.txt", p::sse_token_expired(cursor));
  golden("sse-message.txt", std::string(msg(3, "headline", R"({"title":1.50})")->sse_event()));
}

TEST(Replies, PollAndHistoryReplies) {
  std::vector<p::message_ptr> ms = {msg(2, "", R"("a")"), msg(3, "headline", R"({"n":12345678901234567890123})")};
  std::string poll(p::messages_head);
  poll += std::string(ms[0]->json()) + "," + std::string(ms[1]->json());
  poll += p::poll_reply_tail(cursor, {});
  golden("poll-reply.json", poll);
  golden("poll-reply-reset.json", std::string(p::messages_head) + p::poll_reply_tail(cursor, two));
  golden("history-reply.json", p::history_reply(ms, cursor, true));
  golden("history-reply-lost.json", p::history_reply({}, cursor, false));
  // The poll reply and the history reply agree when nothing was reset.
  EXPECT_EQ(poll, p::history_reply(ms, cursor, true));
}

TEST(Replies, WebSocketAndPublishForms) {
  golden("ws-subscribed.json", p::ws_subscribed("chat:room1", true, cursor));
  golden("ws-subscribed-reset.json", p::ws_subscribed("chat:room1", false, cursor));
  golden("ws-reset.json", p::ws_reset("chat:room1", cursor));
  golden("publish-result.json", p::publish_result(42, cursor));
}

TEST(Replies, SignalForms) {
  // Live-only signals: no offset, no cursor, no SSE id line (docs/protocol.md, "Signals").
  auto eph = std::make_shared<p::message>(p::message_kind::ephemeral, "chat:room1", 1795851218010, "typing",
                                          R"({"user":"alice"})");
  auto join = std::make_shared<p::message>(p::message_kind::join, "chat:room1", 1795851218010, "",
                                           R"({"user":"alice","client":"5f3a9c01.7","transport":"ws"})");
  auto leave = std::make_shared<p::message>(p::message_kind::leave, "chat:room1", 1795851218010, "",
                                            R"({"user":"alice","client":"5f3a9c01.7","transport":"ws"})");
  golden("sse-ephemeral.txt", std::string(eph->sse_event()));
  golden("sse-join.txt", std::string(join->sse_event()));
  golden("sse-leave.txt", std::string(leave->sse_event()));
  golden("ephemeral.json", eph->json());  // a long-poll element
  golden("join.json", join->json());      // a long-poll element and the WebSocket message
  golden("ephemeral-result.json", p::ephemeral_result());
  EXPECT_EQ(eph->sse_body(), eph->sse_event()) << "a signal has no id line to leave out";
  EXPECT_TRUE(eph->cursor().empty());
  EXPECT_EQ(eph->offset(), 0u);
  EXPECT_EQ(join->data_json(), R"({"channel":"chat:room1","user":"alice","client":"5f3a9c01.7","transport":"ws"})");
  EXPECT_EQ(join->signal_client(), "5f3a9c01.7");
  EXPECT_EQ(eph->signal_client(), "");
  auto tricky = std::make_shared<p::message>(p::message_kind::join, "c", 1, "",
                                             R"({"user":"x\",\"client\":\"fake","client":"real.1","transport":"sse"})");
  EXPECT_EQ(tricky->signal_client(), "real.1");
}

TEST(Replies, StreamForms) {
  golden("stream-result.json", p::stream_result("ai:answer-7", 42, cursor, "completed"));
  golden("ws-subscribed-ended.json", p::ws_subscribed("ai:answer-7", true, cursor, false, true));
  herald::util::api_error e{409, "offset_mismatch", "the next offset of ai:answer-7 is 5"};
  e.extra_json = "\"next_offset\":5";
  golden("error-offset-mismatch.json", p::error_json(e));
}

// --- Raw formats: the message's raw forms and the signals around them -----------------

namespace {
const std::string compact = p::encode_compact_cursor({p::channel_tag("news"), 0x1234u, 3});
}

TEST(Replies, RawSseForms) {
  auto m = msg(3, "headline", R"({"title":1.50})");
  golden("raw-sse-message.txt", std::string(m->sse_raw_event()));
  golden("raw-sse-message-plain.txt", std::string(msg(3, "", R"("hi")")->sse_raw_event()));
  golden("raw-sse-body.txt", p::sse_raw_id_line(cursor) + std::string(m->sse_raw_body()));
  golden("raw-sse-position.txt", p::sse_position(compact));
  golden("raw-sse-reset.txt", p::sse_reset(compact, {two.data(), 1}));
  // The one-channel event's id is the message's compact cursor, which names the same
  // position as its long cursor.
  EXPECT_EQ(m->compact_cursor(), compact);
  EXPECT_EQ(*p::decode_cursor(m->compact_cursor()), *p::decode_cursor(m->cursor()));
}

TEST(Replies, RawSseEventIsTheDataAnd26BytesAtMost) {
  // The budget of docs/protocol.md: a 100-byte data value costs 126 bytes up to offset 4095.
  const std::string data = "\"" + std::string(98, 'x') + "\"";
  EXPECT_EQ(msg(3, "", data)->sse_raw_event().size(), 126u);
  EXPECT_EQ(msg(4095, "", data)->sse_raw_event().size(), 126u);
  EXPECT_EQ(msg(4096, "", data)->sse_raw_event().size(), 127u);
}

TEST(Replies, RawPollForms) {
  std::vector<p::message_ptr> ms = {msg(2, "", R"("a")"), msg(3, "headline", R"({"n":12345678901234567890123})")};
  std::string one = p::raw_poll_head(compact, {});
  std::string several = p::raw_poll_head(cursor, {});
  for (auto& m : ms) {
    // A named message keeps its name on a "!" line (long polling chooses the same way).
    one += m->event().empty() ? m->raw_line(false) : m->raw_named_line();
    several += m->event().empty() ? m->raw_line(true) : m->raw_named_line();
  }
  golden("raw-poll-reply.txt", one);
  golden("raw-poll-reply-channels.txt", several);
  golden("raw-poll-reply-reset.txt", p::raw_poll_head(cursor, two));
  // A stream's end: its line is the end's data, the head names the channel.
  const std::string news[] = {"news"};
  golden("raw-poll-reply-end.txt", p::raw_poll_head(compact, {}, news) +
                                       std::string(msg(4, "end", R"({"state":"completed","reason":null})")->raw_line(false)));
}

TEST(Replies, RawWebSocketForms) {
  auto m = msg(3, "headline", R"({"title":1.50})");
  golden("raw-ws-frame.bin", std::string(m->ws_raw_frame(false)));
  golden("raw-ws-channel.json", p::ws_raw_channel("chat:room1"));
  golden("raw-ws-channel-cursor.json", p::ws_raw_channel("chat:room1", compact));
  golden("raw-ws-subscribed.json", p::ws_subscribed("chat:room1", true, cursor, true));
  // Binary, FIN, unmasked, 7-bit length: 2 bytes of framing around the data.
  auto f = m->ws_raw_frame(false);
  EXPECT_EQ(static_cast<unsigned char>(f[0]), 0x82u);
  EXPECT_EQ(static_cast<unsigned char>(f[1]), 14u);
  EXPECT_EQ(f.substr(2), R"({"title":1.50})");
  // The default forms are untouched by the raw ones having been built.
  EXPECT_EQ(m->sse_event().substr(0, 4), "id: ");
}
