// The configuration: with no options every component gets its options struct's own
// defaults (the option table reads them from there), precedence is flag > environment >
// file, and each check names its setting.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace herald::test {
namespace {

config::config parse(std::vector<const char*> args, std::vector<std::string> env = {}, std::string file = "") {
  args.insert(args.begin(), "herald");
  std::istringstream in(file);
  auto r = config::parse(static_cast<int>(args.size()), args.data(), env, in);
  EXPECT_TRUE(r.cfg.has_value());
  return r.cfg.value_or(config::config{});
}

std::string error_of(std::vector<const char*> args) {
  args.insert(args.begin(), "herald");
  std::istringstream in;
  try {
    config::parse(static_cast<int>(args.size()), args.data(), {}, in);
  } catch (const config::config_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, WithNoOptionsEachComponentHasItsStructsDefaults) {
  const auto c = parse({"--threads", "1"});
  const transport::options t;
  EXPECT_EQ(c.transport.max_header_bytes, t.max_header_bytes);
  EXPECT_EQ(c.transport.sse_heartbeat, t.sse_heartbeat);
  EXPECT_EQ(c.transport.sse_retry, t.sse_retry);
  EXPECT_EQ(c.transport.poll_limit_max, t.poll_limit_max);
  EXPECT_EQ(c.transport.ws_max_message, t.ws_max_message);
  EXPECT_EQ(c.transport.write_hold, t.write_hold);
  EXPECT_EQ(c.transport.hooks.timeout, t.hooks.timeout);
  EXPECT_EQ(c.transport.hooks.max_pending, t.hooks.max_pending);
  EXPECT_FALSE(c.transport.hooks.any());
  EXPECT_EQ(c.api.max_data_bytes, api::options{}.max_data_bytes);
  EXPECT_EQ(c.auth.ticket_ttl, auth::options{}.ticket_ttl);
  EXPECT_EQ(c.memory.max_channels, broker::memory_broker_options{}.max_channels);
  const core::namespace_options ns;
  EXPECT_EQ(c.namespaces.defaults().history_size, ns.history_size);
  EXPECT_EQ(c.namespaces.defaults().history_ttl, ns.history_ttl);
  EXPECT_EQ(c.namespaces.defaults().anonymous, ns.anonymous);
  const config::config d;
  EXPECT_EQ(c.host, d.host);
  EXPECT_EQ(c.port, d.port);
  EXPECT_EQ(c.broker, d.broker);
  EXPECT_EQ(c.drain_window, d.drain_window);
  EXPECT_EQ(c.log_level, d.log_level);
  EXPECT_EQ(c.log_format, d.log_format);
}

TEST(Config, AFlagWinsOverTheEnvironmentWhichWinsOverTheFile) {
  EXPECT_EQ(parse({"--sse-heartbeat", "7"}, {"HERALD_SSE_HEARTBEAT=8"}, "sse-heartbeat = 9\n")
                .transport.sse_heartbeat.count(),
            7);
  EXPECT_EQ(parse({}, {"HERALD_SSE_HEARTBEAT=8"}, "sse-heartbeat = 9\n").transport.sse_heartbeat.count(), 8);
  EXPECT_EQ(parse({}, {}, "sse-heartbeat = 9\n").transport.sse_heartbeat.count(), 9);
}

TEST(Config, EachCheckNamesItsSetting) {
  EXPECT_EQ(error_of({"--max-header-size", "100"}), "invalid max-header-size: at least 1024");
  EXPECT_EQ(error_of({"--ticket-ttl", "0"}), "invalid ticket-ttl: must be 1..3600");
  EXPECT_EQ(error_of({"--threads", "65"}), "invalid threads: at most 64");
  EXPECT_EQ(error_of({"--tls-cert", "a.pem"}), "invalid tls-key: --tls-cert and --tls-key go together");
  EXPECT_EQ(error_of({"--poll-timeout", "200"}), "invalid poll-timeout: must not exceed poll-timeout-max");
  EXPECT_EQ(error_of({"--log-level", "loud"}), "invalid log-level: expected debug, info, warn or error, got \"loud\"");
  EXPECT_EQ(error_of({"--connect-hook", "https://x"}),
            "invalid connect-hook: expected http://HOST[:PORT][/PATH], got \"https://x\"");
}

TEST(Config, RedisOptionsAreCheckedOnlyWithARedisBroker) {
  EXPECT_EQ(parse({"--redis-timeout", "5"}).broker, "memory");
  EXPECT_EQ(error_of({"--broker", "redis://127.0.0.1:6379", "--redis-timeout", "5"}),
            "invalid redis-timeout: at least 100 ms");
}

TEST(Config, NamespaceKeysApplyOnTopOfTheDefaultNamespace) {
  const auto c = parse({"--history-size", "7", "--namespace", "ai:stream_coalesce_ms=40,presence=on"});
  const auto& ai = c.namespaces.named().at("ai");
  EXPECT_EQ(ai.history_size, 7u);
  EXPECT_EQ(ai.stream_coalesce.count(), 40);
  EXPECT_TRUE(ai.presence);
  EXPECT_EQ(error_of({"--namespace", "ai:presence=maybe"}),
            "invalid namespace \"ai:presence=maybe\" presence: expected true or false, got \"maybe\"");
}

}  // namespace
}  // namespace herald::test
