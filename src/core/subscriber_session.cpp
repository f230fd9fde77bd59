#include "core/subscriber_session.hpp"

#include <algorithm>

#include "metrics/metrics.hpp"

namespace herald::core {

subscriber_session::subscriber_session(context& ctx, unsigned thread, transport kind)
    : ctx_(ctx), thread_(thread), kind_(kind) {}

subscriber_session::~subscriber_session() { unsubscribe_all(); }

void subscriber_session::subscribe(std::span<const std::string> channels,
                                   std::span<const protocol::cursor_entry> since,
                                   std::size_t replay_limit) {
  const std::size_t first = channels_.size();
  for (const auto& name : channels) {
    channel_state c;
    c.name = name;
    c.tag = protocol::channel_tag(name);
    channels_.push_back(std::move(c));
    ++unsynced_;
  }
  // Step 1 for every channel before any history read (see the header).
  for (std::size_t i = first; i < channels_.size(); ++i)
    ctx_.hubs.subscribe(thread_, channels_[i].name, this);
  for (std::size_t i = first; i < channels_.size(); ++i) {
    auto it = std::find_if(since.begin(), since.end(),
                           [&](const auto& e) { return e.tag == channels_[i].tag; });
    if (it != since.end())
      request_history(i, position{it->epoch, it->offset}, replay_limit);
    else
      request_history(i, std::nullopt, 0);
    if (channels_.size() <= i) return;  // unsubscribed from a callback
  }
}

void subscriber_session::unsubscribe_all() {
  for (auto& c : channels_) ctx_.hubs.unsubscribe(thread_, c.name, this);
  channels_.clear();
  resets_.clear();
  unsynced_ = 0;
  ++generation_;
}

std::string subscriber_session::cursor() const {
  std::vector<protocol::cursor_entry> entries;
  entries.reserve(channels_.size());
  for (const auto& c : channels_) entries.push_back({c.tag, c.epoch, c.offset});
  return protocol::encode_cursor(entries);
}

void subscriber_session::request_history(std::size_t idx, std::optional<position> since,
                                         std::size_t limit) {
  auto& c = channels_[idx];
  if (since) {
    c.epoch = since->epoch;
    c.offset = since->offset;
  }
  history_query q{c.name, since, limit};
  std::weak_ptr<subscriber_session> weak = weak_from_this();
  hub& h = ctx_.hubs;
  ctx_.brokers.history(std::move(q), [weak, idx, gen = generation_, t = thread_,
                                      &h](broker::history_result r) mutable {
    auto run = [weak, idx, gen, r = std::move(r)]() mutable {
      if (auto self = weak.lock()) self->apply_history(idx, gen, std::move(r));
    };
    if (hub::current_thread() == static_cast<int>(t))
      run();
    else
      h.post(t, std::move(run));
  });
}

void subscriber_session::apply_history(std::size_t idx, std::uint64_t generation,
                                       broker::history_result r) {
  if (generation != generation_ || idx >= channels_.size()) return;
  if (auto* err = std::get_if<util::api_error>(&r)) {
    on_error(*err);
    return;
  }
  auto& reply = std::get<history_reply>(r);
  auto& c = channels_[idx];
  bool had_position = c.epoch != 0 || c.offset != 0;
  if (!reply.recovered) {
    resets_.push_back(c.name);
    metrics::add(metrics::counter::resets);
    c.offset = reply.top;
  } else if (!had_position || c.epoch != reply.epoch) {
    c.offset = reply.top;  // no cursor for this channel: start at "now"
  }
  c.epoch = reply.epoch;
  // Live messages that arrived meanwhile: keep those of the current epoch; consume()
  // skips the offsets the replay (or the reset) already covers.
  std::erase_if(c.pending, [&](const auto& m) { return m->epoch() != c.epoch; });
  if (reply.recovered && reply.messages.empty()) {
    // History had nothing to fill the gap before the first pending message: the broker
    // lost it. Say so rather than re-reading forever.
    auto next = std::find_if(c.pending.begin(), c.pending.end(),
                             [&](const auto& m) { return m->offset() > c.offset; });
    if (next != c.pending.end() && (*next)->offset() > c.offset + 1) {
      resets_.push_back(c.name);
      metrics::add(metrics::counter::resets);
      c.offset = (*next)->offset() - 1;
    }
  }
  if (!reply.messages.empty()) {
    reply.messages.insert(reply.messages.end(), c.pending.begin(), c.pending.end());
    c.pending = std::move(reply.messages);
  }
  c.synced = true;
  if (--unsynced_ == 0) finish_sync();
}

void subscriber_session::finish_sync() {
  // Replaying may trigger a re-sync whose (inline) reply lands here again: the outer
  // call then loops instead of nesting.
  static thread_local subscriber_session* flushing = nullptr;
  static thread_local bool again = false;
  if (flushing == this) {
    again = true;
    return;
  }
  auto* outer = flushing;
  flushing = this;
  do {
    again = false;
    if (!resets_.empty()) {
      auto resets = std::move(resets_);
      resets_.clear();
      on_reset(resets);
    }
    for (std::size_t i = 0; i < channels_.size(); ++i) {
      auto& c = channels_[i];
      if (!c.synced || c.pending.empty()) continue;
      auto pend = std::move(c.pending);
      c.pending.clear();
      for (std::size_t k = 0; k < pend.size() && !paused_; ++k) {
        if (!consume(c, pend[k])) {
          c.pending.assign(pend.begin() + static_cast<std::ptrdiff_t>(k), pend.end());
          resync(c, i);
          break;
        }
      }
      if (channels_.empty()) break;  // the transport closed from a hook
    }
  } while (again && !channels_.empty());
  flushing = outer;
  if (unsynced_ == 0 && !channels_.empty()) on_synced();
}

bool subscriber_session::consume(channel_state& c, const protocol::message_ptr& m) {
  if (m->epoch() != c.epoch) return false;
  if (m->offset() <= c.offset) return true;  // already consumed (replay overlap)
  if (m->offset() != c.offset + 1) return false;
  std::uint64_t prev = c.offset;
  c.offset = m->offset();
  if (!on_message(m, channels_.size() == 1)) {
    c.offset = prev;
    paused_ = true;
  }
  return true;
}

void subscriber_session::resync(channel_state& c, std::size_t idx) {
  c.synced = false;
  ++unsynced_;
  request_history(idx, position{c.epoch, c.offset}, max_pending);
}

void subscriber_session::deliver(const protocol::message_ptr& m) {
  if (paused_) return;
  const std::uint32_t tag = protocol::channel_tag(m->channel());
  for (std::size_t i = 0; i < channels_.size(); ++i) {
    auto& c = channels_[i];
    if (c.tag != tag || c.name != m->channel()) continue;
    if (!c.synced) {
      // Bounded: past the cap the message is not kept, and the gap it leaves is
      // detected and re-read from history by the next message.
      if (c.pending.size() < max_pending) c.pending.push_back(m);
      return;
    }
    if (!consume(c, m)) {
      c.pending.push_back(m);
      resync(c, i);
    }
    return;
  }
}

}  // namespace herald::core
