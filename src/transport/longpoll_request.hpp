#pragma once
// GET /poll: one long poll. Answers at once with everything after `since` (up to
// `limit`, in one body) or a reset; otherwise holds the request until a message
// arrives (messages of the same loop pass are batched into the reply) or `timeout`
// passes, then answers with an empty list. Every reply carries the cursor to poll
// with next; the connection then goes back to its carrier (HTTP/1.1 keep-alive, or the
// HTTP/2 stream ends). A hold
// never outlives the poller's token: the next poll then gets 401 token_expired.
//
// format=raw: the body is the cursor line, then one line per message (its data, and its
// channel first when the poll has several). A client counts offsets back from the
// cursor, so within one reply a channel's messages end at the cursor's position for it
// and come after any reset of it: a reset found once messages of that channel are in
// the reply ends the reply before it (the next poll reports it).
#include <memory>
#include <vector>

#include "auth/authorizer.hpp"
#include "core/subscriber_session.hpp"
#include "core/user_registry.hpp"
#include "metrics/metrics.hpp"
#include "transport/ip_counter.hpp"
#include "transport/subscribe_request.hpp"
#include "transport/thread_context.hpp"

namespace herald::transport {

class http_exchange;

class longpoll_request final : public core::subscriber_session, public core::user_connection, public tickable {
 public:
  /// How long a poller stays in presence after its poll ends (see finish()).
  static constexpr std::chrono::seconds presence_linger{5};

  /// `who`: the poller's grants (a hold ends when its token expires); `slot`: its place
  /// in the per-address count of held polls.
  longpoll_request(std::shared_ptr<http_exchange> http, auth::identity who, ip_slot slot);
  ~longpoll_request();

  void start(subscribe_request req);
  /// The reply is written or on its way: the request no longer waits for its client.
  bool answered() const noexcept { return done_; }
  /// The client went away while the poll was held (http_exchange::watch_close).
  void client_gone();

 private:
  void on_reset(std::span<const std::string> channels) override;
  bool on_message(const protocol::message_ptr& m, bool single) override;
  void on_synced() override;
  void on_error(const std::string& channel, const util::api_error& e) override;
  void on_signal(const protocol::message_ptr& m) override;
  std::string_view presence_user() const noexcept override { return who_ ? std::string_view(who_->user) : ""; }
  void on_tick(std::int64_t now_ms) override;
  void drain() override;
  /// A disconnect from the backend answers a held poll with 403 (or 503 when the client
  /// should come back) `disconnected`; a poll's channels are its URL's, so subscribe and
  /// unsubscribe do not act on it (docs/presence.md).
  bool apply_user_command(const protocol::user_command& c) override;
  void unlist_user();

  std::shared_ptr<longpoll_request> self();
  void schedule_reply();
  void reply();
  void reply_ended();
  void reply_raw(const std::string& cursor, bool several);
  void finish();

  std::shared_ptr<http_exchange> http_;
  thread_context& tc_;
  std::vector<protocol::message_ptr> messages_;
  std::vector<std::string> resets_;
  // Raw format: channels reset after some of their messages joined the reply; the reply
  // keeps them at their last message (its cursor entry) and leaves the reset to the next poll.
  std::vector<protocol::cursor_entry> held_back_;
  bool raw_ = false;
  std::size_t limit_ = 0;
  std::size_t bytes_ = 0;  // of messages_' JSON
  std::int64_t deadline_ms_ = 0;
  bool synced_once_ = false;
  bool reply_scheduled_ = false;
  bool done_ = false;
  bool user_listed_ = false;
  std::optional<metrics::gauge_guard> held_;
  auth::identity who_;
  ip_slot slot_;
};

}  // namespace herald::transport
