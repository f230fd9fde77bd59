#include "transport/ip_counter.hpp"

#include <cstring>
#include <string_view>

namespace herald::transport {

ip_slot& ip_slot::operator=(ip_slot&& o) noexcept {
  if (this != &o) {
    release();
    entry_ = std::exchange(o.entry_, nullptr);
  }
  return *this;
}

void ip_slot::release() noexcept {
  if (auto* e = std::exchange(entry_, nullptr)) e->owner->release(*e);
}

std::size_t ip_counter::key_hash::operator()(const key& k) const noexcept {
  return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

ip_counter::key ip_counter::key_of(const boost::asio::ip::address& a) noexcept {
  // IPv4 as its IPv4-mapped IPv6 form: one key space for both.
  auto v6 = a.is_v4() ? boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, a.to_v4()) : a.to_v6();
  auto bytes = v6.to_bytes();
  key k;
  std::memcpy(k.data(), bytes.data(), k.size());
  return k;
}

ip_counter::shard& ip_counter::shard_for(const key& k) const noexcept { return shards_[key_hash{}(k) % shard_count]; }

bool ip_counter::acquire(const boost::asio::ip::address& a, ip_slot& slot) {
  if (limit_ == 0) {
    slot = ip_slot{};
    return true;
  }
  auto k = key_of(a);
  auto& sh = shard_for(k);
  std::lock_guard lock(sh.m);
  auto& e = sh.counts[k];
  if (e.count >= limit_) return false;
  e.owner = this;
  e.key = k;
  ++e.count;
  slot = ip_slot(&e);
  return true;
}

std::size_t ip_counter::count(const boost::asio::ip::address& a) const {
  auto k = key_of(a);
  auto& sh = shard_for(k);
  std::lock_guard lock(sh.m);
  auto it = sh.counts.find(k);
  return it == sh.counts.end() ? 0 : it->second.count;
}

void ip_counter::release(detail::ip_entry& e) noexcept {
  const key k = e.key;  // `e` dies with its node
  auto& sh = shard_for(k);
  std::lock_guard lock(sh.m);
  if (--e.count == 0) sh.counts.erase(k);
}

}  // namespace herald::transport
