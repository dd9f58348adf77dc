#pragma once
// The Prometheus exposition data model shared by the parser, the writers and
// the snapshot. Plain values: no invariants beyond what the parser checks.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cmp::exposition {

enum class metric_type : std::uint8_t { untyped, counter, gauge, histogram, summary };

struct label {
  std::string name;
  std::string value;  // unescaped
  friend bool operator==(const label&, const label&) = default;
};

struct sample {
  std::string name;           // full sample name, e.g. `foo_bucket` in family `foo`
  std::vector<label> labels;  // input order, no duplicates
  double value = 0;
  std::optional<std::int64_t> timestamp_ms;
};

struct family {
  std::string name;
  metric_type type = metric_type::untyped;
  std::optional<std::string> help;  // unescaped
  std::vector<sample> samples;
};

using family_list = std::vector<family>;

}  // namespace cmp::exposition
