// One upstream: its YAML fields read into the struct (read_upstream), then
// every rule it must satisfy checked on the struct (validate).

#include <algorithm>
#include <cctype>
#include <functional>
#include <optional>
#include <vector>

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
using detail::problem_sink;
using detail::quote;

// --- reading ---------------------------------------------------------------

// Reads one key's value into its field. False when the value could not be
// read (the reader has said why); the field then keeps its default.
using field_reader = std::function<bool(const YAML::Node&, const std::string& key, problem_sink&)>;

struct field {
  std::string_view name;
  field_reader read;
  std::vector<std::string_view> keys = {};  // a block's own keys (rate_limit: requests, window)
};

template <typename T>
field_reader into(T& out,
                  std::optional<T> (*read)(const YAML::Node&, const std::string&, problem_sink&)) {
  return [&out, read](const YAML::Node& n, const std::string& key, problem_sink& sink) {
    auto v = read(n, key, sink);
    if (v) out = std::move(*v);
    return v.has_value();
  };
}
field_reader into(std::string& out) { return into(out, &detail::read_string); }
field_reader into(duration& out) { return into(out, &detail::read_duration); }
field_reader into(std::uint32_t& out) { return into(out, &detail::read_uint32); }
field_reader into(bool& out) { return into(out, &detail::read_bool); }
field_reader into(std::map<std::string, std::string>& out) {
  return into(out, &detail::read_string_map);
}
field_reader into(timestamp_mode& out) {
  return [&out](const YAML::Node& n, const std::string& key, problem_sink& sink) {
    const auto v = detail::read_string(n, key, sink);
    if (!v) return false;
    if (*v == "none" || *v == "window") {
      out = *v == "none" ? timestamp_mode::none : timestamp_mode::window;
      return true;
    }
    sink.add(key, fmt::format("{} is not one of none, window", quote(*v)));
    return false;
  };
}

// Reads a mapping of `fields`. Each field that cannot be read is added to
// `unreadable` as `prefix.name` (relative to the upstream); a node that is
// not a mapping at all makes the whole `prefix` unreadable.
bool read_block(const YAML::Node& node, const std::string& key, const std::string& prefix,
                problem_sink& sink, const std::vector<field>& fields,
                std::set<std::string>& unreadable, std::span<const detail::key_hint> hints = {}) {
  std::vector<std::string_view> names;
  for (const auto& f : fields) names.push_back(f.name);
  const auto present = detail::read_fields(node, key, sink, names, hints);
  if (!present) return false;
  for (const auto& f : fields) {
    const auto it = present->find(std::string(f.name));
    if (it == present->end()) continue;
    if (!f.read(it->second, child_key(key, f.name), sink)) {
      unreadable.insert(prefix.empty() ? std::string(f.name) : prefix + "." + std::string(f.name));
    }
  }
  return true;
}

// A nested block (`rate_limit`, `replicas`) as one field of its parent.
field block(std::string_view name, std::vector<field> fields, std::set<std::string>& unreadable) {
  std::vector<std::string_view> keys;
  for (const auto& f : fields) keys.push_back(f.name);
  return {name,
          [prefix = std::string(name), fields = std::move(fields), &unreadable](
              const YAML::Node& n, const std::string& key, problem_sink& sink) {
            return read_block(n, key, prefix, sink, fields, unreadable);
          },
          std::move(keys)};
}

// --- rules -------------------------------------------------------------------

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

class findings {
 public:
  void error(std::string key, std::string reason) {
    out_.push_back({std::move(key), std::move(reason), false});
  }
  void warning(std::string key, std::string reason) {
    out_.push_back({std::move(key), std::move(reason), true});
  }
  std::vector<problem> take() { return std::move(out_); }

 private:
  std::vector<problem> out_;
};

// The Metrics API's URL, https://cloud.cerebras.ai/api/v1/metrics/organizations/<org-id>.
constexpr std::string_view api_host = "cloud.cerebras.ai";
constexpr std::string_view api_path = "/api/v1/metrics/organizations/";
constexpr std::string_view api_form = "https://cloud.cerebras.ai/api/v1/metrics/organizations/<org-id>";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The organization id as written in `url` (the text is read as is, so that
// `<org-id>`, which no URL parser takes, is found too): what follows the
// API's path up to a query or fragment. nullopt when the URL does not have
// the API's path.
std::optional<std::string_view> organization_id(std::string_view url) {
  const auto start = url.find("://");
  const auto path_at = url.find('/', start == std::string_view::npos ? 0 : start + 3);
  if (path_at == std::string_view::npos) return std::nullopt;
  auto path = url.substr(path_at);
  path = path.substr(0, path.find_first_of("?#"));
  if (path == api_path.substr(0, api_path.size() - 1)) return std::string_view();
  if (!path.starts_with(api_path)) return std::nullopt;
  return path.substr(api_path.size());
}

// Why `id` cannot be an organization's id, or "". Ids are opaque, so only
// what no real one looks like is refused: the words of a template
// (`org_REPLACE_ME`, `CHANGEME`, `your-org`, `placeholder`), template
// syntax (`<org-id>`, `${ORG_ID}`, `{{org}}`), the name of the field itself
// (`org_id`, `organization-id`), and three or more x's or dots standing for
// the id (`org_XXXXXXXX`, `org_...`).
std::string placeholder_problem(std::string_view id) {
  const auto fix = fmt::format("put your organization's id (Cerebras cloud console) in its place: {}",
                               api_form);
  if (id.empty()) return fmt::format("has no organization id after {}; {}", api_path, fix);
  const std::string l = lower(id);
  // A Cerebras API key (csk-...) where the id belongs: never echoed.
  if (l.starts_with("csk-")) {
    return fmt::format("the organization id looks like an API key (value not shown); the key goes "
                       "in api_key_env or api_key_file, the URL is {}",
                       api_form);
  }
  bool placeholder = l.find_first_of("<>{}$ ") != std::string::npos;
  for (const std::string_view word : {"replace", "changeme", "change_me", "change-me", "placeholder",
                                      "your_", "your-", "yourorg"}) {
    placeholder = placeholder || l.find(word) != std::string::npos;
  }
  for (const std::string_view name : {"id", "org", "orgid", "org_id", "org-id", "organization",
                                      "organization_id", "organization-id", "organizationid"}) {
    placeholder = placeholder || l == name;
  }
  std::string_view rest(l);
  if (rest.starts_with("org_") || rest.starts_with("org-")) rest.remove_prefix(4);
  // Three or more: `org_x` may be a test's id, `org_xxx` is nobody's.
  placeholder = placeholder || rest.empty() ||
                (rest.size() >= 3 && rest.find_first_not_of("x.*") == std::string_view::npos);
  if (!placeholder) return {};
  return fmt::format("organization id {} is a placeholder; {}", quote(id), fix);
}

// A URL that is not the Metrics API's may be meant (a relay, a test
// endpoint): a warning that shows the expected form. Loopback hosts are
// always meant (tests, the demo, a local relay) and stay quiet.
void check_api_form(const urls::url_view& u, findings& f) {
  if (is_loopback(u)) return;
  const std::string host = lower(std::string(u.host()));
  const bool host_ok = host == api_host || host == std::string(api_host) + ".";
  const auto org = organization_id(std::string_view(u.buffer()));
  const bool path_ok = org && !org->empty() && org->find('/') == std::string_view::npos;
  if (host_ok && path_ok) return;
  const std::string what = !host_ok && !path_ok ? fmt::format("neither its host ({}) nor its path is", host)
                           : !host_ok           ? fmt::format("its host ({}) is not", host)
                                                : std::string("its path is not");
  f.warning("url", fmt::format("{} the Metrics API's, {}; fine for a relay or test endpoint, "
                               "otherwise correct it",
                               what, api_form));
}

// The URL is never echoed: a misplaced key in a query string would leak.
void check_upstream_url(std::string_view text, findings& f) {
  if (text.empty()) {
    f.error("url", "is required (the organization's metrics URL)");
    return;
  }
  const auto org = organization_id(text);
  const auto placeholder = org ? placeholder_problem(*org) : std::string();
  if (!placeholder.empty()) f.error("url", placeholder);
  const auto r = urls::parse_uri(text);
  if (!r) {
    // `<org-id>` is no valid URL either; the placeholder said what to fix.
    if (placeholder.empty())
      f.error("url", fmt::format("is not a valid absolute URL ({})", r.error().message()));
    return;
  }
  const urls::url_view& u = *r;
  const auto scheme = u.scheme_id();
  if (scheme != urls::scheme::https && scheme != urls::scheme::http) {
    f.error("url", fmt::format("scheme {} is not supported; use https://", quote(u.scheme())));
    return;
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    f.error("url", "has no host");
    return;
  }
  if (u.has_userinfo()) {
    f.error("url", "must not contain user:password@ (the key comes from api_key_env/api_key_file)");
  }
  if (u.has_port() && (u.port().empty() || u.port_number() == 0)) {
    f.error("url", fmt::format("port {} is not in 1-65535", quote(u.port())));
  }
  if (u.has_fragment()) f.error("url", "must not have a #fragment");
  if (scheme == urls::scheme::http && !is_loopback(u)) {
    f.error("url",
            "http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); "
            "use https://");
  }
  if (placeholder.empty()) check_api_form(u, f);
}

void check_proxy_url(std::string_view text, findings& f) {
  if (text.empty()) return;
  const auto r = urls::parse_uri(text);
  if (!r) {
    f.error("proxy_url", fmt::format("is not a valid absolute URL ({})", r.error().message()));
    return;
  }
  if (r->scheme_id() != urls::scheme::http) {
    f.error("proxy_url", fmt::format("scheme {} is not supported; an HTTP CONNECT proxy is http://",
                                     quote(r->scheme())));
    return;
  }
  if (!r->has_authority() || r->encoded_host().empty()) {
    f.error("proxy_url", "has no host; write http://host:port");
    return;
  }
  if (r->has_port() && (r->port().empty() || r->port_number() == 0)) {
    f.error("proxy_url", fmt::format("port {} is not in 1-65535", quote(r->port())));
  } else if (!r->has_port()) {
    f.warning("proxy_url", "has no port, so 80 is used; proxies seldom listen there (Squid: 3128): "
                           "write http://host:port");
  }
  // Only the authority is used (a CONNECT goes to host:port).
  const auto path = r->encoded_path();
  if ((!path.empty() && path != "/") || r->has_query() || r->has_fragment()) {
    f.warning("proxy_url", "only the host and port are used: remove the path, query or fragment");
  }
}

void check_key_source(const upstream& u, findings& f) {
  if (!u.api_key_env.empty() && !is_env_name(u.api_key_env)) {
    // Not echoed: the usual mistake is pasting the key itself here.
    f.error("api_key_env",
            "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*); it names the "
            "variable holding the key, the key itself never goes in this file (value not "
            "shown)");
  } else if (u.api_key_env.empty() && u.api_key_file.empty()) {
    f.error("api_key_env", "api_key_env and api_key_file are both empty; set one of them");
  } else if (!u.api_key_file.empty() && u.api_key_env != upstream{}.api_key_env) {
    f.warning("api_key_env", "ignored, api_key_file is set and wins");
  }
}

void check_labels(const upstream& u, findings& f) {
  for (const auto& [name, value] : u.extra_labels) {
    const std::string key = child_key("extra_labels", name);
    if (!is_label_name(name)) {
      f.error(key, "is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
    } else if (name.starts_with("__")) {
      f.error(key, "label names starting with __ are reserved for Prometheus");
    } else if (name == "upstream") {
      f.error(key, "is reserved: the proxy sets it to the upstream's name");
    } else if (value.empty()) {
      f.error(key, "has an empty value (an empty label is the same as no label)");
    } else if (!detail::is_valid_utf8(value)) {
      f.error(key, "value is not valid UTF-8");
    }
  }
  for (const auto& [from, to] : u.rename_labels) {
    const std::string key = child_key("rename_labels", from);
    if (!is_label_name(from) || !is_label_name(to)) {
      f.error(key, "both names must be label names ([a-zA-Z_][a-zA-Z0-9_]*)");
    } else if (to.starts_with("__")) {
      f.error(key, "label names starting with __ are reserved for Prometheus");
    }
  }
}

// Rules between the schedule's durations. Each compares values that were
// read and are valid on their own: a bad `timeout` must not also produce a
// confusing comparison.
void check_schedule(const upstream& u, findings& f) {
  if (u.poll_offset >= u.poll_interval) {
    f.error("poll_offset",
            fmt::format("{} must be less than poll_interval ({})", format_duration(u.poll_offset),
                        format_duration(u.poll_interval)));
  }
  // One fetch per upstream at a time: a fetch must end before the next
  // scheduled poll, or polls would queue up behind a slow upstream.
  if (u.timeout >= u.poll_interval) {
    f.error("timeout", fmt::format("{} must be less than poll_interval ({}): a fetch must "
                                   "end before the next poll",
                                   format_duration(u.timeout), format_duration(u.poll_interval)));
  } else if (u.poll_offset < u.poll_interval && u.poll_offset + u.timeout > u.poll_interval) {
    // A poll must start after the fresh window is published (offset) and
    // end before the window turns again, or its data could belong to either.
    f.error("timeout",
            fmt::format("poll_offset ({}) + timeout ({}) must fit in poll_interval ({}): a poll "
                        "starts after the offset and must end before the window turns",
                        format_duration(u.poll_offset), format_duration(u.timeout),
                        format_duration(u.poll_interval)));
  }
  if (u.max_staleness < u.poll_interval) {
    f.error("max_staleness",
            fmt::format("{} must be at least poll_interval ({}), or every snapshot expires "
                        "before the next poll",
                        format_duration(u.max_staleness), format_duration(u.poll_interval)));
  }
}

void check_budget(const upstream& u, findings& f) {
  // Not an error: a small budget is a legitimate choice, but the user
  // should know the schedule will be thinned out.
  const auto polls =
      (u.limit.window.count() + u.poll_interval.count() - 1) / u.poll_interval.count();
  if (static_cast<std::int64_t>(u.limit.requests) < polls) {
    f.warning("rate_limit",
              fmt::format("{} requests per {} cannot cover a poll every {} ({} per window); "
                          "some polls will be skipped",
                          u.limit.requests, format_duration(u.limit.window),
                          format_duration(u.poll_interval), polls));
  }
}

void check_replicas(const upstream& u, bool schedule_ok, bool limit_ok, findings& f) {
  if (u.replicas.count > 1 && schedule_ok) {
    // Each replica gets an equal slice of the span a poll may start in; a
    // slice under a second would put replicas back at the same moment.
    const auto span = u.poll_interval - u.poll_offset - u.timeout;
    if (span >= duration::zero() && span / u.replicas.count < 1s) {
      f.error("replicas",
              fmt::format("{} replicas need at least 1s each of the span a poll may start in "
                          "(poll_interval - poll_offset - timeout = {})",
                          u.replicas.count, format_duration(span)));
    }
  }
  if (u.replicas.count <= 1 || !limit_ok) return;
  // The organization's limit is shared: every replica spends its own
  // rate_limit, so together they may send count times as much.
  const auto per_minute = max_requests_per_minute(u.limit) * u.replicas.count;
  if (per_minute > documented_requests_per_minute) {
    f.warning(
        "rate_limit",
        fmt::format("{} replicas with {} requests per {} each may send {} requests in one "
                    "minute, above the Metrics API's documented limit of {} per "
                    "organization; give each replica rate_limit.requests: {} and window: 1m",
                    u.replicas.count, u.limit.requests, format_duration(u.limit.window), per_minute,
                    documented_requests_per_minute,
                    std::max<std::uint32_t>(1, documented_requests_per_minute / u.replicas.count)));
  }
  if (u.timestamps != timestamp_mode::window) {
    f.warning("replicas",
              "with timestamps: none each replica's samples get their own scrape time; "
              "timestamps: window makes the replicas' samples identical for HA deduplication");
  }
}

}  // namespace

namespace detail {

namespace {

// The reader's table: every key of an upstream and where its value goes.
std::vector<field> upstream_fields(upstream& u, std::set<std::string>& unreadable) {
  return {
      {"name", into(u.name)},
      {"url", into(u.url)},
      {"api_key_env", into(u.api_key_env)},
      {"api_key_file", into(u.api_key_file)},
      {"ca_file", into(u.ca_file)},
      {"proxy_url", into(u.proxy_url)},
      {"timeout", into(u.timeout)},
      {"poll_interval", into(u.poll_interval)},
      {"poll_offset", into(u.poll_offset)},
      block("rate_limit", {{"requests", into(u.limit.requests)}, {"window", into(u.limit.window)}},
            unreadable),
      {"max_staleness", into(u.max_staleness)},
      {"timestamps", into(u.timestamps)},
      {"extra_labels", into(u.extra_labels)},
      {"rename_labels", into(u.rename_labels)},
      {"derived_counters", into(u.derived_counters)},
      block("replicas", {{"count", into(u.replicas.count)}, {"index", into(u.replicas.index)}},
            unreadable),
      {"label_limit", into(u.label_limit)},
      {"label_name_length_limit", into(u.label_name_length_limit)},
      {"label_value_length_limit", into(u.label_value_length_limit)},
      {"sample_limit", into(u.sample_limit)},
  };
}

}  // namespace

std::vector<std::string> upstream_keys() {
  upstream u;
  std::set<std::string> unreadable;
  std::vector<std::string> keys;
  for (const auto& f : upstream_fields(u, unreadable)) {
    if (f.keys.empty()) keys.emplace_back(f.name);
    for (const auto k : f.keys) keys.push_back(fmt::format("{}.{}", f.name, k));
  }
  return keys;
}

upstream read_upstream(const YAML::Node& node, const std::string& key, problem_sink& sink,
                       std::set<std::string>& unreadable) {
  upstream u;
  const auto fields = upstream_fields(u, unreadable);
  if (!read_block(node, key, "", sink, fields, unreadable, secret_hints)) {
    unreadable.insert("");  // not a mapping: nothing was read
  }
  return u;
}

}  // namespace detail

std::vector<problem> validate(const upstream& u, const std::set<std::string>& unreadable) {
  if (unreadable.contains("")) return {};
  const auto readable = [&](std::string_view key) {
    const auto block = key.substr(0, key.find('.'));
    return !unreadable.contains(std::string(key)) && !unreadable.contains(std::string(block));
  };
  findings f;
  if (!is_upstream_name(u.name)) {
    f.error("name", fmt::format("{} must match [a-zA-Z0-9_-]+", quote(u.name)));
  }
  check_upstream_url(u.url, f);
  check_key_source(u, f);
  check_proxy_url(u.proxy_url, f);

  bool durations_ok = true;
  for (const auto& [name, value] : {std::pair{"timeout", u.timeout},
                                    {"poll_interval", u.poll_interval},
                                    {"max_staleness", u.max_staleness}}) {
    if (!readable(name)) {
      durations_ok = false;
    } else if (value <= duration::zero()) {
      f.error(name, fmt::format("must be greater than 0, not {}", format_duration(value)));
      durations_ok = false;
    }
  }
  durations_ok = durations_ok && readable("poll_offset");

  bool limit_ok = readable("rate_limit.requests") && readable("rate_limit.window");
  if (u.limit.requests == 0) {
    f.error("rate_limit.requests", "must be at least 1");
    limit_ok = false;
  }
  if (u.limit.window <= duration::zero()) {
    f.error("rate_limit.window", "must be greater than 0");
    limit_ok = false;
  }

  bool replicas_ok = readable("replicas.count") && readable("replicas.index");
  if (u.replicas.count == 0) {
    f.error("replicas.count",
            "must be at least 1 (the number of daemons polling this organization)");
    replicas_ok = false;
  } else if (replicas_ok && u.replicas.index >= u.replicas.count) {
    f.error("replicas.index",
            fmt::format("{} must be less than replicas.count ({}); replicas are numbered from 0",
                        u.replicas.index, u.replicas.count));
    replicas_ok = false;
  }

  check_labels(u, f);
  if (u.label_name_length_limit != 0 && u.label_name_length_limit < 8) {
    // As in Prometheus, which counts the metric name as the label __name__.
    f.warning("label_name_length_limit",
              fmt::format("{} refuses every body: the metric name counts as the label __name__ "
                          "(8 bytes)", u.label_name_length_limit));
  }
  if (durations_ok) check_schedule(u, f);
  if (durations_ok && limit_ok) check_budget(u, f);
  if (replicas_ok) check_replicas(u, durations_ok, limit_ok, f);
  return f.take();
}

}  // namespace cmp::config
