// The Pub/Sub payload of a signal: what one node PUBLISHes, another reads back the same;
// anything malformed is dropped (null), never a publication.
#include "broker/redis/redis_signals.hpp"

#include <gtest/gtest.h>

using namespace herald;
using protocol::message_kind;

namespace {
protocol::message_ptr roundtrip(const protocol::message& m) {
  const auto payload = broker::signal_payload(m);
  EXPECT_TRUE(broker::is_signal_payload(payload)) << payload;
  return broker::parse_signal_payload(m.channel(), payload);
}
}  // namespace

TEST(RedisSignals, EphemeralJoinAndLeaveComeBackAsSent) {
  protocol::message eph(message_kind::ephemeral, "chat:1", 1795851218010, "typing", R"({"a":[1, 2]})");
  auto e = roundtrip(eph);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind(), message_kind::ephemeral);
  EXPECT_EQ(e->json(), eph.json());
  EXPECT_EQ(e->time_ms(), 1795851218010);
  protocol::message bare(message_kind::ephemeral, "chat:1", 5, "", "\"x y z\"");
  EXPECT_EQ(roundtrip(bare)->json(), bare.json());
  for (auto kind : {message_kind::join, message_kind::leave}) {
    protocol::message who(kind, "chat:1", 7, "", R"({"user":"a \"b\"","client":"0a1b2c3d.9","transport":"sse"})");
    auto w = roundtrip(who);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->kind(), kind);
    EXPECT_EQ(w->json(), who.json());
    EXPECT_EQ(w->signal_client(), "0a1b2c3d.9");
  }
}

TEST(RedisSignals, APublicationPayloadIsNotASignal) {
  EXPECT_FALSE(broker::is_signal_payload("123 4 1795851218010 . {\"x\":1}"));
}

TEST(RedisSignals, MalformedPayloadsAreDropped) {
  for (const char* bad : {"s", "s e", "s e 1", "s e 1 .", "s e 1 . ", "s x 1 . 1", "s ee 1 . 1", "s e -1 . 1",
                          "s e abc . 1", "s e 99999999999999999999 . 1", "s j 1 . notjson", "t e 1 . 1"})
    EXPECT_EQ(broker::parse_signal_payload("c", bad), nullptr) << bad;
}
