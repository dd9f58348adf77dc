#pragma once
// The Prometheus exporter-toolkit web configuration (`--web.config.file`):
// TLS for the local listener and HTTP basic auth, in the same YAML format
// every Prometheus exporter reads, so existing files carry over. Differences
// from exporter-toolkit, all reported as errors rather than ignored:
//   - TLS 1.2 is the floor: min_version/max_version TLS10/TLS11 are refused;
//   - inline `cert`, `key`, `client_ca` and the `rate_limit` section are not
//     supported (use the *_file keys);
//   - HTTP/2 is not served: `http2: true` is accepted with a warning.
// Plain structs, built only by load_web_config()/parse_web_config(); safe to
// share read-only between threads.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cmp/config/config.hpp"

namespace cmp::config {

// crypto/tls ClientAuthType, under exporter-toolkit's names.
enum class client_auth : std::uint8_t {
  no_client_cert,               // NoClientCert (default)
  request_client_cert,          // RequestClientCert: asked for, not required, not verified
  require_any_client_cert,      // RequireAnyClientCert: required, not verified
  verify_client_cert_if_given,  // VerifyClientCertIfGiven: verified against client_ca_file if sent
  require_and_verify_client_cert  // RequireAndVerifyClientCert: the only secure mTLS choice
};

// Values are the wire versions, equal to OpenSSL's TLS1_2_VERSION and
// TLS1_3_VERSION, so they can be passed to SSL_CTX_set_min_proto_version.
enum class tls_version : std::uint16_t { tls12 = 0x0303, tls13 = 0x0304 };

struct tls_server_config {
  std::string cert_file;  // PEM chain; resolved against the web config's directory
  std::string key_file;   // PEM private key; same
  client_auth client_auth_type = client_auth::no_client_cert;
  std::string client_ca_file;  // PEM trust anchors for client certificates; same
  tls_version min_version = tls_version::tls12;
  tls_version max_version = tls_version::tls13;
  // As written (Go names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256); empty:
  // the library defaults. Go ignores TLS 1.3 suites here, and so do we.
  std::vector<std::string> cipher_suites;
  // The same TLS <= 1.2 suites in OpenSSL's names, ':'-joined, ready for
  // SSL_CTX_set_cipher_list; empty when cipher_suites is empty.
  std::string openssl_cipher_list;
  // As written (CurveP256, CurveP384, CurveP521, X25519); empty: defaults.
  std::vector<std::string> curve_preferences;
  // OpenSSL group names, ':'-joined, for SSL_CTX_set1_groups_list.
  std::string openssl_groups_list;
  bool prefer_server_cipher_suites = true;  // SSL_OP_CIPHER_SERVER_PREFERENCE
  // When non-empty, a client certificate must carry one of these SANs (DNS,
  // IP, e-mail or URI, exact match). Requires RequireAnyClientCert or
  // RequireAndVerifyClientCert.
  std::vector<std::string> client_allowed_sans;
};

struct http_server_config {
  // Response headers to add, only the ones exporter-toolkit allows:
  // Strict-Transport-Security, X-Content-Type-Options (nosniff),
  // X-Frame-Options (deny|sameorigin), X-XSS-Protection,
  // Content-Security-Policy.
  std::map<std::string, std::string> headers;
};

struct web_config {
  // Engaged when the file configures TLS (any of cert_file, key_file,
  // client_ca_file, client_auth_type set): serve HTTPS. Otherwise plain HTTP.
  std::optional<tls_server_config> tls;
  http_server_config http;
  // user -> bcrypt hash ($2a$, $2b$ or $2y$). Empty: no authentication.
  // Check with crypt_r(3) (libxcrypt understands all three prefixes).
  std::map<std::string, std::string> basic_auth_users;
  std::string source;                 // the file it was read from, for messages
  std::vector<std::string> warnings;  // non-fatal findings (e.g. `http2: true`)
};

// Reads and validates an exporter-toolkit web config file; relative
// cert/key/CA paths are resolved against the file's directory, and cert_file,
// key_file and client_ca_file must be readable now. Throws config_error with
// every problem, one `FILE: KEY: reason` line each. Hashes are never echoed.
[[nodiscard]] web_config load_web_config(const std::filesystem::path& file);
// Same from text, without touching the file system (paths left as written).
[[nodiscard]] web_config parse_web_config(std::string_view yaml, std::string_view source);

// True when `hash` has the shape of a bcrypt hash: $2a$/$2b$/$2y$, a cost of
// 04-31, then 53 characters of bcrypt's base64.
[[nodiscard]] bool is_bcrypt_hash(std::string_view hash) noexcept;

[[nodiscard]] std::string_view to_string(client_auth a) noexcept;
[[nodiscard]] std::string_view to_string(tls_version v) noexcept;

}  // namespace cmp::config
