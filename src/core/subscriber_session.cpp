#include "core/subscriber_session.hpp"

#include <algorithm>

#include "metrics/metrics.hpp"

namespace herald::core {

subscriber_session::subscriber_session(context& ctx, unsigned thread, transport kind)
    : ctx_(ctx), thread_(thread), kind_(kind) {}

subscriber_session::~subscriber_session() { unsubscribe_all(); }

void subscriber_session::subscribe(std::span<const std::string> channels, std::span<const protocol::cursor_entry> since,
                                   std::size_t replay_limit, bool earliest) {
  const std::size_t first = channels_.size();
  for (const auto& name : channels) {
    channel_state c;
    c.name = name;
    c.tag = protocol::channel_tag(name);
    channels_.push_back(std::move(c));
    ++unsynced_;
  }
  // Step 1 for every channel before any history read (see the header).
  for (std::size_t i = first; i < channels_.size(); ++i) {
    channels_[i].hub_slot = ctx_.hubs.subscribe(thread_, channels_[i].name, this);
    enter_presence(channels_[i]);
  }
  // Names, not references: an inline reply may run hooks that add channels.
  std::vector<std::string> names(channels.begin(), channels.end());
  for (const auto& name : names) {
    auto* c = find(name);
    if (!c || c->synced) continue;
    auto it = std::find_if(since.begin(), since.end(), [&](const auto& e) { return e.tag == c->tag; });
    if (it != since.end())
      request_history(*c, position{it->epoch, it->offset}, replay_limit);
    else if (earliest)
      request_history(*c, std::nullopt, replay_limit, true);
    else
      request_history(*c, std::nullopt, 0);
  }
}

void subscriber_session::hub_slot(const std::string& channel, std::uint32_t slot) {
  if (auto* c = find(channel)) c->hub_slot = slot;
}

subscriber_session::channel_state* subscriber_session::find(std::string_view channel) noexcept {
  for (auto& c : channels_)
    if (c.name == channel) return &c;
  return nullptr;
}

bool subscriber_session::ended(std::string_view channel) const noexcept {
  return std::any_of(channels_.begin(), channels_.end(), [&](auto& c) { return c.name == channel && c.ended; });
}

bool subscriber_session::all_ended() const noexcept {
  return !channels_.empty() && std::all_of(channels_.begin(), channels_.end(), [](auto& c) { return c.ended; });
}

bool subscriber_session::subscribed(std::string_view channel) const noexcept {
  return std::any_of(channels_.begin(), channels_.end(), [&](auto& c) { return c.name == channel; });
}

void subscriber_session::unsubscribe(const std::string& channel) {
  auto it = std::find_if(channels_.begin(), channels_.end(), [&](auto& c) { return c.name == channel; });
  if (it == channels_.end()) return;
  ctx_.hubs.unsubscribe(thread_, it->name, this, it->hub_slot);
  exit_presence(*it);
  if (!it->synced) --unsynced_;
  channels_.erase(it);
  std::erase(resets_, channel);
  if (unsynced_ == 0 && !channels_.empty()) finish_sync();
}

void subscriber_session::unsubscribe_all() {
  for (auto& c : channels_) {
    ctx_.hubs.unsubscribe(thread_, c.name, this, c.hub_slot);
    exit_presence(c);
  }
  channels_.clear();
  resets_.clear();
  unsynced_ = 0;
}

std::vector<protocol::cursor_entry> subscriber_session::positions() const {
  std::vector<protocol::cursor_entry> entries;
  entries.reserve(channels_.size());
  for (const auto& c : channels_) entries.push_back({c.tag, c.epoch, c.offset});
  return entries;
}

std::string subscriber_session::cursor() const { return protocol::encode_cursor(positions()); }

std::string subscriber_session::cursor_of(std::string_view channel) const {
  for (const auto& c : channels_)
    if (c.name == channel) {
      protocol::cursor_entry e{c.tag, c.epoch, c.offset};
      return protocol::encode_cursor({&e, 1});
    }
  return {};
}

void subscriber_session::request_history(channel_state& c, std::optional<position> since, std::size_t limit,
                                         bool earliest) {
  c.sync_id = ++next_sync_id_;
  c.asked_since = since.has_value();
  c.asked_earliest = earliest;
  if (since) {
    c.epoch = since->epoch;
    c.offset = since->offset;
  }
  history_query q{c.name, since, limit, ctx_.max_reply_bytes, earliest};
  std::weak_ptr<subscriber_session> weak = weak_from_this();
  hub& h = ctx_.hubs;
  ctx_.brokers.history(std::move(q),
                       [weak, name = c.name, id = c.sync_id, t = thread_, &h](broker::history_result r) mutable {
                         auto run = [weak, name = std::move(name), id, r = std::move(r)]() mutable {
                           if (auto self = weak.lock()) self->apply_history(name, id, std::move(r));
                         };
                         h.run_on(t, std::move(run));
                       });
}

void subscriber_session::apply_history(const std::string& channel, std::uint16_t sync_id, broker::history_result r) {
  channel_state* cp = find(channel);
  if (!cp || cp->sync_id != sync_id || cp->synced) return;  // left, or superseded
  if (auto* err = std::get_if<util::api_error>(&r)) {
    on_error(channel, *err);
    return;
  }
  auto& reply = std::get<history_reply>(r);
  auto& c = *cp;
  if (c.asked_earliest) {
    // From the oldest message held: the position is just before it (or the top when
    // history holds nothing), and from there on the read is one "since" like any other.
    c.asked_earliest = false;
    c.asked_since = true;
    c.epoch = reply.epoch;
    c.offset = reply.messages.empty() ? reply.top : reply.messages.front()->offset() - 1;
  }
  if (!reply.recovered) {
    resets_.push_back(c.name);
    metrics::add(metrics::counter::resets);
    c.offset = reply.top;
  } else if (!c.asked_since) {
    c.offset = reply.top;  // no cursor for this channel: start at "now"
  }
  // Recovered under another epoch (the Redis broker's epoch after a failover, whose
  // offsets up to the asked one are the old epoch's: redis_scripts.hpp): the offset holds.
  c.epoch = reply.epoch;
  c.top_seen = std::max(c.top_seen, reply.top);
  // At the channel's last message, which is its end: a resume there gets nothing more.
  if (reply.ended && c.offset >= reply.top) c.ended = true;
  // Live messages that arrived meanwhile: keep those of the current epoch (of any, when
  // the channel had no life yet: its first may have begun); consume() skips the offsets
  // the replay (or the reset) already covers.
  if (c.epoch != 0) std::erase_if(c.pending, [&](const auto& m) { return m->epoch() != c.epoch; });
  if (reply.recovered && reply.messages.empty()) {
    // History had nothing to fill the gap before the first pending message: the broker
    // lost it. Say so rather than re-reading forever.
    auto next = std::find_if(c.pending.begin(), c.pending.end(), [&](const auto& m) { return m->offset() > c.offset; });
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
      bool resynced = false;
      for (std::size_t k = 0; k < pend.size() && !paused_; ++k) {
        if (!consume(c, pend[k])) {
          c.pending.assign(pend.begin() + static_cast<std::ptrdiff_t>(k), pend.end());
          resync(c);
          resynced = true;
          break;
        }
      }
      // History held more than one read returns (replay limit), or live messages were
      // dropped while syncing: read on now rather than at the next publication.
      if (!resynced && !paused_ && c.synced && c.offset < c.top_seen) resync(c);
      if (channels_.empty()) break;  // the transport closed from a hook
    }
  } while (again && !channels_.empty());
  flushing = outer;
  if (unsynced_ == 0 && !channels_.empty()) on_synced();
}

bool subscriber_session::consume(channel_state& c, const protocol::message_ptr& m) {
  // Before any life (epoch 0, offset 0): the first message of a life is the next one.
  if (c.epoch == 0 && c.offset == 0 && m->offset() == 1) c.epoch = m->epoch();
  if (m->epoch() != c.epoch) return false;
  if (m->offset() <= c.offset) return true;  // already consumed (replay overlap)
  if (m->offset() != c.offset + 1) return false;
  std::uint64_t prev = c.offset;
  c.offset = m->offset();
  const bool was_ended = c.ended;
  if (m->event() == end_event) c.ended = true;
  if (!on_message(m, channels_.size() == 1)) {
    c.offset = prev;
    c.ended = was_ended;
    paused_ = true;
  }
  return true;
}

void subscriber_session::resync(channel_state& c) {
  c.synced = false;
  ++unsynced_;
  request_history(c, position{c.epoch, c.offset}, max_pending);
}

void subscriber_session::resume_consuming() {
  if (!paused_) return;
  paused_ = false;
  for (auto& c : channels_)
    if (c.synced) {
      c.pending.clear();
      resync(c);
    }
}

void subscriber_session::resync_hint(const std::string& channel) {
  if (paused_) return;
  if (auto* c = find(channel); c && c->synced) resync(*c);
}

void subscriber_session::set_client_id(std::string id) {
  if (!presence_)
    presence_ = std::make_unique<presence_identity>(presence_identity{std::move(id), std::string(presence_user())});
}

void subscriber_session::enter_presence(channel_state& c) {
  if (!ctx_.presence || !counts_in_presence() || !ctx_.presence->tracks(c.name)) return;
  if (!presence_)
    presence_ = std::make_unique<presence_identity>(
        presence_identity{ctx_.presence->next_client_id(), std::string(presence_user())});
  ctx_.presence->enter(c.name, presence_->client, presence_->user, kind_);
  c.present = true;
}

void subscriber_session::exit_presence(channel_state& c) {
  if (!c.present) return;
  c.present = false;
  ctx_.presence->exit(c.name, presence_->client, presence_->user);
}

std::optional<subscriber_session::presence_handover> subscriber_session::take_presence() {
  presence_handover h;
  for (auto& c : channels_)
    if (c.present) {
      c.present = false;
      h.channels.push_back(c.name);
    }
  if (h.channels.empty()) return std::nullopt;
  h.client = presence_->client;
  h.user = presence_->user;
  return h;
}

void subscriber_session::deliver(const protocol::message_ptr& m) {
  if (paused_) return;
  const std::uint32_t tag = m->channel_tag();  // no per-subscriber hashing
  for (std::size_t i = 0; i < channels_.size(); ++i) {
    auto& c = channels_[i];
    if (c.tag != tag || c.name != m->channel()) continue;
    if (m->is_signal()) {
      // Live only: no offset to order or dedup by, nothing to re-read. A channel still
      // syncing has not been answered yet, so it does not get signals either.
      // Nor its own join (or leave): it is the one that made it.
      if (c.synced && !(presence_ && !m->signal_client().empty() && m->signal_client() == presence_->client))
        on_signal(m);
      return;
    }
    if (!c.synced) {
      // Bounded: past the cap the message is not kept, and the gap it leaves is
      // detected and re-read from history by the next message.
      if (c.pending.size() < max_pending) {
        c.pending.push_back(m);
      } else {
        metrics::add(metrics::counter::sync_overflows);
        if (m->epoch() == c.epoch) c.top_seen = std::max(c.top_seen, m->offset());
      }
      return;
    }
    if (!consume(c, m)) {
      c.pending.push_back(m);
      resync(c);
    }
    return;
  }
}

}  // namespace herald::core
