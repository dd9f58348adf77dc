// cerebras-metrics-proxy: polls the Cerebras Metrics API under a hard
// request budget and re-serves the cached exposition to any number of
// scrapers. See README.md.

#include <boost/program_options.hpp>

#include <iostream>
#include <sstream>

#include "cmp/app/daemon.hpp"
#include "cmp/app/probe.hpp"
#include "cmp/config/config.hpp"
#include "cmp/telemetry/build_info.hpp"
#include "cmp/upstream/state_lock.hpp"

namespace po = boost::program_options;

namespace {

constexpr const char* usage =
    "Usage: cerebras-metrics-proxy --config.file=FILE [flags]\n"
    "  or:  cerebras-metrics-proxy --config.file=FILE --check-config\n"
    "  or:  cerebras-metrics-proxy --config.file=FILE --probe\n"
    "  or:  cerebras-metrics-proxy --version | --help\n\n"
    "Polls the Cerebras Metrics API once per window under a hard request budget\n"
    "and serves the cached exposition on /metrics.\n";

// After the flags. The man page is made from this text (help2man, at build
// time), and tests/integration/docs_drift_test.py checks that the variables
// the daemon reads, the exit codes and the flags agree with it and the README.
constexpr const char* epilogue =
    "Environment:\n"
    "  CEREBRAS_API_KEY          The API key, read from the variable an upstream's\n"
    "                            api_key_env names (CEREBRAS_API_KEY by default)\n"
    "                            unless it sets api_key_file.\n"
    "  CREDENTIALS_DIRECTORY     Where a relative api_key_file is read (systemd\n"
    "                            LoadCredential=); unset: next to the config file.\n"
    "  HTTPS_PROXY, https_proxy  HTTP CONNECT proxy for https:// upstreams without\n"
    "                            proxy_url (lower case wins).\n"
    "  HTTP_PROXY, http_proxy    The same for http:// (loopback) upstreams.\n"
    "  NO_PROXY, no_proxy        Hosts reached without the proxy: comma-separated\n"
    "                            names, .domain suffixes, or *.\n"
    "  NOTIFY_SOCKET, WATCHDOG_USEC\n"
    "                            Set by systemd (Type=notify, WatchdogSec=): readiness\n"
    "                            and watchdog notifications.\n"
    "\n"
    "Exit status:\n"
    "  0  Clean shutdown; --check-config: the configuration is valid; --probe:\n"
    "     every upstream answered with metrics.\n"
    "  1  Bad configuration or flags (the message names the file, the key and what\n"
    "     is wrong); --probe: an upstream failed or its request was refused.\n"
    "  2  Runtime failure, e.g. the listen address cannot be bound.\n"
    "\n"
    "Documentation:\n"
    "  man cerebras-metrics-proxy; README.md (configuration keys, metrics, what\n"
    "  stays stable across upgrades) and docs/production.md (systemd, containers,\n"
    "  Prometheus, troubleshooting) in the source tree; the commented example\n"
    "  configuration config/cerebras-metrics-proxy.yml.\n";

// Each flag on its own line, its description wrapped below it at column 24
// (help2man takes 20 or more spaces there for a flag's description: this is
// the layout it turns into the man page's OPTIONS).
void print_flags(std::ostream& out, const po::options_description& flags) {
  constexpr std::size_t indent = 24;
  constexpr std::size_t width = 80;
  out << "Options:\n";
  for (const auto& o : flags.options()) {
    std::string name = "--" + o->long_name();
    const auto shown = o->canonical_display_name(po::command_line_style::allow_dash_for_short);
    if (shown.starts_with('-') && shown != name) name = shown + ", " + name;  // -h, --help
    const auto param = o->format_parameter();
    out << "  " << name << (param.empty() ? "" : "=" + param) << "\n";
    std::string line;
    std::istringstream words(o->description());
    for (std::string word; words >> word;) {
      if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
        out << std::string(indent, ' ') << line << "\n";
        line.clear();
      }
      line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty()) out << std::string(indent, ' ') << line << "\n";
  }
}

void print_version() {
  std::cout << "cerebras-metrics-proxy, version " << CMP_VERSION << " (revision: " << cmp::telemetry::build_revision()
            << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cmp;
  po::options_description flags;
  std::string config_file, config_alias, listen, web_config, level, format, replica_index;
  std::size_t max_connections = 1024;
  flags.add_options()
      ("config.file", po::value(&config_file)->value_name("FILE"), "Configuration file (YAML). Required. Default: none.")
      ("config", po::value(&config_alias)->value_name("FILE"), "Same as --config.file. Default: none.")
      ("web.listen-address", po::value(&listen)->value_name("HOST:PORT"),
       "Address to listen on (host:port, [v6]:port, :port). Default: the file's `listen` (127.0.0.1:9753).")
      ("web.config.file", po::value(&web_config)->value_name("FILE"),
       "Exporter-toolkit web config (TLS, basic auth). Default: the file's `web_config_file` (none: plain HTTP).")
      ("web.enable-lifecycle", po::bool_switch(), "Enable POST /-/reload. Default: off.")
      ("web.max-connections", po::value(&max_connections)->value_name("N"),
       "Most concurrent HTTP connections; more get 503. Default: 1024.")
      ("log.level", po::value(&level)->value_name("LEVEL"),
       "debug, info, warn or error. Default: the file's `log.level` (info).")
      ("log.format", po::value(&format)->value_name("FORMAT"),
       "logfmt or json. Default: the file's `log.format` (logfmt).")
      ("replica.index", po::value(&replica_index)->value_name("N|NAME-N"),
       "N, or a StatefulSet pod name NAME-N: this daemon's place among the replicas sharing this "
       "configuration; overrides every upstream's `replicas.index`. Default: the file's `replicas.index` (0).")
      ("check-config", po::bool_switch(),
       "Validate the configuration (keys included), print a summary and exit 0 (valid) or 1. Default: off.")
      ("probe", po::bool_switch(),
       "Send one request per upstream, recorded in the budget ledger in state_dir (refused when the budget "
       "is spent or a daemon uses that state_dir), print what it found and exit 0 (all answered) or 1. "
       "Default: off.")
      ("version", po::bool_switch(), "Print the version and exit.")
      ("help,h", po::bool_switch(), "Print this help and exit.");

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(flags).style(
                  po::command_line_style::unix_style & ~po::command_line_style::allow_guessing).run(),
              vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "cerebras-metrics-proxy: " << e.what() << "\n(see --help)\n";
    return app::exit_config;
  }
  if (vm["help"].as<bool>()) {
    std::cout << usage << "\n";
    print_flags(std::cout, flags);
    std::cout << "\n" << epilogue;
    return app::exit_ok;
  }
  if (vm["version"].as<bool>()) {
    print_version();
    return app::exit_ok;
  }

  app::overrides o;
  if (!config_file.empty() && !config_alias.empty() && config_file != config_alias) {
    std::cerr << "cerebras-metrics-proxy: --config.file and --config name different files\n";
    return app::exit_config;
  }
  o.config_file = config_file.empty() ? config_alias : config_file;
  if (o.config_file.empty()) {
    std::cerr << "cerebras-metrics-proxy: --config.file is required (see --help)\n";
    return app::exit_config;
  }
  if (vm.count("web.listen-address")) {
    if (auto problem = config::listen_address_problem(listen, true); !problem.empty()) {
      std::cerr << "cerebras-metrics-proxy: --web.listen-address: " << problem << "\n";
      return app::exit_config;
    }
    o.listen_address = listen;
  }
  if (vm.count("web.config.file")) o.web_config_file = web_config;
  if (vm.count("log.level")) {
    o.log_level = config::parse_log_level(level);
    if (!o.log_level) {
      std::cerr << "cerebras-metrics-proxy: --log.level: \"" << level << "\" is not debug, info, warn or error\n";
      return app::exit_config;
    }
  }
  if (vm.count("log.format")) {
    o.log_format = config::parse_log_format(format);
    if (!o.log_format) {
      std::cerr << "cerebras-metrics-proxy: --log.format: \"" << format << "\" is not logfmt or json\n";
      return app::exit_config;
    }
  }
  if (vm.count("replica.index")) {
    o.replica_index = config::parse_replica_index(replica_index);
    if (!o.replica_index) {
      std::cerr << "cerebras-metrics-proxy: --replica.index: \"" << replica_index
                << "\" is neither a number nor a StatefulSet pod name NAME-N\n";
      return app::exit_config;
    }
  }
  o.enable_lifecycle = vm["web.enable-lifecycle"].as<bool>();
  if (max_connections == 0) {
    std::cerr << "cerebras-metrics-proxy: --web.max-connections must be at least 1\n";
    return app::exit_config;
  }
  o.max_connections = max_connections;

  config::config cfg;
  try {
    cfg = app::load_effective_config(o);
    // Keys are part of a valid configuration: a missing one is a config error.
    for (const auto& u : cfg.upstreams) (void)config::load_api_key(u, cfg.source, &cfg.warnings);
  } catch (const config::config_error& e) {
    for (const auto& p : e.problems()) std::cerr << p << "\n";
    return app::exit_config;
  }
  if (vm["probe"].as<bool>()) {
    for (const auto& w : cfg.warnings) std::cout << "warning: " << w << "\n";
    return app::run_probe(cfg, std::cout);
  }
  if (vm["check-config"].as<bool>()) {
    std::cout << config::summarize(cfg);
    std::cout << "configuration OK\n";
    return app::exit_ok;
  }
  // --probe records its requests in the ledger files, which a running daemon
  // reads only at start: while this is held, a probe on this state_dir is
  // refused. (A reload to another state_dir keeps the first one locked.)
  const auto state_lock = upstream::state_lock::shared(cfg.state_dir);
  return app::run_daemon(o, std::move(cfg));
}
