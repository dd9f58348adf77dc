#pragma once
// Command line of cerebras-mock-upstream. Parsing is separate from running so
// a bad flag is reported (exit 1) before anything is bound or opened.

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fault_plan.hpp"
#include "metrics_data.hpp"

namespace cmp::mock {

struct options {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 9900;    // 0: any free port, see port_file
  std::string port_file;               // written once bound
  std::string tls_cert;                // PEM chain; with tls_key: HTTPS only
  std::string tls_key;
  std::string api_key;                 // never printed
  std::string api_key_file;            // when set: re-read when it changes (key rotation)
  data_shape shape;                    // org, endpoints, latency label
  std::chrono::milliseconds window{60'000};
  std::size_t rate_limit = 6;          // 0: unlimited
  std::chrono::milliseconds rate_window{60'000};
  std::string request_log;
  std::vector<fault_spec> faults;      // queued at start, in order
  std::chrono::milliseconds date_skew{0};  // added to the Date header only (a skewed API clock)
  bool quiet = false;
  bool help = false;
};

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws usage_error with a one-line message.
options parse_options(int argc, char** argv);

std::string usage_text();

}  // namespace cmp::mock
