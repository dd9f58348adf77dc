#include "cmp/server/negotiation.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace cmp::server {
namespace {

constexpr auto om = exposition_format::openmetrics;
constexpr auto text = exposition_format::text;

struct format_case {
  std::string_view accept;
  exposition_format expected;
};

class ChooseFormat : public ::testing::TestWithParam<format_case> {};

TEST_P(ChooseFormat, PicksTheFormatTheScraperRanksHighest) {
  EXPECT_EQ(choose_format(GetParam().accept), GetParam().expected) << '"' << GetParam().accept << '"';
}

INSTANTIATE_TEST_SUITE_P(
    Table, ChooseFormat,
    ::testing::Values(
        // Prometheus 2.x (2.5x) with OpenMetrics scraping.
        format_case{"application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                    om},
        // Older Prometheus 2.x.
        format_case{"application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                    om},
        // Prometheus 3.x.
        format_case{"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
                    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
                    "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                    om},
        // Prometheus with `scrape_protocols: [PrometheusText0.0.4]` or 2.x default.
        format_case{"text/plain;version=0.0.4;q=1,*/*;q=0.1", text},
        format_case{"text/plain;version=0.0.4", text},
        // curl, browsers, nothing at all.
        format_case{"*/*", text},
        format_case{"", text},
        format_case{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", text},
        format_case{"text/*", text},
        // OpenMetrics alone, any spelling of case and blanks.
        format_case{"application/openmetrics-text", om},
        format_case{"APPLICATION/OpenMetrics-Text; Version=1.0.0", om},
        // The version as a quoted-string; an unknown version is not OpenMetrics 1.0.
        format_case{"application/openmetrics-text; version=\"1.0.0\",text/plain;q=0.5", om},
        format_case{"application/openmetrics-text; version=\"2.0.0\",text/plain;q=0.5", text},
        format_case{"  application/openmetrics-text ; version=1.0.0 ; Q=0.9 ,text/plain;q=0.5", om},
        // Ranked below text, or refused.
        format_case{"application/openmetrics-text;q=0.4,text/plain;q=0.5", text},
        format_case{"application/openmetrics-text;q=0", text},
        format_case{"application/openmetrics-text;q=0.0,text/plain", text},
        // A tie goes to OpenMetrics (the client asked for both equally).
        format_case{"text/plain;q=0.5,application/openmetrics-text;q=0.5", om},
        // */* stands for text/plain when text/plain is not listed.
        format_case{"application/openmetrics-text;q=0.3,*/*;q=0.5", text},
        format_case{"application/openmetrics-text;q=0.6,*/*;q=0.5", om},
        format_case{"*/*;q=0.1,application/openmetrics-text", om},
        // Versions we do not speak are not OpenMetrics for us.
        format_case{"application/openmetrics-text;version=2.0.0,text/plain;q=0.5", text},
        format_case{"application/openmetrics-text;version=2.0.0", text},
        // Garbage: never OpenMetrics by accident, never a crash.
        format_case{"application/openmetrics-text;q=abc", text},
        format_case{"application/openmetrics-text;q=2", text},
        format_case{"application/openmetrics-text;q=-1", text},
        format_case{"application/openmetrics-text;q=nan", text},
        format_case{";;;,,,", text},
        format_case{",,application/openmetrics-text,,", om},
        format_case{"application/openmetrics-text;q", om},
        format_case{"application/openmetrics-text;=;q=;", text},
        format_case{"\t", text},
        format_case{"application/openmetrics-textual", text},
        format_case{"application/openmetrics", text}));

struct gzip_case {
  std::string_view accept_encoding;
  bool expected;
};

class AcceptsGzip : public ::testing::TestWithParam<gzip_case> {};

TEST_P(AcceptsGzip, GzipOnlyWhenAcceptable) {
  EXPECT_EQ(accepts_gzip(GetParam().accept_encoding), GetParam().expected)
      << '"' << GetParam().accept_encoding << '"';
}

INSTANTIATE_TEST_SUITE_P(
    Table, AcceptsGzip,
    ::testing::Values(
        gzip_case{"gzip", true},  // Prometheus
        gzip_case{"gzip, deflate, br", true}, gzip_case{"deflate, gzip;q=1.0, *;q=0.5", true},
        gzip_case{"GZIP", true}, gzip_case{"x-gzip", true}, gzip_case{" gzip ;q=0.001", true},
        gzip_case{"gzip;q=0", false}, gzip_case{"gzip;q=0.000", false}, gzip_case{"gzip; Q=0", false},
        gzip_case{"identity", false}, gzip_case{"deflate, br", false}, gzip_case{"", false},
        gzip_case{"*", true}, gzip_case{"*;q=0", false},
        // An explicit gzip entry wins over `*`, whatever the order.
        gzip_case{"*;q=0.5, gzip;q=0", false}, gzip_case{"gzip;q=0, *", false},
        gzip_case{"*;q=0, gzip", true},
        gzip_case{"identity;q=1, *;q=0", false},
        // Garbage.
        gzip_case{"gzip;q=abc", false}, gzip_case{"gzip;q=5", false}, gzip_case{",,,;", false},
        gzip_case{"gzipx", false}, gzip_case{"gz", false}));

}  // namespace
}  // namespace cmp::server
