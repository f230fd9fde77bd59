#include "transport/write_queue.hpp"

namespace herald::transport {

namespace {
// Past this capacity a buffer left empty is given back, so an idle connection does not
// keep the memory of its largest burst.
constexpr std::size_t keep_capacity = 4096;

template <class V>
void release_if_large(V& v, std::size_t limit) {
  v.clear();
  if (v.capacity() > limit) V().swap(v);
}
}  // namespace

void write_queue::push_shared(std::string_view bytes, const protocol::message_ptr& keep) {
  pieces_.push_back({bytes.data(), 0, bytes.size()});
  if (keep_.empty() || keep_.back() != keep) keep_.push_back(keep);
  pending_bytes_ += bytes.size();
}

void write_queue::push_copy(std::string_view bytes) {
  // Adjacent copies merge into one piece.
  if (!pieces_.empty() && !pieces_.back().data && pieces_.back().off + pieces_.back().len == arena_.size())
    pieces_.back().len += bytes.size();
  else
    pieces_.push_back({nullptr, arena_.size(), bytes.size()});
  arena_ += bytes;
  pending_bytes_ += bytes.size();
}

const std::vector<boost::asio::const_buffer>& write_queue::start() {
  writing_ = true;
  arena_inflight_.swap(arena_);
  keep_inflight_.swap(keep_);
  bufs_.clear();
  bufs_.reserve(pieces_.size());
  for (const auto& p : pieces_)
    bufs_.emplace_back(p.data ? p.data : arena_inflight_.data() + p.off, p.len);
  pieces_.clear();
  inflight_bytes_ = pending_bytes_;
  pending_bytes_ = 0;
  return bufs_;
}

void write_queue::done() {
  writing_ = false;
  inflight_bytes_ = 0;
  if (pieces_.empty()) {
    // Nothing queued behind this write: the connection goes idle, and an idle
    // connection keeps no buffers (busy ones, with writes queued, reuse theirs).
    clear();
    return;
  }
  release_if_large(bufs_, keep_capacity / sizeof(boost::asio::const_buffer));
  release_if_large(arena_inflight_, keep_capacity);
  release_if_large(keep_inflight_, keep_capacity / sizeof(protocol::message_ptr));
}

void write_queue::clear() {
  pieces_ = {};
  arena_ = {};
  keep_ = {};
  pending_bytes_ = 0;
  if (!writing_) {
    bufs_ = {};
    arena_inflight_ = {};
    keep_inflight_ = {};
  }
}

}  // namespace herald::transport
