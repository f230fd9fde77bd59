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

// Buffers of connections gone idle, kept for the next connection of this thread that
// writes: a delivery to an idle connection then allocates nothing. Bounded, and each
// one trimmed to keep_capacity, so the pool holds at most a few hundred KiB a thread.
constexpr std::size_t pool_max = 64;
thread_local std::vector<std::unique_ptr<write_queue::buffers>> pool;
}  // namespace

write_queue::buffers& write_queue::b() {
  if (!b_) {
    if (!pool.empty()) {
      b_ = std::move(pool.back());
      pool.pop_back();
    } else {
      b_ = std::make_unique<buffers>();
    }
  }
  return *b_;
}

void write_queue::recycle() {
  auto& q = *b_;
  q.pieces.clear();
  release_if_large(q.arena, keep_capacity);
  q.keep.clear();  // no message outlives its delivery in a pooled buffer
  release_if_large(q.bufs, keep_capacity / sizeof(boost::asio::const_buffer));
  release_if_large(q.arena_inflight, keep_capacity);
  release_if_large(q.keep_inflight, keep_capacity / sizeof(protocol::message_ptr));
  if (q.pieces.capacity() > keep_capacity / sizeof(piece)) decltype(q.pieces)().swap(q.pieces);
  if (q.keep.capacity() > keep_capacity / sizeof(protocol::message_ptr)) decltype(q.keep)().swap(q.keep);
  if (pool.size() < pool_max) pool.push_back(std::move(b_));
  b_.reset();
}

void write_queue::push_shared(std::string_view bytes, const protocol::message_ptr& keep) {
  auto& q = b();
  q.pieces.push_back({bytes.data(), 0, bytes.size()});
  if (q.keep.empty() || q.keep.back() != keep) q.keep.push_back(keep);
  pending_bytes_ += bytes.size();
}

void write_queue::push_copy(std::string_view bytes) {
  auto& q = b();
  // Adjacent copies merge into one piece.
  if (!q.pieces.empty() && !q.pieces.back().data && q.pieces.back().off + q.pieces.back().len == q.arena.size())
    q.pieces.back().len += bytes.size();
  else
    q.pieces.push_back({nullptr, q.arena.size(), bytes.size()});
  q.arena += bytes;
  pending_bytes_ += bytes.size();
}

const std::vector<boost::asio::const_buffer>& write_queue::start() {
  auto& q = b();
  writing_ = true;
  q.arena_inflight.swap(q.arena);
  q.keep_inflight.swap(q.keep);
  q.bufs.clear();
  q.bufs.reserve(q.pieces.size());
  for (const auto& p : q.pieces) q.bufs.emplace_back(p.data ? p.data : q.arena_inflight.data() + p.off, p.len);
  q.pieces.clear();
  inflight_bytes_ = pending_bytes_;
  pending_bytes_ = 0;
  return q.bufs;
}

void write_queue::done() {
  writing_ = false;
  inflight_bytes_ = 0;
  if (!b_) return;
  if (b_->pieces.empty()) {
    // Nothing queued behind this write: the connection goes idle and keeps no buffers
    // (busy ones, with writes queued, reuse theirs); they go back to the thread's pool.
    recycle();
    return;
  }
  release_if_large(b_->bufs, keep_capacity / sizeof(boost::asio::const_buffer));
  release_if_large(b_->arena_inflight, keep_capacity);
  release_if_large(b_->keep_inflight, keep_capacity / sizeof(protocol::message_ptr));
}

void write_queue::clear() {
  pending_bytes_ = 0;
  if (!b_) return;
  if (!writing_) {
    recycle();
    return;
  }
  // The write in flight still uses its buffers: drop only what waits behind it.
  b_->pieces = {};
  b_->arena = {};
  b_->keep = {};
}

}  // namespace herald::transport
