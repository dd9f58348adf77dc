#pragma once
// The exporter-toolkit web config applied to the listener: a TLS server
// context (TLS >= 1.2, optional client certificates) and HTTP basic auth
// against bcrypt hashes.

#include <boost/asio/ssl/context.hpp>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <openssl/types.h>

#include "cmp/config/web_config.hpp"

namespace cmp::server {

// Throws std::runtime_error naming the file when cert, key or CA cannot be loaded.
[[nodiscard]] std::shared_ptr<boost::asio::ssl::context> make_server_tls(
    const config::tls_server_config& tls);

// The subject alternative names of `cert` that exporter-toolkit's
// client_allowed_sans compares: DNS names, e-mail addresses and URIs as
// written, IP addresses in their usual text form (`10.0.0.7`, `::1`).
[[nodiscard]] std::vector<std::string> certificate_sans(const X509* cert);

// client_allowed_sans: true when `allowed` is empty, or when the (already
// verified) client certificate has one of those SANs, exact match. A
// connection without a certificate has none.
[[nodiscard]] bool client_allowed(const X509* cert, const std::vector<std::string>& allowed);

// Checks `Authorization: Basic ...` headers. bcrypt is deliberately slow
// (tens of ms per check), so successful checks are remembered by a SHA-256
// of user and password, and a scraper pays the cost once, not per scrape.
// Not thread-safe.
class basic_auth {
 public:
  explicit basic_auth(std::map<std::string, std::string> users);
  ~basic_auth();
  basic_auth(const basic_auth&) = delete;
  basic_auth& operator=(const basic_auth&) = delete;

  [[nodiscard]] bool check(std::string_view authorization_header);

 private:
  std::map<std::string, std::string, std::less<>> users_;
  std::unordered_set<std::string> verified_;  // digests of good user:password pairs
  struct crypt_state;
  std::unique_ptr<crypt_state> crypt_;
};

}  // namespace cmp::server
