#pragma once
// What every scenario of herald-bench shares: the processes it starts (herald, peers,
// Redis), the stop signal, and the result record (one JSON line per run).
#include <sys/types.h>

#include <boost/program_options/variables_map.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

namespace herald::bench {

/// A process this tool started: killed with its descendants (by PID) when destroyed.
struct server_process {
  pid_t pid = -1;
  int port = 0;
  int publish_port = 0;  // Pushpin: its HTTP publish endpoint
  std::string tmpdir;    // a peer's generated configuration, removed with it
  server_process() = default;
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;
  ~server_process();
};

/// A free loopback port, drawn by the kernel.
int free_port();
/// Whether 127.0.0.1:port accepts a connection within about 6 s.
bool wait_listening(int port);
/// Runs argv in a process group of its own (its workers are stopped with it), output to `log`.
pid_t spawn(std::vector<std::string> argv, const std::string& log = {});
/// Starts `binary --listen 127.0.0.1:0 args...` and reads the port it reports.
void start_server(server_process& s, const std::string& binary, const std::vector<std::string>& args);

/// Set by SIGTERM/SIGINT (e.g. from `timeout`): the loops throw, so that the servers this
/// process started are stopped by their destructors.
extern volatile std::sig_atomic_t g_stop;
extern "C" void on_stop_signal(int);

/// One result as a JSON object, keys in insertion order.
struct json_record {
  std::string body;
  void key(const char* k) { body += (body.empty() ? "{\"" : ",\"") + std::string(k) + "\":"; }
  void str(const char* k, const std::string& v) {
    key(k);
    body += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') body += '\\';
      if (static_cast<unsigned char>(c) >= 0x20) body += c;
    }
    body += '"';
  }
  void num(const char* k, double v) {
    key(k);
    char b[64];
    std::snprintf(b, sizeof b, "%.6g", std::isfinite(v) ? v : 0.0);
    body += b;
  }
  void boolean(const char* k, bool v) {
    key(k);
    body += v ? "true" : "false";
  }
};

/// Appends `r` as one line to the file of --json, when given.
void append_json(const boost::program_options::variables_map& vm, const json_record& r);
std::string utc_now();
/// The machine's 1-minute load average (/proc/loadavg): other work beside the run.
double load_average();

}  // namespace herald::bench
