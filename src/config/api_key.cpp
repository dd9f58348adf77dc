// Loading the upstream API key. Every message names where the key was looked
// for and never what was found there.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "cmp/config/config.hpp"

namespace cmp::config {

namespace {

// A key is a few dozen bytes; this only stops `api_key_file: /dev/zero`.
constexpr std::size_t max_key_file = 64 * 1024;

void strip_trailing_space(std::string& s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n' || s.back() == '\v' || s.back() == '\f')) {
    s.pop_back();
  }
}

// A control byte left inside the key would end up in the Authorization
// header line: refuse it rather than send a broken or injected header.
bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

[[noreturn]] void fail(std::string_view source, const upstream& u, std::string_view field,
                       std::string_view reason) {
  throw config_error({fmt::format("{}: upstreams[name={}].{}: {}", source, u.name, field, reason)});
}

secret from_file(const upstream& u, std::string_view source, std::vector<std::string>* warnings) {
  const auto path = api_key_file_path(u, source);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fail(source, u, "api_key_file",
         fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(source, u, "api_key_file", fmt::format("{} is not a regular file", path.string()));
  }
  std::string value;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail(source, u, "api_key_file",
           fmt::format("cannot read {}: {}", path.string(), std::strerror(err)));
    }
    if (n == 0) break;
    value.append(buf, static_cast<std::size_t>(n));
    if (value.size() > max_key_file) {
      ::close(fd);
      fail(source, u, "api_key_file",
           fmt::format("{} is larger than {} bytes; it should hold only the key", path.string(),
                       max_key_file));
    }
  }
  ::close(fd);
  strip_trailing_space(value);
  if (value.empty()) fail(source, u, "api_key_file", fmt::format("{} is empty", path.string()));
  if (has_control(value)) {
    fail(source, u, "api_key_file",
         fmt::format("{} holds control characters or several lines; it should hold only the key",
                     path.string()));
  }
  if (warnings != nullptr) {
    auto w = world_readable_secret_warning(
        fmt::format("{}: upstreams[name={}].api_key_file", source, u.name), path, st.st_mode);
    if (!w.empty()) warnings->push_back(std::move(w));
  }
  return secret(std::move(value));
}

bool is_env_name(std::string_view s) {
  const auto head = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  return !s.empty() && head(s.front()) && std::all_of(s.begin() + 1, s.end(), [&](char c) {
    return head(c) || (c >= '0' && c <= '9');
  });
}

secret from_env(const upstream& u, std::string_view source) {
  // parse_config already refuses such names; a hand-built upstream could
  // still carry the key itself here, so the name is not echoed either.
  if (!is_env_name(u.api_key_env)) {
    fail(source, u, "api_key_env", "is not an environment variable name (value not shown)");
  }
  const char* raw = std::getenv(u.api_key_env.c_str());
  if (raw == nullptr) {
    fail(source, u, "api_key_env",
         fmt::format("environment variable {} is not set", u.api_key_env));
  }
  std::string value(raw);
  strip_trailing_space(value);
  if (value.empty()) {
    fail(source, u, "api_key_env", fmt::format("environment variable {} is empty", u.api_key_env));
  }
  if (has_control(value)) {
    fail(source, u, "api_key_env",
         fmt::format("environment variable {} holds control characters", u.api_key_env));
  }
  return secret(std::move(value));
}

}  // namespace

std::string world_readable_secret_warning(std::string_view where, const std::filesystem::path& file,
                                          unsigned mode) {
  if ((mode & S_IROTH) == 0) return {};
  return fmt::format(
      "{}: {} is world-readable (mode {:04o}); chmod o-r it (0600, or 0640/0440 to share it with "
      "a group)",
      where, file.string(), mode & 07777);
}

std::filesystem::path api_key_file_path(const upstream& u, std::string_view source) {
  std::filesystem::path p(u.api_key_file);
  if (p.is_absolute()) return p;
  // systemd's LoadCredential= puts the file in $CREDENTIALS_DIRECTORY; without
  // it, relative means next to the configuration file, like every other path.
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir != nullptr && *dir != '\0') {
    return std::filesystem::path(dir) / p;
  }
  const auto base = std::filesystem::path(source).parent_path();
  return base.empty() ? p : base / p;
}

secret load_api_key(const upstream& u, std::string_view source,
                    std::vector<std::string>* warnings) {
  if (!u.api_key_file.empty()) return from_file(u, source, warnings);
  if (!u.api_key_env.empty()) return from_env(u, source);
  fail(source, u, "api_key_env", "api_key_env and api_key_file are both empty; set one of them");
}

}  // namespace cmp::config
