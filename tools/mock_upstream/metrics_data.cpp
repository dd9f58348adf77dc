#include "metrics_data.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <vector>

namespace cmp::mock {

namespace {

constexpr std::array<std::string_view, 8> base_names = {
    "llama-3.3-70b",
    "qwen-3-32b",
    "llama3.1-8b",
    "gpt-oss-120b",
    "qwen-3-235b-a22b-instruct-2507",
    "llama-4-scout-17b-16e-instruct",
    "qwen-3-coder-480b",
    "llama-4-maverick-17b-128e-instruct",
};

struct latency_family {
  std::string_view name;
  std::string_view help;
  std::uint64_t lo_ms;    // p50 lower bound
  std::uint64_t span_ms;  // p50 = lo + u mod span
};

constexpr std::array<latency_family, 4> latency_families = {{
    {"ttft_seconds", "Time to first token in seconds.", 100, 200},
    {"tpot_seconds", "Time per output token in seconds.", 5, 20},
    {"e2e_latency_seconds", "End-to-end request latency in seconds.", 500, 2000},
    {"queue_time_seconds", "Time spent queued before processing in seconds.", 1, 50},
}};

constexpr std::array<std::string_view, 5> statistics = {"avg", "p50", "p90", "p95", "p99"};

// Milliseconds of each statistic from p50: fixed ratios keep the percentiles
// ordered, which a reader of a dashboard would expect.
std::uint64_t statistic_ms(std::size_t stat, std::uint64_t p50) {
  switch (stat) {
    case 0: return p50 * 3 / 2;
    case 1: return p50;
    case 2: return p50 * 2;
    case 3: return p50 * 3;
    default: return p50 * 5;
  }
}

void family_header(std::string& out, std::string_view name, std::string_view help) {
  if (!out.empty()) out += '\n';  // the real API separates families by a blank line
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += " gauge\n";
}

void sample_line(std::string& out, std::string_view name, std::string_view endpoint,
                 std::string_view org, std::string_view extra_name, std::string_view extra_value,
                 double v) {
  out += name;
  out += "{endpoint=\"";
  out += endpoint;
  out += "\",organization_id=\"";
  out += org;
  out += '"';
  if (!extra_name.empty()) {
    out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += "} ";
  out += format_value(v);
  out += '\n';
}

struct endpoint_values {
  double status;
  std::uint64_t success, fail_429, fail_500, count, input_tokens, output_tokens;
  std::uint64_t cache_permille;
  std::array<std::uint64_t, 4> p50_ms;
};

endpoint_values compute(std::uint64_t w, std::size_t e, const data_shape& shape) {
  endpoint_values v{};
  v.status = (e + shape.down_endpoints >= shape.endpoints) ? -1.0 : 1.0;
  v.success = 100 + draw(w, e, 0);
  v.fail_429 = draw(w, e, 1) % 5;
  v.fail_500 = draw(w, e, 2) % 3;
  v.count = v.success + v.fail_429 + v.fail_500;
  v.input_tokens = v.count * (200 + draw(w, e, 3));
  v.output_tokens = v.count * (50 + draw(w, e, 4) % 200);
  v.cache_permille = draw(w, e, 5);
  for (std::size_t f = 0; f < latency_families.size(); ++f) {
    v.p50_ms[f] = latency_families[f].lo_ms + draw(w, e, 10 + f) % latency_families[f].span_ms;
  }
  return v;
}

}  // namespace

std::string endpoint_name(std::size_t e) {
  if (e < base_names.size()) return std::string(base_names[e]);
  return "model-" + std::to_string(e) + "-" + std::string(base_names[e % base_names.size()]);
}

std::uint64_t draw(std::uint64_t window, std::uint64_t e, std::uint64_t k) {
  constexpr std::uint64_t m = 1000003;
  return ((window % m) * 7919 + (e % m) * 104729 + k * 1299709) % m % 1000;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
  std::string s(buf.data(), ec == std::errc{} ? end : buf.data());
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

std::string render_window(std::uint64_t w, const data_shape& shape) {
  std::vector<endpoint_values> values;
  std::vector<std::string> names;
  values.reserve(shape.endpoints);
  names.reserve(shape.endpoints);
  for (std::size_t e = 0; e < shape.endpoints; ++e) {
    values.push_back(compute(w, e, shape));
    names.push_back(endpoint_name(e));
  }
  std::string out;
  out.reserve(shape.endpoints * 2600 + 2048);
  const std::string_view org = shape.org_id;
  auto simple = [&](std::string_view name, std::string_view help, auto get) {
    family_header(out, name, help);
    for (std::size_t e = 0; e < values.size(); ++e) {
      sample_line(out, name, names[e], org, {}, {}, get(values[e]));
    }
  };
  simple("inference_endpoint_status", "Whether the inference endpoint is up (1) or down (-1).",
         [](const endpoint_values& v) { return v.status; });
  simple("requests_count_total", "Requests received in the window.",
         [](const endpoint_values& v) { return double(v.count); });
  simple("requests_success_total", "Requests that completed successfully in the window.",
         [](const endpoint_values& v) { return double(v.success); });
  family_header(out, "requests_failure_total", "Requests that failed in the window, by HTTP code.");
  for (std::size_t e = 0; e < values.size(); ++e) {
    sample_line(out, "requests_failure_total", names[e], org, "http_code", "429",
                double(values[e].fail_429));
    sample_line(out, "requests_failure_total", names[e], org, "http_code", "500",
                double(values[e].fail_500));
  }
  simple("input_tokens_total", "Input tokens processed in the window.",
         [](const endpoint_values& v) { return double(v.input_tokens); });
  simple("output_tokens_total", "Output tokens generated in the window.",
         [](const endpoint_values& v) { return double(v.output_tokens); });
  simple("cache_rate", "Fraction of input tokens served from the prompt cache.",
         [](const endpoint_values& v) { return double(v.cache_permille) / 1000.0; });
  for (std::size_t f = 0; f < latency_families.size(); ++f) {
    family_header(out, latency_families[f].name, latency_families[f].help);
    for (std::size_t e = 0; e < values.size(); ++e) {
      for (std::size_t s = 0; s < statistics.size(); ++s) {
        sample_line(out, latency_families[f].name, names[e], org, shape.latency_label,
                    statistics[s], double(statistic_ms(s, values[e].p50_ms[f])) / 1000.0);
      }
    }
  }
  return out;
}

}  // namespace cmp::mock
