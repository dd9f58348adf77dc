#include "fault_plan.hpp"

#include <algorithm>
#include <stdexcept>

#include "duration.hpp"

namespace cmp::mock {

namespace {

bool parse_bool(std::string_view key, std::string_view v) {
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "no") return false;
  throw std::invalid_argument(std::string(key) + ": expected true or false, got '" +
                              std::string(v) + "'");
}

std::string_view kind_name(fault_kind k) {
  switch (k) {
    case fault_kind::latency: return "latency";
    case fault_kind::status: return "status";
    case fault_kind::rate_limited: return "429";
    case fault_kind::unauthorized: return "401";
    case fault_kind::forbidden: return "403";
    case fault_kind::malformed: return "malformed";
    case fault_kind::truncated: return "truncated";
    case fault_kind::oversized: return "oversized";
    case fault_kind::reset: return "reset";
    case fault_kind::stall: return "stall";
    case fault_kind::redirect: return "redirect";
  }
  return "unknown";
}

void set_code_kind(fault_spec& s, unsigned code) {
  s.status = code;
  if (code == 429) s.kind = fault_kind::rate_limited;
  else if (code == 401) s.kind = fault_kind::unauthorized;
  else if (code == 403) s.kind = fault_kind::forbidden;
  else if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308)
    s.kind = fault_kind::redirect;
  else s.kind = fault_kind::status;
}

}  // namespace

std::string fault_spec::label() const {
  if (kind == fault_kind::status) return std::to_string(status);
  return std::string(kind_name(kind));
}

fault_spec make_fault(std::string_view kind, const param_list& params) {
  fault_spec s;
  bool delay_given = false;
  if (kind == "latency" || kind == "delay") s.kind = fault_kind::latency;
  else if (kind == "status") s.kind = fault_kind::status;
  else if (kind == "rate-limit" || kind == "rate_limit" || kind == "ratelimit")
    set_code_kind(s, 429);
  else if (kind == "unauthorized") set_code_kind(s, 401);
  else if (kind == "forbidden") set_code_kind(s, 403);
  else if (kind == "malformed") s.kind = fault_kind::malformed;
  else if (kind == "truncated") s.kind = fault_kind::truncated;
  else if (kind == "oversized") s.kind = fault_kind::oversized;
  else if (kind == "reset") s.kind = fault_kind::reset;
  else if (kind == "stall") s.kind = fault_kind::stall;
  else if (kind == "redirect") { s.kind = fault_kind::redirect; s.status = 302; }
  else if (!kind.empty() && kind.find_first_not_of("0123456789") == std::string_view::npos) {
    unsigned code = 0;
    try {
      code = static_cast<unsigned>(parse_unsigned(kind, 599));
    } catch (const std::invalid_argument&) {
    }
    if (code < 100 || code == 200) {
      throw std::invalid_argument("fault kind '" + std::string(kind) +
                                  "': HTTP code must be 100..599 and not 200");
    }
    set_code_kind(s, code);
  } else {
    throw std::invalid_argument(
        "unknown fault kind '" + std::string(kind) +
        "' (latency, <http code>, status, malformed, truncated, oversized, reset, stall, "
        "redirect)");
  }
  for (const auto& [key, value] : params) {
    if (key == "count") {
      s.count = static_cast<unsigned>(parse_unsigned(value, 1'000'000));
      if (s.count == 0) throw std::invalid_argument("count must be at least 1");
    } else if (key == "windows") {
      s.windows = static_cast<unsigned>(parse_unsigned(value, 1'000'000));
    } else if (key == "duration") {
      s.duration = parse_duration(value);
    } else if (key == "delay") {
      s.delay = parse_duration(value);
      delay_given = true;
    } else if (key == "retry_after") {
      if (value == "none") s.retry_format = retry_after_format::none;
      else s.retry_after = static_cast<unsigned>(parse_unsigned(value, 100'000'000));
    } else if (key == "retry_after_format") {
      if (value == "seconds") s.retry_format = retry_after_format::seconds;
      else if (value == "http-date" || value == "date") s.retry_format = retry_after_format::http_date;
      else if (value == "none") s.retry_format = retry_after_format::none;
      else throw std::invalid_argument("retry_after_format: seconds, http-date or none");
    } else if (key == "should_retry") {
      s.should_retry = parse_bool(key, value);
    } else if (key == "location") {
      if (value.empty() || value.find_first_of("\r\n") != std::string::npos)
        throw std::invalid_argument("location must be a non-empty single line");
      s.location = value;
    } else if (key == "size") {
      s.size = static_cast<std::size_t>(parse_unsigned(value, 1ull << 31));
    } else if (key == "code") {
      unsigned code = static_cast<unsigned>(parse_unsigned(value, 599));
      if (code < 100) throw std::invalid_argument("code must be 100..599");
      if (s.kind == fault_kind::status || s.kind == fault_kind::redirect) s.status = code;
      else throw std::invalid_argument("code= applies to kind status or redirect");
    } else if (key == "kind") {
      // The control endpoint passes kind among the parameters.
    } else {
      throw std::invalid_argument("unknown fault parameter '" + key + "'");
    }
  }
  if (s.kind == fault_kind::latency && !delay_given) s.delay = std::chrono::seconds(2);
  return s;
}

fault_spec parse_fault_flag(std::string_view text) {
  param_list params;
  std::string_view head = text.substr(0, text.find(','));
  std::string_view rest = head.size() < text.size() ? text.substr(head.size() + 1) : "";
  std::string_view kind = head.substr(0, head.find(':'));
  if (kind.size() < head.size()) params.emplace_back("count", head.substr(kind.size() + 1));
  while (!rest.empty()) {
    std::string_view item = rest.substr(0, rest.find(','));
    rest = item.size() < rest.size() ? rest.substr(item.size() + 1) : "";
    auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      throw std::invalid_argument("fault parameter '" + std::string(item) + "' needs key=value");
    }
    params.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return make_fault(kind, params);
}

void fault_plan::add(fault_spec spec, wall_clock::time_point now,
                     std::chrono::milliseconds window) {
  if (spec.windows > 0) {
    auto since_epoch = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
    auto window_start = since_epoch - since_epoch % window;
    auto until = wall_clock::time_point(std::chrono::duration_cast<wall_clock::duration>(
        window_start + window * spec.windows));
    timed_.push_back({std::move(spec), until});
  } else if (spec.duration.count() > 0) {
    auto until = now + spec.duration;
    timed_.push_back({std::move(spec), until});
  } else {
    queue_.push_back(std::move(spec));
  }
}

void fault_plan::clear() {
  queue_.clear();
  timed_.clear();
}

void fault_plan::expire(wall_clock::time_point now) {
  std::erase_if(timed_, [&](const timed_fault& t) { return t.until <= now; });
}

std::optional<fault_spec> fault_plan::take(wall_clock::time_point now) {
  expire(now);
  if (!timed_.empty()) return timed_.front().spec;
  if (queue_.empty()) return std::nullopt;
  fault_spec s = queue_.front();
  if (--queue_.front().count == 0) queue_.pop_front();
  s.count = 1;
  return s;
}

std::size_t fault_plan::pending(wall_clock::time_point now) {
  expire(now);
  std::size_t n = timed_.size();
  for (const auto& f : queue_) n += f.count;
  return n;
}

std::string fault_plan::describe(wall_clock::time_point now) {
  expire(now);
  auto unix_s = [](wall_clock::time_point t) {
    return std::to_string(
        std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
  };
  std::string out = "[";
  for (const auto& t : timed_) {
    if (out.size() > 1) out += ',';
    out += "{\"kind\":\"" + t.spec.label() + "\",\"until\":" + unix_s(t.until) + "}";
  }
  for (const auto& f : queue_) {
    if (out.size() > 1) out += ',';
    out += "{\"kind\":\"" + f.label() + "\",\"count\":" + std::to_string(f.count) + "}";
  }
  out += ']';
  return out;
}

}  // namespace cmp::mock
