// libFuzzer target for the exposition module. Properties:
//  * parse_body never crashes, on any bytes, as text or OpenMetrics;
//  * whatever it accepts (repairs included), write_text renders into a body
//    that parses back to an equivalent model (NaN == NaN) without any repair,
//    and rendering that model again gives the same bytes: the daemon's
//    output is canonical whatever came in;
//  * write_openmetrics output of an accepted model parses as OpenMetrics;
//  * write_openmetrics never crashes and appends only whole lines;
//  * the transforms the poller applies (a label rename, extra labels, a
//    merge) rebuild samples into a model that still renders and parses.
// The body limit is lowered so that one input cannot make a single run slow
// (parsing is linear in the body: there is no other default limit).

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/transform.hpp"
#include "cmp/exposition/writer.hpp"

namespace {

using namespace cmp::exposition;

// Escaping can double a body's length.
parse_limits relaxed_limits() {
  parse_limits relaxed;
  relaxed.max_bytes *= 4;
  return relaxed;
}

void check_canonical(const family_list& model) {
  std::string text;
  write_text(model, text);
  const auto again = parse_body(text, body_format::text, relaxed_limits());
  if (!again || !again->normalizations.empty() || !equivalent(model, again->families)) {
    __builtin_trap();
  }
  std::string twice;
  write_text(again->families, twice);
  if (twice != text) __builtin_trap();
  std::string om;
  write_openmetrics(model, om);
  om += "# EOF\n";
  if (!parse_body(om, body_format::openmetrics, relaxed_limits())) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cmp::exposition;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  parse_limits limits;
  limits.max_bytes = 1u << 20;
  // OpenMetrics first: it shares the lexer, so the text checks below also
  // cover what only the repairing pass does.
  if (const auto om = parse_body(body, body_format::openmetrics, limits)) {
    check_canonical(om->families);
  } else if (om.error().line == 0 || om.error().column == 0 || om.error().reason.empty()) {
    __builtin_trap();
  }
  const auto parsed = parse_body(body, body_format::text, limits);
  if (!parsed) {
    const parse_error& e = parsed.error();
    if (e.line == 0 || e.column == 0 || e.reason.empty()) __builtin_trap();
    return 0;
  }
  const family_list* const first = &parsed->families;
  check_canonical(*first);

  const parse_limits relaxed = relaxed_limits();
  family_list changed = *first;
  rename_label(changed, "endpoint", "model");
  add_labels(changed, {{"env", "a \"quoted\\ value\n"}, {"zone", ""}});
  const family_list* parts[] = {&changed, first};
  const family_list merged = merge(parts);
  std::string merged_text;
  write_text(merged, merged_text);
  if (!parse_text(merged_text, relaxed)) __builtin_trap();

  std::string om = "# prefix\n";
  write_openmetrics(*first, om);
  if (om.back() != '\n') __builtin_trap();
  return 0;
}
