#include "cmp/snapshot/body.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "test_support.hpp"

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
  EXPECT_TRUE(got.contiguous().empty());
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
  EXPECT_EQ(got.contiguous().data(), shared->data());
  EXPECT_EQ(got.contiguous(), "abcdefgh");
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

TEST(Body, SliceFindsARangeGivenInOneCall) {
  auto shared = std::make_shared<const std::string>("SAMPLES\n");
  body::builder b;
  b.copy("# TYPE x gauge\n");
  const std::size_t at = b.size();
  b.refer(*shared);
  b.keep(shared);
  const body got = std::move(b).finish();
  EXPECT_EQ(got.slice(at, shared->size()).data(), shared->data());
  EXPECT_EQ(got.slice(0, at), "# TYPE x gauge\n");
  EXPECT_TRUE(got.slice(at - 2, 4).empty());  // spans two segments
}

TEST(Body, OwnsAStringItIsGiven) {
  const body b(std::string("short"));
  EXPECT_EQ(b.contiguous(), "short");
  const body moved = b;
  EXPECT_EQ(moved.str(), "short");
  EXPECT_TRUE(body(std::string()).segments().empty());
}

// --- segments in files (snapshot texts in memfds, shared_text.hpp) ---

using test::expect_file_segments_read_back;
using test::numbered;
using test::pread_all;

TEST(BodyFiles, SegmentsInAFileKnowTheirFileAndOffset) {
  auto text = std::make_shared<const shared_text>(shared_text::make(numbered(100 * 1024)));
  ASSERT_TRUE(text->in_file());
  const std::string_view all = *text;
  body::builder b;
  b.copy("# HELP x\n");
  b.refer(all.substr(0, 1000));
  b.copy("# TYPE y\n");
  b.refer(all.substr(5000, 40000));
  b.refer(all.substr(45000, 100));  // touches the previous range: merged
  b.keep(text);
  b.mapped(text->file());
  const body got = std::move(b).finish();
  EXPECT_EQ(got.str(), "# HELP x\n" + std::string(all.substr(0, 1000)) + "# TYPE y\n" +
                           std::string(all.substr(5000, 40100)));
  ASSERT_EQ(got.segments().size(), 4u);
  EXPECT_TRUE(got.has_files());
  EXPECT_EQ(got.file(0).fd, -1);  // copied bytes are in memory only
  EXPECT_EQ(got.file(1).offset, 0u);
  EXPECT_EQ(got.file(2).fd, -1);
  EXPECT_EQ(got.file(3).offset, 5000u);
  EXPECT_EQ(expect_file_segments_read_back(got), 2u);
}

TEST(BodyFiles, ABodyWithoutFilesSaysSo) {
  const auto text = std::make_shared<const std::string>(numbered(100 * 1024));
  body::builder b;
  b.refer(*text);
  b.keep(text);
  const body got = std::move(b).finish();
  EXPECT_FALSE(got.has_files());
  EXPECT_EQ(got.file(0).fd, -1);
  EXPECT_EQ(got.file(99).fd, -1);  // out of range: memory
}

// Two mappings that touch in virtual memory (the kernel often places them
// so): a range over both is one range to the builder, but two files.
TEST(BodyFiles, ARangeOverTwoAdjacentMappingsIsSplitAtTheFileBoundary) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t size = 16 * page;  // whole pages, so the mappings can touch
  const auto a = shared_text::make(numbered(size, 'a'));
  const auto b = shared_text::make(numbered(size, 'b'));
  ASSERT_TRUE(a.in_file());
  ASSERT_TRUE(b.in_file());
  // Map both files again, side by side, at an address reserved for the pair.
  void* area = ::mmap(nullptr, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(area, MAP_FAILED);
  auto* base = static_cast<char*>(area);
  ASSERT_NE(::mmap(base, size, PROT_READ, MAP_SHARED | MAP_FIXED, a.file().fd, 0), MAP_FAILED);
  ASSERT_NE(::mmap(base + size, size, PROT_READ, MAP_SHARED | MAP_FIXED, b.file().fd, 0), MAP_FAILED);
  {
    const std::string_view pair(base, 2 * size);
    ASSERT_EQ(pair.substr(0, size), a.view());
    ASSERT_EQ(pair.substr(size), b.view());
    body::builder bb;
    bb.refer(pair.substr(size - 100, 50));
    bb.refer(pair.substr(size - 50, 150));  // touches the previous range and crosses into b
    bb.mapped({base, size, a.file().fd, 0});
    bb.mapped({base + size, size, b.file().fd, 0});
    const body got = std::move(bb).finish();
    EXPECT_EQ(got.str(), std::string(pair.substr(size - 100, 200)));
    ASSERT_EQ(got.segments().size(), 2u);
    EXPECT_EQ(got.file(0).fd, a.file().fd);
    EXPECT_EQ(got.file(0).offset, size - 100);
    EXPECT_EQ(got.segments()[0].size(), 100u);
    EXPECT_EQ(got.file(1).fd, b.file().fd);
    EXPECT_EQ(got.file(1).offset, 0u);
    EXPECT_EQ(got.segments()[1].size(), 100u);
    EXPECT_EQ(expect_file_segments_read_back(got), 2u);
  }
  ::munmap(area, 2 * size);
}

// The cut where a file begins and ends, whatever is around it: a range that
// starts in other memory, runs through a file and ends in other memory.
TEST(BodyFiles, ARangeThroughAFileIsCutWhereTheFileBeginsAndEnds) {
  const auto keep = std::make_shared<const std::string>("0123456789abcdefghij");
  const char* p = keep->data();
  body::builder b;
  b.refer(std::string_view(p, 20));
  b.keep(keep);
  b.mapped({p + 5, 10, 42, 1000});  // bytes 5..14 "are" file 42 at 1000
  const body got = std::move(b).finish();
  ASSERT_EQ(got.segments().size(), 3u);
  EXPECT_EQ(got.segments()[0], "01234");
  EXPECT_EQ(got.file(0).fd, -1);
  EXPECT_EQ(got.segments()[1], "56789abcde");
  EXPECT_EQ(got.file(1).fd, 42);
  EXPECT_EQ(got.file(1).offset, 1000u);
  EXPECT_EQ(got.segments()[2], "fghij");
  EXPECT_EQ(got.file(2).fd, -1);
  EXPECT_EQ(got.str(), *keep);
}

TEST(BodyFiles, ABodyReferringToAnothersBytesCarriesTheirFilePositions) {
  auto text = std::make_shared<const shared_text>(shared_text::make(numbered(90 * 1024)));
  ASSERT_TRUE(text->in_file());
  body::builder first;
  first.refer(*text);
  first.keep(text);
  first.mapped(text->file());
  const body inner = std::move(first).finish();
  ASSERT_EQ(inner.segments().size(), 1u);
  EXPECT_EQ(inner.file(0).fd, text->file().fd);

  // As the OpenMetrics body refers to the text body's sample lines.
  const auto bytes = inner.contiguous();
  body::builder second;
  second.keep(inner);
  second.copy("# TYPE a counter\n");
  second.refer(bytes.substr(777, 20000));
  second.copy("# TYPE b gauge\n");
  second.refer(bytes.substr(30000, 100));
  const body outer = std::move(second).finish();
  EXPECT_EQ(outer.file(1).offset, 777u);
  EXPECT_EQ(outer.file(3).offset, 30000u);
  EXPECT_EQ(expect_file_segments_read_back(outer), 2u);

  // As a merged view: learns the files without keeping them twice.
  body::builder third;
  third.keep(std::make_shared<const body>(outer));
  third.mapped(outer);
  third.refer(outer.segments()[1]);
  const body merged = std::move(third).finish();
  EXPECT_EQ(merged.file(0).offset, 777u);
  EXPECT_EQ(expect_file_segments_read_back(merged), 1u);
}

}  // namespace
}  // namespace cmp::snapshot
