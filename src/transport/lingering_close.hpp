#pragma once
// How herald ends a connection it chose to end (RFC 6455 §7.1.1, RFC 9112 §9.6).
//
// close() on a socket with unread bytes, or one whose peer is still sending, makes the
// kernel answer with a reset, and a reset can destroy what was sent just before it: the
// client sees a network failure instead of the close frame or error reply that says what
// was wrong. So the write side is shut down first (the peer reads everything, then the
// end of the stream), and what the peer still sends is read and discarded until it
// closes too, for at most `linger_time` and `linger_bytes`; only then is the socket
// closed. At most 1024 sockets a thread linger; past that they are closed at once. Call
// it once nothing is being written on the socket.
#include <boost/asio/ip/tcp.hpp>

#include "transport/socket.hpp"
#include "transport/thread_context.hpp"

namespace herald::transport {

inline constexpr std::chrono::milliseconds linger_time{2000};
inline constexpr std::size_t linger_bytes = 16 << 20;

/// Takes `socket` (no operation pending on it) and closes it as above, on `tc`'s loop.
void lingering_close(tcp_socket socket, thread_context& tc);

}  // namespace herald::transport
