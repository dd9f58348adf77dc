#include "cmp/config/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <boost/url/ipv4_address.hpp>
#include <boost/url/ipv6_address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "upstream_reader.hpp"

namespace cmp::config {

namespace {

namespace urls = boost::urls;
using detail::child_key;
using detail::index_key;
using detail::problem_sink;
using detail::quote;

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

bool is_hostname(std::string_view s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
  });
}

// Returns the reason `text` is not a listen address, or the parsed address.
std::string parse_listen(std::string_view text, bool allow_port_zero, listen_address* out) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return "has an unclosed [ (use [v6]:port)";
    host = text.substr(1, close - 1);
    if (!urls::parse_ipv6_address(host)) {
      return fmt::format("{} is not an IPv6 address", quote(host));
    }
    const auto rest = text.substr(close + 1);
    if (!rest.starts_with(':')) return "needs :port after the ] (use [v6]:port)";
    port = rest.substr(1);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return "is not host:port or [v6]:port (the port is missing)";
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return "IPv6 addresses need brackets: [v6]:port";
    }
    // An empty host means every interface, as with Go's `:9100`.
    if (!host.empty() && !is_hostname(host)) {
      return fmt::format("{} is not a host name or IPv4 address", quote(host));
    }
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size()) {
    return fmt::format("port {} is not a number", quote(port));
  }
  if (value > 65535 || (value == 0 && !allow_port_zero)) {
    return fmt::format("port {} is out of range ({}-65535)", value, allow_port_zero ? 0 : 1);
  }
  if (out != nullptr) {
    out->host = std::string(host);
    out->port = static_cast<std::uint16_t>(value);
  }
  return {};
}

bool has_password(const std::string& url) {
  const auto r = urls::parse_uri(url);
  return r && r->has_password();
}

// Shown in the summary: a proxy's password is not the API key, but it is a
// credential all the same.
std::string redact_userinfo(const std::string& text) {
  const auto r = urls::parse_uri(text);
  if (!r || !r->has_userinfo()) return text;
  return fmt::format("{}://<redacted>@{}{}", r->scheme(),
                     std::string_view(r->encoded_host_and_port()),
                     std::string_view(r->encoded_resource()));
}

// The keys of the file's top level and of `log`; an upstream's are its
// reader's table (upstream.cpp).
constexpr std::string_view top_level[] = {"listen", "web_config_file", "state_dir", "log", "upstreams"};
constexpr std::string_view log_keys[] = {"level", "format"};

template <typename T>
void assign(std::optional<T> v, T& out) {
  if (v) out = std::move(*v);
}

config parse_into(std::string_view yaml, problem_sink& sink) {
  config c;
  c.source = sink.source();
  const auto doc = detail::parse_document(yaml, sink);
  if (!doc) return c;
  try {
    const auto fields = detail::read_fields(*doc, "", sink, top_level, detail::secret_hints);
    if (!fields) return c;
    const auto field = [&](std::string_view name) -> const YAML::Node* {
      const auto it = fields->find(std::string(name));
      return it == fields->end() ? nullptr : &it->second;
    };

    if (const auto* n = field("listen")) {
      if (auto v = detail::read_string(*n, "listen", sink)) {
        if (auto reason = parse_listen(*v, false, nullptr); !reason.empty()) {
          sink.add("listen", fmt::format("{} {}", quote(*v), reason));
        } else {
          c.listen = std::move(*v);
        }
      }
    }
    if (const auto* n = field("web_config_file")) {
      assign(detail::read_string(*n, "web_config_file", sink), c.web_config_file);
    }
    if (const auto* n = field("state_dir")) {
      if (auto v = detail::read_string(*n, "state_dir", sink)) {
        if (v->empty()) {
          sink.add("state_dir", "must not be empty (the budget ledger is kept there)");
        } else {
          c.state_dir = std::move(*v);
        }
      }
    }
    if (const auto* n = field("log")) {
      if (const auto lf = detail::read_fields(*n, "log", sink, log_keys)) {
        if (const auto it = lf->find("level"); it != lf->end()) {
          if (auto v = detail::read_string(it->second, "log.level", sink)) {
            if (const auto l = parse_log_level(*v)) {
              c.log.level = *l;
            } else {
              sink.add("log.level",
                       fmt::format("{} is not one of debug, info, warn, error", quote(*v)));
            }
          }
        }
        if (const auto it = lf->find("format"); it != lf->end()) {
          if (auto v = detail::read_string(it->second, "log.format", sink)) {
            if (const auto f = parse_log_format(*v)) {
              c.log.format = *f;
            } else {
              sink.add("log.format", fmt::format("{} is not one of logfmt, json", quote(*v)));
            }
          }
        }
      }
    }

    const YAML::Node* ups = field("upstreams");
    if (ups == nullptr || ups->IsNull() || (ups->IsSequence() && ups->size() == 0)) {
      sink.add("upstreams", "at least one upstream is required");
    } else if (!ups->IsSequence()) {
      sink.add("upstreams", fmt::format("must be a list of upstreams (`- name: ...`), not {}",
                                        detail::node_kind(*ups)));
    } else {
      std::map<std::string, std::size_t> names;
      for (std::size_t i = 0; i < ups->size(); ++i) {
        const std::string key = index_key("upstreams", i);
        std::set<std::string> unreadable;
        upstream u = detail::read_upstream((*ups)[i], key, sink, unreadable);
        for (auto& p : validate(u, unreadable)) {
          const std::string path = fmt::format("{}.{}", key, p.key);
          if (p.warning) {
            c.warnings.push_back(fmt::format("{}: {}: {}", sink.source(), path, p.reason));
          } else {
            sink.add(path, p.reason);
          }
        }
        if (const auto [it, fresh] = names.emplace(u.name, i); !fresh) {
          sink.add(child_key(key, "name"),
                   fmt::format("{} is already used by upstreams[{}]; names must be unique",
                               quote(u.name), it->second));
        }
        c.upstreams.push_back(std::move(u));
      }
    }
  } catch (const YAML::Exception& e) {
    // The reader checks node types before use, so this is a bug in it; still,
    // the caller is promised config_error and nothing else.
    sink.add_file(fmt::format("YAML error: {}", e.what()));
  }
  return c;
}

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty() || base.empty()) return p;
  const std::filesystem::path path(p);
  return path.is_absolute() ? path : base / path;
}

std::string mode_string(mode_t mode) { return fmt::format("{:04o}", mode & 07777); }

}  // namespace

std::uint64_t max_requests_per_minute(const rate_limit& limit) {
  if (limit.window.count() <= 0) return limit.requests;
  const std::int64_t minute = 60'000;
  const std::int64_t w = limit.window.count();
  const std::int64_t fits = w >= minute ? 1 : (minute + w - 1) / w;
  return static_cast<std::uint64_t>(limit.requests) * static_cast<std::uint64_t>(fits);
}

std::vector<std::string> accepted_keys() {
  std::vector<std::string> keys;
  for (const auto k : top_level) {
    if (k == "upstreams") {
      for (auto& u : detail::upstream_keys()) keys.push_back("upstreams[]." + u);
    } else if (k == "log") {
      for (const auto l : log_keys) keys.push_back(fmt::format("log.{}", l));
    } else {
      keys.emplace_back(k);
    }
  }
  return keys;
}

config_error::config_error(std::vector<std::string> problems)
    : std::runtime_error(join_lines(problems)), problems_(std::move(problems)) {}

config parse_config(std::string_view yaml, std::string_view source) {
  problem_sink sink(source);
  config c = parse_into(yaml, sink);
  if (!sink.empty()) throw config_error(sink.take());
  return c;
}

config load_config(const std::filesystem::path& file) {
  problem_sink sink(file.string());
  const auto text = detail::read_text_file(file, sink);
  if (!text) throw config_error(sink.take());
  config c = parse_into(*text, sink);

  // Relative paths in the file mean "next to this file", as in Prometheus;
  // otherwise they would change meaning with the daemon's working directory.
  const auto base = file.parent_path();
  c.web_config_file = resolve(base, c.web_config_file).string();
  c.state_dir = resolve(base, c.state_dir).string();
  for (std::size_t i = 0; i < c.upstreams.size(); ++i) {
    auto& u = c.upstreams[i];
    u.ca_file = resolve(base, u.ca_file).string();
    if (!u.ca_file.empty() && ::access(u.ca_file.c_str(), R_OK) != 0) {
      sink.add(child_key(index_key("upstreams", i), "ca_file"),
               fmt::format("cannot read {}: {}", u.ca_file, std::strerror(errno)));
    }
  }
  if (!sink.empty()) throw config_error(sink.take());

  // The file holds no secret (a key written in it is refused), so its mode
  // is no warning: the packages ship it 0644. A proxy password is the one
  // credential it can hold.
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
    for (std::size_t i = 0; i < c.upstreams.size(); ++i) {
      if (!has_password(c.upstreams[i].proxy_url)) continue;
      c.warnings.push_back(fmt::format(
          "{}: {}: holds a password and the file is world-readable (mode {}); chmod o-r the "
          "file, or give the proxy in HTTPS_PROXY instead",
          c.source, child_key(index_key("upstreams", i), "proxy_url"), mode_string(st.st_mode)));
    }
  }
  return c;
}

std::optional<listen_address> parse_listen_address(std::string_view text, bool allow_port_zero) {
  listen_address a;
  if (!parse_listen(text, allow_port_zero, &a).empty()) return std::nullopt;
  return a;
}

std::string listen_address_problem(std::string_view text, bool allow_port_zero) {
  return parse_listen(text, allow_port_zero, nullptr);
}

std::optional<log_level> parse_log_level(std::string_view s) noexcept {
  if (s == "debug") return log_level::debug;
  if (s == "info") return log_level::info;
  if (s == "warn") return log_level::warn;
  if (s == "error") return log_level::error;
  return std::nullopt;
}

std::optional<log_format> parse_log_format(std::string_view s) noexcept {
  if (s == "logfmt") return log_format::logfmt;
  if (s == "json") return log_format::json;
  return std::nullopt;
}

std::string_view to_string(log_level l) noexcept {
  switch (l) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
  }
  return "unknown";
}

std::string_view to_string(log_format f) noexcept {
  switch (f) {
    case log_format::logfmt:
      return "logfmt";
    case log_format::json:
      return "json";
  }
  return "unknown";
}

std::string_view to_string(timestamp_mode m) noexcept {
  switch (m) {
    case timestamp_mode::none:
      return "none";
    case timestamp_mode::window:
      return "window";
  }
  return "unknown";
}

std::string summarize(const config& c) {
  std::string out;
  const auto line = [&out](const std::string& s) {
    out += s;
    out += '\n';
  };
  line(fmt::format("configuration: {}", c.source.empty() ? std::string("(text)") : c.source));
  line(fmt::format("listen: {}", c.listen));
  line(fmt::format("web_config_file: {}", c.web_config_file.empty()
                                              ? std::string("(none: plain HTTP, no auth)")
                                              : c.web_config_file));
  line(fmt::format("state_dir: {}", c.state_dir));
  line(fmt::format("log: level={} format={}", to_string(c.log.level), to_string(c.log.format)));
  line(fmt::format("upstreams: {}", c.upstreams.size()));
  for (const auto& u : c.upstreams) {
    line(fmt::format("  - name: {}", u.name));
    line(fmt::format("    url: {}", redact_userinfo(u.url)));
    if (!u.api_key_file.empty()) {
      line(
          fmt::format("    api key: read from file {} (checked before every poll: a replaced "
                      "file is used without a reload)",
                      u.api_key_file));
    } else {
      line(fmt::format("    api key: read from environment variable {} (changes need a reload)",
                       u.api_key_env));
    }
    if (!u.ca_file.empty()) line(fmt::format("    ca_file: {}", u.ca_file));
    line(fmt::format("    proxy: {}", u.proxy_url.empty() ? std::string("from HTTPS_PROXY/NO_PROXY")
                                                          : redact_userinfo(u.proxy_url)));
    line(fmt::format("    schedule: every {} at wall-clock multiples + {}, timeout {}",
                     format_duration(u.poll_interval), format_duration(u.poll_offset),
                     format_duration(u.timeout)));
    line(fmt::format("    budget: at most {} request{} in any {} sliding window", u.limit.requests,
                     u.limit.requests == 1 ? "" : "s", format_duration(u.limit.window)));
    if (u.replicas.count > 1) {
      line(
          fmt::format("    replicas: this is replica {} of {} (own budget above; polls and "
                      "retries only in its own slice of each interval)",
                      u.replicas.index, u.replicas.count));
    }
    line(fmt::format("    max_staleness: {}", format_duration(u.max_staleness)));
    line(fmt::format("    timestamps: {}", to_string(u.timestamps)));
    if (u.derived_counters) line("    derived_counters: true");
    if (u.label_limit || u.label_name_length_limit || u.label_value_length_limit || u.sample_limit) {
      line(fmt::format("    body limits (0 = none): label_limit {}, label_name_length_limit {}, "
                       "label_value_length_limit {}, sample_limit {}",
                       u.label_limit, u.label_name_length_limit, u.label_value_length_limit,
                       u.sample_limit));
    }
    for (const auto& [from, to] : u.rename_labels)
      line(fmt::format("    rename_labels: {} -> {}", from, to));
    if (!u.extra_labels.empty()) {
      std::string labels;
      for (const auto& [k, v] : u.extra_labels) {
        if (!labels.empty()) labels += ", ";
        labels += fmt::format("{}={}", k, quote(v));
      }
      line(fmt::format("    extra_labels: {{{}}}", labels));
    }
  }
  for (const auto& w : c.warnings) line(fmt::format("warning: {}", w));
  return out;
}

}  // namespace cmp::config
