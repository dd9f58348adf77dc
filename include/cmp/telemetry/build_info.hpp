#pragma once
// The build's identity. The revision lives in one generated source
// (cmake/build_info.cpp.in) rather than in a compile definition: a definition
// that changes with every commit would make every translation unit that sees
// it miss the compiler cache.

#include <string_view>

namespace cmp::telemetry {

// Git revision the binary was configured from ("unknown" outside a checkout).
[[nodiscard]] std::string_view build_revision() noexcept;

}  // namespace cmp::telemetry
