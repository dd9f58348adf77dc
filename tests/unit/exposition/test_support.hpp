#pragma once
// Helpers shared by the exposition module's tests.

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/writer.hpp"

namespace cmp::exposition::test_support {

// Parses a body the test expects to be valid; a failure is reported with the
// parser's message and yields an empty model.
inline family_list parse_ok(std::string_view body) {
  auto r = parse_text(body);
  EXPECT_TRUE(r.has_value()) << "body: " << body << "\nerror: " << r.error().message();
  return r.has_value() ? std::move(*r) : family_list{};
}

inline std::string text(const family_list& f) {
  std::string out;
  write_text(f, out);
  return out;
}

}  // namespace cmp::exposition::test_support
