#include "baseline.hpp"

#include <openssl/sha.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace herald::bench {

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct state {
  std::size_t wire_bytes;
  struct sub {
    std::shared_ptr<tcp::socket> socket;
    bool ws;
  };
  std::map<std::string, std::vector<sub>> channels;
  std::size_t short_writes = 0;
};

// RFC 6455 4.2.2: base64(SHA-1(key + GUID)), for clients that check it (npm ws does).
std::string accept_key(const std::string& key) {
  const std::string in = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), d);
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < sizeof d; i += 3) {
    const unsigned v = d[i] << 16 | (i + 1 < sizeof d ? d[i + 1] << 8 : 0) | (i + 2 < sizeof d ? d[i + 2] : 0);
    out += b64[v >> 18 & 63];
    out += b64[v >> 12 & 63];
    out += i + 1 < sizeof d ? b64[v >> 6 & 63] : '=';
    out += i + 2 < sizeof d ? b64[v & 63] : '=';
  }
  return out;
}

// The body as the subscriber reads it: SSE block or WebSocket text frame, padded.
std::string record(const std::string& body, bool ws, std::size_t wire_bytes) {
  std::string payload = body;
  const std::size_t framing = ws ? (payload.size() < 126 ? 2 : 4) : 8;  // "data: " + "\n\n"
  if (payload.size() + framing < wire_bytes) payload.append(wire_bytes - framing - payload.size(), ' ');
  std::string out;
  if (ws) {
    out += static_cast<char>(0x81);
    if (payload.size() < 126) {
      out += static_cast<char>(payload.size());
    } else {
      out += static_cast<char>(126);
      out += static_cast<char>((payload.size() >> 8) & 0xff);
      out += static_cast<char>(payload.size() & 0xff);
    }
    out += payload;
  } else {
    out = "data: " + payload + "\n\n";
  }
  return out;
}

void fan_out(state& st, const std::string& channel, const std::string& body) {
  auto it = st.channels.find(channel);
  if (it == st.channels.end()) return;
  const std::string sse = record(body, false, st.wire_bytes), ws = record(body, true, st.wire_bytes);
  for (auto& s : it->second) {
    const auto& r = s.ws ? ws : sse;
    // One send per message per socket: the cost being measured.
    const auto n = ::send(s.socket->native_handle(), r.data(), r.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(r.size())) ++st.short_writes;
  }
}

class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(tcp::socket s, state& st) : socket_(std::make_shared<tcp::socket>(std::move(s))), st_(st) {}
  void start() { read(); }

 private:
  void read() {
    socket_->async_read_some(net::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      if (ec) return;  // a subscriber's socket stays in its channel until the process ends
      self->in_.append(self->buf_, n);
      if (self->handle()) self->read();
    });
  }

  // Handles whole requests in in_; false once this connection became a subscriber.
  bool handle() {
    for (;;) {
      const auto end = in_.find("\r\n\r\n");
      if (end == std::string::npos) return true;
      const std::string head = in_.substr(0, end);
      const auto sp = head.find(' '), sp2 = head.find(' ', sp + 1);
      const std::string path = head.substr(sp + 1, sp2 - sp - 1);
      const std::string channel = path.starts_with("/sub/") || path.starts_with("/pub/") ? path.substr(5) : path;
      if (head.starts_with("GET ")) {
        const auto key_at = head.find("Sec-WebSocket-Key: ");
        const bool ws = key_at != std::string::npos;
        std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
        if (ws) {
          const auto v = key_at + 19;
          reply = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: " + accept_key(head.substr(v, head.find("\r\n", v) - v)) + "\r\n\r\n";
        }
        net::write(*socket_, net::buffer(reply));
        socket_->set_option(tcp::no_delay(true));
        st_.channels[channel].push_back({socket_, ws});
        in_.clear();
        return true;  // keep reading: notices nothing, but keeps the socket's owner alive
      }
      std::size_t length = 0;
      if (auto cl = head.find("Content-Length: "); cl != std::string::npos) length = std::stoul(head.substr(cl + 16));
      if (in_.size() < end + 4 + length) return true;
      const std::string body = in_.substr(end + 4, length);
      in_.erase(0, end + 4 + length);
      static const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
      fan_out(st_, channel, body);
      net::write(*socket_, net::buffer(reply));
    }
  }

  std::shared_ptr<tcp::socket> socket_;
  state& st_;
  char buf_[65536];
  std::string in_;
};

void accept(tcp::acceptor& a, state& st) {
  a.async_accept([&a, &st](boost::system::error_code ec, tcp::socket s) {
    if (!ec) std::make_shared<connection>(std::move(s), st)->start();
    accept(a, st);
  });
}

}  // namespace

int run_baseline_server(int port, std::size_t wire_bytes) {
  net::io_context ioc(1);
  tcp::acceptor a(ioc, {net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  state st{wire_bytes, {}, 0};
  accept(a, st);
  ioc.run();
  return 0;
}

}  // namespace herald::bench
