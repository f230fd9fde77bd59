#pragma once
// A connection's outbound bytes: one write in flight, everything queued meanwhile
// leaves in the next gather write.
//
// Message bytes are not copied: a piece refers into a shared, immutable message (kept
// alive by the queue). Small per-connection bytes (HTTP heads, id lines) are copied
// into an arena. pending_bytes() (what waits behind the write in flight) is what the
// per-connection cap (slow reader) is checked against.
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "protocol/message.hpp"

namespace herald::transport {

/// The in-flight buffers as Asio and Beast are given them: their operations keep a copy of
/// the buffer sequence (several, nested, per write), and a copy of a span allocates
/// nothing where a vector's would (once per copy: 6 per long-poll reply, 1 per stream write).
using buffer_view = std::span<const boost::asio::const_buffer>;

class write_queue {
 public:
  /// Queues bytes that live inside `keep` (no copy).
  void push_shared(std::string_view bytes, const protocol::message_ptr& keep);
  /// Queues a copy of `bytes`.
  void push_copy(std::string_view bytes);

  bool empty() const noexcept { return !b_ || b_->pieces.empty(); }
  bool writing() const noexcept { return writing_; }
  std::size_t queued_bytes() const noexcept { return pending_bytes_ + inflight_bytes_; }
  /// Bytes waiting behind the write in flight: a reader's backlog.
  std::size_t pending_bytes() const noexcept { return pending_bytes_; }

  /// Moves everything pending into flight and returns its buffers; the caller writes
  /// them all (through a buffer_view), then calls done(). Precondition: !writing() &&
  /// !empty().
  const std::vector<boost::asio::const_buffer>& start();
  /// The in-flight write completed (or failed): releases its buffers.
  void done();
  /// Drops everything (connection closing).
  void clear();

 private:
  struct piece {
    const char* data;  // nullptr: in the arena at `off`
    std::size_t off;
    std::size_t len;
  };

 public:
  // Allocated while there is something to write, given back (to a small per-thread
  // pool) when the connection goes idle: an idle connection holds one null pointer here.
  struct buffers {
    std::vector<piece> pieces;
    std::string arena;
    std::vector<protocol::message_ptr> keep;
    // In flight.
    std::vector<boost::asio::const_buffer> bufs;
    std::string arena_inflight;
    std::vector<protocol::message_ptr> keep_inflight;
  };

 private:
  buffers& b();
  void recycle();

  std::unique_ptr<buffers> b_;
  std::size_t pending_bytes_ = 0;
  std::size_t inflight_bytes_ = 0;
  bool writing_ = false;
};

}  // namespace herald::transport
