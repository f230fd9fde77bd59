#pragma once
// The live ingests of this node (POST /api/stream), one per channel: a second producer on
// a live stream is refused, and a stop (POST /api/stream/stop, client /stop, WebSocket
// stop) reaches the producer's request on whichever thread it runs.
//
// Threads: every call may come from any thread; the stopper runs on the ingest's own
// thread (posted through the hub). One mutex guards the map: it is touched once when an
// ingest starts, once when it ends and once per stop, never per delta.
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/broker.hpp"
#include "core/hub.hpp"

namespace herald::core {

class stream_registry {
 public:
  /// Called on the ingest's thread with the stop's reason; it publishes the end
  /// (aborted) and hands the result of that publish to `done`.
  using stopper = std::function<void(std::string reason, std::function<void(broker::publish_result)> done)>;

  explicit stream_registry(hub& h) : hub_(h) {}

  /// Registers the live ingest of `channel`, run on `thread`; returns its id, or 0 when
  /// the channel has a live ingest already (the caller refuses with 409).
  std::uint64_t claim(const std::string& channel, unsigned thread, stopper stop);
  /// Removes the ingest `id` of `channel` (no-op when it is not the registered one).
  void release(const std::string& channel, std::uint64_t id);
  /// Stops the live ingest of `channel`: false when this node has none. `done` runs on
  /// the ingest's thread.
  bool stop(const std::string& channel, std::string reason, std::function<void(broker::publish_result)> done);
  std::size_t live() const;

 private:
  struct entry {
    std::uint64_t id;
    unsigned thread;
    stopper stop;
  };
  hub& hub_;
  mutable std::mutex m_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::string, entry> live_;
};

}  // namespace herald::core
