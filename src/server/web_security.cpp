#include "cmp/server/web_security.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/detail/base64.hpp>

#include <algorithm>

#include <cstring>
#include <stdexcept>

namespace cmp::server {

namespace asio = boost::asio;

namespace {

std::string sha256(std::string_view a, std::string_view b) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, a.data(), a.size());
  EVP_DigestUpdate(ctx, "\0", 1);
  EVP_DigestUpdate(ctx, b.data(), b.size());
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
  const auto* bytes = ASN1_STRING_get0_data(ip);
  if (ASN1_STRING_length(ip) == 4) return asio::ip::address_v4({bytes[0], bytes[1], bytes[2], bytes[3]}).to_string();
  if (ASN1_STRING_length(ip) == 16) {
    asio::ip::address_v6::bytes_type b{};
    std::copy(bytes, bytes + 16, b.begin());
    return asio::ip::address_v6(b).to_string();
  }
  return {};
}

int verify_mode(config::client_auth a) {
  switch (a) {
    case config::client_auth::no_client_cert: return SSL_VERIFY_NONE;
    case config::client_auth::request_client_cert:
    case config::client_auth::verify_client_cert_if_given: return SSL_VERIFY_PEER;
    case config::client_auth::require_any_client_cert:
    case config::client_auth::require_and_verify_client_cert:
      return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  return SSL_VERIFY_NONE;
}

// RequestClientCert / RequireAnyClientCert accept any certificate, as Go does.
int accept_any(int, X509_STORE_CTX*) { return 1; }

}  // namespace

std::vector<std::string> certificate_sans(const X509* cert) {
  std::vector<std::string> out;
  if (!cert) return out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    std::string value;
    if (n->type == GEN_DNS || n->type == GEN_EMAIL || n->type == GEN_URI) {
      const ASN1_IA5STRING* str = n->d.ia5;
      value.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(str)),
                   static_cast<std::size_t>(ASN1_STRING_length(str)));
    } else if (n->type == GEN_IPADD) {
      value = ip_text(n->d.iPAddress);
    }
    if (!value.empty()) out.push_back(std::move(value));
  }
  GENERAL_NAMES_free(names);
  return out;
}

bool client_allowed(const X509* cert, const std::vector<std::string>& allowed) {
  if (allowed.empty()) return true;
  const auto sans = certificate_sans(cert);
  return std::any_of(sans.begin(), sans.end(), [&](const std::string& san) {
    return std::find(allowed.begin(), allowed.end(), san) != allowed.end();
  });
}

std::shared_ptr<asio::ssl::context> make_server_tls(const config::tls_server_config& tls) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  auto* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, static_cast<int>(tls.min_version));
  SSL_CTX_set_max_proto_version(native, static_cast<int>(tls.max_version));
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                   asio::ssl::context::single_dh_use);
  if (tls.prefer_server_cipher_suites) SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(tls.cert_file, ec);
  if (ec) throw std::runtime_error("cert_file " + tls.cert_file + ": " + ec.message());
  ctx->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
  if (ec) throw std::runtime_error("key_file " + tls.key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("key_file " + tls.key_file + " does not match cert_file " + tls.cert_file);
  if (!tls.openssl_cipher_list.empty() && SSL_CTX_set_cipher_list(native, tls.openssl_cipher_list.c_str()) != 1)
    throw std::runtime_error("cipher_suites: none is supported by this OpenSSL");
  if (!tls.openssl_groups_list.empty() && SSL_CTX_set1_groups_list(native, tls.openssl_groups_list.c_str()) != 1)
    throw std::runtime_error("curve_preferences: not supported by this OpenSSL");
  if (!tls.client_ca_file.empty()) {
    ctx->load_verify_file(tls.client_ca_file, ec);
    if (ec) throw std::runtime_error("client_ca_file " + tls.client_ca_file + ": " + ec.message());
    if (auto* names = SSL_load_client_CA_file(tls.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(native, names);
  }
  const bool verify = tls.client_auth_type == config::client_auth::verify_client_cert_if_given ||
                      tls.client_auth_type == config::client_auth::require_and_verify_client_cert;
  SSL_CTX_set_verify(native, verify_mode(tls.client_auth_type), verify ? nullptr : accept_any);
  // Session resumption across our own restarts is not needed; keep it simple.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  static const unsigned char sid[] = "cerebras-metrics-proxy";
  SSL_CTX_set_session_id_context(native, sid, sizeof sid - 1);
  return ctx;
}

struct basic_auth::crypt_state {
  crypt_data data{};
};

basic_auth::basic_auth(std::map<std::string, std::string> users)
    : users_(users.begin(), users.end()), crypt_(std::make_unique<crypt_state>()) {}

basic_auth::~basic_auth() = default;

bool basic_auth::check(std::string_view header) {
  constexpr std::string_view scheme = "Basic ";
  if (header.size() <= scheme.size() || strncasecmp(header.data(), scheme.data(), scheme.size()) != 0)
    return false;
  auto encoded = header.substr(scheme.size());
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  if (encoded.size() > 4096) return false;
  std::string decoded(boost::beast::detail::base64::decoded_size(encoded.size()), '\0');
  auto [written, read] = boost::beast::detail::base64::decode(decoded.data(), encoded.data(), encoded.size());
  // Beast stops at the '=' padding; anything else left over is garbage.
  if (encoded.substr(read).find_first_not_of('=') != std::string_view::npos) return false;
  decoded.resize(written);
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  const std::string_view user(decoded.data(), colon);
  const std::string_view password(decoded.data() + colon + 1, decoded.size() - colon - 1);
  const auto it = users_.find(user);
  if (it == users_.end()) return false;
  const auto digest = sha256(user, password);
  if (verified_.contains(digest)) return true;
  const std::string pw(password);
  const char* out = crypt_r(pw.c_str(), it->second.c_str(), &crypt_->data);
  if (!out || out[0] == '*') return false;
  const auto& hash = it->second;
  const bool ok = std::strlen(out) == hash.size() && CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
  if (ok) {
    if (verified_.size() > 1024) verified_.clear();  // bound memory under credential churn
    verified_.insert(digest);
  }
  return ok;
}

}  // namespace cmp::server
