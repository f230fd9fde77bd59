#include "stats.hpp"

#include <time.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

namespace herald::bench {

double latency_stats::percentile_us(double q) {
  if (samples_.empty()) return 0;
  if (!sorted_) {
    std::sort(samples_.begin(), samples_.end());
    sorted_ = true;
  }
  auto idx = static_cast<std::size_t>(q * static_cast<double>(samples_.size() - 1) + 0.5);
  return static_cast<double>(samples_[std::min(idx, samples_.size() - 1)]) / 1000.0;
}

double latency_stats::max_us() { return percentile_us(1.0); }

namespace {
proc_sample sample_one(int pid);
}

std::vector<int> process_tree(int pid) {
  std::vector<std::pair<int, int>> parent_of;  // (pid, ppid), from one pass over /proc/N/stat
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const auto name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    std::istringstream in(line.substr(line.rfind(')') + 2));
    std::string state;
    int ppid = 0;
    in >> state >> ppid;
    parent_of.emplace_back(std::stoi(name), ppid);
  }
  std::vector<int> tree{pid};
  for (std::size_t i = 0; i < tree.size(); ++i)
    for (const auto& [child, parent] : parent_of)
      if (parent == tree[i]) tree.push_back(child);
  return tree;
}

proc_sample sample_process(int pid) {
  if (!pid) return sample_one(0);
  proc_sample s;
  for (int p : process_tree(pid)) {
    auto c = sample_one(p);
    s.cpu_seconds += c.cpu_seconds;
    s.rss_bytes += c.rss_bytes;
  }
  return s;
}

namespace {
proc_sample sample_one(int pid) {
  proc_sample s;
  std::string base = pid ? "/proc/" + std::to_string(pid) : "/proc/self";
  std::ifstream stat(base + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // Fields after the command name (which may hold spaces) start after the last ')'.
    std::istringstream in(line.substr(line.rfind(')') + 2));
    std::string f;
    unsigned long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> f; ++i) {
      if (i == 14) utime = std::stoul(f);
      if (i == 15) stime = std::stoul(f);
    }
    s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status(base + "/status");
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) s.rss_bytes = std::stoull(line.substr(6)) * 1024;
  return s;
}
}  // namespace

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace herald::bench
