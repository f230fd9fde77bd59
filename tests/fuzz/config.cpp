// Fuzz target: the --config file (config/config.hpp), read through config::parse with
// the file's contents from a stream, as `herald --config FILE` reads it.
//
// Properties:
//  - no crash, no undefined behaviour, on any bytes;
//  - a bad file is refused with config::config_error (which herald prints, naming the
//    setting, before exiting with status 2); no other exception escapes;
//  - an accepted file gives a configuration within the documented bounds.
//
// Skipped inputs:
//  - with '@': `token-key = hs256:@FILE` reads a file, and a fuzzer must not read (or
//    block on) this machine's files.
// Values holding a Boost.ProgramOptions placeholder (`%value%`) once hung the parser
// (finding F2, docs/fuzzing.md; regressions/config/ replays it).
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "fuzz_check.hpp"


extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (text.find('@') != std::string::npos) return 0;
  std::istringstream file(text);
  const char* argv[] = {"herald"};
  herald::config::parse_result r;
  try {
    r = herald::config::parse(1, argv, {}, file);
  } catch (const herald::config::config_error& e) {
    FUZZ_CHECK(*e.what() != '\0', "a config error says what is wrong");
    return 0;
  }
  if (!r.cfg) {
    FUZZ_CHECK(!r.output.empty(), "help or version prints something");
    return 0;
  }
  const auto& c = *r.cfg;
  const auto& t = c.transport;
  FUZZ_CHECK(c.threads >= 1 && c.threads <= 64, "threads is 1..64");
  FUZZ_CHECK(!c.host.empty(), "a listen host");
  FUZZ_CHECK(t.max_channels_per_connection >= 1 && t.max_channels_per_connection <= 40,
             "max-channels-per-connection is 1..40");
  FUZZ_CHECK(t.poll_limit >= 1 && t.poll_limit <= t.poll_limit_max, "poll-limit is 1..poll-limit-max");
  FUZZ_CHECK(t.poll_timeout <= t.poll_timeout_max, "poll-timeout is within poll-timeout-max");
  FUZZ_CHECK(t.max_header_bytes >= 1024 && t.ws_max_message >= 1024 && t.max_queued_bytes >= 4096,
             "size limits have their minimum");
  FUZZ_CHECK(t.max_body_bytes >= 4096 && c.api.max_data_bytes <= t.max_body_bytes - 4096,
             "max-message-size leaves 4096 bytes of room under max-body-size");
  FUZZ_CHECK(c.api.max_broadcast_channels > 0, "max-broadcast-channels is positive");
  FUZZ_CHECK(c.drain_window.count() >= 0 && c.drain_window.count() <= 3'600'000, "drain-seconds is 0..3600");
  return 0;
}
