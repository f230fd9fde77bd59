#include "transport/longpoll_request.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "protocol/replies.hpp"
#include "transport/http_exchange.hpp"
#include "transport/http_response.hpp"
#include "util/clock.hpp"

namespace herald::transport {

longpoll_request::longpoll_request(std::shared_ptr<http_exchange> http, auth::identity who, ip_slot slot)
    : core::subscriber_session(http->state().core, http->thread().index(), core::transport::poll),
      http_(std::move(http)),
      tc_(http_->thread()),
      who_(std::move(who)),
      slot_(std::move(slot)) {}

longpoll_request::~longpoll_request() {
  tc_.remove_tickable(this);
  unlist_user();
}

void longpoll_request::unlist_user() {
  if (!user_listed_) return;
  user_listed_ = false;
  ctx_.users->remove(tc_.index(), who_->user, this);
}

bool longpoll_request::apply_user_command(const protocol::user_command& c) {
  if (done_ || c.what != protocol::user_command::op::disconnect) return false;
  util::api_error e{
      c.reconnect() ? 503 : 403, "disconnected", c.reason.empty() ? "disconnected by the server" : c.reason,
      "\"close_code\":" + std::to_string(c.code) + ",\"reconnect\":" + (c.reconnect() ? "true" : "false")};
  http_->set_keep_alive(false);
  on_error({}, e);
  return true;
}

std::shared_ptr<longpoll_request> longpoll_request::self() {
  return std::static_pointer_cast<longpoll_request>(shared_from_this());
}

void longpoll_request::start(subscribe_request req) {
  limit_ = req.limit;
  raw_ = req.raw;
  // The tick runs every 250 ms: a hold ends at its timeout or at most that much later.
  const auto now = util::steady_ms();
  deadline_ms_ = now + std::chrono::milliseconds(req.timeout).count();
  if (who_ && who_->expires_ms) deadline_ms_ = std::min(deadline_ms_, now + (who_->expires_ms - util::unix_ms()));
  // With timeout=0 and no cursor the poll answers at once with nothing but the position
  // (the browser client's read before its first subscription): no participant, so it
  // neither joins nor leaves. A loop of timeout=0 polls is present from its second poll.
  count_in_presence(req.timeout.count() > 0 || !req.since.empty() || req.earliest);
  http_->watch_close(self());  // also keeps this request alive while it waits for the broker
  if (who_ && !who_->user.empty() && ctx_.users) {
    ctx_.users->add(tc_.index(), who_->user, this);
    user_listed_ = true;
  }
  subscribe(req.channels, req.since, req.limit, req.earliest);
}

void longpoll_request::on_reset(std::span<const std::string> channels) {
  for (const auto& ch : channels) {
    // The newest message of this channel already in the reply, if any.
    auto last = std::find_if(messages_.rbegin(), messages_.rend(), [&](auto& m) { return m->channel() == ch; });
    if (raw_ && last != messages_.rend()) {
      held_back_.push_back({(*last)->channel_tag(), (*last)->epoch(), (*last)->offset()});
      pause();  // nothing more joins the reply: it goes out as it is
    } else {
      resets_.push_back(ch);
    }
  }
  schedule_reply();
}

bool longpoll_request::on_message(const protocol::message_ptr& m, bool) {
  // A reply holds at most `limit` messages and, past the first, max_queued_bytes of them:
  // the rest comes with the next poll.
  if (done_ || paused() || messages_.size() >= limit_) return false;
  if (!messages_.empty() && bytes_ + m->json().size() > http_->state().opts.max_queued_bytes) return false;
  bytes_ += m->json().size();
  messages_.push_back(m);
  metrics::add(metrics::counter::deliveries_poll);
  schedule_reply();
  return true;
}

void longpoll_request::on_signal(const protocol::message_ptr& m) {
  // A signal joins the reply like a message (it moves no position, so the cursor is the
  // same); one that finds the reply full is dropped, not kept for the next poll. A raw
  // reply carries positions by counting its lines: signals stay out of it.
  if (done_ || raw_) return;
  if (messages_.size() >= limit_ ||
      (!messages_.empty() && bytes_ + m->json().size() > http_->state().opts.max_queued_bytes)) {
    metrics::add(metrics::counter::signal_drops);
    return;
  }
  bytes_ += m->json().size();
  messages_.push_back(m);
  metrics::add(metrics::counter::signals_delivered);
  schedule_reply();
}

void longpoll_request::on_synced() {
  if (done_ || synced_once_) return;
  synced_once_ = true;
  if (messages_.empty() && resets_.empty() && all_ended()) return reply_ended();
  if (!messages_.empty() || !resets_.empty() || deadline_ms_ <= util::steady_ms()) return schedule_reply();
  // Nothing yet: hold, keeping nothing of the request.
  http_->release_request();
  held_.emplace(metrics::gauge::connections_poll);
  tc_.add_tickable(this);
}

void longpoll_request::on_error(const std::string&, const util::api_error& e) {
  if (done_) return;
  done_ = true;
  pause();
  net::post(tc_.ioc(), [s = self(), e] {
    s->finish();
    s->http_->send_error(e);
  });
}

void longpoll_request::on_tick(std::int64_t now_ms) {
  if (now_ms >= deadline_ms_) schedule_reply();
}

void longpoll_request::drain() {
  // Answer now with the cursor; the connection then closes (no keep-alive while
  // draining) and the next poll goes to another node.
  http_->set_keep_alive(false);
  schedule_reply();
}

void longpoll_request::schedule_reply() {
  // Posted: messages already queued on this thread (same burst) join the reply, and
  // the subscription is not torn down from inside a delivery.
  if (!synced_once_ || reply_scheduled_ || done_) return;
  reply_scheduled_ = true;
  net::post(tc_.ioc(), [s = self()] { s->reply(); });
}

void longpoll_request::reply() {
  if (done_) return;
  done_ = true;
  pause();
  const bool several = channel_count() > 1;
  std::string cursor_value;
  if (raw_) {
    auto entries = positions();
    for (const auto& held : held_back_)
      for (auto& e : entries)
        if (e.tag == held.tag) e = held;
    cursor_value = protocol::encode_raw_cursor(entries);
  } else {
    cursor_value = cursor();
  }
  finish();
  if (raw_) return reply_raw(cursor_value, several);

  // messages_head, the shared JSON elements, then the tail with the cursor.
  const std::string tail = protocol::poll_reply_tail(cursor_value, resets_);
  std::size_t length = protocol::messages_head.size() + tail.size();
  for (auto& m : messages_) length += m->json().size();
  if (!messages_.empty()) length += messages_.size() - 1;

  static const header_list headers = {{"Cache-Control", "no-store"}};
  auto& out = http_->out();
  if (http_->cors_headers().empty()) {
    http_->response_head(200, "application/json", static_cast<long long>(length), headers);
  } else {
    header_list h = headers;
    h.insert(h.end(), http_->cors_headers().begin(), http_->cors_headers().end());
    http_->response_head(200, "application/json", static_cast<long long>(length), h);
  }
  out.push_copy(protocol::messages_head);
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (i) out.push_copy(",");
    out.push_shared(messages_[i]->json(), messages_[i]);
  }
  out.push_copy(tail);
  messages_.clear();
  http_->send();
}

void longpoll_request::reply_ended() {
  // At the end of every channel: 204 No Content at once, nothing will come.
  done_ = true;
  pause();
  finish();
  http_->response_head(204, "", -1, http_->cors_headers());
  http_->send();
}

void longpoll_request::reply_raw(const std::string& cursor, bool several) {
  // The cursor line, then the shared raw lines: one gather write, no copy of the data.
  std::vector<std::string> ended;
  for (auto& m : messages_)
    if (m->event() == core::end_event) ended.emplace_back(m->channel());
  const std::string head = protocol::raw_poll_head(cursor, resets_, ended);
  std::size_t length = head.size();
  // A named message keeps its name on a "!" line; a stream's end is named on the head.
  auto line = [several](const protocol::message& m) {
    return m.event().empty() || m.event() == core::end_event ? m.raw_line(several) : m.raw_named_line();
  };
  for (auto& m : messages_) length += line(*m).size();
  static const header_list headers = {{"Cache-Control", "no-store"}};
  header_list h = headers;
  h.insert(h.end(), http_->cors_headers().begin(), http_->cors_headers().end());
  auto& out = http_->out();
  http_->response_head(200, "text/plain", static_cast<long long>(length), h);
  out.push_copy(head);
  for (auto& m : messages_) out.push_shared(line(*m), m);
  messages_.clear();
  http_->send();
}

void longpoll_request::client_gone() {
  if (done_) return;
  done_ = true;
  finish();
}

void longpoll_request::finish() {
  // A poller is present between its polls: it leaves presence presence_linger after this
  // poll ends, and its next poll (usually at once) enters before that, so a user polling
  // in a loop neither leaves nor joins again each time (docs/presence.md).
  if (auto p = take_presence()) {
    auto timer = std::make_shared<net::steady_timer>(tc_.ioc(), presence_linger);
    timer->async_wait([timer, p = std::move(*p), reg = ctx_.presence](const boost::system::error_code&) {
      for (const auto& channel : p.channels) reg->exit(channel, p.client, p.user);
    });
  }
  unlist_user();
  unsubscribe_all();
  tc_.remove_tickable(this);
  held_.reset();
  slot_.release();
}

}  // namespace herald::transport
