// The shipped example files must stay loadable and truthful: the daemon's
// example documents every default, so it must parse to exactly the defaults.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>

#include <yaml-cpp/yaml.h>

#include "cmp/config/config.hpp"
#include "cmp/config/web_config.hpp"
#include "test_support.hpp"

namespace cmp::config {
namespace {

const std::filesystem::path source_dir = std::filesystem::path(CMP_TEST_DATA_DIR) / "../..";
const std::filesystem::path example = source_dir / "config/cerebras-metrics-proxy.yml";
const std::filesystem::path web_example = source_dir / "config/web-config.example.yml";
const std::filesystem::path fixtures = std::filesystem::path(CMP_TEST_DATA_DIR) / "config";

TEST(Examples, DaemonConfigLoadsAndStatesTheDefaults) {
  config c;
  ASSERT_NO_THROW(c = load_config(example)) << example;
  const config defaults;
  EXPECT_EQ(c.listen, defaults.listen);
  EXPECT_EQ(c.state_dir, defaults.state_dir);
  EXPECT_EQ(c.web_config_file, defaults.web_config_file);
  EXPECT_EQ(c.log.level, defaults.log.level);
  EXPECT_EQ(c.log.format, defaults.log.format);
  ASSERT_EQ(c.upstreams.size(), 1U);
  const upstream& u = c.upstreams[0];
  const upstream d;
  EXPECT_EQ(u.name, d.name);
  EXPECT_EQ(u.api_key_env, d.api_key_env);
  EXPECT_EQ(u.api_key_file, d.api_key_file);
  EXPECT_EQ(u.ca_file, d.ca_file);
  EXPECT_EQ(u.proxy_url, d.proxy_url);
  EXPECT_EQ(u.timeout, d.timeout);
  EXPECT_EQ(u.poll_interval, d.poll_interval);
  EXPECT_EQ(u.poll_offset, d.poll_offset);
  EXPECT_EQ(u.limit.requests, d.limit.requests);
  EXPECT_EQ(u.limit.window, d.limit.window);
  EXPECT_EQ(u.max_staleness, d.max_staleness);
  EXPECT_EQ(u.timestamps, d.timestamps);
  EXPECT_EQ(u.extra_labels, d.extra_labels);
  EXPECT_EQ(u.rename_labels, d.rename_labels);
  EXPECT_EQ(u.derived_counters, d.derived_counters);
  EXPECT_EQ(u.replicas.count, d.replicas.count);
  EXPECT_EQ(u.replicas.index, d.replicas.index);
  // The shipped defaults draw no warning (whatever the checkout's file mode).
  EXPECT_TRUE(c.warnings.empty()) << test::joined(c.warnings);
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The key paths written in a YAML document, as accepted_keys() spells them:
// `log.level`, `upstreams[].rate_limit.requests`. A key's children are
// followed only when they are keys of the file format too (not the labels
// of `extra_labels`).
void collect_keys(const YAML::Node& node, const std::string& prefix, const std::set<std::string>& accepted,
                  std::set<std::string>& out) {
  if (node.IsSequence()) {
    for (const auto& item : node) collect_keys(item, prefix + "[]", accepted, out);
    return;
  }
  if (!node.IsMap()) return;
  for (const auto& kv : node) {
    const std::string path = (prefix.empty() ? "" : prefix + ".") + kv.first.as<std::string>();
    out.insert(path);
    const bool block = std::any_of(accepted.begin(), accepted.end(),
                                   [&](const std::string& k) { return k.starts_with(path + ".") || k.starts_with(path + "[]"); });
    if (block) collect_keys(kv.second, path, accepted, out);
  }
}

// The example says it shows every key, and the README's table lists every
// key: a key added to the reader and to neither fails here.
TEST(Examples, EveryAcceptedKeyIsInTheExampleAndTheReadme) {
  const auto keys = accepted_keys();
  const std::set<std::string> accepted(keys.begin(), keys.end());
  ASSERT_TRUE(accepted.contains("upstreams[].rate_limit.requests")) << "accepted_keys() lost a block's keys";
  ASSERT_TRUE(accepted.contains("log.level"));

  std::set<std::string> in_example;
  collect_keys(YAML::LoadFile(example.string()), "", accepted, in_example);
  const std::string readme = read_text(source_dir / "README.md");
  ASSERT_FALSE(readme.empty());
  for (const auto& k : accepted) {
    EXPECT_TRUE(in_example.contains(k)) << k << " is accepted but missing from " << example;
    EXPECT_NE(readme.find("`" + k + "`"), std::string::npos) << k << " is accepted but missing from README.md";
  }
}

TEST(Examples, WebConfigParses) {
  const auto text = read_text(web_example);
  ASSERT_FALSE(text.empty()) << web_example;
  web_config w;
  ASSERT_NO_THROW(w = parse_web_config(text, web_example.string()));
  ASSERT_TRUE(w.tls.has_value());
  EXPECT_EQ(w.tls->cert_file, "server.crt");
  EXPECT_EQ(w.basic_auth_users.size(), 1U);
  EXPECT_TRUE(w.warnings.empty()) << test::joined(w.warnings);

  // And loads once its certificate files exist beside it.
  test::scratch_dir dir;
  const auto copy = dir.write("web.yml", text, 0600);
  dir.write("server.crt", "cert", 0644);
  dir.write("server.key", "key", 0600);
  ASSERT_NO_THROW(w = load_web_config(copy));
  EXPECT_EQ(w.tls->cert_file, (dir.path() / "server.crt").string());
}

TEST(Examples, FixturesLoad) {
  config c;
  ASSERT_NO_THROW(c = load_config(fixtures / "two-upstreams.yml"));
  EXPECT_EQ(c.upstreams.size(), 2U);
}

}  // namespace
}  // namespace cmp::config
