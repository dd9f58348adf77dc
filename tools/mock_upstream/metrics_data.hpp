#pragma once
// Synthetic per-window metrics of the simulated Cerebras Metrics API.
// Every value is a pure function of (window, endpoint index, family,
// statistic) so that tests can recompute what any window must contain; the
// formula is written out in README.md beside this file.
//
// Thread-safety: free functions without shared state.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cmp::mock {

struct data_shape {
  std::string org_id = "org_abc123";
  std::size_t endpoints = 2;
  std::size_t down_endpoints = 0;          // the last K endpoints report status -1
  std::string latency_label = "statistic";  // or "percentile"
};

// Deterministic endpoint name: the first eight are real Cerebras model names,
// later ones are "model-<e>-<base name of e mod 8>".
std::string endpoint_name(std::size_t e);

// The 0..999 pseudo-random draw u(w, e, k) the formula is built from.
std::uint64_t draw(std::uint64_t window, std::uint64_t e, std::uint64_t k);

// A float written the way the real API writes it: shortest round-trip fixed
// notation, always with a decimal point ("1.0", "0.123", "-1.0").
std::string format_value(double v);

// The full Prometheus text body for window `w`.
std::string render_window(std::uint64_t w, const data_shape& shape);

}  // namespace cmp::mock
