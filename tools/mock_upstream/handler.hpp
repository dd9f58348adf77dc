#pragma once
// Decides what the simulated upstream answers: a pure function of the request,
// the time passed in and the mock's state (budget, fault queue). The I/O layer
// (server.cpp) carries the reply out, including the faults that are not an
// HTTP answer at all (reset, stall, truncation).
//
// Not thread-safe: owned by the single io_context thread.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fault_plan.hpp"
#include "options.hpp"
#include "request_budget.hpp"

namespace cmp::mock {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

struct clock_reading {
  std::chrono::system_clock::time_point wall;  // windows, logs, HTTP dates
  std::chrono::steady_clock::time_point mono;  // the budget
};

struct reply {
  enum class action { respond, truncate, reset, stall };
  action act = action::respond;
  std::chrono::milliseconds delay{0};  // before acting
  response res;
  std::size_t truncate_at = 0;  // body bytes sent before closing (truncate)
  std::string fault = "none";   // label for logs
  bool api = false;             // an API request, as opposed to /mock/*
};

// Appends JSON lines; each line is flushed so a test can read it at any time.
class request_log {
 public:
  explicit request_log(const std::string& path);  // throws std::runtime_error
  ~request_log();
  request_log(const request_log&) = delete;
  request_log& operator=(const request_log&) = delete;
  void write(const std::string& line);

 private:
  std::FILE* file_ = nullptr;
};

class handler {
 public:
  explicit handler(const options& opts);  // throws if the request log cannot be opened

  reply handle(const request& req, const clock_reading& now);

  // Replaces the accepted Bearer key (a rotated --api-key-file).
  void set_api_key(std::string key) { api_key_ = std::move(key); }

  // The window the API serves at `wall`: floor(t / W) - 1.
  std::int64_t served_window(std::chrono::system_clock::time_point wall) const;

 private:
  struct cached_body {
    std::uint64_t key = 0;
    std::string plain;
    std::string gzipped;  // filled on first gzip request
  };

  reply api_request(const request& req, const clock_reading& now);
  reply control_request(const request& req, const clock_reading& now);
  void apply_fault(reply& r, const fault_spec& f, std::int64_t window, bool gzip,
                   const clock_reading& now);
  void set_body(reply& r, cached_body& body, bool gzip);
  cached_body& window_body(std::uint64_t w);
  cached_body& oversized_body(std::size_t size);

  const options& opts_;
  std::string api_key_;  // starts as opts_.api_key
  request_budget budget_;
  fault_plan faults_;
  std::unique_ptr<request_log> log_;
  std::vector<cached_body> window_cache_;  // a few recent windows
  std::unique_ptr<cached_body> oversized_cache_;
};

}  // namespace cmp::mock
