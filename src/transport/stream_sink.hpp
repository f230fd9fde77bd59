#pragma once
// Where a streaming session's bytes go when they do not go to a socket of its own: one
// stream of an HTTP/2 connection (h2_stream). A stream_session without a sink writes to
// its connection (HTTP/1.1, plain or TLS), the same queue and the same policy either way.
#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include "transport/http_response.hpp"

namespace herald::transport {

class stream_sink {
 public:
  using write_done = std::function<void(const boost::system::error_code&, std::size_t)>;

  /// The response head (status, headers) before the first body bytes.
  virtual void sink_head(int status, std::string_view content_type, long long content_length,
                         const header_list& headers) = 0;
  /// Takes all of `bufs` (valid until `done`), then calls `done` on the session's thread,
  /// never inline: an error once the stream is gone.
  virtual void sink_write(const std::vector<boost::asio::const_buffer>& bufs, write_done done) = 0;
  /// Ends the stream: after what was taken when `graceful`, else at once (a reset).
  virtual void sink_close(bool graceful) = 0;

 protected:
  ~stream_sink() = default;
};

}  // namespace herald::transport
