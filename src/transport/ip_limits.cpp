#include "transport/ip_limits.hpp"

#include <cstring>
#include <string_view>

namespace herald::transport {

ip_slot& ip_slot::operator=(ip_slot&& o) noexcept {
  if (this != &o) {
    release();
    counter_ = std::exchange(o.counter_, nullptr);
    address_ = o.address_;
  }
  return *this;
}

void ip_slot::release() noexcept {
  if (counter_) std::exchange(counter_, nullptr)->release(address_);
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

ip_counter::shard& ip_counter::shard_for(const key& k) const noexcept {
  return shards_[key_hash{}(k) % shard_count];
}

bool ip_counter::acquire(const boost::asio::ip::address& a, ip_slot& slot) {
  if (limit_ == 0) {
    slot = ip_slot{};
    return true;
  }
  auto k = key_of(a);
  auto& sh = shard_for(k);
  {
    std::lock_guard lock(sh.m);
    auto& n = sh.counts[k];
    if (n >= limit_) return false;
    ++n;
  }
  slot = ip_slot(this, a);
  return true;
}

std::size_t ip_counter::count(const boost::asio::ip::address& a) const {
  auto k = key_of(a);
  auto& sh = shard_for(k);
  std::lock_guard lock(sh.m);
  auto it = sh.counts.find(k);
  return it == sh.counts.end() ? 0 : it->second;
}

void ip_counter::release(const boost::asio::ip::address& a) noexcept {
  auto k = key_of(a);
  auto& sh = shard_for(k);
  std::lock_guard lock(sh.m);
  auto it = sh.counts.find(k);
  if (it != sh.counts.end() && --it->second == 0) sh.counts.erase(it);
}

}  // namespace herald::transport
