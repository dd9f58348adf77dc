#pragma once
// An API key. It redacts itself wherever it could be printed: there is no
// operator<<, no fmt formatter that shows it, and `redacted()` is the only
// text form. The raw bytes are reachable only through `expose()`, which the
// HTTP client calls once per request to build the Authorization header.

#include <ostream>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace cmp::config {

class secret {
 public:
  secret() = default;
  explicit secret(std::string value) : value_(std::move(value)) {}

  [[nodiscard]] bool empty() const noexcept { return value_.empty(); }
  [[nodiscard]] std::string_view expose() const noexcept { return value_; }
  [[nodiscard]] static constexpr std::string_view redacted() noexcept { return "<redacted>"; }

  friend bool operator==(const secret&, const secret&) = default;
  friend std::ostream& operator<<(std::ostream& os, const secret&) { return os << redacted(); }

 private:
  std::string value_;
};

}  // namespace cmp::config

template <>
struct fmt::formatter<cmp::config::secret> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const cmp::config::secret&, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(cmp::config::secret::redacted(), ctx);
  }
};
