#include "core/history.hpp"

#include <algorithm>

namespace herald::core {

void history::push(message_ptr m, std::int64_t now_ms, std::size_t max_size, std::size_t max_bytes) {
  if (max_size == 0) {
    clear();
    return;
  }
  const std::size_t bytes = m->footprint();
  while (count_ >= max_size || (max_bytes && count_ && bytes_ + bytes > max_bytes)) pop_front();
  if (count_ == ring_.size()) {
    // Grow (double, capped at max_size), unrolling the ring so head_ is 0.
    std::size_t cap = std::min(max_size, std::max<std::size_t>(4, ring_.size() * 2));
    std::vector<slot> grown;
    grown.reserve(cap);
    for (std::size_t i = 0; i < count_; ++i) grown.push_back(std::move(ring_[(head_ + i) % ring_.size()]));
    grown.resize(cap);
    ring_ = std::move(grown);
    head_ = 0;
  }
  bytes_ += bytes;
  ring_[(head_ + count_) % ring_.size()] = slot{std::move(m), now_ms, bytes};
  ++count_;
}

void history::pop_front() {
  auto& s = ring_[head_];
  bytes_ -= s.bytes;
  s.msg.reset();
  head_ = (head_ + 1) % ring_.size();
  --count_;
}

void history::expire(std::int64_t now_ms, std::int64_t ttl_ms) {
  if (ttl_ms <= 0) return;
  while (count_ && at(0).stored_ms < now_ms - ttl_ms) pop_front();
  if (count_ == 0 && !ring_.empty()) {
    // A channel gone quiet gives its ring back.
    ring_ = {};
    head_ = 0;
  }
}

void history::clear() {
  ring_ = {};
  head_ = count_ = bytes_ = 0;
}

std::uint64_t history::first_offset() const noexcept { return count_ ? at(0).msg->offset() : 0; }

void history::since(std::uint64_t after, std::size_t limit, std::vector<message_ptr>& out,
                    std::size_t max_bytes) const {
  if (!count_ || limit == 0) return;
  std::uint64_t first = at(0).msg->offset();
  std::size_t start = after < first ? 0 : static_cast<std::size_t>(after - first + 1);
  std::size_t bytes = 0, taken = 0;
  for (std::size_t i = start; i < count_ && taken < limit; ++i, ++taken) {
    bytes += at(i).msg->json().size();
    if (max_bytes && taken && bytes > max_bytes) break;
    out.push_back(at(i).msg);
  }
}

void history::latest(std::size_t limit, std::vector<message_ptr>& out, std::size_t max_bytes) const {
  std::size_t start = count_ > limit ? count_ - limit : 0;
  if (max_bytes) {
    // Walk back from the newest while the bytes fit (the newest always goes).
    std::size_t bytes = 0, i = count_;
    while (i > start) {
      bytes += at(i - 1).msg->json().size();
      if (i < count_ && bytes > max_bytes) break;
      --i;
    }
    start = i;
  }
  for (std::size_t i = start; i < count_; ++i) out.push_back(at(i).msg);
}

}  // namespace herald::core
