#include "core/hub.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace herald::core {
namespace {
thread_local int current_thread_index = -1;
}

int hub::current_thread() noexcept { return current_thread_index; }
void hub::set_current_thread(int t) noexcept { current_thread_index = t; }

hub::hub(std::vector<poster> threads) : threads_(std::move(threads)), shards_(new registry_shard[shard_count]) {
  if (threads_.empty() || threads_.size() > max_threads) throw std::invalid_argument("hub: thread count must be 1..64");
  for (std::size_t i = 0; i < threads_.size(); ++i) locals_.push_back(std::make_unique<local_table>());
}

hub::registry_shard& hub::shard_for(std::string_view channel) const {
  return shards_[string_hash{}(channel) % shard_count];
}

std::uint64_t hub::thread_mask(std::string_view channel) const {
  auto& sh = shard_for(channel);
  std::lock_guard lock(sh.m);
  auto it = sh.channels.find(channel);
  return it == sh.channels.end() ? 0 : it->second.thread_mask;
}

void hub::on_stop_request(const std::string& channel, const std::string& reason) {
  if (stop_handler_) stop_handler_(channel, reason);
}

void hub::on_resync(const std::string& channel) {
  for (std::uint64_t mask = thread_mask(channel); mask; mask &= mask - 1) {
    unsigned t = static_cast<unsigned>(std::countr_zero(mask));
    threads_[t]([this, t, channel] {
      auto it = locals_[t]->channels.find(channel);
      if (it == locals_[t]->channels.end()) return;
      auto subs = it->second.subs;  // a re-sync may (un)subscribe: walk a copy
      for (subscriber* s : subs)
        if (s) s->resync_hint(channel);
    });
  }
}

void hub::on_publication(const message_ptr& m) {
  std::uint64_t mask = thread_mask(m->channel());
  while (mask) {
    unsigned t = static_cast<unsigned>(std::countr_zero(mask));
    mask &= mask - 1;
    threads_[t]([this, t, m] { deliver_local(t, m); });
  }
}

void hub::deliver_local(unsigned t, const message_ptr& m) {
  auto& table = *locals_[t];
  auto it = table.channels.find(m->channel());
  if (it == table.channels.end()) return;
  local_list& list = it->second;
  ++list.iterating;
  // Index loop: a subscriber may unsubscribe (leaving a hole) or another may be added
  // while we walk; both are safe.
  for (std::size_t i = 0; i < list.subs.size(); ++i)
    if (subscriber* s = list.subs[i]) s->deliver(m);
  --list.iterating;
  if (!list.iterating && list.has_holes) {
    std::erase(list.subs, nullptr);
    list.has_holes = false;
    if (list.subs.empty()) {
      table.channels.erase(it);
      return;
    }
    for (std::size_t i = 0; i < list.subs.size(); ++i)
      list.subs[i]->hub_slot(m->channel(), static_cast<std::uint32_t>(i));
  }
}

std::uint32_t hub::subscribe(unsigned t, const std::string& channel, subscriber* s) {
  auto& list = locals_[t]->channels[channel];
  bool first_on_thread = list.live == 0;
  const auto slot = static_cast<std::uint32_t>(list.subs.size());
  list.subs.push_back(s);
  ++list.live;
  bool first_on_node = false;
  {
    auto& sh = shard_for(channel);
    std::lock_guard lock(sh.m);
    auto& e = sh.channels[channel];
    first_on_node = e.thread_mask == 0;
    if (first_on_thread) e.thread_mask |= std::uint64_t{1} << t;
    ++e.counts[static_cast<unsigned>(s->kind())];
  }
  if (first_on_node && broker_) broker_->watch(channel);
  return slot;
}

void hub::unsubscribe(unsigned t, const std::string& channel, subscriber* s, std::uint32_t slot) {
  auto& table = *locals_[t];
  auto it = table.channels.find(channel);
  if (it == table.channels.end()) return;
  local_list& list = it->second;
  // The slot the subscriber was told; a search only when it is stale (a caller that
  // does not track slots): leaving a big channel stays O(1), a mass disconnect O(n).
  auto pos = slot < list.subs.size() && list.subs[slot] == s ? list.subs.begin() + slot
                                                             : std::find(list.subs.begin(), list.subs.end(), s);
  if (pos == list.subs.end()) return;
  if (list.iterating) {
    *pos = nullptr;  // compacted (and slots renumbered) after the walk
    list.has_holes = true;
  } else {
    *pos = list.subs.back();
    list.subs.pop_back();
    if (pos != list.subs.end()) (*pos)->hub_slot(channel, static_cast<std::uint32_t>(pos - list.subs.begin()));
  }
  bool last_on_thread = --list.live == 0;
  if (last_on_thread && !list.iterating) table.channels.erase(it);

  bool last_on_node = false;
  {
    auto& sh = shard_for(channel);
    std::lock_guard lock(sh.m);
    auto rit = sh.channels.find(channel);
    if (rit == sh.channels.end()) return;
    auto& e = rit->second;
    --e.counts[static_cast<unsigned>(s->kind())];
    if (last_on_thread) e.thread_mask &= ~(std::uint64_t{1} << t);
    if (e.thread_mask == 0) {
      sh.channels.erase(rit);
      last_on_node = true;
    }
  }
  if (last_on_node && broker_) broker_->unwatch(channel);
}

bool hub::has_subscribers(std::string_view channel) const {
  auto& sh = shard_for(channel);
  std::lock_guard lock(sh.m);
  return sh.channels.find(channel) != sh.channels.end();
}

std::size_t hub::subscriber_count(std::string_view channel) const {
  auto& sh = shard_for(channel);
  std::lock_guard lock(sh.m);
  auto it = sh.channels.find(channel);
  if (it == sh.channels.end()) return 0;
  std::size_t n = 0;
  for (auto c : it->second.counts) n += c;
  return n;
}

std::vector<std::pair<std::string, subscriber_counts>> hub::counts() const {
  std::vector<std::pair<std::string, subscriber_counts>> out;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lock(shards_[i].m);
    for (auto& [name, e] : shards_[i].channels) out.emplace_back(name, e.counts);
  }
  return out;
}

}  // namespace herald::core
