#pragma once
// Latency samples and their percentiles; process CPU and RSS from /proc.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace herald::bench {

class latency_stats {
 public:
  void add(std::int64_t ns) { samples_.push_back(ns); }
  std::size_t count() const { return samples_.size(); }
  /// The q-quantile (0..1) in microseconds; sorts on first use.
  double percentile_us(double q);
  double max_us();
  const std::vector<std::int64_t>& samples() const { return samples_; }
  void merge(const std::vector<std::int64_t>& more) {
    samples_.insert(samples_.end(), more.begin(), more.end());
    sorted_ = false;
  }

 private:
  std::vector<std::int64_t> samples_;
  bool sorted_ = false;
};

struct proc_sample {
  double cpu_seconds = 0;  // user + system
  std::uint64_t rss_bytes = 0;
};

/// CPU time and resident memory of process `pid` (0: this process alone) and all its
/// descendants (a peer's worker processes), summed.
proc_sample sample_process(int pid);

/// `pid` and all its descendants, parents before children.
std::vector<int> process_tree(int pid);

/// Monotonic nanoseconds (the one clock of publisher and subscribers: same process).
std::int64_t now_ns();

}  // namespace herald::bench
