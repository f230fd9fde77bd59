#pragma once
// The physical baseline (`--peer baseline`): the simplest writer that delivers the same
// bytes to the same loopback subscribers, one send() per message per socket and no
// protocol beyond what lets herald-bench's clients read it. herald's figures read as a
// ratio to what the kernel allows on this machine.
#include <cstddef>

namespace herald::bench {

/// Serves 127.0.0.1:port until killed: `GET /sub/<ch>` subscribes (a WebSocket upgrade
/// request gets a bare 101 and unmasked text frames, anything else a bare 200 and
/// `data: …\n\n` blocks); `POST /pub/<ch>` with a body answers 200 and writes the body,
/// padded with spaces to `wire_bytes` on the wire, to every subscriber of the channel.
/// One thread. Returns when the listening socket fails.
int run_baseline_server(int port, std::size_t wire_bytes);

}  // namespace herald::bench
