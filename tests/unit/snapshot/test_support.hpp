#pragma once
// Helpers shared by the snapshot tests: texts whose bytes differ at every
// offset, and reading back what a body says lies in a file.

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "cmp/snapshot/body.hpp"

namespace cmp::snapshot::test {

// `size` bytes of sample lines ("s0 1\n", "s1 1\n", ...), so that a read at
// the wrong offset shows; cut at `size` (the last line may be partial).
inline std::string numbered(std::size_t size, char tag = 's') {
  std::string s;
  for (std::size_t i = 0; s.size() < size; ++i) {
    s += tag;
    s.append(std::to_string(i)).append(" 1\n");
  }
  s.resize(size);
  return s;
}

inline std::string pread_all(int fd, std::uint64_t offset, std::size_t size) {
  std::string out(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    const auto n = ::pread(fd, out.data() + done, size - done, static_cast<off_t>(offset + done));
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

// What sendfile relies on: every segment said to be in a file is exactly
// the file's bytes at its offset. Returns how many segments are in files.
inline std::size_t expect_file_segments_read_back(const body& b) {
  std::size_t in_files = 0;
  for (std::size_t i = 0; i < b.segments().size(); ++i) {
    const auto f = b.file(i);
    if (f.fd < 0) continue;
    ++in_files;
    EXPECT_EQ(pread_all(f.fd, f.offset, b.segments()[i].size()), b.segments()[i]) << "segment " << i;
  }
  return in_files;
}

}  // namespace cmp::snapshot::test
