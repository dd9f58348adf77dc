#include "cmp/server/web_security.hpp"

#include <crypt.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/beast/core/detail/base64.hpp>

namespace cmp::server {
namespace {

std::string bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt), nullptr);
  crypt_data data{};
  return crypt_r(password.c_str(), salt, &data);
}

std::string basic(const std::string& user_pass) {
  std::string out(boost::beast::detail::base64::encoded_size(user_pass.size()), '\0');
  out.resize(boost::beast::detail::base64::encode(out.data(), user_pass.data(), user_pass.size()));
  return "Basic " + out;
}

using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

// A self-signed certificate with these subjectAltName entries (OpenSSL's
// config syntax, "DNS:a,IP:10.0.0.7"); none when empty.
x509_ptr certificate_with_sans(const char* sans) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                                                          &EVP_PKEY_free);
  x509_ptr cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  if (*sans) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, sans);
    EXPECT_NE(ext, nullptr) << sans;
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert.get(), key.get(), EVP_sha256());
  return cert;
}

TEST(ClientSans, EveryKindExporterToolkitComparesInItsTextForm) {
  const auto cert = certificate_with_sans(
      "DNS:scraper.example,IP:10.0.0.7,IP:2001:db8::1,email:ops@example.com,URI:spiffe://example/prometheus,"
      "otherName:1.2.3.4;UTF8:ignored");
  EXPECT_THAT(certificate_sans(cert.get()),
              ::testing::ElementsAre("scraper.example", "10.0.0.7", "2001:db8::1", "ops@example.com",
                                     "spiffe://example/prometheus"));
}

TEST(ClientSans, AllowedOnlyOnAnExactMatch) {
  const auto cert = certificate_with_sans("DNS:scraper.example,IP:10.0.0.7");
  EXPECT_TRUE(client_allowed(cert.get(), {}));  // no list: any verified certificate
  EXPECT_TRUE(client_allowed(cert.get(), {"other.example", "scraper.example"}));
  EXPECT_TRUE(client_allowed(cert.get(), {"10.0.0.7"}));
  EXPECT_FALSE(client_allowed(cert.get(), {"Scraper.example"}));
  EXPECT_FALSE(client_allowed(cert.get(), {"example"}));
  EXPECT_FALSE(client_allowed(cert.get(), {"10.0.0.70"}));
  const auto bare = certificate_with_sans("");
  EXPECT_TRUE(certificate_sans(bare.get()).empty());
  EXPECT_FALSE(client_allowed(bare.get(), {"scraper.example"}));
  EXPECT_FALSE(client_allowed(nullptr, {"scraper.example"}));  // no certificate at all
}

TEST(BasicAuth, AcceptsOnlyTheRightUserAndPassword) {
  basic_auth auth({{"prometheus", bcrypt("s3cret")}, {"grafana", bcrypt("other")}});
  EXPECT_TRUE(auth.check(basic("prometheus:s3cret")));
  EXPECT_TRUE(auth.check(basic("prometheus:s3cret")));  // second time from the cache
  EXPECT_TRUE(auth.check(basic("grafana:other")));
  EXPECT_FALSE(auth.check(basic("prometheus:other")));  // another user's password
  EXPECT_FALSE(auth.check(basic("prometheus:s3cre")));
  EXPECT_FALSE(auth.check(basic("nobody:s3cret")));
  EXPECT_FALSE(auth.check(basic("prometheus")));  // no colon
  EXPECT_TRUE(auth.check("basic " + basic("prometheus:s3cret").substr(6)));  // scheme is case-insensitive
}

TEST(BasicAuth, RejectsMalformedHeaders) {
  basic_auth auth({{"u", bcrypt("p")}});
  const std::vector<std::string> headers = {"",         "Basic",   "Basic ", "Bearer dTpw",
                                            "Basic !!!notbase64", "Digest x",
                                            "Basic " + std::string(5000, 'A')};
  for (const auto& h : headers)
    EXPECT_FALSE(auth.check(h)) << h;
}

TEST(BasicAuth, PasswordsWithColonsWork) {
  basic_auth auth({{"u", bcrypt("a:b:c")}});
  EXPECT_TRUE(auth.check(basic("u:a:b:c")));
  EXPECT_FALSE(auth.check(basic("u:a")));
}

TEST(ServerTls, MissingFilesAreClearErrors) {
  config::tls_server_config tls;
  tls.cert_file = "/nonexistent/cert.pem";
  tls.key_file = "/nonexistent/key.pem";
  try {
    (void)make_server_tls(tls);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cert_file /nonexistent/cert.pem"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cmp::server
