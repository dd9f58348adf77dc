#pragma once
// The API's own words for a refused request, fit for one line of a log, a
// status page or `--probe`: the Metrics API answers errors with a JSON body
// (`{"message": "Wrong API Key", "type": ..., "param": ..., "code": ...}`)
// that names the problem better than the status alone. Pure; thread-safe.

#include <cstddef>
#include <string>
#include <string_view>

#include "cmp/config/secret.hpp"

namespace cmp::upstream {

// At most this many bytes of error text are shown: enough for any message
// the API writes, too few for an HTML error page to flood a terminal.
inline constexpr std::size_t api_error_text_limit = 200;

// The error text of a response body: the JSON `message` (also
// `error.message`, `error` or `detail`, as other HTTP APIs and proxies
// write it), else the body itself, trimmed. Control characters are escaped
// (`\n`, `\x1b`), the key (when given and found) becomes `<redacted>`, and
// the result is cut to api_error_text_limit bytes on a character boundary,
// ending in `...` when cut. Empty for an empty body.
[[nodiscard]] std::string api_error_text(std::string_view body, const config::secret& key = {});

}  // namespace cmp::upstream
