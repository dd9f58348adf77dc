#include "cmp/config/web_config.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace cmp::config {
namespace {

using test::has_problem;

// A valid bcrypt hash (exporter-toolkit's documentation example).
constexpr std::string_view hash = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG";

std::vector<std::string> web_problems(std::string_view yaml) {
  try {
    (void)parse_web_config(yaml, "t.yml");
  } catch (const config_error& e) {
    return e.problems();
  }
  return {};
}

TEST(ParseWebConfig, EmptyMeansPlainHttpWithoutAuth) {
  for (const char* text : {"", "# nothing\n", "tls_server_config:\n", "{}\n"}) {
    const web_config w = parse_web_config(text, "t.yml");
    EXPECT_FALSE(w.tls.has_value()) << text;
    EXPECT_TRUE(w.basic_auth_users.empty());
    EXPECT_TRUE(w.http.headers.empty());
    EXPECT_TRUE(w.warnings.empty()) << test::joined(w.warnings);
    EXPECT_EQ(w.source, "t.yml");
  }
}

TEST(ParseWebConfig, TlsDefaults) {
  const web_config w =
      parse_web_config("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", "t.yml");
  ASSERT_TRUE(w.tls.has_value());
  const tls_server_config& t = *w.tls;
  EXPECT_EQ(t.cert_file, "a.crt");
  EXPECT_EQ(t.key_file, "a.key");
  EXPECT_EQ(t.client_auth_type, client_auth::no_client_cert);
  EXPECT_EQ(t.client_ca_file, "");
  EXPECT_EQ(t.min_version, tls_version::tls12);
  EXPECT_EQ(t.max_version, tls_version::tls13);
  EXPECT_TRUE(t.cipher_suites.empty());
  EXPECT_EQ(t.openssl_cipher_list, "");
  EXPECT_TRUE(t.curve_preferences.empty());
  EXPECT_EQ(t.openssl_groups_list, "");
  EXPECT_TRUE(t.prefer_server_cipher_suites);
  EXPECT_TRUE(t.client_allowed_sans.empty());
  EXPECT_EQ(static_cast<int>(tls_version::tls12), 0x0303);  // TLS1_2_VERSION
  EXPECT_EQ(static_cast<int>(tls_version::tls13), 0x0304);  // TLS1_3_VERSION
}

TEST(ParseWebConfig, EverySetting) {
  const web_config w = parse_web_config(std::string(R"(
tls_server_config:
  cert_file: /etc/cmp/tls.crt
  key_file: /etc/cmp/tls.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: /etc/cmp/clients.pem
  client_allowed_sans: [prometheus.internal, 10.0.0.5]
  min_version: TLS13
  max_version: TLS13
  cipher_suites:
    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    - TLS_AES_128_GCM_SHA256
    - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
  curve_preferences: [X25519, CurveP256]
  prefer_server_cipher_suites: false
http_server_config:
  http2: false
  headers:
    X-Frame-Options: sameorigin
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000
    Content-Security-Policy: "default-src 'self'"
    X-XSS-Protection: "1; mode=block"
basic_auth_users:
  alice: )") + std::string(hash) +
                                            "\n  bob: " + "$2b$04$" + std::string(53, 'A') + "\n",
                                        "t.yml");
  ASSERT_TRUE(w.tls.has_value());
  const tls_server_config& t = *w.tls;
  EXPECT_EQ(t.client_auth_type, client_auth::require_and_verify_client_cert);
  EXPECT_EQ(t.client_ca_file, "/etc/cmp/clients.pem");
  EXPECT_EQ(t.client_allowed_sans, (std::vector<std::string>{"prometheus.internal", "10.0.0.5"}));
  EXPECT_EQ(t.min_version, tls_version::tls13);
  EXPECT_EQ(t.cipher_suites.size(), 3U);
  // TLS 1.3 suites are not configurable (as in Go) and drop out of the list.
  EXPECT_EQ(t.openssl_cipher_list, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
  EXPECT_EQ(t.openssl_groups_list, "X25519:P-256");
  EXPECT_FALSE(t.prefer_server_cipher_suites);
  EXPECT_EQ(w.http.headers.size(), 5U);
  EXPECT_EQ(w.http.headers.at("X-Frame-Options"), "sameorigin");
  EXPECT_EQ(w.basic_auth_users.size(), 2U);
  EXPECT_EQ(w.basic_auth_users.at("alice"), hash);
  EXPECT_TRUE(w.warnings.empty()) << test::joined(w.warnings);
}

TEST(ParseWebConfig, ClientAuthNames) {
  const std::pair<const char*, client_auth> cases[] = {
      {"NoClientCert", client_auth::no_client_cert},
      {"RequestClientCert", client_auth::request_client_cert},
      {"RequireAnyClientCert", client_auth::require_any_client_cert},
      {"RequireClientCert", client_auth::require_any_client_cert},  // exporter-toolkit's alias
      {"VerifyClientCertIfGiven", client_auth::verify_client_cert_if_given},
      {"RequireAndVerifyClientCert", client_auth::require_and_verify_client_cert},
  };
  for (const auto& [name, expected] : cases) {
    // A client CA with NoClientCert is refused (see the error cases).
    const std::string ca = std::string_view(name) == "NoClientCert" ? "" : "  client_ca_file: ca\n";
    const web_config w = parse_web_config("tls_server_config:\n  cert_file: c\n  key_file: k\n" +
                                              ca + "  client_auth_type: " + name + "\n",
                                          "t.yml");
    ASSERT_TRUE(w.tls) << name;
    EXPECT_EQ(w.tls->client_auth_type, expected) << name;
    if (std::string_view(name) != "RequireClientCert") {
      EXPECT_EQ(to_string(expected), name);
    }
  }
}

TEST(ParseWebConfig, Warnings) {
  const web_config h2 = parse_web_config("http_server_config: {http2: true}\n", "t.yml");
  ASSERT_EQ(h2.warnings.size(), 1U);
  EXPECT_EQ(h2.warnings[0],
            "t.yml: http_server_config.http2: HTTP/2 is not served by this daemon; HTTP/1.1 is "
            "used");
  const web_config clear =
      parse_web_config("basic_auth_users:\n  u: " + std::string(hash) + "\n", "t.yml");
  ASSERT_EQ(clear.warnings.size(), 1U);
  EXPECT_NE(clear.warnings[0].find("clear text"), std::string::npos);
  const web_config off = parse_web_config("tls_server_config: {min_version: TLS13}\n", "t.yml");
  EXPECT_FALSE(off.tls);
  ASSERT_EQ(off.warnings.size(), 1U);
  EXPECT_NE(off.warnings[0].find("TLS is off"), std::string::npos);
}

struct error_case {
  const char* name;
  std::string yaml;
  const char* key;
  const char* reason;
};

class ParseWebConfigError : public ::testing::TestWithParam<error_case> {};

TEST_P(ParseWebConfigError, NamesFileKeyAndReason) {
  const auto& c = GetParam();
  EXPECT_TRUE(has_problem(web_problems(c.yaml), c.key, c.reason));
}

std::string tls(std::string_view extra) {
  return "tls_server_config:\n  cert_file: c.crt\n  key_file: c.key\n" + std::string(extra);
}
std::string user(std::string_view name, std::string_view h) {
  return "basic_auth_users:\n  \"" + std::string(name) + "\": \"" + std::string(h) + "\"\n";
}

const error_case web_error_cases[] = {
    {"unknown_top", "tls: {}\n", "tls", "unknown key"},
    {"unknown_tls", tls("  certfile: x\n"), "tls_server_config.certfile",
     "unknown key (did you mean cert_file?)"},
    {"inline_cert", tls("  cert: PEM\n"), "tls_server_config.cert", "inline PEM is not supported"},
    {"inline_key", tls("  key: PEM\n"), "tls_server_config.key", "inline PEM is not supported"},
    {"rate_limit", "rate_limit: {interval: 1s, burst: 2}\n", "rate_limit",
     "rate limiter is not supported"},
    {"unknown_http", "http_server_config: {http3: true}\n", "http_server_config.http3",
     "unknown key"},
    {"tls_not_map", "tls_server_config: [a]\n", "tls_server_config", "must be a mapping"},
    {"cert_missing", "tls_server_config:\n  key_file: k\n", "tls_server_config.cert_file",
     "is required when TLS is configured"},
    {"key_missing", "tls_server_config:\n  cert_file: c\n", "tls_server_config.key_file",
     "is required when TLS is configured"},
    {"client_auth_bad", tls("  client_auth_type: Always\n"), "tls_server_config.client_auth_type",
     "\"Always\" is not one of NoClientCert, RequestClientCert"},
    {"ca_without_auth", tls("  client_ca_file: ca.pem\n"), "tls_server_config.client_ca_file",
     "client_auth_type is NoClientCert"},
    {"verify_without_ca", tls("  client_auth_type: RequireAndVerifyClientCert\n"),
     "tls_server_config.client_ca_file",
     "is required with client_auth_type RequireAndVerifyClientCert"},
    {"verify_if_given_without_ca", tls("  client_auth_type: VerifyClientCertIfGiven\n"),
     "tls_server_config.client_ca_file", "is required with client_auth_type"},
    {"sans_without_required_cert",
     tls("  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca\n"
         "  client_allowed_sans: [a]\n"),
     "tls_server_config.client_allowed_sans", "requires client_auth_type RequireAnyClientCert"},
    {"sans_not_list", tls("  client_allowed_sans: a\n"), "tls_server_config.client_allowed_sans",
     "must be a list of strings"},
    {"min_tls10", tls("  min_version: TLS10\n"), "tls_server_config.min_version",
     "TLS10 is below TLS12, the minimum this daemon enforces"},
    {"min_tls11", tls("  min_version: TLS11\n"), "tls_server_config.min_version",
     "TLS11 is below TLS12"},
    {"max_tls11", tls("  max_version: TLS11\n"), "tls_server_config.max_version",
     "TLS11 is below TLS12"},
    {"min_unknown", tls("  min_version: \"1.2\"\n"), "tls_server_config.min_version",
     "\"1.2\" is not one of TLS12, TLS13"},
    {"min_above_max", tls("  min_version: TLS13\n  max_version: TLS12\n"),
     "tls_server_config.min_version", "TLS13 is above max_version (TLS12)"},
    {"cipher_unknown", tls("  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"),
     "tls_server_config.cipher_suites[0]",
     "\"TLS_RSA_WITH_RC4_128_SHA\" is not a supported cipher"},
    {"cipher_openssl_name", tls("  cipher_suites: [ECDHE-RSA-AES128-GCM-SHA256]\n"),
     "tls_server_config.cipher_suites[0]", "is not a supported cipher"},
    {"curve_unknown", tls("  curve_preferences: [X25519, P-256]\n"),
     "tls_server_config.curve_preferences[1]", "\"P-256\" is not a supported curve"},
    {"prefer_not_bool", tls("  prefer_server_cipher_suites: yes\n"),
     "tls_server_config.prefer_server_cipher_suites",
     "\"yes\" is not a boolean (use true or false)"},
    {"http2_not_bool", "http_server_config: {http2: 2}\n", "http_server_config.http2",
     "is not a boolean"},
    {"header_unknown", "http_server_config:\n  headers: {Server: nginx}\n",
     "http_server_config.headers.Server", "this header can not be configured"},
    {"header_case", "http_server_config:\n  headers: {x-frame-options: deny}\n",
     "http_server_config.headers.x-frame-options", "can not be configured"},
    {"header_value", "http_server_config:\n  headers: {X-Frame-Options: allow}\n",
     "http_server_config.headers.X-Frame-Options", "\"allow\" is not one of deny, sameorigin"},
    {"header_nosniff", "http_server_config:\n  headers: {X-Content-Type-Options: sniff}\n",
     "http_server_config.headers.X-Content-Type-Options", "is not one of nosniff"},
    {"header_crlf",
     "http_server_config:\n  headers: {Content-Security-Policy: \"a\\r\\nSet-Cookie: x\"}\n",
     "http_server_config.headers.Content-Security-Policy", "control characters"},
    {"headers_list", "http_server_config:\n  headers: [a]\n", "http_server_config.headers",
     "must be a mapping"},
    {"user_md5", user("u", "$1$abc$def"), "basic_auth_users.u", "is not a bcrypt hash"},
    {"user_plain", user("u", "hunter2"), "basic_auth_users.u", "is not a bcrypt hash"},
    {"user_2x", user("u", "$2x$10$" + std::string(53, 'a')), "basic_auth_users.u",
     "is not a bcrypt hash"},
    {"user_cost", user("u", "$2b$03$" + std::string(53, 'a')), "basic_auth_users.u",
     "is not a bcrypt hash"},
    {"user_short", user("u", "$2b$10$" + std::string(52, 'a')), "basic_auth_users.u",
     "is not a bcrypt hash"},
    {"user_colon", user("a:b", hash), "basic_auth_users.a:b", "contains ':'"},
    {"user_empty", user("", hash), "basic_auth_users.\"\"", "user name is empty"},
    {"users_list", "basic_auth_users: [a]\n", "basic_auth_users", "must be a mapping"},
    {"user_map", "basic_auth_users: {u: {a: b}}\n", "basic_auth_users.u", "must be a string"},
};

INSTANTIATE_TEST_SUITE_P(All, ParseWebConfigError, ::testing::ValuesIn(web_error_cases),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(ParseWebConfig, AllProblemsAtOnceAndHashesNeverEchoed) {
  const std::string secret_hash = "$2b$10$not-a-valid-hash-but-still-a-secret";
  const auto p = web_problems(R"(
tls_server_config:
  cert_file: c
  min_version: TLS10
  client_auth_type: Sometimes
http_server_config:
  headers: {Server: x}
basic_auth_users:
  u: ")" + secret_hash + "\"\nextra: 1\n");
  EXPECT_EQ(p.size(), 6U) << test::joined(p);
  EXPECT_TRUE(has_problem(p, "tls_server_config.key_file", "is required"));
  EXPECT_TRUE(has_problem(p, "tls_server_config.min_version", "below TLS12"));
  EXPECT_TRUE(has_problem(p, "tls_server_config.client_auth_type", "\"Sometimes\""));
  EXPECT_TRUE(has_problem(p, "http_server_config.headers.Server", "can not be configured"));
  EXPECT_TRUE(has_problem(p, "basic_auth_users.u", "is not a bcrypt hash"));
  EXPECT_TRUE(has_problem(p, "extra", "unknown key"));
  for (const auto& line : p) EXPECT_EQ(line.find("not-a-valid-hash"), std::string::npos) << line;
  // Inline private keys are refused without being echoed either.
  for (const auto& line :
       web_problems(tls("  key: \"-----BEGIN PRIVATE KEY-----SECRETBYTES\"\n"))) {
    EXPECT_EQ(line.find("SECRETBYTES"), std::string::npos) << line;
  }
}

TEST(ParseWebConfig, SyntaxError) {
  const auto p = web_problems("basic_auth_users: {a: [}\n");
  ASSERT_EQ(p.size(), 1U);
  EXPECT_TRUE(p[0].starts_with("t.yml:1:")) << p[0];
  EXPECT_NE(p[0].find("YAML syntax error"), std::string::npos) << p[0];
}

TEST(IsBcryptHash, Shapes) {
  EXPECT_TRUE(is_bcrypt_hash(hash));
  EXPECT_TRUE(is_bcrypt_hash("$2a$31$" + std::string(53, '.')));
  EXPECT_TRUE(is_bcrypt_hash("$2b$04$" + std::string(53, '/')));
  EXPECT_FALSE(is_bcrypt_hash("$2b$32$" + std::string(53, 'a')));
  EXPECT_FALSE(is_bcrypt_hash("$2b$1a$" + std::string(53, 'a')));
  EXPECT_FALSE(is_bcrypt_hash("$2b$10$" + std::string(52, 'a') + "!"));
  EXPECT_FALSE(is_bcrypt_hash("$2b$10$" + std::string(54, 'a')));
  EXPECT_FALSE(is_bcrypt_hash(""));
}

TEST(LoadWebConfig, ResolvesPathsAgainstItsDirectory) {
  test::scratch_dir dir;
  dir.write("tls/server.crt", "cert", 0644);
  dir.write("tls/server.key", "key", 0600);
  dir.write("tls/clients.pem", "ca", 0644);
  const auto file = dir.write("web.yml", R"(
tls_server_config:
  cert_file: tls/server.crt
  key_file: tls/server.key
  client_ca_file: tls/clients.pem
  client_auth_type: RequireAndVerifyClientCert
)");
  const web_config w = load_web_config(file);
  ASSERT_TRUE(w.tls);
  EXPECT_EQ(w.tls->cert_file, (dir.path() / "tls/server.crt").string());
  EXPECT_EQ(w.tls->key_file, (dir.path() / "tls/server.key").string());
  EXPECT_EQ(w.tls->client_ca_file, (dir.path() / "tls/clients.pem").string());
  EXPECT_EQ(w.source, file.string());
  EXPECT_TRUE(w.warnings.empty()) << test::joined(w.warnings);
}

TEST(LoadWebConfig, MissingFilesAreErrors) {
  test::scratch_dir dir;
  dir.write("server.crt", "cert", 0644);
  const auto file = dir.write("web.yml",
                              "tls_server_config:\n  cert_file: server.crt\n  key_file: nope.key\n"
                              "  client_ca_file: /nonexistent/ca.pem\n"
                              "  client_auth_type: RequireAndVerifyClientCert\n");
  try {
    (void)load_web_config(file);
    FAIL() << "no exception";
  } catch (const config_error& e) {
    const auto& p = e.problems();
    EXPECT_EQ(p.size(), 2U) << test::joined(p);
    EXPECT_TRUE(has_problem(
        p, "tls_server_config.key_file",
        "cannot read " + (dir.path() / "nope.key").string() + ": No such file or directory",
        file.string()));
    EXPECT_TRUE(has_problem(p, "tls_server_config.client_ca_file",
                            "cannot read /nonexistent/ca.pem", file.string()));
  }
  try {
    (void)load_web_config(dir.path() / "absent.yml");
    FAIL() << "no exception";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos);
  }
}

TEST(LoadWebConfig, WorldReadableKeyWarns) {
  test::scratch_dir dir;
  dir.write("server.crt", "cert", 0644);
  const auto key = dir.write("server.key", "key", 0644);
  const auto file =
      dir.write("web.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
  const web_config w = load_web_config(file);
  ASSERT_EQ(w.warnings.size(), 1U);
  EXPECT_NE(w.warnings[0].find("tls_server_config.key_file: " + key.string() +
                               " is world-readable (mode 0644)"),
            std::string::npos)
      << w.warnings[0];
  // A Kubernetes TLS Secret mounted with fsGroup is 0440: no warning.
  ::chmod(key.c_str(), 0440);
  EXPECT_TRUE(load_web_config(file).warnings.empty());
}

}  // namespace
}  // namespace cmp::config
