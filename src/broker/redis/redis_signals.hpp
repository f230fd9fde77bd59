#pragma once
// How a signal (an ephemeral message, a join, a leave: protocol::message_kind) travels
// through Redis Pub/Sub: a plain PUBLISH on the channel's Pub/Sub name, no script, no
// key written. Its payload "s <kind> <time ms> <event|.> <body>" (kind e, j or l) starts
// with a letter where a publication's starts with its epoch, so a node tells them apart
// by the first field, and a node that does not know signals drops them as unreadable.
#include <string>
#include <string_view>

#include "protocol/message.hpp"

namespace herald::broker {

/// The Pub/Sub payload of `m` (a signal).
std::string signal_payload(const protocol::message& m);
/// True when `payload` is a signal's (its first field is "s").
inline bool is_signal_payload(std::string_view payload) noexcept { return payload.starts_with("s "); }
/// The signal of `channel` in `payload`, or null when it is not a well-formed one.
protocol::message_ptr parse_signal_payload(const std::string& channel, std::string_view payload);

}  // namespace herald::broker
