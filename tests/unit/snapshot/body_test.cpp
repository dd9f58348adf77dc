#include "cmp/snapshot/body.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace cmp::snapshot {
namespace {

TEST(Body, BuiltFromCopiesAndReferencesReadsAsTheirConcatenation) {
  auto shared = std::make_shared<const std::string>("0123456789");
  body::builder b;
  b.copy("# head\n");
  b.refer(std::string_view(*shared).substr(0, 4));
  b.copy("mid\n");
  b.refer(std::string_view(*shared).substr(6));
  b.keep(shared);
  const body got = std::move(b).finish();
  EXPECT_EQ(got.str(), "# head\n0123mid\n6789");
  EXPECT_EQ(got.size(), got.str().size());
  EXPECT_EQ(got.segments().size(), 4u);
  EXPECT_EQ(got, std::string_view("# head\n0123mid\n6789"));
  EXPECT_FALSE(got == std::string_view("# head\n0123mid\n678X"));
}

TEST(Body, RangesThatTouchInMemoryBecomeOneSegment) {
  auto shared = std::make_shared<const std::string>("abcdefgh");
  const std::string_view all(*shared);
  body::builder b;
  b.refer(all.substr(0, 3));
  b.refer(all.substr(3, 2));
  b.refer(all.substr(5));
  b.keep(shared);
  const body got = std::move(b).finish();
  ASSERT_EQ(got.segments().size(), 1u);
  // The very bytes, not a copy.
  EXPECT_EQ(got.segments()[0].data(), shared->data());
  EXPECT_EQ(got.segments()[0], "abcdefgh");
}

TEST(Body, KeepsWhatItRefersToAlive) {
  auto shared = std::make_shared<const std::string>(std::string(1000, 'x') + "end");
  std::weak_ptr<const std::string> watch = shared;
  body got;
  {
    body::builder b;
    b.refer(*shared);
    b.keep(std::move(shared));
    got = std::move(b).finish();
  }
  EXPECT_FALSE(watch.expired());
  const body copy = got;  // a copy shares the owners
  got = body{};
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(copy.str(), std::string(1000, 'x') + "end");
}

}  // namespace
}  // namespace cmp::snapshot
