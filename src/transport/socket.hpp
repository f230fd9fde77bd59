#pragma once
// The types a connection is read and written through. Each connection belongs to one
// loop (thread_context) for its whole life, so its socket, its Beast stream and their
// timers are typed on that loop's io_context executor (a pointer) rather than Asio's
// polymorphic any_io_executor (56 B in every socket and timer, and again in every pending
// operation): about 100 B less per idle connection.
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/rate_policy.hpp>

namespace herald::transport {

using loop_executor = boost::asio::io_context::executor_type;
using tcp_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, loop_executor>;
using tcp_acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, loop_executor>;
/// Beast's TCP stream (deadlines on reads and writes) over a tcp_socket.
using tcp_stream = boost::beast::basic_stream<boost::asio::ip::tcp, loop_executor, boost::beast::unlimited_rate_policy>;

}  // namespace herald::transport
