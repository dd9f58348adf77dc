#pragma once
// Scripted misbehaviour of the simulated upstream. A fault applies to API
// requests that would otherwise have been answered 200 (authenticated, right
// organization, within budget), so a test can count exactly which of the
// daemon's polls it hits. Count faults are consumed in the order queued;
// timed faults (windows=K or duration=D) hit every such request until they
// expire and take precedence over the queue while active.
//
// Pure: time is passed in. Not thread-safe (one io_context thread owns it).

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cmp::mock {

enum class fault_kind {
  latency,       // answer normally after `delay`
  status,        // `status` code with a JSON error body (500, 502, 503, ...)
  rate_limited,  // 429 with Retry-After as configured
  unauthorized,  // 401
  forbidden,     // 403
  malformed,     // 200 with a body that is not Prometheus text
  truncated,     // Content-Length larger than what is sent, then close
  oversized,     // 200 with a body of `size` bytes (default 17 MiB)
  reset,         // read the request, then close with SO_LINGER 0 (RST)
  stall,         // read the request, never answer until the client leaves
  redirect,      // `status` (302) to `location`
};

enum class retry_after_format { seconds, http_date, none };

struct fault_spec {
  fault_kind kind = fault_kind::status;
  unsigned status = 500;
  unsigned count = 1;                      // requests hit (ignored when timed)
  unsigned windows = 0;                    // >0: until the end of the current wall window + K-1
  std::chrono::milliseconds duration{0};   // >0: for this long from when it is queued
  std::chrono::milliseconds delay{0};      // waited before the fault's answer
  unsigned retry_after = 2;                // seconds, for 429
  retry_after_format retry_format = retry_after_format::seconds;
  std::optional<bool> should_retry;        // sends `x-should-retry` when set
  std::string location = "/moved";         // for redirects
  std::size_t size = 17u << 20;            // bytes, for oversized

  // What the request log and stderr call it: "500", "429", "stall", ...
  std::string label() const;
};

using param_list = std::vector<std::pair<std::string, std::string>>;

// kind: latency|delay|status|malformed|truncated|oversized|reset|stall|
// redirect|rate-limit|unauthorized|forbidden or an HTTP code (429, 401, 403,
// 3xx -> redirect, other 1xx-5xx -> status). Throws std::invalid_argument.
fault_spec make_fault(std::string_view kind, const param_list& params);

// Command-line form: KIND[:COUNT][,key=value...], e.g. "500:3",
// "429:1,retry_after=7,retry_after_format=http-date", "latency:2,delay=3s".
fault_spec parse_fault_flag(std::string_view text);

class fault_plan {
 public:
  using wall_clock = std::chrono::system_clock;

  // `window` aligns windows=K faults to the wall-clock data windows.
  void add(fault_spec spec, wall_clock::time_point now, std::chrono::milliseconds window);
  void clear();
  // The fault for the next eligible request, consuming one count.
  std::optional<fault_spec> take(wall_clock::time_point now);
  // JSON array of what is still pending.
  std::string describe(wall_clock::time_point now);
  std::size_t pending(wall_clock::time_point now);

 private:
  struct timed_fault {
    fault_spec spec;
    wall_clock::time_point until;
  };
  void expire(wall_clock::time_point now);

  std::deque<fault_spec> queue_;  // count = remaining hits
  std::vector<timed_fault> timed_;
};

}  // namespace cmp::mock
