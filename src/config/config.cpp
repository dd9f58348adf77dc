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

#include "yaml_reader.hpp"

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

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool is_upstream_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_name_char);
}

bool is_label_name(std::string_view s) {
  if (s.empty()) return false;
  const auto head = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!head(s.front())) return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [&](char c) { return head(c) || (c >= '0' && c <= '9'); });
}

// POSIX portable environment variable name.
bool is_env_name(std::string_view s) { return is_label_name(s); }

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

bool is_loopback(const urls::url_view& u) {
  switch (u.host_type()) {
    case urls::host_type::ipv4:
      return (u.host_ipv4_address().to_uint() >> 24) == 127;
    case urls::host_type::ipv6:
      return u.host_ipv6_address() == urls::ipv6_address::loopback();
    case urls::host_type::name: {
      std::string h = u.host();
      std::transform(h.begin(), h.end(), h.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      return h == "localhost" || h == "localhost.";
    }
    default:
      return false;
  }
}

// The URL is never echoed: a misplaced key in a query string would leak.
void check_upstream_url(std::string_view text, const std::string& key, problem_sink& sink) {
  if (text.empty()) {
    sink.add(key, "is required (the organization's metrics URL)");
    return;
  }
  const auto r = urls::parse_uri(text);
  if (!r) {
    sink.add(key, fmt::format("is not a valid absolute URL ({})", r.error().message()));
    return;
  }
  const urls::url_view& u = *r;
  const auto scheme = u.scheme_id();
  if (scheme != urls::scheme::https && scheme != urls::scheme::http) {
    sink.add(key, fmt::format("scheme {} is not supported; use https://", quote(u.scheme())));
    return;
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    sink.add(key, "has no host");
    return;
  }
  if (u.has_userinfo()) {
    sink.add(key, "must not contain user:password@ (the key comes from api_key_env/api_key_file)");
  }
  if (u.has_port() && (u.port().empty() || u.port_number() == 0)) {
    sink.add(key, fmt::format("port {} is not in 1-65535", quote(u.port())));
  }
  if (u.has_fragment()) sink.add(key, "must not have a #fragment");
  if (scheme == urls::scheme::http && !is_loopback(u)) {
    sink.add(key,
             "http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); "
             "use https://");
  }
}

void check_proxy_url(std::string_view text, const std::string& key, problem_sink& sink) {
  if (text.empty()) return;
  const auto r = urls::parse_uri(text);
  if (!r) {
    sink.add(key, fmt::format("is not a valid absolute URL ({})", r.error().message()));
    return;
  }
  if (r->scheme_id() != urls::scheme::http) {
    sink.add(key, fmt::format("scheme {} is not supported; an HTTP CONNECT proxy is http://",
                              quote(r->scheme())));
    return;
  }
  if (!r->has_authority() || r->encoded_host().empty()) sink.add(key, "has no host");
  if (r->has_port() && (r->port().empty() || r->port_number() == 0)) {
    sink.add(key, fmt::format("port {} is not in 1-65535", quote(r->port())));
  }
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

template <typename T>
void assign(std::optional<T> v, T& out) {
  if (v) out = std::move(*v);
}

const std::initializer_list<detail::key_hint> secret_hints = {
    {"api_key", "the key is never written here: use api_key_env or api_key_file"},
    {"key", "the key is never written here: use api_key_env or api_key_file"},
    {"token", "the key is never written here: use api_key_env or api_key_file"},
    {"password", "the key is never written here: use api_key_env or api_key_file"},
};

upstream read_upstream(const YAML::Node& node, const std::string& key, problem_sink& sink,
                       std::vector<std::string>& warnings) {
  upstream u;
  const auto fields = detail::read_fields(
      node, key, sink,
      {"name", "url", "api_key_env", "api_key_file", "ca_file", "proxy_url", "timeout",
       "poll_interval", "poll_offset", "rate_limit", "max_staleness", "timestamps", "extra_labels",
       "rename_labels", "derived_counters", "replicas"},
      secret_hints);
  if (!fields) return u;
  const auto field = [&](std::string_view name) -> const YAML::Node* {
    const auto it = fields->find(std::string(name));
    return it == fields->end() ? nullptr : &it->second;
  };
  const auto k = [&](std::string_view name) { return child_key(key, name); };

  bool durations_ok = true;
  const auto read_positive = [&](std::string_view name, duration& out, bool allow_zero) {
    const YAML::Node* n = field(name);
    if (n == nullptr) return;
    const auto d = detail::read_duration(*n, k(name), sink);
    if (!d) {
      durations_ok = false;
      return;
    }
    if (*d < duration::zero() || (!allow_zero && *d == duration::zero())) {
      sink.add(k(name), fmt::format("must be greater than 0, not {}", quote(n->Scalar())));
      durations_ok = false;
      return;
    }
    out = *d;
  };

  if (const auto* n = field("name")) {
    if (auto v = detail::read_string(*n, k("name"), sink)) {
      if (is_upstream_name(*v)) {
        u.name = std::move(*v);
      } else {
        sink.add(k("name"), fmt::format("{} must match [a-zA-Z0-9_-]+", quote(*v)));
      }
    }
  }
  if (const auto* n = field("url")) assign(detail::read_string(*n, k("url"), sink), u.url);
  check_upstream_url(u.url, k("url"), sink);

  bool env_given = false;
  bool env_invalid = false;
  if (const auto* n = field("api_key_env")) {
    if (auto v = detail::read_string(*n, k("api_key_env"), sink)) {
      env_given = true;
      if (v->empty() || is_env_name(*v)) {
        u.api_key_env = std::move(*v);
      } else {
        // Not echoed: the usual mistake is pasting the key itself here.
        sink.add(k("api_key_env"),
                 "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*); it names the "
                 "variable holding the key, the key itself never goes in this file (value not "
                 "shown)");
        env_invalid = true;
      }
    }
  }
  if (const auto* n = field("api_key_file")) {
    assign(detail::read_string(*n, k("api_key_file"), sink), u.api_key_file);
  }
  if (u.api_key_env.empty() && u.api_key_file.empty() && !env_invalid) {
    sink.add(k("api_key_env"), "api_key_env and api_key_file are both empty; set one of them");
  }
  if (env_given && !u.api_key_env.empty() && !u.api_key_file.empty()) {
    warnings.push_back(fmt::format("{}: {}: ignored, api_key_file is set and wins", sink.source(),
                                   k("api_key_env")));
  }
  if (const auto* n = field("ca_file"))
    assign(detail::read_string(*n, k("ca_file"), sink), u.ca_file);
  if (const auto* n = field("proxy_url")) {
    assign(detail::read_string(*n, k("proxy_url"), sink), u.proxy_url);
    check_proxy_url(u.proxy_url, k("proxy_url"), sink);
  }

  read_positive("timeout", u.timeout, false);
  read_positive("poll_interval", u.poll_interval, false);
  read_positive("poll_offset", u.poll_offset, true);
  read_positive("max_staleness", u.max_staleness, false);

  bool limit_ok = true;
  if (const auto* n = field("rate_limit")) {
    const std::string rk = k("rate_limit");
    if (const auto rl = detail::read_fields(*n, rk, sink, {"requests", "window"})) {
      if (const auto it = rl->find("requests"); it != rl->end()) {
        const auto v = detail::read_uint32(it->second, child_key(rk, "requests"), sink);
        if (v && *v == 0) {
          sink.add(child_key(rk, "requests"), "must be at least 1");
          limit_ok = false;
        } else if (v) {
          u.limit.requests = *v;
        } else {
          limit_ok = false;
        }
      }
      if (const auto it = rl->find("window"); it != rl->end()) {
        const auto d = detail::read_duration(it->second, child_key(rk, "window"), sink);
        if (d && *d <= duration::zero()) {
          sink.add(child_key(rk, "window"), "must be greater than 0");
          limit_ok = false;
        } else if (d) {
          u.limit.window = *d;
        } else {
          limit_ok = false;
        }
      }
    } else {
      limit_ok = false;
    }
  }

  if (const auto* n = field("timestamps")) {
    if (auto v = detail::read_string(*n, k("timestamps"), sink)) {
      if (*v == "none") {
        u.timestamps = timestamp_mode::none;
      } else if (*v == "window") {
        u.timestamps = timestamp_mode::window;
      } else {
        sink.add(k("timestamps"), fmt::format("{} is not one of none, window", quote(*v)));
      }
    }
  }

  if (const auto* n = field("extra_labels")) {
    const std::string lk = k("extra_labels");
    if (auto labels = detail::read_string_map(*n, lk, sink)) {
      for (const auto& [name, value] : *labels) {
        const std::string path = child_key(lk, name);
        if (!is_label_name(name)) {
          sink.add(path, "is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
        } else if (name.starts_with("__")) {
          sink.add(path, "label names starting with __ are reserved for Prometheus");
        } else if (name == "upstream") {
          sink.add(path, "is reserved: the proxy sets it to the upstream's name");
        } else if (value.empty()) {
          sink.add(path, "has an empty value (an empty label is the same as no label)");
        } else if (!detail::is_valid_utf8(value)) {
          sink.add(path, "value is not valid UTF-8");
        }
      }
      u.extra_labels = std::move(*labels);
    }
  }

  if (const auto* n = field("derived_counters")) {
    if (auto v = detail::read_bool(*n, k("derived_counters"), sink)) u.derived_counters = *v;
  }

  if (const auto* n = field("rename_labels")) {
    const std::string lk = k("rename_labels");
    if (auto renames = detail::read_string_map(*n, lk, sink)) {
      for (const auto& [from, to] : *renames) {
        const std::string path = child_key(lk, from);
        if (!is_label_name(from) || !is_label_name(to)) {
          sink.add(path, "both names must be label names ([a-zA-Z_][a-zA-Z0-9_]*)");
        } else if (to.starts_with("__")) {
          sink.add(path, "label names starting with __ are reserved for Prometheus");
        }
      }
      u.rename_labels = std::move(*renames);
    }
  }

  bool replicas_ok = true;
  if (const auto* n = field("replicas")) {
    const std::string rk = k("replicas");
    if (const auto rf = detail::read_fields(*n, rk, sink, {"count", "index"})) {
      if (const auto it = rf->find("count"); it != rf->end()) {
        const auto v = detail::read_uint32(it->second, child_key(rk, "count"), sink);
        if (v && *v == 0) {
          sink.add(child_key(rk, "count"),
                   "must be at least 1 (the number of daemons polling "
                   "this organization)");
          replicas_ok = false;
        } else if (v) {
          u.replicas.count = *v;
        } else {
          replicas_ok = false;
        }
      }
      if (const auto it = rf->find("index"); it != rf->end()) {
        const auto v = detail::read_uint32(it->second, child_key(rk, "index"), sink);
        if (v) {
          u.replicas.index = *v;
        } else {
          replicas_ok = false;
        }
      }
      if (replicas_ok && u.replicas.index >= u.replicas.count) {
        sink.add(child_key(rk, "index"),
                 fmt::format("{} must be less than replicas.count ({}); replicas are numbered "
                             "from 0",
                             u.replicas.index, u.replicas.count));
        replicas_ok = false;
      }
    } else {
      replicas_ok = false;
    }
  }

  // Cross-field rules, only when the fields they compare were read cleanly:
  // a bad `timeout` should not also produce a confusing comparison error.
  if (durations_ok) {
    if (u.poll_offset >= u.poll_interval) {
      sink.add(k("poll_offset"),
               fmt::format("{} must be less than poll_interval ({})",
                           format_duration(u.poll_offset), format_duration(u.poll_interval)));
    }
    // One fetch per upstream at a time: a fetch must end before the next
    // scheduled poll, or polls would queue up behind a slow upstream.
    if (u.timeout >= u.poll_interval) {
      sink.add(k("timeout"),
               fmt::format("{} must be less than poll_interval ({}): a fetch must "
                           "end before the next poll",
                           format_duration(u.timeout), format_duration(u.poll_interval)));
    }
    // A poll must start after the fresh window is published (offset) and end
    // before the window turns again, or its data could belong to either.
    if (u.timeout < u.poll_interval && u.poll_offset < u.poll_interval &&
        u.poll_offset + u.timeout > u.poll_interval) {
      sink.add(k("timeout"),
               fmt::format("poll_offset ({}) + timeout ({}) must fit in poll_interval ({}): a poll "
                           "starts after the offset and must end before the window turns",
                           format_duration(u.poll_offset), format_duration(u.timeout),
                           format_duration(u.poll_interval)));
    }
    // Each replica gets an equal slice of the span a poll may start in; a
    // slice under a second would put replicas back at the same moment.
    const auto span = u.poll_interval - u.poll_offset - u.timeout;
    if (replicas_ok && u.replicas.count > 1 && span >= duration::zero() &&
        span / u.replicas.count < 1s) {
      sink.add(k("replicas"),
               fmt::format("{} replicas need at least 1s each of the span a poll may start in "
                           "(poll_interval - poll_offset - timeout = {})",
                           u.replicas.count, format_duration(span)));
    }
    if (u.max_staleness < u.poll_interval) {
      sink.add(k("max_staleness"),
               fmt::format("{} must be at least poll_interval ({}), or every snapshot expires "
                           "before the next poll",
                           format_duration(u.max_staleness), format_duration(u.poll_interval)));
    }
  }
  if (durations_ok && limit_ok) {
    // Not an error: a small budget is a legitimate choice, but the user
    // should know the schedule will be thinned out.
    const auto polls =
        (u.limit.window.count() + u.poll_interval.count() - 1) / u.poll_interval.count();
    if (static_cast<std::int64_t>(u.limit.requests) < polls) {
      warnings.push_back(fmt::format(
          "{}: {}: {} requests per {} cannot cover a poll every {} ({} per window); some "
          "polls will be skipped",
          sink.source(), k("rate_limit"), u.limit.requests, format_duration(u.limit.window),
          format_duration(u.poll_interval), polls));
    }
  }
  if (limit_ok && replicas_ok && u.replicas.count > 1) {
    // The organization's limit is shared: every replica spends its own
    // rate_limit, so together they may send count times as much.
    const auto per_minute = max_requests_per_minute(u.limit) * u.replicas.count;
    if (per_minute > documented_requests_per_minute) {
      warnings.push_back(fmt::format(
          "{}: {}: {} replicas with {} requests per {} each may send {} requests in one minute, "
          "above the Metrics API's documented limit of {} per organization; give each replica "
          "rate_limit.requests: {} and window: 1m",
          sink.source(), k("rate_limit"), u.replicas.count, u.limit.requests,
          format_duration(u.limit.window), per_minute, documented_requests_per_minute,
          std::max<std::uint32_t>(1, documented_requests_per_minute / u.replicas.count)));
    }
    if (u.timestamps != timestamp_mode::window) {
      warnings.push_back(fmt::format(
          "{}: {}: with timestamps: none each replica's samples get their own scrape time; "
          "timestamps: window makes the replicas' samples identical for HA deduplication",
          sink.source(), k("replicas")));
    }
  }
  return u;
}

config parse_into(std::string_view yaml, problem_sink& sink) {
  config c;
  c.source = sink.source();
  const auto doc = detail::parse_document(yaml, sink);
  if (!doc) return c;
  try {
    const auto fields = detail::read_fields(
        *doc, "", sink, {"listen", "web_config_file", "state_dir", "log", "upstreams"},
        secret_hints);
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
      if (const auto lf = detail::read_fields(*n, "log", sink, {"level", "format"})) {
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
        upstream u = read_upstream((*ups)[i], key, sink, c.warnings);
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
