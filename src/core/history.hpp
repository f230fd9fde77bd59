#pragma once
// One channel's history: a bounded ring of the latest messages, gap-free by offset.
//
// Capacity grows on demand up to `max_size`, so a quiet channel costs little; once full
// the oldest message is overwritten. Entries older than the TTL are dropped by expire().
// Not thread-safe: the broker guards each channel's history with the channel's lock.
#include <cstdint>
#include <vector>

#include "protocol/message.hpp"

namespace herald::core {

using protocol::message_ptr;

class history {
 public:
  /// Appends `m`, whose offset must follow the newest held one (or any offset when empty).
  /// `now_ms` is a steady clock reading, used for age limits. The oldest go while more
  /// than `max_size` messages, or more than `max_bytes` bytes (0: no bound) are held;
  /// `m` itself always stays.
  void push(message_ptr m, std::int64_t now_ms, std::size_t max_size, std::size_t max_bytes = 0);

  /// Drops messages stored before `now_ms - ttl_ms` (ttl_ms <= 0: no age limit).
  void expire(std::int64_t now_ms, std::int64_t ttl_ms);

  /// Removes everything (used when the size limit is 0 or the channel is dropped).
  void clear();

  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  /// Offset of the oldest held message (0 when empty).
  std::uint64_t first_offset() const noexcept;
  /// Bytes held by the messages (approximate).
  std::size_t bytes() const noexcept { return bytes_; }

  /// Appends to `out` up to `limit` messages with offset > `after`, oldest first, and
  /// stops before passing `max_bytes` of JSON (0: no bound; the first always goes).
  void since(std::uint64_t after, std::size_t limit, std::vector<message_ptr>& out, std::size_t max_bytes = 0) const;
  /// Appends to `out` the newest `limit` messages, oldest first, within `max_bytes` as
  /// above (the newest always goes).
  void latest(std::size_t limit, std::vector<message_ptr>& out, std::size_t max_bytes = 0) const;

 private:
  struct slot {
    message_ptr msg;
    std::int64_t stored_ms = 0;
    std::size_t bytes = 0;  // footprint when stored (wire forms built later are not counted)
  };
  const slot& at(std::size_t i) const noexcept { return ring_[(head_ + i) % ring_.size()]; }
  void pop_front();

  std::vector<slot> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace herald::core
