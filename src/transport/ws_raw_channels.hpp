#pragma once
// A WebSocket connection's raw subscriptions ("format":"raw", docs/protocol.md "Raw
// formats"): which channels are raw, and which channel the client attributes the next
// binary frame to. A raw message is a binary frame of its data alone; before it, a text
// frame {"channel":..} names its channel when that differs from the previous binary
// frame's, and {"channel":..,"cursor":..} (the position before it) precedes the first
// message of a life, so a client that subscribed before the channel had one (epoch 0)
// learns the epoch. A message with an event name comes as a JSON push instead (it carries
// its offset and cursor). A connection without raw subscriptions holds no storage here.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "protocol/cursor.hpp"
#include "protocol/message.hpp"
#include "protocol/replies.hpp"

namespace herald::transport {

class ws_raw_channels {
 public:
  bool empty() const noexcept { return !s_; }
  bool raw(std::string_view channel) const noexcept {
    return s_ && std::find(s_->channels.begin(), s_->channels.end(), channel) != s_->channels.end();
  }
  void set(const std::string& channel, bool on) {
    if (on == raw(channel)) return;
    if (on) {
      if (!s_) s_ = std::make_unique<state>();
      s_->channels.push_back(channel);
      return;
    }
    std::erase(s_->channels, channel);
    // The last channel that went still names the client's current channel: keep it
    // while other raw channels remain; without any, a later one starts afresh.
    if (s_->channels.empty()) s_.reset();
  }
  /// The text frame's JSON to send before `m`'s binary frame (a raw channel's message),
  /// or empty when none is needed.
  std::string announce(const protocol::message& m) {
    std::string& current = s_->current;
    if (m.offset() == 1) {
      current = m.channel();
      return protocol::ws_raw_channel(current, protocol::encode_compact_cursor({m.channel_tag(), m.epoch(), 0}));
    }
    if (current == m.channel()) return {};
    current = m.channel();
    return protocol::ws_raw_channel(current);
  }

 private:
  struct state {
    std::vector<std::string> channels;
    std::string current;  // the channel of the last binary frame sent
  };
  std::unique_ptr<state> s_;  // null while no raw subscription: 8 bytes per connection
};

}  // namespace herald::transport
