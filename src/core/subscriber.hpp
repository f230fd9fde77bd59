#pragma once
// The sink port: what the hub hands a publication to. Implemented (through
// subscriber_session) by every transport connection that subscribes.
#include <cstdint>
#include <string>

#include "protocol/message.hpp"

namespace herald::core {

enum class transport : std::uint8_t { sse = 0, poll = 1, ws = 2 };
inline constexpr unsigned transport_count = 3;

class subscriber {
 public:
  /// A publication of a channel this subscriber is registered for. Called on the
  /// subscriber's own thread, in offset order per channel (duplicates possible while a
  /// resume overlaps live delivery: the session filters them by offset). Must not
  /// unsubscribe synchronously from another subscriber's registration.
  virtual void deliver(const protocol::message_ptr& m) = 0;
  virtual transport kind() const noexcept = 0;
  /// Live delivery of `channel` may have had a gap: re-read history from the position.
  virtual void resync_hint(const std::string& channel) = 0;
  /// The hub moved this subscriber to `slot` of its list for `channel` on its thread
  /// (the slot it hands back to hub::unsubscribe, which then finds it at once).
  virtual void hub_slot(const std::string& channel, std::uint32_t slot) { (void)channel, (void)slot; }

 protected:
  ~subscriber() = default;
};

}  // namespace herald::core
