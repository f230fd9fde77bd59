#pragma once
// Per-IP counters for the limits on connections and held long polls. A limit of 0
// turns a counter off (no lookup at all). Shared by every thread: the map is split in
// shards, each with its own lock, taken once when a connection opens and once when it
// closes — never on the delivery path.
#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>

namespace herald::transport {

class ip_counter;
namespace detail {
struct ip_entry;
}

/// One counted unit (a connection, a held poll); released when destroyed. One pointer:
/// every connection carries one.
class ip_slot {
 public:
  ip_slot() = default;
  explicit ip_slot(detail::ip_entry* e) : entry_(e) {}
  ip_slot(ip_slot&& o) noexcept : entry_(std::exchange(o.entry_, nullptr)) {}
  ip_slot& operator=(ip_slot&& o) noexcept;
  ~ip_slot() { release(); }
  void release() noexcept;

 private:
  detail::ip_entry* entry_ = nullptr;
};

namespace detail {
struct ip_entry {
  ip_counter* owner = nullptr;
  std::array<unsigned char, 16> key{};
  std::size_t count = 0;
};
}  // namespace detail

class ip_counter {
 public:
  explicit ip_counter(std::size_t limit) : limit_(limit) {}
  std::size_t limit() const noexcept { return limit_; }

  /// Counts one more for `a`; false (nothing counted) when `a` is at the limit.
  bool acquire(const boost::asio::ip::address& a, ip_slot& slot);
  /// Current count of `a` (tests, metrics).
  std::size_t count(const boost::asio::ip::address& a) const;

 private:
  friend class ip_slot;
  using key = std::array<unsigned char, 16>;
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept;
  };
  struct alignas(64) shard {
    mutable std::mutex m;
    std::unordered_map<key, detail::ip_entry, key_hash> counts;  // nodes: stable addresses
  };
  static constexpr std::size_t shard_count = 16;

  static key key_of(const boost::asio::ip::address& a) noexcept;
  shard& shard_for(const key& k) const noexcept;
  void release(detail::ip_entry& e) noexcept;

  std::size_t limit_;
  std::unique_ptr<shard[]> shards_ = std::make_unique<shard[]>(shard_count);
};

}  // namespace herald::transport
