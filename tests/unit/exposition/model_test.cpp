#include "cmp/exposition/model.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace cmp::exposition {
namespace {

TEST(Sample, KeepsNameLabelsInOrderValueAndTimestamp) {
  const sample s{"requests_count_total", {{"endpoint", "llama"}, {"organization_id", "org-1"}}, 42, 1700};
  EXPECT_EQ(s.name(), "requests_count_total");
  ASSERT_EQ(s.labels().size(), 2u);
  EXPECT_EQ(s.labels()[0], label_ref("endpoint", "llama"));
  EXPECT_EQ(s.labels()[1], label_ref("organization_id", "org-1"));
  EXPECT_EQ(s.labels(), (std::vector<label>{{"endpoint", "llama"}, {"organization_id", "org-1"}}));
  EXPECT_NE(s.labels(), (std::vector<label>{{"organization_id", "org-1"}, {"endpoint", "llama"}}));
  EXPECT_EQ(s.value, 42);
  EXPECT_EQ(s.timestamp_ms, 1700);
}

TEST(Sample, DefaultAndLabelFreeSamplesAreEmpty) {
  const sample d;
  EXPECT_EQ(d.name(), "");
  EXPECT_TRUE(d.labels().empty());
  const sample s{"up"};
  EXPECT_EQ(s.name(), "up");
  EXPECT_TRUE(s.labels().empty());
  EXPECT_EQ(s.labels().begin(), s.labels().end());
}

TEST(Sample, TextIsKeptByteForByte) {
  // Empty values, NUL bytes and long values must survive the packing.
  const std::string nul("a\0b", 3);
  const std::string big(70'000, 'x');
  const sample s{"m", {{"e", ""}, {"n", nul}, {"b", big}}, 1};
  EXPECT_EQ(s.labels()[0].value, "");
  EXPECT_EQ(s.labels()[1].value, nul);
  EXPECT_EQ(s.labels()[2].value, big);
  EXPECT_EQ(s.labels().find("n"), std::string_view(nul));
  EXPECT_EQ(s.labels().find("missing"), std::nullopt);
}

TEST(Sample, CopiesAndMovesOwnTheirText) {
  sample a{"m", {{"k", "a-value-long-enough-to-live-on-the-heap"}}, 1};
  const sample copy = a;
  const sample moved = std::move(a);
  a = sample{"other"};
  EXPECT_EQ(copy.labels(), moved.labels());
  EXPECT_EQ(copy.labels()[0].value, "a-value-long-enough-to-live-on-the-heap");
  EXPECT_EQ(a.name(), "other");
}

TEST(Sample, IteratorsOutliveTheLabelList) {
  const sample s{"m", {{"a", "1"}, {"b", "2"}}, 0};
  auto it = s.labels().begin();  // the label_list is a temporary
  EXPECT_EQ(*it, label_ref("a", "1"));
  ++it;
  EXPECT_EQ(*it, label_ref("b", "2"));
}

TEST(Sample, SameKeyMeansSameNameAndLabelsInTheSameOrder) {
  const sample a{"m", {{"x", "1"}, {"y", "2"}}, 1};
  EXPECT_TRUE(a.same_key(sample{"m", {{"x", "1"}, {"y", "2"}}, 7}));
  EXPECT_FALSE(a.same_key(sample{"m", {{"y", "2"}, {"x", "1"}}, 1}));
  EXPECT_FALSE(a.same_key(sample{"n", {{"x", "1"}, {"y", "2"}}, 1}));
  // Boundaries between pieces are part of the key: "ab"+"c" is not "a"+"bc".
  EXPECT_FALSE((sample{"m", {{"ab", "c"}}}).same_key(sample{"m", {{"a", "bc"}}}));
}

TEST(SampleBuilder, WritesValuesInPlace) {
  sample::builder b("m", 2, 16);
  b.add("k", "v");
  char* room = b.value_room("e", 8);
  room[0] = 'o';
  room[1] = 'k';
  b.value_written(2);
  const sample s = b.finish(3, 9);
  EXPECT_EQ(s.labels(), (std::vector<label>{{"k", "v"}, {"e", "ok"}}));
  EXPECT_EQ(s.value, 3);
  EXPECT_EQ(s.timestamp_ms, 9);
}

TEST(SampleBuilder, RefusesWhatWasNotAnnounced) {
  {
    sample::builder b("m", 1, 4);
    b.add("k", "v");
    EXPECT_THROW(b.add("x", "y"), std::logic_error);  // a second label
  }
  {
    sample::builder b("m", 1, 4);
    EXPECT_THROW(b.add("key", "value"), std::logic_error);  // more text
  }
  {
    sample::builder b("m", 1, 8);
    b.value_room("k", 2);
    EXPECT_THROW(b.value_written(3), std::logic_error);
  }
  {
    sample::builder b("m", 2, 8);
    b.add("k", "v");
    EXPECT_THROW(b.finish(0), std::logic_error);  // one label missing
  }
}

TEST(LabelList, PrintsForTestFailures) {
  std::ostringstream os;
  os << sample{"m", {{"a", "1"}, {"b", "2"}}}.labels();
  EXPECT_EQ(os.str(), "{a=\"1\",b=\"2\"}");
}

TEST(LabelList, ConvertsBackToOwningLabels) {
  const std::vector<label> labels{{"a", "1"}, {"b", ""}};
  EXPECT_EQ((sample{"m", labels}.labels().to_labels()), labels);
}

}  // namespace
}  // namespace cmp::exposition
