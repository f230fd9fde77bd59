#pragma once
// A WebSocket connection's raw subscriptions ("format":"raw", docs/protocol.md "Raw
// formats"): which channels are raw, and which channel the client attributes the next
// binary frame to. A raw message is a binary frame of its data alone; before it, a text
// frame {"channel":..} names its channel when that differs from the previous binary
// frame's, and {"channel":..,"cursor":..} (the position before it) precedes the first
// message of a life, so a client that subscribed before the channel had one (epoch 0)
// learns the epoch. A connection without raw subscriptions holds no storage here.
#include <algorithm>
#include <string>
#include <vector>

#include "protocol/cursor.hpp"
#include "protocol/message.hpp"
#include "protocol/replies.hpp"

namespace herald::transport {

class ws_raw_channels {
 public:
  bool empty() const noexcept { return channels_.empty(); }
  bool raw(std::string_view channel) const noexcept {
    return std::find(channels_.begin(), channels_.end(), channel) != channels_.end();
  }
  void set(const std::string& channel, bool on) {
    if (on == raw(channel)) return;
    if (on) return channels_.push_back(channel);
    std::erase(channels_, channel);
    if (channels_.empty()) std::vector<std::string>().swap(channels_);
  }
  /// The text frame's JSON to send before `m`'s binary frame, or empty when none is needed.
  std::string announce(const protocol::message& m) {
    if (m.offset() == 1) {
      current_ = m.channel();
      return protocol::ws_raw_channel(current_, protocol::encode_compact_cursor({m.channel_tag(), m.epoch(), 0}));
    }
    if (current_ == m.channel()) return {};
    current_ = m.channel();
    return protocol::ws_raw_channel(current_);
  }

 private:
  std::vector<std::string> channels_;
  std::string current_;  // the channel of the last binary frame sent
};

}  // namespace herald::transport
