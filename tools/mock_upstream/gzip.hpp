#pragma once
// One-shot gzip (RFC 1952) of a whole body: bodies are at most tens of MiB
// and are cached per window, so streaming would buy nothing.

#include <string>
#include <string_view>

namespace cmp::mock {

std::string gzip_compress(std::string_view data);

}  // namespace cmp::mock
