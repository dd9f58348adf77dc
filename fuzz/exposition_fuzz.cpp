// libFuzzer target for the exposition module. Properties:
//  * parse_text never crashes, on any bytes;
//  * what it accepts, write_text renders into a body that parses back to an
//    equivalent model (NaN == NaN), and rendering that model again gives the
//    same bytes;
//  * write_openmetrics never crashes and appends only whole lines;
//  * the transforms the poller applies (a label rename, extra labels, a
//    merge) rebuild samples into a model that still renders and parses.
// Limits are lowered so that one input cannot make a single run slow.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/transform.hpp"
#include "cmp/exposition/writer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cmp::exposition;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  parse_limits limits;
  limits.max_bytes = 1u << 20;
  limits.max_samples = 10'000;
  const parse_result first = parse_text(body, limits);
  if (!first) {
    const parse_error& e = first.error();
    if (e.line == 0 || e.column == 0 || e.reason.empty()) __builtin_trap();
    return 0;
  }

  std::string text;
  write_text(*first, text);
  parse_limits relaxed;  // escaping can double a value's length
  relaxed.max_label_value_length *= 2;
  relaxed.max_help_length *= 2;
  relaxed.max_labels_per_sample += 2;  // the two add_labels() below
  const parse_result second = parse_text(text, relaxed);
  if (!second || !equivalent(*first, *second)) __builtin_trap();
  std::string again;
  write_text(*second, again);
  if (again != text) __builtin_trap();

  family_list changed = *first;
  rename_label(changed, "endpoint", "model");
  add_labels(changed, {{"env", "a \"quoted\\ value\n"}, {"zone", ""}});
  const family_list* parts[] = {&changed, &*first};
  const family_list merged = merge(parts);
  std::string merged_text;
  write_text(merged, merged_text);
  if (!parse_text(merged_text, relaxed)) __builtin_trap();

  std::string om = "# prefix\n";
  write_openmetrics(*first, om);
  if (om.back() != '\n') __builtin_trap();
  return 0;
}
