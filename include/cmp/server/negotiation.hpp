#pragma once
// HTTP content negotiation for /metrics: which exposition format and
// whether to gzip, from the Accept and Accept-Encoding headers (RFC 9110
// q-values). Pure functions.

#include <string_view>

#include "cmp/exposition/writer.hpp"

namespace cmp::server {

using exposition_format = exposition::format;  // the one vocabulary (exposition/writer.hpp)

// OpenMetrics when the client ranks application/openmetrics-text (any
// version we speak) at least as high as text/plain; Prometheus sends
// `application/openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5`.
[[nodiscard]] exposition_format choose_format(std::string_view accept) noexcept;

// True when gzip is acceptable with q > 0 (explicitly or via `*`).
[[nodiscard]] bool accepts_gzip(std::string_view accept_encoding) noexcept;

}  // namespace cmp::server
