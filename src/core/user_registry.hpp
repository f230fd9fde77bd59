#pragma once
// The node's live connections by user (a token's sub), so that the backend can reach
// every connection of a user (POST /api/disconnect, /api/subscribe, /api/unsubscribe;
// docs/presence.md "Users the backend can reach").
//
// Each event-loop thread has its own table, read and written by that thread only: a
// connection registers on its thread and leaves before it goes. apply() visits every
// thread (posted through the hub) and counts the connections that acted.
// Connections of anonymous clients are not listed.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/hub.hpp"
#include "protocol/user_command.hpp"
#include "util/string_hash.hpp"

namespace herald::core {

/// A connection the backend may act on (implemented by the transports).
class user_connection {
 public:
  /// Carries out `c` (on the connection's thread); true when the connection acted (a
  /// subscribe of a channel it already has, or an unsubscribe of one it lacks, does not).
  virtual bool apply_user_command(const protocol::user_command& c) = 0;

 protected:
  ~user_connection() = default;
};

class user_registry {
 public:
  explicit user_registry(hub& h, unsigned threads);

  /// On thread `t` only.
  void add(unsigned t, const std::string& user, user_connection* c);
  void remove(unsigned t, const std::string& user, user_connection* c);

  /// Applies `c` to every connection of `c.user` on this node; `done(n)` gets how many
  /// acted, once every thread has answered (on the last thread to answer). Any thread.
  void apply(const protocol::user_command& c, std::function<void(std::size_t)> done);

  /// Listed connections (all threads; approximate while they change).
  std::size_t connections() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  using table = std::unordered_map<std::string, std::vector<user_connection*>, util::string_hash, std::equal_to<>>;
  hub& hub_;
  std::vector<std::unique_ptr<table>> tables_;
  std::atomic<std::size_t> count_{0};
};

}  // namespace herald::core
