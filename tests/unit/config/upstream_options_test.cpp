// rename_labels, derived_counters, replicas and the offset + timeout rule.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cmp/config/config.hpp"

namespace cmp::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string with(const std::string& extra) {
  return "upstreams:\n"
         "  - name: a\n"
         "    url: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1\n" +
         extra;
}

std::string error_of(const std::string& yaml) {
  try {
    (void)parse_config(yaml, "t.yml");
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

std::vector<std::string> warnings_of(const std::string& yaml) {
  return parse_config(yaml, "t.yml").warnings;
}

TEST(UpstreamOptions, DefaultsAreOff) {
  const auto c = parse_config(with(""), "t.yml");
  EXPECT_FALSE(c.upstreams[0].derived_counters);
  EXPECT_TRUE(c.upstreams[0].rename_labels.empty());
}

TEST(UpstreamOptions, ReadsRenameLabelsAndDerivedCounters) {
  const auto c = parse_config(
      with("    derived_counters: true\n    rename_labels: {endpoint: cerebras_endpoint}\n"), "t.yml");
  EXPECT_TRUE(c.upstreams[0].derived_counters);
  EXPECT_EQ(c.upstreams[0].rename_labels.at("endpoint"), "cerebras_endpoint");
  EXPECT_THAT(summarize(c), HasSubstr("rename_labels: endpoint -> cerebras_endpoint"));
}

TEST(UpstreamOptions, RejectsBadValues) {
  EXPECT_THAT(error_of(with("    derived_counters: maybe\n")),
              HasSubstr("t.yml: upstreams[0].derived_counters"));
  EXPECT_THAT(error_of(with("    rename_labels: {endpoint: \"bad-name\"}\n")),
              HasSubstr("upstreams[0].rename_labels.endpoint: both names must be label names"));
  EXPECT_THAT(error_of(with("    rename_labels: {endpoint: __x}\n")), HasSubstr("reserved"));
}

// Prometheus's opt-in scrape limits: 0 (none) unless set; read as they are
// written, summarized, and a name limit below `__name__`'s 8 bytes warned of.
TEST(UpstreamOptions, BodyLimitsDefaultToNoneAndAreRead) {
  const auto none = parse_config(with(""), "t.yml").upstreams[0];
  EXPECT_EQ(none.label_limit + none.label_name_length_limit + none.label_value_length_limit +
                none.sample_limit,
            0u);
  const auto c = parse_config(with("    label_limit: 30\n    label_name_length_limit: 64\n"
                                   "    label_value_length_limit: 1024\n    sample_limit: 5000\n"),
                              "t.yml");
  const auto& u = c.upstreams[0];
  EXPECT_EQ(u.label_limit, 30u);
  EXPECT_EQ(u.label_name_length_limit, 64u);
  EXPECT_EQ(u.label_value_length_limit, 1024u);
  EXPECT_EQ(u.sample_limit, 5000u);
  EXPECT_THAT(summarize(c), HasSubstr("label_limit 30, label_name_length_limit 64, "
                                      "label_value_length_limit 1024, sample_limit 5000"));
  EXPECT_THAT(error_of(with("    sample_limit: -1\n")), HasSubstr("upstreams[0].sample_limit"));
  EXPECT_THAT(error_of(with("    label_limit: many\n")), HasSubstr("upstreams[0].label_limit"));
  const auto w = warnings_of(with("    label_name_length_limit: 5\n"));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_THAT(w[0], HasSubstr("label_name_length_limit: 5 refuses every body"));
}

TEST(UpstreamOptions, OffsetPlusTimeoutMustFitTheInterval) {
  EXPECT_THAT(error_of(with("    poll_interval: 60s\n    poll_offset: 55s\n    timeout: 10s\n")),
              HasSubstr("upstreams[0].timeout: poll_offset (55s) + timeout (10s) must fit in "
                        "poll_interval (1m)"));
  EXPECT_EQ(error_of(with("    poll_interval: 60s\n    poll_offset: 50s\n    timeout: 10s\n")), "");
}


TEST(UpstreamReplicas, DefaultIsOneReplica) {
  const auto c = parse_config(with(""), "t.yml");
  EXPECT_EQ(c.upstreams[0].replicas.count, 1u);
  EXPECT_EQ(c.upstreams[0].replicas.index, 0u);
  EXPECT_THAT(summarize(c), Not(HasSubstr("replica")));
}

TEST(UpstreamReplicas, ReadsCountAndIndex) {
  const auto c = parse_config(with("    timestamps: window\n"
                                   "    rate_limit: {requests: 3, window: 1m}\n"
                                   "    replicas: {count: 2, index: 1}\n"),
                              "t.yml");
  EXPECT_EQ(c.upstreams[0].replicas.count, 2u);
  EXPECT_EQ(c.upstreams[0].replicas.index, 1u);
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
  EXPECT_THAT(summarize(c), HasSubstr("replicas: this is replica 1 of 2"));
}

TEST(UpstreamReplicas, RejectsBadValues) {
  struct row {
    const char* yaml;
    const char* problem;
  };
  const row rows[] = {
      {"    replicas: {count: 0}\n", "t.yml: upstreams[0].replicas.count: must be at least 1"},
      {"    replicas: {count: 2, index: 2}\n",
       "t.yml: upstreams[0].replicas.index: 2 must be less than replicas.count (2)"},
      {"    replicas: {count: 2, idx: 1}\n", "t.yml: upstreams[0].replicas.idx"},
      {"    replicas: {count: -1}\n", "t.yml: upstreams[0].replicas.count"},
      {"    replicas: 2\n", "t.yml: upstreams[0].replicas"},
      // 60 s - 5 s - 10 s = 45 s of start span: 46 replicas get under 1 s each.
      {"    replicas: {count: 46, index: 0}\n",
       "t.yml: upstreams[0].replicas: 46 replicas need at least 1s each of the span a poll may "
       "start in (poll_interval - poll_offset - timeout = 45s)"},
  };
  for (const auto& r : rows) EXPECT_THAT(error_of(with(r.yaml)), HasSubstr(r.problem)) << r.yaml;
  EXPECT_EQ(error_of(with("    replicas: {count: 45, index: 44}\n    timestamps: window\n"
                          "    rate_limit: {requests: 1, window: 10m}\n")),
            "");
}

TEST(UpstreamReplicas, WarnsWhenTheReplicasTogetherExceedTheDocumentedLimit) {
  struct row {
    const char* yaml;
    const char* warning;  // empty: no warning
  };
  const row rows[] = {
      {"    rate_limit: {requests: 3, window: 1m}\n    replicas: {count: 2}\n", ""},
      {"    rate_limit: {requests: 2, window: 1m}\n    replicas: {count: 3, index: 2}\n", ""},
      {"    rate_limit: {requests: 6, window: 2m}\n    replicas: {count: 2}\n"
       "    poll_interval: 1m\n",
       "t.yml: upstreams[0].rate_limit: 2 replicas with 6 requests per 2m each may send 12 "
       "requests in one minute, above the Metrics API's documented limit of 6 per organization; "
       "give each replica rate_limit.requests: 3 and window: 1m"},
      // The default budget is the whole organization's: two copies double it.
      {"    replicas: {count: 2}\n", "2 replicas with 6 requests per 1m each may send 12"},
      // A sliding window of 30 s fits twice in a minute.
      {"    rate_limit: {requests: 3, window: 30s}\n    replicas: {count: 2}\n",
       "may send 12 requests in one minute"},
      {"    rate_limit: {requests: 1, window: 30s}\n    replicas: {count: 4}\n",
       "may send 8 requests in one minute"},
  };
  for (const auto& r : rows) {
    const auto w = warnings_of(with(std::string(r.yaml) + "    timestamps: window\n"));
    if (*r.warning == '\0') {
      EXPECT_TRUE(w.empty()) << r.yaml << w.front();
    } else {
      bool found = false;
      for (const auto& line : w) found = found || line.find(r.warning) != std::string::npos;
      EXPECT_TRUE(found) << r.yaml;
    }
  }
  // One daemon is not a replica set: budgets are checked as before.
  EXPECT_TRUE(warnings_of(with("    rate_limit: {requests: 6, window: 30s}\n")).empty());
}

TEST(UpstreamReplicas, RecommendsWindowTimestamps) {
  const auto w =
      warnings_of(with("    rate_limit: {requests: 3, window: 1m}\n"
                       "    replicas: {count: 2}\n"));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0],
            "t.yml: upstreams[0].replicas: with timestamps: none each replica's samples get their "
            "own scrape time; timestamps: window makes the replicas' samples identical for HA "
            "deduplication");
}

TEST(KeyRotation, SummarySaysWhichKeySourceFollowsRotation) {
  EXPECT_THAT(summarize(parse_config(with("    api_key_file: /run/key\n"), "t.yml")),
              HasSubstr("api key: read from file /run/key (checked before every poll: a replaced "
                        "file is used without a reload)"));
  EXPECT_THAT(summarize(parse_config(with(""), "t.yml")),
              HasSubstr("api key: read from environment variable CEREBRAS_API_KEY (changes need "
                        "a reload)"));
}

TEST(MaxRequestsPerMinute, CountsHowOftenTheWindowFitsInAMinute) {
  struct row {
    std::uint32_t requests;
    duration window;
    std::uint64_t per_minute;
  };
  const row rows[] = {{6, 60s, 6}, {6, 5min, 6}, {3, 30s, 6}, {3, 40s, 6}, {1, 7s, 9}, {2, 61s, 2}};
  for (const auto& r : rows)
    EXPECT_EQ(max_requests_per_minute({r.requests, r.window}), r.per_minute)
        << r.requests << " per " << format_duration(r.window);
}

}  // namespace
}  // namespace cmp::config
