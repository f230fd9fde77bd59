#pragma once
// The option table behind config.cpp (included by it alone): one row per option with
// its name, help, default and how it is applied and checked. Each default is read from
// a default-constructed options struct, so the struct's member initialiser is its only
// source; --help, docs/config.md and config/herald.conf.example are checked against
// --help by tests/integration/config-docs.test.mjs.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>

#include "config/config.hpp"

namespace herald::config {

/// What the rows write into: the config, and the default namespace's options (from
/// which the namespace table is built once every row has been applied).
struct settings {
  config c;
  core::namespace_options ns;
};

struct option_row {
  const char* name;  // as Boost.Program_options takes it ("help,h")
  const char* help;
  // The value's semantic with its default; null: a bare flag (--help, --version).
  std::function<boost::program_options::value_semantic*()> value;
  // Reads the option from the map into `settings`, checking it alone; null: applied by
  // hand in config.cpp (--config, --namespace, the Redis options: checks across options).
  std::function<void(const boost::program_options::variables_map&, settings&)> apply;
};

/// Every option, in --help order.
const std::vector<option_row>& option_rows();

struct namespace_key {
  const char* name;         // history_size
  const char* placeholder;  // N, S, MS, BOOL: for --namespace's help
  // Parses `value` into the options; errors name `setting` (followed by the key).
  std::function<void(std::string_view value, const std::string& setting, core::namespace_options&)> apply;
};

/// Every --namespace key, in help order.
const std::vector<namespace_key>& namespace_keys();

/// "invalid SETTING: WHY" unless `ok`.
void require(bool ok, const std::string& setting, const std::string& why);
bool parse_bool(std::string_view v, const std::string& setting);
unsigned long long parse_number(std::string_view v, const std::string& setting);

}  // namespace herald::config
