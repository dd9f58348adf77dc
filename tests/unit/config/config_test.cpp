#include <gtest/gtest.h>

#include "cmp/config/config.hpp"
#include "test_support.hpp"

namespace cmp::config {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;
using test::has_problem;
using test::problems_of;

constexpr std::string_view minimal = R"(
upstreams:
  - url: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_abc123
)";

// A config with one upstream whose body is `fields` (indented by the caller).
std::string with_upstream(std::string_view fields) {
  return "upstreams:\n  - url: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1\n" +
         std::string(fields);
}

TEST(ParseConfig, DefaultsMatchTheContract) {
  const config c = parse_config(minimal, "t.yml");
  EXPECT_EQ(c.listen, "127.0.0.1:9753");
  EXPECT_EQ(c.web_config_file, "");
  EXPECT_EQ(c.state_dir, "/var/lib/cerebras-metrics-proxy");
  EXPECT_EQ(c.log.level, log_level::info);
  EXPECT_EQ(c.log.format, log_format::logfmt);
  EXPECT_EQ(c.source, "t.yml");
  EXPECT_TRUE(c.warnings.empty()) << test::joined(c.warnings);
  ASSERT_EQ(c.upstreams.size(), 1U);
  const upstream& u = c.upstreams[0];
  EXPECT_EQ(u.name, "default");
  EXPECT_EQ(u.url, "https://cloud.cerebras.ai/api/v1/metrics/organizations/org_abc123");
  EXPECT_EQ(u.api_key_env, "CEREBRAS_API_KEY");
  EXPECT_EQ(u.api_key_file, "");
  EXPECT_EQ(u.ca_file, "");
  EXPECT_EQ(u.proxy_url, "");
  EXPECT_EQ(u.timeout, 10s);
  EXPECT_EQ(u.poll_interval, 60s);
  EXPECT_EQ(u.poll_offset, 5s);
  EXPECT_EQ(u.limit.requests, 6U);
  EXPECT_EQ(u.limit.window, 60s);
  EXPECT_EQ(u.max_staleness, 5min);
  EXPECT_EQ(u.timestamps, timestamp_mode::none);
  EXPECT_TRUE(u.extra_labels.empty());
}

TEST(ParseConfig, ReadsEveryKey) {
  const config c = parse_config(R"(
listen: "[::1]:9999"
web_config_file: /etc/cmp/web.yml
state_dir: /tmp/state
log: {level: debug, format: json}
upstreams:
  - name: org-a_1
    url: http://127.0.0.2:8080/api/v1/metrics/organizations/org_a
    api_key_file: /run/credentials/key
    ca_file: /etc/ssl/extra.pem
    proxy_url: http://proxy.internal:3128
    timeout: 2s
    poll_interval: 30s
    poll_offset: 0s
    rate_limit: {requests: 12, window: 2m}
    max_staleness: 1h
    timestamps: window
    extra_labels: {env: prod, region: "us-east"}
  - name: b
    url: http://[::1]:1/x
    api_key_env: B_KEY
  - name: c
    url: http://LocalHost/x
)",
                                "t.yml");
  EXPECT_EQ(c.listen, "[::1]:9999");
  EXPECT_EQ(c.web_config_file, "/etc/cmp/web.yml");
  EXPECT_EQ(c.state_dir, "/tmp/state");
  EXPECT_EQ(c.log.level, log_level::debug);
  EXPECT_EQ(c.log.format, log_format::json);
  ASSERT_EQ(c.upstreams.size(), 3U);
  const upstream& a = c.upstreams[0];
  EXPECT_EQ(a.name, "org-a_1");
  EXPECT_EQ(a.api_key_file, "/run/credentials/key");
  EXPECT_EQ(a.api_key_env, "CEREBRAS_API_KEY");  // default kept; the file wins at load time
  EXPECT_EQ(a.ca_file, "/etc/ssl/extra.pem");
  EXPECT_EQ(a.proxy_url, "http://proxy.internal:3128");
  EXPECT_EQ(a.timeout, 2s);
  EXPECT_EQ(a.poll_interval, 30s);
  EXPECT_EQ(a.poll_offset, 0s);
  EXPECT_EQ(a.limit.requests, 12U);
  EXPECT_EQ(a.limit.window, 2min);
  EXPECT_EQ(a.max_staleness, 1h);
  EXPECT_EQ(a.timestamps, timestamp_mode::window);
  EXPECT_EQ(a.extra_labels,
            (std::map<std::string, std::string>{{"env", "prod"}, {"region", "us-east"}}));
  EXPECT_EQ(c.upstreams[1].api_key_env, "B_KEY");
  EXPECT_TRUE(c.warnings.empty()) << test::joined(c.warnings);
}

TEST(ParseConfig, AcceptedListenAddresses) {
  for (const char* listen : {"127.0.0.1:9753", "0.0.0.0:1", ":9753", "localhost:65535", "[::]:9753",
                             "[::1]:80", "metrics.example.com:443"}) {
    const auto yaml = std::string("listen: \"") + listen + "\"\n" + std::string(minimal);
    EXPECT_TRUE(problems_of(yaml).empty()) << listen << test::joined(problems_of(yaml));
  }
}

TEST(ParseConfig, NullStringMeansEmpty) {
  const config c = parse_config(with_upstream("    ca_file:\n    proxy_url: ~\n"), "t.yml");
  EXPECT_EQ(c.upstreams[0].ca_file, "");
  EXPECT_EQ(c.upstreams[0].proxy_url, "");
}

struct error_case {
  const char* name;
  std::string yaml;
  const char* key;
  const char* reason;
};

class ParseConfigError : public ::testing::TestWithParam<error_case> {};

TEST_P(ParseConfigError, NamesFileKeyAndReason) {
  const auto& c = GetParam();
  EXPECT_TRUE(has_problem(problems_of(c.yaml), c.key, c.reason));
}

std::string listen(const char* value) {
  return std::string("listen: \"") + value + "\"\n" + std::string(minimal);
}
std::string url(const char* value) {
  return std::string("upstreams:\n  - url: \"") + value + "\"\n";
}

const error_case error_cases[] = {
    // listen
    {"listen_no_port", listen("9753"), "listen", "\"9753\" is not host:port or [v6]:port"},
    {"listen_port_zero", listen("127.0.0.1:0"), "listen", "port 0 is out of range (1-65535)"},
    {"listen_port_big", listen("127.0.0.1:70000"), "listen", "port 70000 is out of range"},
    {"listen_port_text", listen("host:http"), "listen", "port \"http\" is not a number"},
    {"listen_port_empty", listen("host:"), "listen", "port \"\" is not a number"},
    {"listen_v6_bare", listen("::1:9753"), "listen", "IPv6 addresses need brackets"},
    {"listen_v6_no_port", listen("[::1]"), "listen", "needs :port after the ]"},
    {"listen_v6_bad", listen("[zz]:80"), "listen", "\"zz\" is not an IPv6 address"},
    {"listen_v6_unclosed", listen("[::1:80"), "listen", "unclosed ["},
    {"listen_bad_host", listen("a b:80"), "listen", "is not a host name or IPv4 address"},
    {"listen_not_string", "listen: [a]\n" + std::string(minimal), "listen",
     "must be a string, not a list"},
    // top level
    {"state_dir_empty", "state_dir: \"\"\n" + std::string(minimal), "state_dir",
     "must not be empty"},
    {"log_not_map", "log: 5\n" + std::string(minimal), "log", "must be a mapping"},
    {"log_level", "log: {level: verbose}\n" + std::string(minimal), "log.level",
     "\"verbose\" is not one of debug, info, warn, error"},
    {"log_level_case", "log: {level: INFO}\n" + std::string(minimal), "log.level",
     "is not one of debug, info, warn, error"},
    {"log_format", "log: {format: text}\n" + std::string(minimal), "log.format",
     "\"text\" is not one of logfmt, json"},
    // upstreams
    {"no_upstreams", "listen: \"127.0.0.1:1\"\n", "upstreams", "at least one upstream is required"},
    {"empty_upstreams", "upstreams: []\n", "upstreams", "at least one upstream is required"},
    {"null_upstreams", "upstreams:\n", "upstreams", "at least one upstream is required"},
    {"upstreams_map", "upstreams: {url: x}\n", "upstreams", "must be a list of upstreams"},
    {"upstream_scalar", "upstreams: [x]\n", "upstreams[0]", "must be a mapping"},
    {"name_bad", with_upstream("    name: \"bad name\"\n"), "upstreams[0].name",
     "\"bad name\" must match [a-zA-Z0-9_-]+"},
    {"name_empty", with_upstream("    name: \"\"\n"), "upstreams[0].name", "must match"},
    {"name_dup",
     "upstreams:\n  - {name: a, url: \"https://x/1\"}\n  - {name: a, url: \"https://x/2\"}\n",
     "upstreams[1].name", "\"a\" is already used by upstreams[0]"},
    {"name_dup_default", "upstreams:\n  - url: https://x/1\n  - url: https://x/2\n",
     "upstreams[1].name", "\"default\" is already used by upstreams[0]"},
    // url
    {"url_missing", "upstreams:\n  - name: a\n", "upstreams[0].url", "is required"},
    {"url_garbage", url("not a url"), "upstreams[0].url", "is not a valid absolute URL"},
    {"url_relative", url("/api/v1/metrics"), "upstreams[0].url", "is not a valid absolute URL"},
    {"url_scheme", url("ftp://example.com/x"), "upstreams[0].url",
     "scheme \"ftp\" is not supported; use https://"},
    {"url_http_remote", url("http://example.com/x"), "upstreams[0].url",
     "http:// is allowed only for loopback hosts"},
    {"url_http_private", url("http://10.0.0.1/x"), "upstreams[0].url",
     "http:// is allowed only for loopback hosts"},
    {"url_http_localhost_suffix", url("http://localhost.evil.com/x"), "upstreams[0].url",
     "http:// is allowed only for loopback hosts"},
    {"url_no_host", url("https:///x"), "upstreams[0].url", "has no host"},
    {"url_no_authority", url("https:x"), "upstreams[0].url", "has no host"},
    {"url_userinfo", url("https://user:pw@example.com/x"), "upstreams[0].url",
     "must not contain user:password@"},
    {"url_fragment", url("https://example.com/x#y"), "upstreams[0].url", "#fragment"},
    {"url_port_zero", url("https://example.com:0/x"), "upstreams[0].url",
     "port \"0\" is not in 1-65535"},
    // key source
    {"key_both_empty", with_upstream("    api_key_env: \"\"\n"), "upstreams[0].api_key_env",
     "api_key_env and api_key_file are both empty"},
    {"key_env_bad", with_upstream("    api_key_env: csk-abc\n"), "upstreams[0].api_key_env",
     "is not an environment variable name"},
    {"key_env_digit", with_upstream("    api_key_env: 1KEY\n"), "upstreams[0].api_key_env",
     "is not an environment variable name"},
    // durations
    {"timeout_bad", with_upstream("    timeout: 10x\n"), "upstreams[0].timeout",
     "\"10x\" is not a duration (use 500ms, 10s, 5m, 1h)"},
    {"timeout_number", with_upstream("    timeout: 10\n"), "upstreams[0].timeout",
     "\"10\" is not a duration"},
    {"timeout_map", with_upstream("    timeout: {a: 1}\n"), "upstreams[0].timeout",
     "must be a duration such as 10s, not a mapping"},
    {"timeout_null", with_upstream("    timeout:\n"), "upstreams[0].timeout",
     "must be a duration such as 10s, not empty (null)"},
    {"timeout_zero", with_upstream("    timeout: 0s\n"), "upstreams[0].timeout",
     "must be greater than 0"},
    {"interval_zero", with_upstream("    poll_interval: \"0\"\n"), "upstreams[0].poll_interval",
     "must be greater than 0"},
    {"staleness_zero", with_upstream("    max_staleness: 0ms\n"), "upstreams[0].max_staleness",
     "must be greater than 0"},
    {"offset_bad", with_upstream("    poll_offset: -5s\n"), "upstreams[0].poll_offset",
     "\"-5s\" is not a duration"},
    {"offset_ge_interval", with_upstream("    poll_offset: 60s\n"), "upstreams[0].poll_offset",
     "1m must be less than poll_interval (1m)"},
    {"timeout_ge_interval", with_upstream("    timeout: 60s\n"), "upstreams[0].timeout",
     "1m must be less than poll_interval (1m): a fetch must end before the next poll"},
    {"staleness_lt_interval", with_upstream("    max_staleness: 30s\n"),
     "upstreams[0].max_staleness", "30s must be at least poll_interval (1m)"},
    // rate limit
    {"requests_zero", with_upstream("    rate_limit: {requests: 0}\n"),
     "upstreams[0].rate_limit.requests", "must be at least 1"},
    {"requests_text", with_upstream("    rate_limit: {requests: six}\n"),
     "upstreams[0].rate_limit.requests", "\"six\" is not a whole number"},
    {"requests_negative", with_upstream("    rate_limit: {requests: -1}\n"),
     "upstreams[0].rate_limit.requests", "\"-1\" is not a whole number"},
    {"requests_fraction", with_upstream("    rate_limit: {requests: 1.5}\n"),
     "upstreams[0].rate_limit.requests", "\"1.5\" is not a whole number"},
    {"requests_huge", with_upstream("    rate_limit: {requests: 99999999999}\n"),
     "upstreams[0].rate_limit.requests", "is too large"},
    {"window_zero", with_upstream("    rate_limit: {window: 0s}\n"),
     "upstreams[0].rate_limit.window", "must be greater than 0"},
    {"window_bad", with_upstream("    rate_limit: {window: 1 minute}\n"),
     "upstreams[0].rate_limit.window", "is not a duration"},
    {"rate_limit_scalar", with_upstream("    rate_limit: 6\n"), "upstreams[0].rate_limit",
     "must be a mapping"},
    // timestamps, labels, proxy
    {"timestamps", with_upstream("    timestamps: both\n"), "upstreams[0].timestamps",
     "\"both\" is not one of none, window"},
    {"label_name", with_upstream("    extra_labels: {1abc: x}\n"), "upstreams[0].extra_labels.1abc",
     "is not a label name"},
    {"label_dash", with_upstream("    extra_labels: {a-b: x}\n"), "upstreams[0].extra_labels.a-b",
     "is not a label name"},
    {"label_reserved", with_upstream("    extra_labels: {__name__: x}\n"),
     "upstreams[0].extra_labels.__name__", "reserved for Prometheus"},
    {"label_upstream", with_upstream("    extra_labels: {upstream: x}\n"),
     "upstreams[0].extra_labels.upstream", "the proxy sets it"},
    {"label_value_map", with_upstream("    extra_labels: {env: {a: b}}\n"),
     "upstreams[0].extra_labels.env", "must be a string, not a mapping"},
    {"label_value_empty", with_upstream("    extra_labels: {env: \"\"}\n"),
     "upstreams[0].extra_labels.env", "empty value"},
    {"labels_list", with_upstream("    extra_labels: [a]\n"), "upstreams[0].extra_labels",
     "must be a mapping of strings to strings, not a list"},
    {"proxy_https", with_upstream("    proxy_url: https://proxy:3128\n"), "upstreams[0].proxy_url",
     "scheme \"https\" is not supported"},
    {"proxy_garbage", with_upstream("    proxy_url: \"proxy host\"\n"), "upstreams[0].proxy_url",
     "is not a valid absolute URL"},
    {"proxy_no_host", with_upstream("    proxy_url: \"http:///\"\n"), "upstreams[0].proxy_url",
     "has no host"},
    // unknown and duplicate keys
    {"unknown_top", "colour: blue\n" + std::string(minimal), "colour", "unknown key"},
    {"unknown_typo", with_upstream("    pol_interval: 30s\n"), "upstreams[0].pol_interval",
     "unknown key (did you mean poll_interval?)"},
    {"unknown_nested", with_upstream("    rate_limit: {requests: 1, burst: 2}\n"),
     "upstreams[0].rate_limit.burst", "unknown key"},
    {"unknown_log", "log: {colour: true}\n" + std::string(minimal), "log.colour", "unknown key"},
    {"unknown_api_key", with_upstream("    api_key: csk-xyz\n"), "upstreams[0].api_key",
     "unknown key (the key is never written here: use api_key_env or api_key_file)"},
    {"unknown_merge", with_upstream("    <<: {timeout: 1s}\n"), "upstreams[0].<<",
     "merge keys are not supported"},
    {"duplicate_top", "listen: \"127.0.0.1:1\"\nlisten: \"127.0.0.1:2\"\n" + std::string(minimal),
     "listen", "duplicate key"},
    {"duplicate_nested", with_upstream("    timeout: 1s\n    timeout: 2s\n"),
     "upstreams[0].timeout", "duplicate key"},
    {"complex_key", "? [a]\n: b\n" + std::string(minimal), "(top level)",
     "keys must be plain strings"},
    {"top_list", "- a\n- b\n", "(top level)", "must be a mapping of keys to values, not a list"},
    {"top_scalar", "hello\n", "(top level)", "must be a mapping of keys to values, not a scalar"},
};

INSTANTIATE_TEST_SUITE_P(All, ParseConfigError, ::testing::ValuesIn(error_cases),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(ParseConfig, YamlSyntaxErrorHasLineAndColumn) {
  const auto problems = problems_of("listen: \"127.0.0.1:1\"\nupstreams: [\n  - url: x\n");
  ASSERT_EQ(problems.size(), 1U) << test::joined(problems);
  EXPECT_TRUE(problems[0].starts_with("t.yml:")) << problems[0];
  EXPECT_NE(problems[0].find(": YAML syntax error: "), std::string::npos) << problems[0];
  // `t.yml:LINE:COL: ...`: two numbers, 1-based.
  unsigned line = 0;
  unsigned col = 0;
  ASSERT_EQ(std::sscanf(problems[0].c_str(), "t.yml:%u:%u:", &line, &col), 2) << problems[0];
  EXPECT_GE(line, 2U);
  EXPECT_GE(col, 1U);

  const auto tab = problems_of("a:\n\tb: 1\n");
  ASSERT_EQ(tab.size(), 1U);
  EXPECT_NE(tab[0].find("YAML syntax error"), std::string::npos) << tab[0];
}

TEST(ParseConfig, BytesYamlForbidsArePositionedSyntaxErrors) {
  // Also what stops yaml-cpp 0.7's LoadAll from looping on them (fuzzing).
  EXPECT_EQ(problems_of("listen: x\nstate_dir: a\x18"
                        "b\n"),
            std::vector<std::string>{
                "t.yml:2:13: YAML syntax error: control character 0x18 is not allowed"});
  EXPECT_EQ(problems_of(std::string("a: \"x\0y\"\n", 9)),
            std::vector<std::string>{
                "t.yml:1:6: YAML syntax error: control character 0x00 is not allowed"});
  EXPECT_EQ(problems_of("a: b\nc: \xff\n"),
            std::vector<std::string>{"t.yml:2:4: YAML syntax error: invalid UTF-8"});
  // The fuzzer's original hang, byte for byte.
  const std::string hang(", timed6s:\x9aO\xc8\xdc\xfc\x7f\0\0 s", 20);
  EXPECT_EQ(problems_of(hang).size(), 1U);
  // A byte-order mark is fine.
  EXPECT_TRUE(problems_of("\xef\xbb\xbf" + std::string(minimal)).empty());
}

TEST(ParseConfig, DeepNestingIsAnErrorNotACrash) {
  for (const char* open : {"[", "{a: ", "- "}) {
    std::string deep = "upstreams: ";
    for (int i = 0; i < 100000; ++i) deep += open;
    const auto p = problems_of(deep);
    EXPECT_EQ(p.size(), 1U) << open;
  }
}

TEST(ParseConfig, SeveralDocumentsAreAnError) {
  const auto problems = problems_of(std::string(minimal) + "---\nlisten: \":1\"\n");
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0],
            "t.yml: holds several YAML documents (`---`); a configuration is one document");
}

TEST(ParseConfig, EmptyFileNeedsUpstreams) {
  for (const char* text : {"", "# only a comment\n", "---\n", "~\n"}) {
    const auto problems = problems_of(text);
    ASSERT_EQ(problems.size(), 1U) << '"' << text << '"' << test::joined(problems);
    EXPECT_EQ(problems[0], "t.yml: upstreams: at least one upstream is required");
  }
}

TEST(ParseConfig, ReportsEveryProblemAtOnce) {
  try {
    (void)parse_config(R"(
listen: "nope"
colour: blue
log: {level: loud}
upstreams:
  - name: "a b"
    url: http://example.com/x
    timeout: 10x
    rate_limit: {requests: 0, burst: 3}
  - name: ok
    url: https://example.com/y
    timestamps: sometimes
)",
                       "proxy.yml");
    FAIL() << "no exception";
  } catch (const config_error& e) {
    const auto& p = e.problems();
    EXPECT_EQ(p.size(), 9U) << test::joined(p);
    EXPECT_TRUE(has_problem(p, "listen", "is not host:port", "proxy.yml"));
    EXPECT_TRUE(has_problem(p, "colour", "unknown key", "proxy.yml"));
    EXPECT_TRUE(has_problem(p, "log.level", "\"loud\"", "proxy.yml"));
    EXPECT_TRUE(has_problem(p, "upstreams[0].name", "must match", "proxy.yml"));
    EXPECT_TRUE(has_problem(p, "upstreams[0].url", "loopback", "proxy.yml"));
    EXPECT_TRUE(has_problem(p, "upstreams[0].timeout",
                            "\"10x\" is not a duration (use 500ms, 10s, 5m, 1h)", "proxy.yml"));
    EXPECT_TRUE(has_problem(p, "upstreams[0].rate_limit.requests", "at least 1", "proxy.yml"));
    EXPECT_TRUE(has_problem(p, "upstreams[0].rate_limit.burst", "unknown key", "proxy.yml"));
    EXPECT_TRUE(has_problem(p, "upstreams[1].timestamps", "\"sometimes\"", "proxy.yml"));
    // what() is the same lines, newline-separated: one line per problem.
    std::string expected;
    for (const auto& line : p) expected += (expected.empty() ? "" : "\n") + line;
    EXPECT_EQ(std::string(e.what()), expected);
  }
}

TEST(ParseConfig, BadDurationDoesNotAlsoReportComparisons) {
  // A timeout that did not parse must not produce a second, confusing line.
  const auto p = problems_of(with_upstream("    timeout: 10x\n    poll_interval: 5s\n"));
  EXPECT_EQ(p.size(), 1U) << test::joined(p);
}

TEST(ConfigError, JoinsProblemsWithNewlines) {
  const config_error e({"a: b: c", "d: e: f"});
  EXPECT_STREQ(e.what(), "a: b: c\nd: e: f");
  EXPECT_EQ(e.problems().size(), 2U);
  const config_error one({"x: y: z"});
  EXPECT_STREQ(one.what(), "x: y: z");
}

TEST(ParseConfig, LongAndBinaryValuesAreEscapedAndCut) {
  const auto p =
      problems_of(with_upstream("    timeout: \"" + std::string(500, 'x') + "\\x01\"\n"));
  ASSERT_EQ(p.size(), 1U);
  EXPECT_LT(p[0].size(), 200U) << p[0];
  EXPECT_NE(p[0].find("(cut, 501 bytes)"), std::string::npos) << p[0];
  const auto q = problems_of(with_upstream("    timestamps: \"a\\nb\\x01\"\n"));
  ASSERT_EQ(q.size(), 1U);
  EXPECT_NE(q[0].find(R"("a\nb\x01")"), std::string::npos) << q[0];
  EXPECT_EQ(q[0].find('\n'), std::string::npos);
}

TEST(ParseConfig, Warnings) {
  // Budget smaller than the schedule: allowed, but said.
  const config c =
      parse_config(with_upstream("    rate_limit: {requests: 2, window: 5m}\n"), "t.yml");
  ASSERT_EQ(c.warnings.size(), 1U);
  EXPECT_EQ(c.warnings[0],
            "t.yml: upstreams[0].rate_limit: 2 requests per 5m cannot cover a poll every 1m (5 "
            "per window); some polls will be skipped");
  // Both key sources given: the file wins, the variable is ignored.
  const config d =
      parse_config(with_upstream("    api_key_env: MY_KEY\n    api_key_file: /run/key\n"), "t.yml");
  ASSERT_EQ(d.warnings.size(), 1U);
  EXPECT_EQ(d.warnings[0],
            "t.yml: upstreams[0].api_key_env: ignored, api_key_file is set and wins");
}

TEST(ParseListenAddress, SplitsHostAndPort) {
  const auto a = parse_listen_address("[::1]:9753");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 9753);
  const auto b = parse_listen_address(":80");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "");
  EXPECT_EQ(b->port, 80);
  EXPECT_FALSE(parse_listen_address("127.0.0.1:0"));
  const auto z = parse_listen_address("127.0.0.1:0", true);
  ASSERT_TRUE(z);
  EXPECT_EQ(z->port, 0);
  EXPECT_EQ(listen_address_problem("127.0.0.1:0"), "port 0 is out of range (1-65535)");
  EXPECT_EQ(listen_address_problem("127.0.0.1:1"), "");
}

TEST(Enums, ParseAndPrint) {
  for (const auto l : {log_level::debug, log_level::info, log_level::warn, log_level::error}) {
    EXPECT_EQ(parse_log_level(to_string(l)), l);
  }
  for (const auto f : {log_format::logfmt, log_format::json}) {
    EXPECT_EQ(parse_log_format(to_string(f)), f);
  }
  EXPECT_FALSE(parse_log_level("warning"));
  EXPECT_FALSE(parse_log_format("text"));
  EXPECT_EQ(to_string(timestamp_mode::window), "window");
}

TEST(Summarize, DescribesWhatWillHappen) {
  const config c = parse_config(R"(
listen: "127.0.0.1:9999"
state_dir: /tmp/s
upstreams:
  - name: prod
    url: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1
    poll_offset: 7s
    rate_limit: {requests: 3, window: 1m}
    timestamps: window
    extra_labels: {env: prod}
    proxy_url: http://user:hunter2@proxy:3128
)",
                                "t.yml");
  const std::string s = summarize(c);
  for (const char* expected :
       {"configuration: t.yml", "listen: 127.0.0.1:9999", "state_dir: /tmp/s", "name: prod",
        "url: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1",
        "api key: read from environment variable CEREBRAS_API_KEY",
        "schedule: every 1m at wall-clock multiples + 7s, timeout 10s",
        "budget: at most 3 requests in any 1m sliding window", "timestamps: window",
        "extra_labels: {env=\"prod\"}", "http://<redacted>@proxy:3128", "log: level=info"}) {
    EXPECT_NE(s.find(expected), std::string::npos) << expected << "\n" << s;
  }
  EXPECT_EQ(s.find("hunter2"), std::string::npos) << s;
}

TEST(LoadConfig, ReadsFileAndResolvesRelativePaths) {
  test::scratch_dir dir;
  dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  const auto file = dir.write("proxy.yml", R"(
state_dir: state
web_config_file: web.yml
upstreams:
  - url: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1
    ca_file: ca.pem
)",
                              0600);
  const config c = load_config(file);
  EXPECT_EQ(c.source, file.string());
  EXPECT_EQ(c.state_dir, (dir.path() / "state").string());
  EXPECT_EQ(c.web_config_file, (dir.path() / "web.yml").string());
  EXPECT_EQ(c.upstreams[0].ca_file, (dir.path() / "ca.pem").string());
  EXPECT_TRUE(c.warnings.empty()) << test::joined(c.warnings);
}

TEST(LoadConfig, MissingCaFileIsAnError) {
  test::scratch_dir dir;
  const auto file =
      dir.write("proxy.yml", "upstreams:\n  - url: https://example.com/x\n    ca_file: nope.pem\n");
  try {
    (void)load_config(file);
    FAIL() << "no exception";
  } catch (const config_error& e) {
    EXPECT_TRUE(has_problem(e.problems(), "upstreams[0].ca_file",
                            "cannot read " + (dir.path() / "nope.pem").string(), file.string()));
  }
}

TEST(LoadConfig, FileModeWarnsOnlyForAProxyPassword) {
  test::scratch_dir dir;
  // The packages ship the file 0644: it holds no secret, so no warning.
  const auto file = dir.write("proxy.yml", minimal, 0644);
  EXPECT_TRUE(load_config(file).warnings.empty()) << test::joined(load_config(file).warnings);

  // A proxy password is a credential: world-readable then warns, naming the key.
  std::string with_proxy(minimal);
  with_proxy += "    proxy_url: http://user:s3cret@proxy.example:3128\n";
  const auto proxied = dir.write("proxied.yml", with_proxy, 0644);
  const config c = load_config(proxied);
  ASSERT_EQ(c.warnings.size(), 1U);
  EXPECT_EQ(c.warnings[0], proxied.string() +
                               ": upstreams[0].proxy_url: holds a password and the file is "
                               "world-readable (mode 0644); chmod o-r the file, or give the proxy "
                               "in HTTPS_PROXY instead");
  EXPECT_EQ(c.warnings[0].find("s3cret"), std::string::npos);
  ::chmod(proxied.c_str(), 0640);
  EXPECT_TRUE(load_config(proxied).warnings.empty());
}

TEST(LoadConfig, UnreadableFile) {
  test::scratch_dir dir;
  const auto missing = dir.path() / "missing.yml";
  try {
    (void)load_config(missing);
    FAIL() << "no exception";
  } catch (const config_error& e) {
    ASSERT_EQ(e.problems().size(), 1U);
    EXPECT_EQ(e.problems()[0], missing.string() + ": cannot open: No such file or directory");
  }
  try {
    (void)load_config(dir.path());
    FAIL() << "no exception";
  } catch (const config_error& e) {
    EXPECT_EQ(e.problems()[0], dir.path().string() + ": is a directory, not a file");
  }
}

TEST(LoadConfig, OversizedFileIsRefused) {
  test::scratch_dir dir;
  const auto file = dir.write("big.yml", "# " + std::string(2 * 1024 * 1024, 'x') + "\n");
  try {
    (void)load_config(file);
    FAIL() << "no exception";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("larger than"), std::string::npos) << e.what();
  }
}

TEST(LoadConfig, ProblemsNameTheFile) {
  test::scratch_dir dir;
  const auto file = dir.write("proxy.yml", with_upstream("    timeout: 10x\n"));
  try {
    (void)load_config(file);
    FAIL() << "no exception";
  } catch (const config_error& e) {
    EXPECT_TRUE(has_problem(e.problems(), "upstreams[0].timeout", "\"10x\" is not a duration",
                            file.string()));
  }
}

}  // namespace
}  // namespace cmp::config
