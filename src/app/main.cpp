// cerebras-metrics-proxy: polls the Cerebras Metrics API under a hard
// request budget and re-serves the cached exposition to any number of
// scrapers. See README.md.

#include <boost/program_options.hpp>

#include <iostream>

#include "cmp/app/daemon.hpp"
#include "cmp/config/config.hpp"
#include "cmp/telemetry/build_info.hpp"

namespace po = boost::program_options;

namespace {

constexpr const char* usage =
    "Usage: cerebras-metrics-proxy --config.file=FILE [flags]\n"
    "       cerebras-metrics-proxy --config.file=FILE --check-config\n"
    "       cerebras-metrics-proxy --version | --help\n\n"
    "Polls the Cerebras Metrics API once per window under a hard request budget\n"
    "and serves the cached exposition on /metrics.\n\nFlags";

void print_version() {
  std::cout << "cerebras-metrics-proxy, version " << CMP_VERSION << " (revision: " << cmp::telemetry::build_revision()
            << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cmp;
  po::options_description flags(usage);
  std::string config_file, config_alias, listen, web_config, level, format, replica_index;
  std::size_t max_connections = 1024;
  flags.add_options()
      ("config.file", po::value(&config_file), "Configuration file (YAML).")
      ("config", po::value(&config_alias), "Same as --config.file.")
      ("web.listen-address", po::value(&listen), "Address to listen on (host:port, [v6]:port); overrides `listen`.")
      ("web.config.file", po::value(&web_config), "Exporter-toolkit web config (TLS, basic auth); overrides `web_config_file`.")
      ("web.enable-lifecycle", po::bool_switch(), "Enable POST /-/reload.")
      ("web.max-connections", po::value(&max_connections)->default_value(1024), "Most concurrent HTTP connections; more get 503.")
      ("log.level", po::value(&level), "debug|info|warn|error; overrides `log.level`.")
      ("log.format", po::value(&format), "logfmt|json; overrides `log.format`.")
      ("replica.index", po::value(&replica_index), "N, or a StatefulSet pod name NAME-N: this daemon's place among the replicas sharing this configuration; overrides every upstream's `replicas.index`.")
      ("check-config", po::bool_switch(), "Validate the configuration, print a summary and exit 0 (valid) or 1.")
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
    std::cout << flags << "\n";
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
  if (vm["check-config"].as<bool>()) {
    std::cout << config::summarize(cfg);
    std::cout << "configuration OK\n";
    return app::exit_ok;
  }
  return app::run_daemon(o, std::move(cfg));
}
