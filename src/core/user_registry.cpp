#include "core/user_registry.hpp"

#include <algorithm>

namespace herald::core {

user_registry::user_registry(hub& h, unsigned threads) : hub_(h) {
  for (unsigned t = 0; t < threads; ++t) tables_.push_back(std::make_unique<table>());
}

void user_registry::add(unsigned t, const std::string& user, user_connection* c) {
  (*tables_[t])[user].push_back(c);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void user_registry::remove(unsigned t, const std::string& user, user_connection* c) {
  auto& tab = *tables_[t];
  auto it = tab.find(user);
  if (it == tab.end()) return;
  auto& v = it->second;
  auto pos = std::find(v.begin(), v.end(), c);
  if (pos == v.end()) return;
  *pos = v.back();
  v.pop_back();
  count_.fetch_sub(1, std::memory_order_relaxed);
  if (v.empty()) tab.erase(it);
}

void user_registry::apply(const protocol::user_command& c, std::function<void(std::size_t)> done) {
  struct gather {
    std::atomic<std::size_t> acted{0};
    std::atomic<unsigned> left;
    std::function<void(std::size_t)> done;
  };
  auto g = std::make_shared<gather>();
  g->left = static_cast<unsigned>(tables_.size());
  g->done = std::move(done);
  for (unsigned t = 0; t < tables_.size(); ++t)
    hub_.run_on(t, [this, t, c, g] {
      std::size_t n = 0;
      auto& tab = *tables_[t];
      if (auto it = tab.find(c.user); it != tab.end()) {
        // A copy: acting may make a connection leave the list (a disconnect).
        const auto conns = it->second;
        for (auto* conn : conns) {
          auto now = tab.find(c.user);
          if (now == tab.end()) break;
          if (std::find(now->second.begin(), now->second.end(), conn) == now->second.end()) continue;
          if (conn->apply_user_command(c)) ++n;
        }
      }
      g->acted.fetch_add(n, std::memory_order_relaxed);
      if (g->left.fetch_sub(1, std::memory_order_acq_rel) == 1) g->done(g->acted.load());
    });
}

}  // namespace herald::core
