#pragma once
// Synthetic bodies shaped like the Cerebras Metrics API's: every family typed
// gauge (counters included, named `*_total`), `1.0`-style floats, labels
// `endpoint` and `organization_id`, latency families split by a `statistic`
// label, a blank line between families. Size scales with the number of
// endpoints (~2.7 KB each). Deterministic. Shared by the benchmarks and the
// exposition tests.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace cmp::bench {

namespace payload_detail {

// Fixed-seed LCG: the same body every run, without <random>'s
// implementation-defined distributions.
struct lcg {
  std::uint64_t state = 0x2545F4914F6CDD1DULL;
  std::uint64_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  }
};

inline void append_value(std::string& out, double v, bool integral) {
  char buf[48];
  // The API writes integers as `123.0` and fractions with few digits.
  const int n = integral ? std::snprintf(buf, sizeof buf, "%.1f", v)
                         : std::snprintf(buf, sizeof buf, "%.6g", v);
  out.append(buf, static_cast<std::size_t>(n));
}

}  // namespace payload_detail

inline std::string cerebras_payload(std::size_t endpoints,
                                    std::string_view latency_label = "statistic") {
  using payload_detail::append_value;
  payload_detail::lcg rng;
  static constexpr const char* models[] = {"llama-3.3-70b", "llama3.1-8b", "qwen-3-32b",
                                           "gpt-oss-120b", "llama-4-scout-17b-16e-instruct"};
  const auto endpoint = [&](std::size_t i) {
    std::string e = models[i % 5];
    if (i >= 5) e += "-ft" + std::to_string(i / 5);
    return e;
  };
  const std::string org = "org_4fq9x2kz8m7p1c3v";
  std::string out;
  out.reserve(endpoints * 2800 + 1024);

  struct family_spec {
    const char* name;
    const char* help;
    int kind;  // 0 plain integer, 1 fraction, 2 per http_code, 3 per statistic, 4 status
  };
  static constexpr family_spec families[] = {
      {"inference_endpoint_status", "Whether the endpoint is serving (1) or not (0).", 4},
      {"requests_count_total", "Requests received in the window.", 0},
      {"requests_success_total", "Requests answered successfully in the window.", 0},
      {"requests_failure_total", "Requests that failed in the window, by HTTP status.", 2},
      {"input_tokens_total", "Prompt tokens processed in the window.", 0},
      {"output_tokens_total", "Completion tokens generated in the window.", 0},
      {"cache_rate", "Fraction of prompt tokens served from the prompt cache.", 1},
      {"ttft_seconds", "Time to first token.", 3},
      {"tpot_seconds", "Time per output token.", 3},
      {"e2e_latency_seconds", "End-to-end request latency.", 3},
      {"queue_time_seconds", "Time spent queued before processing.", 3},
  };
  static constexpr const char* codes[] = {"400", "429", "500", "503"};
  static constexpr const char* statistics[] = {"avg", "p50", "p90", "p95", "p99"};

  bool first = true;
  for (const family_spec& f : families) {
    if (!first) out += '\n';
    first = false;
    out.append("# HELP ").append(f.name).append(" ").append(f.help).append("\n");
    out.append("# TYPE ").append(f.name).append(" gauge\n");
    for (std::size_t e = 0; e < endpoints; ++e) {
      const std::string ep = endpoint(e);
      const auto line = [&](std::string_view extra_name, std::string_view extra_value, double v,
                            bool integral) {
        out.append(f.name).append("{endpoint=\"").append(ep).append("\",organization_id=\"");
        out.append(org).append("\"");
        if (!extra_name.empty()) {
          out.append(",").append(extra_name).append("=\"").append(extra_value).append("\"");
        }
        out.append("} ");
        append_value(out, v, integral);
        out += '\n';
      };
      switch (f.kind) {
        case 0:
          line({}, {}, static_cast<double>(rng.next() % 5'000'000), true);
          break;
        case 1:
          line({}, {}, static_cast<double>(rng.next() % 10'000) / 10'000.0, false);
          break;
        case 2:
          for (const char* c : codes) line("http_code", c, static_cast<double>(rng.next() % 50), true);
          break;
        case 3:
          for (const char* s : statistics) {
            line(latency_label, s, static_cast<double>(rng.next() % 5'000'000) / 1e6, false);
          }
          break;
        default:
          line({}, {}, 1.0, true);
          break;
      }
    }
  }
  return out;
}

}  // namespace cmp::bench
