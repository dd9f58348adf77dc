#include "cmp/server/web_security.hpp"

#include <crypt.h>

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
