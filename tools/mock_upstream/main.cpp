// cerebras-mock-upstream: the simulated Cerebras Metrics API used by the demo
// and the integration tests. See --help and README.md beside this file.

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <openssl/ssl.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <unistd.h>

#include "handler.hpp"
#include "options.hpp"
#include "server.hpp"

namespace {

namespace asio = boost::asio;
namespace mock = cmp::mock;

constexpr const char* prog = "cerebras-mock-upstream";

asio::ssl::context make_tls_context(const mock::options& o) {
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
  // The real API and the daemon both require TLS 1.2 or later.
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.use_certificate_chain_file(o.tls_cert);
  ctx.use_private_key_file(o.tls_key, asio::ssl::context::pem);
  return ctx;
}

// Written via rename so that a test polling the file never reads half a number.
bool write_port_file(const std::string& path, std::uint16_t port) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << port << '\n';
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  mock::options opts;
  try {
    opts = mock::parse_options(argc, argv);
  } catch (const mock::usage_error& e) {
    std::cerr << prog << ": " << e.what() << std::endl;
    return 1;
  }
  if (opts.help) {
    std::cout << mock::usage_text();
    return 0;
  }
  std::signal(SIGPIPE, SIG_IGN);

  std::optional<asio::ssl::context> tls;
  if (!opts.tls_cert.empty()) {
    try {
      tls.emplace(make_tls_context(opts));
    } catch (const std::exception& e) {
      std::cerr << prog << ": --tls-cert/--tls-key: cannot load '" << opts.tls_cert << "' / '"
                << opts.tls_key << "': " << e.what() << std::endl;
      return 1;
    }
  }
  std::unique_ptr<mock::handler> h;
  try {
    h = std::make_unique<mock::handler>(opts);
  } catch (const std::exception& e) {
    std::cerr << prog << ": --request-log: " << e.what() << std::endl;
    return 1;
  }

  asio::io_context ioc(1);
  mock::server srv(ioc, opts, *h, tls ? &*tls : nullptr);
  try {
    srv.listen();
  } catch (const std::exception& e) {
    std::cerr << prog << ": " << e.what() << std::endl;
    return 2;
  }
  if (!opts.port_file.empty() && !write_port_file(opts.port_file, srv.port())) {
    std::cerr << prog << ": cannot write --port-file '" << opts.port_file << "'" << std::endl;
    return 2;
  }

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    std::cerr << prog << ": shutting down" << std::endl;
    srv.shutdown();
  });
  srv.start();
  std::cerr << prog << ": listening on " << (tls ? "https" : "http") << "://"
            << (opts.listen_host.find(':') != std::string::npos ? "[" + opts.listen_host + "]"
                                                                : opts.listen_host)
            << ":" << srv.port() << "/api/v1/metrics/organizations/" << opts.shape.org_id
            << " (window " << opts.window.count() << "ms, " << opts.shape.endpoints
            << " endpoints, budget " << opts.rate_limit << " per " << opts.rate_window.count()
            << "ms)" << std::endl;
  ioc.run();
  return 0;
}
