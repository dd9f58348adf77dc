#include "cmp/config/web_config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "yaml_reader.hpp"

namespace cmp::config {

namespace {

using detail::child_key;
using detail::problem_sink;
using detail::quote;

struct name_pair {
  std::string_view go;
  std::string_view openssl;  // empty: TLS 1.3 suite, not configurable (as in Go)
};

// Go's tls.CipherSuites(): the suites crypto/tls considers secure. The
// RSA-key-exchange and 3DES suites are tls.InsecureCipherSuites() and are
// refused here as exporter-toolkit refuses them.
constexpr std::array<name_pair, 13> cipher_names{{
    {"TLS_AES_128_GCM_SHA256", ""},
    {"TLS_AES_256_GCM_SHA384", ""},
    {"TLS_CHACHA20_POLY1305_SHA256", ""},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
}};

constexpr std::array<name_pair, 4> curve_names{{
    {"CurveP256", "P-256"},
    {"CurveP384", "P-384"},
    {"CurveP521", "P-521"},
    {"X25519", "X25519"},
}};

struct header_rule {
  std::string_view name;
  std::array<std::string_view, 2> values;  // empty: any value
};

// exporter-toolkit's extraHTTPHeaders: deliberately a closed list.
constexpr std::array<header_rule, 5> header_rules{{
    {"Strict-Transport-Security", {}},
    {"X-Content-Type-Options", {"nosniff", {}}},
    {"X-Frame-Options", {"deny", "sameorigin"}},
    {"X-XSS-Protection", {}},
    {"Content-Security-Policy", {}},
}};

std::optional<client_auth> parse_client_auth(std::string_view s) {
  if (s.empty() || s == "NoClientCert") return client_auth::no_client_cert;
  if (s == "RequestClientCert") return client_auth::request_client_cert;
  // RequireClientCert: exporter-toolkit keeps the old name working.
  if (s == "RequireAnyClientCert" || s == "RequireClientCert") {
    return client_auth::require_any_client_cert;
  }
  if (s == "VerifyClientCertIfGiven") return client_auth::verify_client_cert_if_given;
  if (s == "RequireAndVerifyClientCert") return client_auth::require_and_verify_client_cert;
  return std::nullopt;
}

void read_version(const std::map<std::string, YAML::Node>& f, std::string_view name,
                  const std::string& parent, problem_sink& sink, tls_version& out, bool& ok) {
  const auto it = f.find(std::string(name));
  if (it == f.end()) return;
  const std::string key = child_key(parent, name);
  const auto v = detail::read_string(it->second, key, sink);
  if (!v) {
    ok = false;
    return;
  }
  if (*v == "TLS12") {
    out = tls_version::tls12;
  } else if (*v == "TLS13") {
    out = tls_version::tls13;
  } else if (*v == "TLS10" || *v == "TLS11") {
    sink.add(key, fmt::format("{} is below TLS12, the minimum this daemon enforces", *v));
    ok = false;
  } else {
    sink.add(key, fmt::format("{} is not one of TLS12, TLS13", quote(*v)));
    ok = false;
  }
}

template <std::size_t N>
std::string map_names(const std::vector<std::string>& names, const std::array<name_pair, N>& table,
                      const std::string& key, std::string_view what, problem_sink& sink) {
  std::string joined;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto it = std::find_if(table.begin(), table.end(),
                                 [&](const name_pair& p) { return p.go == names[i]; });
    if (it == table.end()) {
      sink.add(detail::index_key(key, i),
               fmt::format("{} is not a supported {}", quote(names[i]), what));
      continue;
    }
    if (it->openssl.empty()) continue;
    if (!joined.empty()) joined += ':';
    joined += it->openssl;
  }
  return joined;
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::optional<tls_server_config> read_tls(const YAML::Node& node, problem_sink& sink,
                                          std::vector<std::string>& warnings) {
  const std::string key = "tls_server_config";
  constexpr std::string_view inline_hint =
      "inline PEM is not supported; use cert_file, key_file and client_ca_file";
  const auto f = detail::read_fields(
      node, key, sink,
      {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version",
       "cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "client_allowed_sans"},
      {{"cert", inline_hint}, {"key", inline_hint}, {"client_ca", inline_hint}});
  if (!f) return std::nullopt;
  tls_server_config t;
  const auto str = [&](std::string_view name, std::string& out) {
    if (const auto it = f->find(std::string(name)); it != f->end()) {
      if (auto v = detail::read_string(it->second, child_key(key, name), sink)) out = std::move(*v);
    }
  };
  const auto list = [&](std::string_view name, std::vector<std::string>& out) {
    if (const auto it = f->find(std::string(name)); it != f->end()) {
      if (auto v = detail::read_string_list(it->second, child_key(key, name), sink)) {
        out = std::move(*v);
      }
    }
  };
  str("cert_file", t.cert_file);
  str("key_file", t.key_file);
  str("client_ca_file", t.client_ca_file);
  std::string auth;
  str("client_auth_type", auth);
  bool auth_ok = true;
  if (const auto a = parse_client_auth(auth)) {
    t.client_auth_type = *a;
  } else {
    sink.add(child_key(key, "client_auth_type"),
             fmt::format("{} is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, "
                         "VerifyClientCertIfGiven, RequireAndVerifyClientCert",
                         quote(auth)));
    auth_ok = false;
  }

  bool versions_ok = true;
  read_version(*f, "min_version", key, sink, t.min_version, versions_ok);
  read_version(*f, "max_version", key, sink, t.max_version, versions_ok);
  if (versions_ok && t.min_version > t.max_version) {
    sink.add(child_key(key, "min_version"),
             fmt::format("{} is above max_version ({})", to_string(t.min_version),
                         to_string(t.max_version)));
  }

  list("cipher_suites", t.cipher_suites);
  t.openssl_cipher_list =
      map_names(t.cipher_suites, cipher_names, child_key(key, "cipher_suites"),
                "cipher suite (see Go's tls.CipherSuites(); insecure suites are refused)", sink);
  list("curve_preferences", t.curve_preferences);
  t.openssl_groups_list =
      map_names(t.curve_preferences, curve_names, child_key(key, "curve_preferences"),
                "curve (CurveP256, CurveP384, CurveP521, X25519)", sink);
  if (const auto it = f->find("prefer_server_cipher_suites"); it != f->end()) {
    if (const auto b =
            detail::read_bool(it->second, child_key(key, "prefer_server_cipher_suites"), sink)) {
      t.prefer_server_cipher_suites = *b;
    }
  }
  list("client_allowed_sans", t.client_allowed_sans);

  // exporter-toolkit's notion of "TLS is configured".
  const bool enabled =
      !t.cert_file.empty() || !t.key_file.empty() || !t.client_ca_file.empty() || !auth.empty();
  if (!enabled) {
    if (!f->empty()) {
      warnings.push_back(fmt::format(
          "{}: {}: no cert_file or key_file, so TLS is off and these settings are ignored",
          sink.source(), key));
    }
    return std::nullopt;
  }
  if (t.cert_file.empty()) {
    sink.add(child_key(key, "cert_file"), "is required when TLS is configured");
  }
  if (t.key_file.empty()) {
    sink.add(child_key(key, "key_file"), "is required when TLS is configured");
  }
  if (auth_ok) {
    const auto ca = t.client_auth_type;
    if (!t.client_ca_file.empty() && ca == client_auth::no_client_cert) {
      sink.add(child_key(key, "client_ca_file"),
               "is set but client_auth_type is NoClientCert; set client_auth_type: "
               "RequireAndVerifyClientCert");
    }
    if (t.client_ca_file.empty() && (ca == client_auth::verify_client_cert_if_given ||
                                     ca == client_auth::require_and_verify_client_cert)) {
      sink.add(child_key(key, "client_ca_file"),
               fmt::format("is required with client_auth_type {} (the CAs to verify client "
                           "certificates against)",
                           to_string(ca)));
    }
    if (!t.client_allowed_sans.empty() && ca != client_auth::require_any_client_cert &&
        ca != client_auth::require_and_verify_client_cert) {
      sink.add(child_key(key, "client_allowed_sans"),
               "requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert "
               "(otherwise a client may send no certificate to match)");
    }
  }
  return t;
}

http_server_config read_http(const YAML::Node& node, problem_sink& sink,
                             std::vector<std::string>& warnings) {
  const std::string key = "http_server_config";
  http_server_config h;
  const auto f = detail::read_fields(node, key, sink, {"http2", "headers"});
  if (!f) return h;
  if (const auto it = f->find("http2"); it != f->end()) {
    if (const auto b = detail::read_bool(it->second, child_key(key, "http2"), sink); b && *b) {
      warnings.push_back(
          fmt::format("{}: {}.http2: HTTP/2 is not served by this daemon; HTTP/1.1 is used",
                      sink.source(), key));
    }
  }
  if (const auto it = f->find("headers"); it != f->end()) {
    const std::string hk = child_key(key, "headers");
    if (auto headers = detail::read_string_map(it->second, hk, sink)) {
      for (const auto& [name, value] : *headers) {
        const std::string path = child_key(hk, name);
        // Named copy: clang 14 cannot capture a structured binding.
        const std::string_view header = name;
        const auto rule = std::find_if(header_rules.begin(), header_rules.end(),
                                       [&](const header_rule& r) { return r.name == header; });
        if (rule == header_rules.end()) {
          sink.add(path,
                   "this header can not be configured (only Strict-Transport-Security, "
                   "X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, "
                   "Content-Security-Policy)");
          continue;
        }
        if (has_control(value)) {
          sink.add(path, "value contains control characters");
          continue;
        }
        if (!rule->values[0].empty() &&
            std::find(rule->values.begin(), rule->values.end(), value) == rule->values.end()) {
          std::string allowed;
          for (const auto v : rule->values) {
            if (v.empty()) continue;
            if (!allowed.empty()) allowed += ", ";
            allowed += v;
          }
          sink.add(path, fmt::format("{} is not one of {}", quote(value), allowed));
        }
      }
      h.headers = std::move(*headers);
    }
  }
  return h;
}

std::map<std::string, std::string> read_users(const YAML::Node& node, problem_sink& sink) {
  const std::string key = "basic_auth_users";
  auto users = detail::read_string_map(node, key, sink);
  if (!users) return {};
  for (const auto& [user, hash] : *users) {
    const std::string path = child_key(key, user);
    if (user.empty()) {
      sink.add(path, "user name is empty");
    } else if (user.find(':') != std::string::npos) {
      sink.add(path, "user name contains ':', which basic auth cannot carry");
    } else if (has_control(user)) {
      sink.add(path, "user name contains control characters");
    }
    // The hash is never echoed: it is a password equivalent for weak
    // passwords.
    if (!is_bcrypt_hash(hash)) {
      sink.add(path,
               "is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31, 60 characters); make one "
               "with: htpasswd -nBC 10 \"\" | tr -d ':\\n'");
    }
  }
  return std::move(*users);
}

web_config parse_into(std::string_view yaml, problem_sink& sink) {
  web_config w;
  w.source = sink.source();
  const auto doc = detail::parse_document(yaml, sink);
  if (!doc) return w;
  try {
    const auto f = detail::read_fields(
        *doc, "", sink, {"tls_server_config", "http_server_config", "basic_auth_users"},
        {{"rate_limit", "exporter-toolkit's rate limiter is not supported by this daemon"}});
    if (!f) return w;
    if (const auto it = f->find("tls_server_config"); it != f->end()) {
      w.tls = read_tls(it->second, sink, w.warnings);
    }
    if (const auto it = f->find("http_server_config"); it != f->end()) {
      w.http = read_http(it->second, sink, w.warnings);
    }
    if (const auto it = f->find("basic_auth_users"); it != f->end()) {
      w.basic_auth_users = read_users(it->second, sink);
    }
    if (!w.basic_auth_users.empty() && !w.tls) {
      w.warnings.push_back(fmt::format(
          "{}: basic_auth_users: without tls_server_config passwords cross the network in "
          "clear text",
          sink.source()));
    }
  } catch (const YAML::Exception& e) {
    sink.add_file(fmt::format("YAML error: {}", e.what()));
  }
  return w;
}

void resolve_and_check(std::string& path, const std::filesystem::path& base, std::string_view key,
                       problem_sink& sink) {
  if (path.empty()) return;
  std::filesystem::path p(path);
  if (p.is_relative() && !base.empty()) p = base / p;
  path = p.string();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || ::access(path.c_str(), R_OK) != 0) {
    sink.add(key, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    sink.add(key, fmt::format("{} is not a regular file", path));
  }
}

}  // namespace

bool is_bcrypt_hash(std::string_view h) noexcept {
  if (h.size() != 60) return false;
  if (!(h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$"))) return false;
  if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' || h[6] != '$') return false;
  const int cost = (h[4] - '0') * 10 + (h[5] - '0');
  if (cost < 4 || cost > 31) return false;
  return std::all_of(h.begin() + 7, h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '/';
  });
}

web_config parse_web_config(std::string_view yaml, std::string_view source) {
  problem_sink sink(source);
  web_config w = parse_into(yaml, sink);
  if (!sink.empty()) throw config_error(sink.take());
  return w;
}

web_config load_web_config(const std::filesystem::path& file) {
  problem_sink sink(file.string());
  const auto text = detail::read_text_file(file, sink);
  if (!text) throw config_error(sink.take());
  web_config w = parse_into(*text, sink);
  if (w.tls) {
    // Relative to the web config file, as exporter-toolkit's SetDirectory.
    const auto base = file.parent_path();
    resolve_and_check(w.tls->cert_file, base, "tls_server_config.cert_file", sink);
    resolve_and_check(w.tls->key_file, base, "tls_server_config.key_file", sink);
    resolve_and_check(w.tls->client_ca_file, base, "tls_server_config.client_ca_file", sink);
    struct stat st {};
    if (!w.tls->key_file.empty() && ::stat(w.tls->key_file.c_str(), &st) == 0) {
      auto warning = world_readable_secret_warning(w.source + ": tls_server_config.key_file",
                                                   w.tls->key_file, st.st_mode);
      if (!warning.empty()) w.warnings.push_back(std::move(warning));
    }
  }
  if (!sink.empty()) throw config_error(sink.take());
  return w;
}

std::string_view to_string(client_auth a) noexcept {
  switch (a) {
    case client_auth::no_client_cert:
      return "NoClientCert";
    case client_auth::request_client_cert:
      return "RequestClientCert";
    case client_auth::require_any_client_cert:
      return "RequireAnyClientCert";
    case client_auth::verify_client_cert_if_given:
      return "VerifyClientCertIfGiven";
    case client_auth::require_and_verify_client_cert:
      return "RequireAndVerifyClientCert";
  }
  return "unknown";
}

std::string_view to_string(tls_version v) noexcept {
  switch (v) {
    case tls_version::tls12:
      return "TLS12";
    case tls_version::tls13:
      return "TLS13";
  }
  return "unknown";
}

}  // namespace cmp::config
