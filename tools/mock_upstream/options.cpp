#include "options.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

#include "duration.hpp"
#include "key_file.hpp"

namespace cmp::mock {

namespace {

void parse_listen(std::string_view text, options& o) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    throw usage_error("--listen: expected HOST:PORT, got '" + std::string(text) + "'");
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) throw usage_error("--listen: empty host in '" + std::string(text) + "'");
  try {
    o.listen_port = static_cast<std::uint16_t>(parse_unsigned(text.substr(colon + 1), 65535));
  } catch (const std::invalid_argument& e) {
    throw usage_error(std::string("--listen: port: ") + e.what());
  }
  o.listen_host = host;
}

std::string read_key_file(const std::string& path) {
  auto key = read_key(path);
  if (!key) throw usage_error("--api-key-file: cannot read '" + path + "' or it is empty");
  return *key;
}

}  // namespace

std::string usage_text() {
  return R"(Usage: cerebras-mock-upstream [flags]

Simulated Cerebras Metrics API for the demo and the integration tests. Serves
  GET /api/v1/metrics/organizations/<org>   Prometheus text, Bearer auth, budget
  GET /mock/window/<w>                      the exact body of window w (no auth, no budget)
  GET /mock/expected                        JSON: current window index, budget, faults
  GET /mock/faults                          JSON: pending faults
  POST /mock/fault?kind=K[&count=N][&windows=K|&duration=D][&delay=D][&...]
  POST /mock/fault/clear                    drop every pending fault
  POST /mock/budget/clear                   forget counted requests
Runs until SIGTERM/SIGINT (exit 0). Exit 1: bad flags; exit 2: cannot bind.

Flags (--flag VALUE or --flag=VALUE):
  --listen HOST:PORT        listen address, [v6]:PORT accepted, port 0 = any free
                            port (default 127.0.0.1:9900)
  --port-file FILE          write the bound port (and a newline) to FILE once listening
  --tls-cert FILE           PEM certificate chain; with --tls-key serves HTTPS only,
  --tls-key FILE            TLS 1.2 minimum
  --org ID                  organization id served (default org_abc123); others -> 404
  --api-key KEY             the accepted Bearer key
  --api-key-file FILE       read the key from FILE (trailing newline stripped);
                            re-read when the file changes, so replacing it rotates
                            the key (only the new key is accepted from the next
                            request on; an unreadable or empty file keeps the last
                            key); without either flag $CEREBRAS_API_KEY is used,
                            else exit 1
  --window DUR              aggregation window (default 60s); at time t the API serves
                            window w = floor(t / DUR) - 1, the last complete one
  --endpoints N             number of endpoints (default 2; 500 give ~1.5 MB)
  --down-endpoints K        the last K endpoints report inference_endpoint_status -1
                            (default 0)
  --latency-label NAME      statistic (default) or percentile
  --rate-limit N            admitted requests per sliding --rate-window (default 6;
                            0 = unlimited); over budget -> 429 + Retry-After
  --rate-window DUR         sliding budget window (default 60s)
  --request-log FILE        append one JSON line per API request (flushed per line)
  --date-skew [-]DUR        send a Date header this far ahead (-: behind) of the mock's
                            clock, as an API whose clock is off (windows, budget and
                            Retry-After still follow the mock's own clock)
  --fault SPEC              queue a fault, repeatable, applied in order:
                            KIND[:COUNT][,key=value...] e.g. 500:3  stall:1
                            429:1,retry_after=7,retry_after_format=http-date
                            latency:2,delay=3s   503,windows=1
  --quiet                   no per-request lines on stderr
  --help                    this text

Fault kinds: latency (delay=D, default 2s), any HTTP code (500, 502, 503, ...;
  429, 401, 403 and 3xx get their own shape), status (code=N), malformed,
  truncated, oversized (size=BYTES, default 17 MiB), reset, stall, redirect
  (location=PATH, default /moved, code=302).
Fault parameters: count=N (default 1), windows=K (every request until the end
  of the current wall-clock window + K-1; beats the queue), duration=D (every
  request for D), delay=D (wait before answering), retry_after=S|none,
  retry_after_format=seconds|http-date|none, should_retry=true|false
  (x-should-retry header), location=PATH, size=BYTES, code=N.
Faults hit only requests that would otherwise get 200: authenticated, right
organization, within budget. Requests with bad auth or a wrong organization do
not count against the budget; 429-rejected requests do not either.
Durations: 500ms, 10s, 1m30s, 1h, or plain seconds (2.5).
)";
}

options parse_options(int argc, char** argv) {
  options o;
  bool key_given = false;
  std::string key_file;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      return o;
    }
    if (arg == "--quiet" || arg == "-q") {
      o.quiet = true;
      continue;
    }
    if (arg.substr(0, 2) != "--") throw usage_error("unexpected argument '" + std::string(arg) + "'");
    std::string name;
    std::string value;
    static constexpr std::string_view known[] = {
        "--listen",   "--port-file", "--tls-cert",       "--tls-key",       "--org",
        "--api-key",  "--api-key-file", "--window",      "--endpoints",     "--down-endpoints",
        "--latency-label", "--rate-limit", "--rate-window", "--request-log", "--fault",
        "--date-skew"};
    std::string_view flag_name = arg.substr(0, arg.find('='));
    if (std::find(std::begin(known), std::end(known), flag_name) == std::end(known)) {
      throw usage_error("unknown flag '" + std::string(flag_name) + "' (see --help)");
    }
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      name = arg;
      if (i + 1 >= argc) throw usage_error(name + ": missing value");
      value = argv[++i];
    }
    auto flag_error = [&](const std::exception& e) {
      return usage_error(name + ": " + e.what());
    };
    try {
      if (name == "--listen") parse_listen(value, o);
      else if (name == "--port-file") o.port_file = value;
      else if (name == "--tls-cert") o.tls_cert = value;
      else if (name == "--tls-key") o.tls_key = value;
      else if (name == "--org") {
        if (value.empty() || value.find_first_of("/?#\" \\") != std::string::npos)
          throw usage_error("--org: invalid organization id '" + value + "'");
        o.shape.org_id = value;
      } else if (name == "--api-key") {
        if (value.empty()) throw usage_error("--api-key: empty key");
        o.api_key = value;
        key_given = true;
      } else if (name == "--api-key-file") key_file = value;
      else if (name == "--window") {
        o.window = parse_duration(value);
        if (o.window.count() <= 0) throw usage_error("--window must be positive");
      } else if (name == "--endpoints") {
        o.shape.endpoints = parse_unsigned(value, 100'000);
      } else if (name == "--down-endpoints") {
        o.shape.down_endpoints = parse_unsigned(value, 100'000);
      } else if (name == "--latency-label") {
        if (value != "statistic" && value != "percentile")
          throw usage_error("--latency-label: statistic or percentile, got '" + value + "'");
        o.shape.latency_label = value;
      } else if (name == "--rate-limit") {
        o.rate_limit = parse_unsigned(value, 1'000'000);
      } else if (name == "--rate-window") {
        o.rate_window = parse_duration(value);
        if (o.rate_window.count() <= 0) throw usage_error("--rate-window must be positive");
      } else if (name == "--request-log") o.request_log = value;
      else if (name == "--fault") o.faults.push_back(parse_fault_flag(value));
      else if (name == "--date-skew") {
        const bool behind = value.starts_with('-');
        o.date_skew = parse_duration(behind || value.starts_with('+') ? value.substr(1) : value);
        if (behind) o.date_skew = -o.date_skew;
      }
      else throw usage_error("unknown flag '" + name + "' (see --help)");
    } catch (const usage_error&) {
      throw;
    } catch (const std::exception& e) {
      throw flag_error(e);
    }
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    throw usage_error("--tls-cert and --tls-key must be given together");
  }
  if (o.shape.down_endpoints > o.shape.endpoints) {
    throw usage_error("--down-endpoints cannot exceed --endpoints");
  }
  if (!key_file.empty()) {
    if (key_given) throw usage_error("give --api-key or --api-key-file, not both");
    o.api_key = read_key_file(key_file);
    o.api_key_file = key_file;
  } else if (!key_given) {
    const char* env = std::getenv("CEREBRAS_API_KEY");
    if (env == nullptr || *env == '\0') {
      throw usage_error("no API key: give --api-key, --api-key-file or set CEREBRAS_API_KEY");
    }
    o.api_key = env;
  }
  return o;
}

}  // namespace cmp::mock
