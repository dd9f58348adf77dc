#pragma once
// The daemon's configuration: plain structs with their defaults, one line of
// documentation per field (the README's reference says the same). Built only
// by load_config()/parse_config(), which validate everything at once.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cmp/config/secret.hpp"

namespace cmp::config {

using duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

enum class log_level : std::uint8_t { debug, info, warn, error };
enum class log_format : std::uint8_t { logfmt, json };
enum class timestamp_mode : std::uint8_t { none, window };

struct rate_limit {
  std::uint32_t requests = 6;  // never more than this many requests ...
  duration window = 60s;       // ... in any sliding window of this length
};

// This daemon's place among R copies polling the same organization (an HA
// pair: each Prometheus with its own sidecar daemon). It does not divide the
// budget itself: `rate_limit.requests` is already this replica's share, and
// --check-config warns when requests x count can exceed the organization's
// limit. What it changes is *when*: the span in which a poll may start
// ([poll_offset, poll_interval - timeout] after each boundary) is cut into
// `count` equal slices and replica `index` starts its polls and retries only
// in its own slice, so replicas never ask at the same moment, yet all fetch
// the same window and (with `timestamps: window`) serve identical samples.
struct replica_set {
  std::uint32_t count = 1;  // daemons polling this organization, each with this config
  std::uint32_t index = 0;  // this daemon's place, 0 <= index < count
};

struct upstream {
  std::string name = "default";                  // [a-zA-Z0-9_-]+, unique; the `upstream` label
  std::string url;                               // https://..., or http:// for loopback hosts only
  std::string api_key_env = "CEREBRAS_API_KEY";  // environment variable holding the key
  std::string api_key_file;                      // or a file holding it (wins over the env var)
  std::string ca_file;            // extra PEM trust anchors, added to the system store
  std::string proxy_url;          // HTTP CONNECT proxy; empty: HTTPS_PROXY/NO_PROXY
  duration timeout = 10s;         // whole request, connect to last byte; < poll_interval
  duration poll_interval = 60s;   // polls at wall-clock multiples of this ...
  duration poll_offset = 5s;      // ... plus this offset; 0 <= offset < poll_interval
  rate_limit limit;               // hard budget, retries and restarts included
  duration max_staleness = 5min;  // older snapshots are no longer served; >= poll_interval
  timestamp_mode timestamps = timestamp_mode::none;  // none | window
  std::map<std::string, std::string> extra_labels;   // added to every upstream sample
  // Upstream label -> served name, e.g. {endpoint: cerebras_endpoint} where
  // prometheus-operator's target label `endpoint` would collide.
  std::map<std::string, std::string> rename_labels;
  // Also serve cerebras_proxy_cumulative_<name> counters: the running sum of
  // each per-window `*_total` gauge, every window added once, persisted.
  bool derived_counters = false;
  replica_set replicas;  // HA: which of several daemons on one organization this is
  // Prometheus's opt-in scrape_config limits, applied to the upstream's body
  // as Prometheus applies them to a scrape: a body over one is refused like a
  // body Prometheus cannot parse. 0 = no limit (Prometheus's default).
  std::uint32_t label_limit = 0;               // labels of a series, the name included
  std::uint32_t label_name_length_limit = 0;   // bytes of a label name (`__name__` is 8)
  std::uint32_t label_value_length_limit = 0;  // bytes of a label value, the name included
  std::uint32_t sample_limit = 0;              // sample lines in a body
};

struct log_settings {
  log_level level = log_level::info;
  log_format format = log_format::logfmt;
};

struct config {
  std::string listen = "127.0.0.1:9753";  // host:port or [v6]:port
  std::string web_config_file;            // exporter-toolkit web config; empty: plain HTTP
  std::string state_dir = "/var/lib/cerebras-metrics-proxy";  // ledger + last snapshot
  log_settings log;
  std::vector<upstream> upstreams;    // at least one
  std::string source;                 // the file it was read from, for messages
  std::vector<std::string> warnings;  // non-fatal findings (e.g. world-readable file)
};

// One finding of validate(): `key` is relative to the upstream (`timeout`,
// `rate_limit.requests`, `extra_labels.env`).
struct problem {
  std::string key;
  std::string reason;
  bool warning = false;  // said, but the configuration is accepted
};

// Every rule an upstream's values must satisfy, alone and across fields (the
// schedule fits the interval, the budget covers the polls, replicas get a
// slice of at least 1 s each, ...): errors and warnings, all at once. Pure.
// The config reader calls it on what it read; whoever changes a field
// afterwards (a command-line override) calls it again. `unreadable` names
// fields whose value could not be read: they hold their defaults, so rules
// comparing them are skipped rather than reported against the default.
[[nodiscard]] std::vector<problem> validate(const upstream& u,
                                            const std::set<std::string>& unreadable = {});

// Every problem found in a configuration, each one line naming the file, the
// key and the reason: `cfg.yml: upstreams[0].timeout: "10x" is not a duration`.
class config_error : public std::runtime_error {
 public:
  explicit config_error(std::vector<std::string> problems);
  [[nodiscard]] const std::vector<std::string>& problems() const noexcept { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Reads and validates a YAML file. Throws config_error (unreadable file,
// YAML syntax, unknown key, bad value: all problems at once). Relative
// state_dir, web_config_file and ca_file are resolved against the file's
// directory (as Prometheus does), and ca_file must be readable. Rule worth
// knowing: timeout < poll_interval, so one fetch per upstream is in flight.
// The file's mode is not checked: it holds no secret (keys are refused in
// it), except a proxy_url with a password, which warns when the file is
// world-readable.
[[nodiscard]] config load_config(const std::filesystem::path& file);
// Same, from text; `source` names it in messages. Touches no files: paths
// stay as written.
[[nodiscard]] config parse_config(std::string_view yaml, std::string_view source);

// Every key the reader accepts, written as the README's table writes them:
// `listen`, `log.level`, `upstreams[].name`, `upstreams[].rate_limit.requests`
// (a block's keys, not the block itself). From the reader's own tables, so
// that a test can tell when the README or the example configuration lacks one.
[[nodiscard]] std::vector<std::string> accepted_keys();

// Prometheus duration notation: `500ms`, `10s`, `5m`, `1h`, `1h30m`, also
// `d`, `w`, `y`. nullopt when malformed.
[[nodiscard]] std::optional<duration> parse_duration(std::string_view text);
// The inverse, shortest Prometheus form: 90000ms -> "1m30s".
[[nodiscard]] std::string format_duration(duration d);

// The Metrics API's documented limit per organization. rate_limit defaults to
// it; with replicas, the copies together must stay within it.
inline constexpr std::uint32_t documented_requests_per_minute = 6;

// The most requests one replica's rate_limit lets through in any 60 s: a
// sliding window shorter than a minute fits ceil(60 s / window) times.
[[nodiscard]] std::uint64_t max_requests_per_minute(const rate_limit& limit);

// Where `api_key_file` is read from: as written when absolute, else under
// $CREDENTIALS_DIRECTORY (systemd's LoadCredential=) when that is set, else
// next to `source`. The daemon stats this path before each poll.
[[nodiscard]] std::filesystem::path api_key_file_path(const upstream& u, std::string_view source);

// The upstream's API key, from `api_key_file` when set (a relative path is
// resolved against $CREDENTIALS_DIRECTORY, systemd's LoadCredential=, when
// that is set, else against the directory of `source`), else from the
// `api_key_env` variable. Throws config_error
// naming the variable or file (never the value) when missing, unreadable or
// empty. Trailing whitespace/newlines of a key file are stripped. Appends a
// warning to `warnings` when the key file is world-readable.
[[nodiscard]] secret load_api_key(const upstream& u, std::string_view source,
                                  std::vector<std::string>* warnings = nullptr);

// The warning for a file holding a secret (the API key, the listener's TLS
// key) with mode `mode`, naming `where` (`FILE: KEY`), the file and the fix;
// empty when the mode is fine. Readable by everyone warns. Readable by the
// file's group does not: a Kubernetes Secret mounted with `fsGroup` is 0440
// and cannot be changed, and a packaged root:group 0640 file is deliberate.
[[nodiscard]] std::string world_readable_secret_warning(std::string_view where,
                                                        const std::filesystem::path& file,
                                                        unsigned mode);

// --- Additions for the command line and --check-config -------------------

// Human summary for `--check-config`: listen address, state_dir, and per
// upstream its URL, key source (never the key), schedule, budget and
// timestamps. Ends with the warnings, one per line.
[[nodiscard]] std::string summarize(const config& c);

// `listen` split into its parts. host has no brackets; empty means every
// interface (`:9753`, as Go exporters accept).
struct listen_address {
  std::string host;
  std::uint16_t port = 0;
};
// host:port, [v6]:port or :port. Port 0 is refused unless allow_port_zero
// (tests pass `--web.listen-address=127.0.0.1:0` and read the port back);
// the `listen` key in the file always requires 1-65535.
[[nodiscard]] std::optional<listen_address> parse_listen_address(std::string_view text,
                                                                 bool allow_port_zero = false);
// Why `text` is not a listen address, for a flag's error message; empty when
// it is one.
[[nodiscard]] std::string listen_address_problem(std::string_view text,
                                                 bool allow_port_zero = false);

// --replica.index: this daemon's place among the replicas that share one
// configuration file (the pods of a StatefulSet, which all mount one
// ConfigMap). The value is a number, or a StatefulSet pod name `NAME-N`
// whose ordinal N is taken: Kubernetes hands a container its pod's name
// (the downward API's metadata.name, which is also its host name), not the
// ordinal alone. nullopt when the text is neither.
[[nodiscard]] std::optional<std::uint32_t> parse_replica_index(std::string_view text);
// Sets `replicas.index` of every upstream to `index`: each replica of a
// shared configuration polls every organization in it, so every upstream
// must count that many replicas. Throws config_error naming each upstream
// whose `replicas.count` is not above `index`.
void set_replica_index(config& c, std::uint32_t index);

// For the --log.level / --log.format flags; nullopt when not a known value.
[[nodiscard]] std::optional<log_level> parse_log_level(std::string_view s) noexcept;
[[nodiscard]] std::optional<log_format> parse_log_format(std::string_view s) noexcept;
[[nodiscard]] std::string_view to_string(log_level l) noexcept;
[[nodiscard]] std::string_view to_string(log_format f) noexcept;
[[nodiscard]] std::string_view to_string(timestamp_mode m) noexcept;

}  // namespace cmp::config
