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

/// One counted unit (a connection, a held poll); released when destroyed.
class ip_slot {
 public:
  ip_slot() = default;
  ip_slot(ip_counter* c, const boost::asio::ip::address& a) : counter_(c), address_(a) {}
  ip_slot(ip_slot&& o) noexcept : counter_(std::exchange(o.counter_, nullptr)), address_(o.address_) {}
  ip_slot& operator=(ip_slot&& o) noexcept;
  ~ip_slot() { release(); }
  void release() noexcept;

 private:
  ip_counter* counter_ = nullptr;
  boost::asio::ip::address address_;
};

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
    std::unordered_map<key, std::size_t, key_hash> counts;
  };
  static constexpr std::size_t shard_count = 16;

  static key key_of(const boost::asio::ip::address& a) noexcept;
  shard& shard_for(const key& k) const noexcept;
  void release(const boost::asio::ip::address& a) noexcept;

  std::size_t limit_;
  std::unique_ptr<shard[]> shards_ = std::make_unique<shard[]>(shard_count);
};

}  // namespace herald::transport
