#pragma once
// herald's configuration: one row per option (config/option_table.cpp), read from
// (highest first) the command line, HERALD_* environment variables and the --config
// file, onto each component's own options struct, whose member initialisers are the
// defaults. Errors name the setting.
#include <chrono>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/options.hpp"
#include "auth/authorizer.hpp"
#include "broker/memory/memory_broker_options.hpp"
#include "broker/redis/redis_broker_options.hpp"
#include "core/namespace_options.hpp"
#include "transport/options.hpp"
#include "util/log.hpp"

namespace herald::config {

struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct config {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;
  unsigned threads = 0;  // 0: one per core
  std::string broker = "memory";
  std::chrono::seconds sweep_interval{5};
  std::chrono::milliseconds drain_window{5000};  // graceful shutdown spreads reconnects over this
  core::namespace_table namespaces;
  transport::options transport;
  api::options api;
  auth::options auth;
  broker::memory_broker_options memory;
  broker::redis_broker_options redis;  // used when broker != "memory"
  util::log::level log_level = util::log::level::info;
  util::log::format log_format = util::log::format::text;
};

struct parse_result {
  std::optional<config> cfg;  // empty: nothing to run (help or version printed)
  std::string output;         // text to print (help, version)
};

/// Parses argv, the environment (`env`: "NAME=value" strings) and the config file.
/// Throws config_error naming the bad setting.
parse_result parse(int argc, const char* const* argv, const std::vector<std::string>& env);

/// As above, with the config file's contents read from `file` (any --config is ignored).
/// For tests and the config fuzzer (tests/fuzz/config.cpp).
parse_result parse(int argc, const char* const* argv, const std::vector<std::string>& env, std::istream& file);

/// Parses one namespace spec "NAME:key=value,key=value" on top of `defaults` (the keys:
/// namespace_keys() in config/option_table.cpp, listed by --help).
std::pair<std::string, core::namespace_options> parse_namespace(std::string_view spec,
                                                                core::namespace_options defaults);

}  // namespace herald::config
