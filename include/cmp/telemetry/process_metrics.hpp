#pragma once
// The standard `process_*` metrics, read from /proc/self. Samples are
// cached for a second: they change slowly and counting /proc/self/fd on every
// scrape would cost more than serving the scrape. Not thread-safe.

#include <chrono>
#include <cstdint>
#include <string>

namespace cmp::telemetry {

struct process_sample {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
  double start_time_seconds = 0;
};

// Reads the current values; fields it cannot read stay 0.
[[nodiscard]] process_sample read_process_sample();

class process_metrics {
 public:
  const process_sample& sample(std::chrono::steady_clock::time_point now);

 private:
  process_sample cached_;
  std::chrono::steady_clock::time_point read_at_{};
  bool valid_ = false;
};

}  // namespace cmp::telemetry
