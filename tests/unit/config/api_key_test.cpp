#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sstream>

#include "cmp/config/config.hpp"
#include "test_support.hpp"

namespace cmp::config {
namespace {

using test::scoped_env;
using test::scratch_dir;

// What a leaked key would look like in any output.
constexpr const char* key_value = "csk-TOPSECRET-4f9a8b7c6d5e";

upstream with_env(const char* var) {
  upstream u;
  u.name = "org";
  u.url = "https://example.com/m";
  u.api_key_env = var;
  return u;
}

upstream with_file(std::string path) {
  upstream u;
  u.name = "org";
  u.url = "https://example.com/m";
  u.api_key_file = std::move(path);
  return u;
}

// Runs load_api_key expecting failure; returns the one problem.
std::string failure(const upstream& u, std::string_view source = "t.yml") {
  try {
    (void)load_api_key(u, source);
  } catch (const config_error& e) {
    EXPECT_EQ(e.problems().size(), 1U);
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return {};
}

TEST(LoadApiKey, FromEnvironment) {
  scoped_env env("CMP_TEST_KEY_A", "csk-abc\n");
  const secret s = load_api_key(with_env("CMP_TEST_KEY_A"), "t.yml");
  EXPECT_EQ(s.expose(), "csk-abc");  // trailing newline stripped
}

TEST(LoadApiKey, EnvironmentMissingOrEmpty) {
  {
    scoped_env env("CMP_TEST_KEY_B", nullptr);
    EXPECT_EQ(failure(with_env("CMP_TEST_KEY_B")),
              "t.yml: upstreams[name=org].api_key_env: environment variable CMP_TEST_KEY_B is "
              "not set");
  }
  {
    scoped_env env("CMP_TEST_KEY_B", " \n");
    EXPECT_EQ(failure(with_env("CMP_TEST_KEY_B")),
              "t.yml: upstreams[name=org].api_key_env: environment variable CMP_TEST_KEY_B is "
              "empty");
  }
  {
    scoped_env env("CMP_TEST_KEY_B", "csk-a\r\nInjected: yes");
    EXPECT_EQ(failure(with_env("CMP_TEST_KEY_B")),
              "t.yml: upstreams[name=org].api_key_env: environment variable CMP_TEST_KEY_B holds "
              "control characters");
  }
}

TEST(LoadApiKey, FromFileStripsTrailingWhitespace) {
  scratch_dir dir;
  const auto file = dir.write("key", "csk-from-file \t\r\n\n", 0600);
  std::vector<std::string> warnings;
  const secret s = load_api_key(with_file(file.string()), "t.yml", &warnings);
  EXPECT_EQ(s.expose(), "csk-from-file");
  EXPECT_TRUE(warnings.empty()) << test::joined(warnings);
}

TEST(LoadApiKey, FileWinsOverEnvironment) {
  scratch_dir dir;
  const auto file = dir.write("key", "from-file", 0400);
  scoped_env env("CEREBRAS_API_KEY", "from-env");
  upstream u = with_file(file.string());  // api_key_env keeps its default
  EXPECT_EQ(load_api_key(u, "t.yml").expose(), "from-file");
}

TEST(LoadApiKey, RelativeFileUsesCredentialsDirectory) {
  scratch_dir creds;
  creds.write("api-key", "csk-cred\n", 0400);
  scoped_env env("CREDENTIALS_DIRECTORY", creds.path().c_str());
  EXPECT_EQ(load_api_key(with_file("api-key"), "/etc/elsewhere/proxy.yml").expose(), "csk-cred");
}

TEST(LoadApiKey, RelativeFileWithoutCredentialsDirectoryIsNextToConfig) {
  scratch_dir dir;
  dir.write("keys/api-key", "csk-local", 0600);
  scoped_env env("CREDENTIALS_DIRECTORY", nullptr);
  EXPECT_EQ(load_api_key(with_file("keys/api-key"), (dir.path() / "proxy.yml").string()).expose(),
            "csk-local");
}

TEST(LoadApiKey, FileProblemsNameTheFile) {
  scratch_dir dir;
  const auto missing = dir.path() / "missing";
  EXPECT_EQ(failure(with_file(missing.string())),
            "t.yml: upstreams[name=org].api_key_file: cannot open " + missing.string() +
                ": No such file or directory");
  const auto empty = dir.write("empty", "\n\n", 0600);
  EXPECT_EQ(failure(with_file(empty.string())),
            "t.yml: upstreams[name=org].api_key_file: " + empty.string() + " is empty");
  EXPECT_EQ(
      failure(with_file(dir.path().string())),
      "t.yml: upstreams[name=org].api_key_file: " + dir.path().string() + " is not a regular file");
  const auto two = dir.write("two", "line1\nline2\n", 0600);
  EXPECT_EQ(failure(with_file(two.string())),
            "t.yml: upstreams[name=org].api_key_file: " + two.string() +
                " holds control characters or several lines; it should hold only the key");
  const auto big = dir.write("big", std::string(100 * 1024, 'k'), 0600);
  EXPECT_NE(failure(with_file(big.string())).find("is larger than"), std::string::npos);
}

TEST(LoadApiKey, OnlyWorldReadableKeyFileWarns) {
  scratch_dir dir;
  // Group-readable is how a Kubernetes Secret with fsGroup (0440) or a
  // packaged root:group file (0640) arrives: no warning.
  for (const mode_t mode : {0400, 0600, 0440, 0640}) {
    const auto file = dir.write("key", "csk-x", mode);
    std::vector<std::string> warnings;
    (void)load_api_key(with_file(file.string()), "t.yml", &warnings);
    EXPECT_TRUE(warnings.empty()) << std::oct << mode << ": " << warnings.front();
  }
  for (const mode_t mode : {0604, 0644, 0444}) {
    const auto file = dir.write("key", "csk-x", mode);
    std::vector<std::string> warnings;
    (void)load_api_key(with_file(file.string()), "t.yml", &warnings);
    ASSERT_EQ(warnings.size(), 1U) << std::oct << mode;
    EXPECT_EQ(warnings[0], fmt::format("t.yml: upstreams[name=org].api_key_file: {} is "
                                       "world-readable (mode {:04o}); chmod o-r it (0600, or "
                                       "0640/0440 to share it with a group)",
                                       file.string(), mode));
  }
}

TEST(LoadApiKey, NoSource) {
  upstream u = with_env("");
  EXPECT_EQ(failure(u),
            "t.yml: upstreams[name=org].api_key_env: api_key_env and api_key_file "
            "are both empty; set one of them");
}

// The key value must not reach any message, summary or formatter, whatever
// the user got wrong.
TEST(Secrets, KeyNeverAppearsInOutput) {
  std::vector<std::string> outputs;
  const auto collect = [&](auto&& fn) {
    try {
      fn();
    } catch (const config_error& e) {
      outputs.emplace_back(e.what());
    }
  };
  scratch_dir dir;
  // The key pasted where the variable name goes.
  collect([&] {
    (void)parse_config(
        fmt::format("upstreams:\n  - url: https://x/m\n    api_key_env: {}\n", key_value), "t.yml");
  });
  // The key written into the file under a made-up key.
  collect([&] {
    (void)parse_config(fmt::format("upstreams:\n  - url: https://x/m\n    api_key: {}\n"
                                   "    token: {}\n",
                                   key_value, key_value),
                       "t.yml");
  });
  // The key as the file name and as the variable name at load time.
  collect([&] { (void)load_api_key(with_env(key_value), "t.yml"); });
  {
    scoped_env env("CMP_TEST_KEY_S", (std::string(key_value) + "\x01").c_str());
    collect([&] { (void)load_api_key(with_env("CMP_TEST_KEY_S"), "t.yml"); });
  }
  // Key files that are refused after being read.
  for (const std::string& content :
       {std::string(key_value) + "\nsecond line", std::string(key_value) + "\x7f"}) {
    const auto f = dir.write("k", content, 0600);
    collect([&] { (void)load_api_key(with_file(f.string()), "t.yml"); });
  }
  ASSERT_EQ(outputs.size(), 6U) << test::joined(outputs);
  // A key that loads: the config summary and every formatter stay clean.
  scoped_env env("CMP_TEST_KEY_OK", key_value);
  const config c =
      parse_config("upstreams:\n  - url: https://x/m\n    api_key_env: CMP_TEST_KEY_OK\n", "t.yml");
  const secret s = load_api_key(c.upstreams[0], c.source);
  EXPECT_EQ(s.expose(), key_value);
  outputs.push_back(summarize(c));
  outputs.push_back(fmt::format("{}", s));
  outputs.push_back(fmt::format("{:>40}", s));
  std::ostringstream os;
  os << s;
  outputs.push_back(os.str());
  for (const auto& out : outputs) {
    EXPECT_EQ(out.find(key_value), std::string::npos) << out;
    EXPECT_EQ(out.find("TOPSECRET"), std::string::npos) << out;
  }
  EXPECT_EQ(fmt::format("{}", s), "<redacted>");
}

}  // namespace
}  // namespace cmp::config
