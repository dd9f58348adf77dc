#include "cmp/server/negotiation.hpp"

#include <charconv>
#include <optional>

namespace cmp::server {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

struct media_range {
  std::string_view type;
  std::string_view version;  // the `version` parameter, if any
  double q = 1;
};

// Calls f(range) for each comma-separated element of an Accept-style header.
template <typename F>
void for_each_range(std::string_view header, F&& f) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto element = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    if (element.empty()) continue;
    media_range r;
    auto semi = element.find(';');
    r.type = trim(element.substr(0, semi));
    while (semi != std::string_view::npos) {
      element = element.substr(semi + 1);
      semi = element.find(';');
      auto param = trim(element.substr(0, semi));
      auto eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      auto key = trim(param.substr(0, eq));
      auto value = trim(param.substr(eq + 1));
      if (iequals(key, "q")) {
        double q = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), q);
        r.q = (ec == std::errc{} && p == value.data() + value.size() && q >= 0 && q <= 1) ? q : 0;
      } else if (iequals(key, "version")) {
        // A quoted-string is allowed for any parameter (RFC 9110 5.6.6).
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
          value = value.substr(1, value.size() - 2);
        r.version = value;
      }
    }
    f(r);
  }
}

}  // namespace

exposition_format choose_format(std::string_view accept) noexcept {
  double om = -1, text = -1, wildcard = -1;
  for_each_range(accept, [&](const media_range& r) {
    if (iequals(r.type, "application/openmetrics-text")) {
      if (r.version.empty() || r.version == "1.0.0" || r.version == "0.0.1") om = std::max(om, r.q);
    } else if (iequals(r.type, "text/plain")) {
      text = std::max(text, r.q);
    } else if (r.type == "*/*" || iequals(r.type, "text/*")) {
      wildcard = std::max(wildcard, r.q);
    }
  });
  if (text < 0) text = wildcard;
  return (om > 0 && om >= text) ? exposition_format::openmetrics : exposition_format::text;
}

bool accepts_gzip(std::string_view accept_encoding) noexcept {
  std::optional<double> gzip, any;
  for_each_range(accept_encoding, [&](const media_range& r) {
    if (iequals(r.type, "gzip") || iequals(r.type, "x-gzip")) gzip = r.q;
    if (r.type == "*") any = r.q;
  });
  if (gzip) return *gzip > 0;
  return any && *any > 0;
}

}  // namespace cmp::server
