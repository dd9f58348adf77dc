#pragma once
// Helpers shared by the config tests: collecting problems and scratch files.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "cmp/config/config.hpp"

namespace cmp::config::test {

// The problems parse_config reports for `yaml` under the name "t.yml"; empty
// when it parses.
inline std::vector<std::string> problems_of(std::string_view yaml) {
  try {
    (void)parse_config(yaml, "t.yml");
  } catch (const config_error& e) {
    return e.problems();
  }
  return {};
}

inline std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "\n  " + l;
  return out;
}

// Passes when one line reads `t.yml: KEY: ...REASON...`.
inline ::testing::AssertionResult has_problem(const std::vector<std::string>& problems,
                                              std::string_view key, std::string_view reason,
                                              std::string_view source = "t.yml") {
  const std::string prefix = std::string(source) + ": " + std::string(key) + ": ";
  for (const auto& p : problems) {
    if (p.starts_with(prefix) && p.find(reason, prefix.size()) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure()
         << "no problem `" << prefix << "..." << reason << "...` among:" << joined(problems);
}

// A fresh directory under the gtest temp dir, removed on destruction.
class scratch_dir {
 public:
  scratch_dir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("cmp-config-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  std::filesystem::path write(const std::string& name, std::string_view content,
                              mode_t mode = 0600) const {
    const auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    {
      std::ofstream out(p, std::ios::binary | std::ios::trunc);
      out << content;
    }
    ::chmod(p.c_str(), mode);
    return p;
  }

 private:
  std::filesystem::path path_;
};

// Sets an environment variable for one scope and restores the old value.
class scoped_env {
 public:
  scoped_env(std::string name, const char* value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old, had_ = true;
    if (value != nullptr) {
      ::setenv(name_.c_str(), value, 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ~scoped_env() {
    if (had_) {
      ::setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
  std::string old_;
  bool had_ = false;
};

}  // namespace cmp::config::test
