#pragma once
// The scenarios that live in files of their own (main.cpp dispatches to them): each adds
// its options to the tool's and runs from the parsed options; 0 when the run met its
// checks, 1 when not, 2 on bad options.
#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>

namespace herald::bench {

namespace po = boost::program_options;

/// --scenario stream: concurrent answers through POST /api/stream, followed by SSE and
/// WebSocket readers that drop and resume; stream_scenario.cpp.
void add_stream_options(po::options_description& d);
int run_stream(const po::variables_map& vm);

/// --scenario presence: a room whose members join and leave across two nodes on one
/// Redis, watched by an observer on each node; presence_scenario.cpp.
void add_presence_options(po::options_description& d);
int run_presence(const po::variables_map& vm);

}  // namespace herald::bench
