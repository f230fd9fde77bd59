#include "transport/stream_ingest.hpp"

#include <algorithm>
#include <cctype>
#include <random>
#include <utility>

#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include "core/hub.hpp"
#include "core/stream_registry.hpp"
#include "metrics/metrics.hpp"
#include "protocol/json_text.hpp"
#include "protocol/replies.hpp"
#include "protocol/stream_fields.hpp"
#include "util/clock.hpp"

namespace herald::transport {

using util::api_error;

std::optional<stream_ingest::kind> stream_ingest::kind_of(std::string_view content_type) {
  std::string t(content_type.substr(0, content_type.find(';')));
  std::erase_if(t, [](unsigned char c) { return std::isspace(c); });
  using boost::beast::iequals;
  if (iequals(t, "text/plain")) return kind::text;
  if (iequals(t, "application/x-ndjson") || iequals(t, "application/ndjson")) return kind::ndjson;
  if (iequals(t, "text/event-stream")) return kind::sse;
  return std::nullopt;
}

stream_ingest::stream_ingest(std::shared_ptr<http_session> http, std::string channel, kind k)
    : http_(std::move(http)),
      tc_(http_->thread()),
      st_(http_->state()),
      channel_(std::move(channel)),
      kind_(k),
      ns_(st_.core.namespaces.for_channel(channel_)),
      ndjson_(st_.api_opts.max_data_bytes),
      sse_(st_.api_opts.max_data_bytes),
      // A JSON string may take 6 bytes per byte of text (\u00XX): within max_data_bytes.
      max_text_bytes_(std::max<std::size_t>(1, std::min<std::size_t>(16 * 1024, st_.api_opts.max_data_bytes / 6))),
      coalesce_(tc_.ioc()) {}

namespace {
// The broker's lease key of a channel's producer, and this process's part of its holders'
// names (the other part is the ingest's registry id).
std::string lease_key(const std::string& channel) { return "stream:" + channel; }
const std::string& process_tag() {
  static const std::string tag = [] {
    std::random_device rd;
    return std::to_string(rd()) + "-" + std::to_string(rd());
  }();
  return tag;
}
}  // namespace

stream_ingest::~stream_ingest() {
  tc_.remove_tickable(this);
  if (registry_id_ && st_.core.streams) st_.core.streams->release(channel_, registry_id_);
  if (!lease_holder_.empty()) st_.core.brokers.release_lease(lease_key(channel_), lease_holder_);
}

void stream_ingest::start(bool expects_continue) {
  if (st_.core.streams) {
    std::weak_ptr<stream_ingest> weak = weak_from_this();
    registry_id_ = st_.core.streams->claim(channel_, tc_.index(),
                                           [weak](std::string reason, std::function<void(publish_result)> done) {
                                             if (auto s = weak.lock())
                                               s->stop(std::move(reason), std::move(done));
                                             else
                                               done(api_error{404, "not_streaming", "the stream has ended"});
                                           });
    if (!registry_id_) {
      http_->set_keep_alive(false);
      return http_->send_error({409, "stream_busy", "channel " + channel_ + " has a live producer already"});
    }
  }
  tc_.add_tickable(this);
  // The same claim on every node sharing the broker; the body is not read before it holds.
  const std::string holder = process_tag() + ":" + std::to_string(registry_id_);
  const auto t = tc_.index();
  std::weak_ptr<stream_ingest> weak = weak_from_this();
  st_.core.brokers.lease(lease_key(channel_), holder, lease_ttl,
                         [weak, t, holder, expects_continue, &h = st_.core.hubs](core::broker::lease_result r) {
                           h.run_on(t, [weak, holder, expects_continue, r = std::move(r)] {
                             auto s = weak.lock();
                             if (!s) return;
                             if (auto* err = std::get_if<api_error>(&r)) {
                               s->http_->set_keep_alive(false);
                               return s->http_->send_error(*err);
                             }
                             if (!std::get<bool>(r)) {
                               s->http_->set_keep_alive(false);
                               return s->http_->send_error(
                                   {409, "stream_busy", "channel " + s->channel_ + " has a live producer on another node"});
                             }
                             s->lease_holder_ = holder;
                             s->lease_renew_ms_ = util::steady_ms() + lease_ttl.count() / 3;
                             s->begin(expects_continue);
                           });
                         });
}

void stream_ingest::begin(bool expects_continue) {
  metrics::add(metrics::counter::stream_ingests);
  parser_.emplace(std::move(http_->parser()));
  parser_->body_limit(ns_.stream_max_bytes);
  deadline_ms_ = util::steady_ms() + std::chrono::milliseconds(ns_.stream_max_duration).count();
  http_->stream().expires_never();  // on_tick keeps time: idle limit and duration
  if (parser_->is_done()) return body_ended();
  if (!expects_continue) return read();
  static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
  reading_ = true;  // the write below stands for the read: nothing else may start
  http_->with_stream([&](auto& stream) {
    net::async_write(stream, net::buffer(continue_line.data(), continue_line.size()),
                     [s = self()](beast::error_code ec, std::size_t n) {
                       metrics::add(metrics::counter::bytes_out, n);
                       s->reading_ = false;
                       if (s->ending_) return s->pump();  // stopped meanwhile (the cancel ended the write)
                       if (ec) return s->finish(protocol::state_error, "producer disconnected", {}, false);
                       s->read();
                     });
  });
}

void stream_ingest::on_tick(std::int64_t now_ms) {
  check_limits(now_ms);
  if (!lease_holder_.empty() && !renewing_ && !replied_ && now_ms >= lease_renew_ms_) renew_lease();
}

void stream_ingest::renew_lease() {
  renewing_ = true;
  const auto t = tc_.index();
  std::weak_ptr<stream_ingest> weak = weak_from_this();
  st_.core.brokers.lease(lease_key(channel_), lease_holder_, lease_ttl,
                         [weak, t, &h = st_.core.hubs](core::broker::lease_result r) {
                           h.run_on(t, [weak, r = std::move(r)] {
                             auto s = weak.lock();
                             if (!s) return;
                             s->renewing_ = false;
                             // Broker away: try again at the next tick (the publishes fail too).
                             if (std::holds_alternative<api_error>(r)) return;
                             s->lease_renew_ms_ = util::steady_ms() + lease_ttl.count() / 3;
                             if (std::get<bool>(r) || s->ending_) return;
                             // Lost (the broker was away longer than the lease and another
                             // producer took the stream): stop here, and leave the end to it.
                             s->lease_holder_.clear();
                             s->end_skipped_ = true;
                             const std::string why = "another producer took the stream over";
                             s->finish(protocol::state_error, why, api_error{409, "stream_busy", why});
                           });
                         });
}

void stream_ingest::drain() {
  if (replied_) return;
  const std::string why = "the server is shutting down";
  finish(protocol::state_error, why, api_error{503, "draining", why});
}

void stream_ingest::read() {
  if (reading_ || ending_ || body_done_) return;
  if (waiting_bytes_ >= max_waiting_bytes || text_.size() >= max_text_bytes_) return;  // after the next publish
  reading_ = true;
  auto& body = parser_->get().body();
  body.data = buf_.data();
  body.size = buf_.size();
  body.more = true;
  timed_out_ = nullptr;
  read_started_ms_ = util::steady_ms();  // the idle limit counts from here (on_tick)
  http_->with_stream([&](auto& stream) {
    http::async_read_some(stream, http_->read_buffer(), *parser_,
                          [s = self()](beast::error_code ec, std::size_t) { s->on_read(ec); });
  });
}

void stream_ingest::on_read(beast::error_code ec) {
  reading_ = false;
  const std::size_t got = buf_.size() - parser_->get().body().size;
  metrics::add(metrics::counter::bytes_in, got);
  if (ending_) return pump();  // stopped meanwhile: what came after the stop is not taken
  if (ec == http::error::need_buffer) ec = {};
  if (got)
    if (auto err = take({buf_.data(), got})) return finish(protocol::state_error, err->message, err);
  if (ec) {
    if (timed_out_)
      return finish(protocol::state_error, timed_out_, api_error{408, "stream_timeout", timed_out_});
    if (ec == http::error::body_limit) {
      const auto limit = "the body passed the stream limit of " + std::to_string(ns_.stream_max_bytes) + " bytes";
      return finish(protocol::state_error, limit, api_error{413, "too_large", limit});
    }
    if (ec == net::error::eof || ec == http::error::partial_message || ec == net::error::connection_reset ||
        ec == http::error::end_of_stream || ec == net::error::operation_aborted)
      return finish(protocol::state_error, "producer disconnected", {}, false);
    const auto why = "malformed request body: " + ec.message();
    return finish(protocol::state_error, why, util::bad_request("bad_request", why));
  }
  if (parser_->is_done()) return body_ended();
  read();
  pump();
}

std::optional<api_error> stream_ingest::take(std::string_view bytes) {
  std::vector<protocol::ingest_item> items;
  std::optional<api_error> err;
  switch (kind_) {
    case kind::text:
      if (!text_.append(bytes)) return util::bad_request("bad_text", "the body is not UTF-8 text");
      if (ns_.stream_coalesce.count() == 0 || text_.size() >= max_text_bytes_)
        flush_text();
      else
        arm_coalesce();
      return std::nullopt;
    case kind::ndjson:
      err = ndjson_.feed(bytes, items);
      break;
    case kind::sse:
      err = sse_.feed(bytes, items);
      break;
  }
  queue(items);  // the messages before a refusal stay accepted
  return err;
}

void stream_ingest::queue(std::vector<protocol::ingest_item>& items) {
  for (auto& i : items) {
    waiting_bytes_ += i.data_json.size();
    waiting_.push_back(std::move(i));
  }
}

void stream_ingest::body_ended() {
  body_done_ = true;
  if (kind_ == kind::ndjson) {
    std::vector<protocol::ingest_item> items;
    auto err = ndjson_.finish(items);
    queue(items);
    if (err) return finish(protocol::state_error, err->message, err);
  }
  if (kind_ == kind::text && !text_.complete()) {
    const std::string why = "the body ends inside a UTF-8 character";
    return finish(protocol::state_error, why, util::bad_request("bad_text", why));
  }
  finish(protocol::state_completed, "");
}

void stream_ingest::check_limits(std::int64_t now_ms) {
  // Checked each tick (a quarter second) rather than by a timer re-armed on every read:
  // at 50 tokens/s a timer per read cost a timer-queue update and a cancelled handler
  // per token, and the limits are seconds long.
  if (!reading_ || ending_ || timed_out_) return;
  const auto idle_ms = std::chrono::milliseconds(ns_.stream_idle_timeout).count();
  if (now_ms >= deadline_ms_)
    timed_out_ = "the stream passed its maximum duration";
  else if (idle_ms > 0 && now_ms - read_started_ms_ >= idle_ms)
    timed_out_ = "the producer was silent past the idle limit";
  else
    return;
  metrics::add(metrics::counter::stream_timeouts);
  beast::error_code ignored;
  http_->stream().socket().cancel(ignored);  // on_read ends the stream with the reason
}

void stream_ingest::arm_coalesce() {
  if (coalesce_armed_) return;
  coalesce_armed_ = true;
  const auto gen = ++coalesce_gen_;
  coalesce_.expires_after(ns_.stream_coalesce);
  coalesce_.async_wait([s = self(), gen](const beast::error_code&) {
    if (gen != s->coalesce_gen_ || !s->coalesce_armed_) return;  // flushed (or re-armed) since
    s->flush_text();
    s->read();
  });
}

void stream_ingest::flush_text() {
  coalesce_armed_ = false;
  ++coalesce_gen_;
  std::string text = text_.take();
  if (text.empty()) return;
  std::string data = protocol::json_quote(text);
  waiting_bytes_ += data.size();
  waiting_.push_back({"", std::move(data)});
  pump();
}

void stream_ingest::pump() {
  if (publishing_) return;
  if (waiting_.empty()) {
    if (!ending_ || reading_) return;
    if (end_skipped_)
      reply();
    else if (!end_sent_)
      publish_end();
    return;
  }
  publishing_ = true;
  auto& item = waiting_.front();
  core::publish_request req{channel_, item.event, item.data_json};
  std::weak_ptr<stream_ingest> weak = weak_from_this();
  st_.core.publish(tc_.index(), std::move(req), false, [weak](publish_result r) {
    if (auto s = weak.lock()) s->on_published(std::move(r));
  });
}

void stream_ingest::on_published(publish_result r) {
  publishing_ = false;
  waiting_bytes_ -= std::min(waiting_bytes_, waiting_.front().data_json.size());
  waiting_.pop_front();
  if (auto* err = std::get_if<api_error>(&r)) {
    // Refused (the channel ended meanwhile, broker unavailable): the stream ends here,
    // with no end of ours when the channel has one already.
    waiting_.clear();
    waiting_bytes_ = 0;
    if (err->code == "stream_ended") end_skipped_ = true;
    reply_error_ = *err;
    if (!ending_) return finish(protocol::state_error, err->message, *err);
    return pump();
  }
  read();
  pump();
}

void stream_ingest::finish(std::string_view state, std::string reason, std::optional<api_error> reply_error,
                           bool can_reply) {
  if (ending_) return;
  ending_ = true;
  end_state_ = state;
  end_reason_ = std::move(reason);
  if (reply_error) reply_error_ = std::move(reply_error);
  can_reply_ = can_reply;
  if (!body_done_) http_->set_keep_alive(false);
  // Deltas taken before the end are published before it (a cut UTF-8 tail aside).
  if (kind_ == kind::text) flush_text();
  coalesce_.cancel();
  if (reading_) {
    // The read in flight ends first (on_read then pumps); cancel() makes it end now.
    beast::error_code ignored;
    http_->stream().socket().cancel(ignored);
    return;
  }
  pump();
}

void stream_ingest::stop(std::string reason, std::function<void(publish_result)> done) {
  if (end_result_) return done(*end_result_);  // ended already: that end is the answer
  stop_waiters_.push_back(std::move(done));
  metrics::add(metrics::counter::stream_stops);
  finish(protocol::state_aborted, std::move(reason));
}

void stream_ingest::publish_end() {
  end_sent_ = true;
  core::publish_request req{channel_, std::string(core::end_event), protocol::end_data_json(end_state_, end_reason_)};
  st_.core.publish(tc_.index(), std::move(req), false,
                   [s = self()](publish_result r) { s->on_end_published(std::move(r)); });
}

void stream_ingest::on_end_published(publish_result r) {
  if (auto* err = std::get_if<api_error>(&r)) {
    if (!reply_error_) reply_error_ = *err;
    if (err->status == 503 && end_retries_ < max_end_retries) {
      // The broker is away (Redis restarting): the producer hears it now, the readers get
      // the end once the broker is back (in its new life, after their reset), so no
      // reader waits for an answer that will never come.
      ++end_retries_;
      auto waiters = std::move(stop_waiters_);
      for (auto& w : waiters) w(r);
      reply();
      coalesce_.expires_after(std::chrono::milliseconds(500));
      coalesce_.async_wait([s = self()](const beast::error_code& ec) {
        if (!ec) s->publish_end();
      });
      return;
    }
  }
  end_result_ = r;
  auto waiters = std::move(stop_waiters_);
  for (auto& w : waiters) w(r);
  stop_waiters_.clear();
  reply();
}

void stream_ingest::reply() {
  if (replied_) return;
  replied_ = true;
  if (registry_id_ && st_.core.streams) st_.core.streams->release(channel_, registry_id_);
  registry_id_ = 0;
  if (!lease_holder_.empty()) st_.core.brokers.release_lease(lease_key(channel_), std::exchange(lease_holder_, {}));
  tc_.remove_tickable(this);
  if (!can_reply_) return;  // the producer is gone; the session closes with this object
  api::response resp;
  const protocol::message* end =
      end_result_ && std::holds_alternative<protocol::message_ptr>(*end_result_)
          ? std::get<protocol::message_ptr>(*end_result_).get()
          : nullptr;
  if (reply_error_) {
    api_error e = *reply_error_;
    if (!e.extra_json.empty()) e.extra_json += ',';
    e.extra_json += "\"state\":" + protocol::json_quote(end ? end_state_ : std::string(protocol::state_error));
    if (end) e.extra_json += ",\"offset\":" + std::to_string(end->offset()) + ",\"cursor\":\"" + end->cursor() + "\"";
    resp = api::error_response(e);
  } else if (end) {
    resp.body = protocol::stream_result(channel_, end->offset(), end->cursor(), end_state_);
  } else {
    resp = api::error_response({500, "internal", "the stream ended without an end message"});
  }
  http_->send_api_response(std::move(resp));
}

}  // namespace herald::transport
