#include "broker/redis/redis_connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstdio>
#include <iterator>
#include <string_view>

#include "util/log.hpp"

namespace herald::broker {

// Callback state of one command, or of one channel's subscription (persistent).
struct redis_connection::pending {
  reply_fn fn;
  bool persistent;
  // Subscriptions only. hiredis's channel table points at this while `in_hiredis`: from
  // a SUBSCRIBE sent on the current context until an "unsubscribe" reply that finds no
  // SUBSCRIBE unconfirmed (`unconfirmed` mirrors hiredis's own `pending_subs` count), or
  // until the context is freed.
  std::string channel;
  bool wanted = false;  // subscribed, not unsubscribed since
  bool in_hiredis = false;
  int unconfirmed = 0;
};

namespace {
// The kind of a Pub/Sub reply: "subscribe", "unsubscribe", "message"...
std::string_view pubsub_kind(const redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING) return {};
  return {r->element[0]->str, r->element[0]->len};
}
}  // namespace

redis_connection::redis_connection(net::io_context& ioc, std::string host, int port, std::string name)
    : ioc_(ioc), host_(std::move(host)), port_(port), name_(std::move(name)), retry_timer_(ioc), watchdog_timer_(ioc) {}

redis_connection::~redis_connection() {
  *alive_ = false;
  stopped_ = true;
  retry_timer_.cancel();
  if (ac_) {
    auto* ac = ac_;
    redisAsyncFree(ac);  // calls pending callbacks with nullptr, then ev_cleanup
  }
}

void redis_connection::start(std::chrono::milliseconds command_timeout) {
  stopped_ = false;
  command_timeout_ = command_timeout;
  connect();
  if (command_timeout_.count() > 0) watchdog();
}

void redis_connection::watchdog() {
  watchdog_timer_.expires_after(std::max(command_timeout_ / 4, std::chrono::milliseconds(50)));
  std::weak_ptr<bool> alive = alive_;
  watchdog_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    if (ec || alive.expired() || stopped_) return;
    if (ac_ && !sent_.empty() && std::chrono::steady_clock::now() - sent_.front() > command_timeout_) {
      util::log::warn("redis_timeout", {{"addr", host_ + ":" + std::to_string(port_)},
                                        {"conn", name_},
                                        {"timeout_ms", static_cast<long long>(command_timeout_.count())},
                                        {"msg", "no answer in time; reconnecting"}});
      // Pending callbacks get nullptr (503 to their callers) and the back-off reconnects.
      reconnect();
    }
    watchdog();
  });
}

void redis_connection::stop() {
  stopped_ = true;
  retry_timer_.cancel();
  if (ac_) redisAsyncDisconnect(ac_);
}

void redis_connection::retarget(const std::string& host, int port) {
  if (host == host_ && port == port_) return;
  host_ = host;
  port_ = port;
  backoff_ = std::chrono::milliseconds(100);
  if (ac_) return reconnect();  // lost() schedules the next attempt, to the new address
  retry_timer_.cancel();
  connect();
}

void redis_connection::reconnect() {
  // Not redisAsyncDisconnect, which waits for the replies: drop the connection now.
  if (ac_) redisAsyncFree(ac_);
}

void redis_connection::connect() {
  if (stopped_ || ac_ || host_.empty()) return;
  redisAsyncContext* ac = redisAsyncConnect(host_.c_str(), port_);
  if (!ac || ac->err) {
    if (ac) redisAsyncFree(ac);
    return schedule_reconnect();
  }
  ac_ = ac;
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  // error_code overloads: this runs in handlers of the broker's loop (reconnection).
  boost::system::error_code ec;
  fd_ = std::make_unique<net::posix::stream_descriptor>(ioc_);
  fd_->assign(ac->c.fd, ec);
  if (ec) {
    fd_.reset();
    redisAsyncFree(ac);  // ev_cleanup → lost() → reconnect later
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  // hiredis asks for write readiness to learn when the non-blocking connect completes.
}

void redis_connection::schedule_reconnect() {
  if (stopped_) return;
  retry_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
  std::weak_ptr<bool> alive = alive_;
  retry_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    connect();
  });
}

void redis_connection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<redis_connection*>(ac->data);
  if (status != REDIS_OK) return;  // on_disconnect/cleanup follow; reconnect there
  self->connected_ = true;
  self->backoff_ = std::chrono::milliseconds(100);
  if (self->on_up) self->on_up();
}

void redis_connection::on_disconnect(const redisAsyncContext* ac, int) {
  auto* self = static_cast<redis_connection*>(ac->data);
  (void)self;  // handled in ev_cleanup, which always follows
}

void redis_connection::lost() {
  bool was_up = connected_;
  connected_ = false;
  ac_ = nullptr;
  if (fd_) {
    boost::system::error_code ignored;
    fd_->cancel(ignored);
    fd_->release();  // hiredis closes its socket itself
    fd_.reset();
  }
  reading_ = writing_ = false;
  sent_.clear();
  // hiredis has freed its channel table (and called every callback with nullptr) before
  // this cleanup: no subscription state is referenced any more. Keep what is wanted (the
  // broker subscribes again once up), drop the rest.
  for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
    it->second->in_hiredis = false;
    it->second->unconfirmed = 0;
    it = it->second->wanted ? std::next(it) : subscriptions_.erase(it);
  }
  entries_.store(subscriptions_.size(), std::memory_order_relaxed);
  if (was_up && on_down) on_down();
  schedule_reconnect();
}

void redis_connection::ev_cleanup(void* p) { static_cast<redis_connection*>(p)->lost(); }

void redis_connection::ev_add_read(void* p) {
  auto* self = static_cast<redis_connection*>(p);
  self->reading_ = true;
  self->wait_read();
}
void redis_connection::ev_del_read(void* p) { static_cast<redis_connection*>(p)->reading_ = false; }
void redis_connection::ev_add_write(void* p) {
  auto* self = static_cast<redis_connection*>(p);
  self->writing_ = true;
  self->wait_write();
}
void redis_connection::ev_del_write(void* p) { static_cast<redis_connection*>(p)->writing_ = false; }

void redis_connection::wait_read() {
  if (read_armed_ || !fd_) return;
  read_armed_ = true;
  std::weak_ptr<bool> alive = alive_;
  fd_->async_wait(net::posix::stream_descriptor::wait_read, [this, alive](const boost::system::error_code& ec) {
    if (alive.expired()) return;
    read_armed_ = false;
    if (ec || !ac_) return;
    redisAsyncHandleRead(ac_);  // may free the context (ev_cleanup)
    if (ac_ && reading_) wait_read();
  });
}

void redis_connection::wait_write() {
  if (write_armed_ || !fd_) return;
  write_armed_ = true;
  std::weak_ptr<bool> alive = alive_;
  fd_->async_wait(net::posix::stream_descriptor::wait_write, [this, alive](const boost::system::error_code& ec) {
    if (alive.expired()) return;
    write_armed_ = false;
    if (ec || !ac_) return;
    redisAsyncHandleWrite(ac_);
    if (ac_ && writing_) wait_write();
  });
}

void redis_connection::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* p = static_cast<pending*>(privdata);
  if (!p->persistent && ac && ac->data) {
    auto* self = static_cast<redis_connection*>(ac->data);
    if (!self->sent_.empty()) self->sent_.pop_front();
  }
  auto* r = static_cast<redisReply*>(reply);
  if (p->persistent) {
    // Owned by subscriptions_; nullptr comes when hiredis frees the connection (lost()
    // follows and drops what is not wanted).
    if (!r) return;
    const auto kind = pubsub_kind(r);
    if (kind == "subscribe" && p->unconfirmed > 0) --p->unconfirmed;
    p->fn(r);
    if (kind == "unsubscribe" && p->unconfirmed == 0) {
      // hiredis removed its entry for the channel before this call and does not touch
      // `privdata` after it: if the channel is not wanted, nothing refers to p any more.
      p->in_hiredis = false;
      if (!p->wanted && ac && ac->data) static_cast<redis_connection*>(ac->data)->forget(p->channel);
    }
    return;
  }
  auto fn = std::move(p->fn);
  delete p;
  fn(r);
}

namespace {
int send_argv(redisAsyncContext* ac, redisCallbackFn* cb, void* privdata, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return redisAsyncCommandArgv(ac, cb, privdata, static_cast<int>(argv.size()), argv.data(), lens.data());
}
}  // namespace

bool redis_connection::command(const std::vector<std::string>& args, reply_fn fn) {
  if (!ac_ || !connected_) {
    fn(nullptr);
    return false;
  }
  auto* p = new pending{std::move(fn), false, {}, false, false, 0};
  sent_.push_back(std::chrono::steady_clock::now());
  if (send_argv(ac_, on_reply, p, args) != REDIS_OK) {
    sent_.pop_back();
    auto f = std::move(p->fn);
    delete p;
    f(nullptr);
    return false;
  }
  return true;
}

bool redis_connection::subscribe(const std::string& channel, reply_fn fn) {
  auto& p = subscriptions_[channel];
  if (!p) {
    p = std::make_unique<pending>(pending{nullptr, true, channel, true, false, 0});
    entries_.store(subscriptions_.size(), std::memory_order_relaxed);
  }
  p->fn = std::move(fn);
  p->wanted = true;
  if (!ac_ || !connected_) return false;  // the broker subscribes again once up
  if (send_argv(ac_, on_reply, p.get(), {"SUBSCRIBE", channel}) != REDIS_OK) return false;
  p->in_hiredis = true;
  ++p->unconfirmed;
  return true;
}

bool redis_connection::unsubscribe(const std::string& channel) {
  auto it = subscriptions_.find(channel);
  if (it == subscriptions_.end()) return false;
  it->second->wanted = false;
  if (!it->second->in_hiredis) {
    forget(channel);  // never sent on this connection: nothing to undo, nothing refers to it
    return false;
  }
  if (!ac_ || !connected_) return false;  // lost() drops it
  // No callback: hiredis routes the confirmation to the channel's SUBSCRIBE callback,
  // which frees the state (on_reply).
  return send_argv(ac_, nullptr, nullptr, {"UNSUBSCRIBE", channel}) == REDIS_OK;
}

void redis_connection::forget(const std::string& channel) {
  // `channel` may be the entry's own name: copy before erasing.
  const std::string name = channel;
  subscriptions_.erase(name);
  entries_.store(subscriptions_.size(), std::memory_order_relaxed);
}

}  // namespace herald::broker
