#include "core/stream_registry.hpp"

namespace herald::core {

std::uint64_t stream_registry::claim(const std::string& channel, unsigned thread, stopper stop) {
  std::lock_guard lock(m_);
  if (live_.count(channel)) return 0;
  const auto id = next_id_++;
  live_.emplace(channel, entry{id, thread, std::move(stop)});
  return id;
}

void stream_registry::release(const std::string& channel, std::uint64_t id) {
  std::lock_guard lock(m_);
  auto it = live_.find(channel);
  if (it != live_.end() && it->second.id == id) live_.erase(it);
}

bool stream_registry::stop(const std::string& channel, std::string reason,
                           std::function<void(broker::publish_result)> done) {
  stopper fn;
  unsigned thread;
  {
    std::lock_guard lock(m_);
    auto it = live_.find(channel);
    if (it == live_.end()) return false;
    fn = it->second.stop;  // a copy: the ingest may end (and release) meanwhile
    thread = it->second.thread;
  }
  hub_.post(thread, [fn = std::move(fn), reason = std::move(reason), done = std::move(done)]() mutable {
    fn(std::move(reason), std::move(done));
  });
  return true;
}

std::size_t stream_registry::live() const {
  std::lock_guard lock(m_);
  return live_.size();
}

}  // namespace herald::core
