#include "broker/redis/sentinel_watch.hpp"

#include <hiredis/hiredis.h>

#include "broker/redis/redis_connection.hpp"
#include "util/log.hpp"
#include "util/parse_decimal.hpp"

namespace herald::broker {

sentinel_watch::sentinel_watch(boost::asio::io_context& ioc, std::vector<redis_endpoint> sentinels, std::string master,
                               std::chrono::milliseconds poll, moved_fn moved, usable_fn primary_usable)
    : ioc_(ioc),
      sentinels_(std::move(sentinels)),
      master_(std::move(master)),
      poll_(poll),
      moved_(std::move(moved)),
      primary_usable_(std::move(primary_usable)),
      timer_(ioc) {}

sentinel_watch::~sentinel_watch() {
  *alive_ = false;
  timer_.cancel();
}

void sentinel_watch::start() {
  const auto& s = sentinels_.at(current_);
  conn_ = std::make_unique<redis_connection>(ioc_, s.host, s.port, "sentinel");
  conn_->on_up = [this] { ask(); };
  conn_->start();
  tick();
}

void sentinel_watch::tick() {
  timer_.expires_after(poll_);
  std::weak_ptr<bool> alive = alive_;
  timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    // The address it gave leads to no usable primary for three periods: the next sentinel
    // (who may know better; in a failover they all catch up).
    unusable_ = !host_.empty() && !primary_usable_() ? unusable_ + 1 : 0;
    if (unusable_ >= 3) {
      next_sentinel("its primary is not usable");
    } else if (asking_ || !conn_->connected()) {
      // Two periods without an answer (down, or silent): the next sentinel.
      if (++unanswered_ >= 2) next_sentinel("no answer");
    } else {
      ask();
    }
    tick();
  });
}

void sentinel_watch::ask_now() {
  if (conn_ && conn_->connected() && !asking_) ask();
}

void sentinel_watch::ask() {
  asking_ = true;
  std::weak_ptr<bool> alive = alive_;
  conn_->command({"SENTINEL", "get-master-addr-by-name", master_}, [this, alive](redisReply* r) {
    if (alive.expired()) return;
    asking_ = false;
    if (!r) return;  // connection lost: the tick moves on if it stays down
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING)
      return next_sentinel(r->type == REDIS_REPLY_NIL ? "unknown master name" : "unexpected reply");
    unanswered_ = 0;
    std::string host(r->element[0]->str, r->element[0]->len);
    const auto port = util::parse_decimal({r->element[1]->str, r->element[1]->len}, 65535);
    if (!port || *port == 0) return next_sentinel("bad port in reply");
    if (host == host_ && static_cast<int>(*port) == port_) return;
    util::log::info("sentinel_primary", {{"master", master_},
                                         {"addr", host + ":" + std::to_string(*port)},
                                         {"sentinel", conn_->address()},
                                         {"previous", host_.empty() ? std::string("-") : host_ + ":" + std::to_string(port_)}});
    host_ = std::move(host);
    port_ = static_cast<int>(*port);
    moved_(host_, port_);
  });
}

void sentinel_watch::next_sentinel(const char* why) {
  util::log::throttled(util::log::level::warn, "sentinel_unusable", util::log::field("why", why),
                       {{"master", master_}, {"sentinel", conn_->address()}});
  unanswered_ = 0;
  unusable_ = 0;
  asking_ = false;
  current_ = (current_ + 1) % sentinels_.size();
  const auto& s = sentinels_[current_];
  conn_->retarget(s.host, s.port);
}

}  // namespace herald::broker
