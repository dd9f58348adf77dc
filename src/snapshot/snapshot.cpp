#include "cmp/snapshot/snapshot.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/transform.hpp"
#include "cmp/exposition/writer.hpp"

namespace cmp::snapshot {

std::string series_text(const exposition::family_list& families, std::size_t* series) {
  const exposition::family_list* part = &families;
  const auto merged = exposition::merge({&part, 1});
  if (series) {
    *series = 0;
    for (const auto& f : merged) *series += f.samples.size();
  }
  std::string text;
  exposition::write_text(merged, text);
  // The string grew by doubling: up to twice its size, kept for as long as
  // the snapshot is served (heaptrack at 30 organizations: this was the
  // daemon's largest live allocation). One copy per poll gives it back.
  text.shrink_to_fit();
  return text;
}

namespace {

gzip_body owned(gzip_head h) { return {body(std::move(h.bytes)), h.crc, h.size}; }

std::shared_ptr<exposition_view> render_full(
    const std::vector<std::shared_ptr<const snapshot>>& snapshots) {
  auto v = std::make_shared<exposition_view>();
  std::vector<exposition::family_list> models;
  models.reserve(snapshots.size());
  std::size_t unreadable = 0;
  for (const auto& s : snapshots) {
    auto parsed = exposition::parse_text(s->text);
    // series_text() wrote it, so this cannot fail unless writer and parser
    // disagree (the round-trip tests and fuzzer guard that); if it does,
    // the other upstreams are still served and the loss is counted.
    if (!parsed) {
      unreadable += s->series;
      continue;
    }
    models.push_back(std::move(*parsed));
    v->served.push_back(s->upstream);
    if (!v->last_modified || s->fetched_at > *v->last_modified) v->last_modified = s->fetched_at;
  }
  std::vector<const exposition::family_list*> parts;
  for (const auto& m : models) parts.push_back(&m);
  // Two organizations export the same family names; Prometheus text allows
  // each family once, so they are merged into one family per name.
  exposition::merge_stats stats;
  const auto merged = exposition::merge(parts, &stats);
  v->dropped_series = stats.samples_dropped + stats.duplicate_series + unreadable;
  for (const auto& f : merged) v->series += f.samples.size();
  std::string text, om;
  exposition::write_text(merged, text);
  exposition::write_openmetrics(merged, om);
  v->text.gzip = owned(gzip_begin(text));
  v->openmetrics.gzip = owned(gzip_begin(om));
  v->text.plain = body(std::move(text));
  v->openmetrics.plain = body(std::move(om));
  return v;
}

const std::shared_ptr<const exposition_view>& empty_view() {
  static const std::shared_ptr<const exposition_view> empty = render_full({});
  return empty;
}

// The offset just past the newline that ends the line starting at `from`.
std::size_t next_line(std::string_view body, std::size_t from) {
  const auto* nl = static_cast<const char*>(std::memchr(body.data() + from, '\n', body.size() - from));
  return nl ? static_cast<std::size_t>(nl - body.data()) + 1 : body.size();
}

// Where a family's lines lie in a body: offsets of its first line, of its
// escaped HELP text (without `# HELP name ` and the newline), of its sample
// lines, and the end.
struct family_offsets {
  std::size_t head = 0, help_begin = 0, help_end = 0, begin = 0, end = 0;
};

// Walks a body written by write_text/write_openmetrics for `families` and
// records where each family's HELP text and sample lines are. The writers'
// layout is fixed (writer.hpp): per non-empty family an optional `# HELP
// <name> <text>` line, a `# TYPE` line, then one line per sample (values and
// label values never contain a raw newline).
std::vector<family_offsets> locate(std::string_view body, const exposition::family_list& families) {
  std::vector<family_offsets> out(families.size());
  std::size_t at = 0;
  for (std::size_t i = 0; i < families.size(); ++i) {
    const auto& f = families[i];
    if (f.samples.empty()) continue;
    auto& o = out[i];
    o.head = o.help_begin = o.help_end = at;
    if (f.help) {
      // The name may be the counter's stem in OpenMetrics: find its end.
      const auto* sp = static_cast<const char*>(std::memchr(body.data() + at + 7, ' ', body.size() - at - 7));
      o.help_begin = static_cast<std::size_t>(sp - body.data()) + 1;
      at = next_line(body, o.help_begin);
      o.help_end = at - 1;
    }
    at = next_line(body, at);  // # TYPE
    o.begin = at;
    for (std::size_t n = 0; n < f.samples.size(); ++n) at = next_line(body, at);
    o.end = at;
  }
  return out;
}

// Labels with one value on every sample, sorted by name.
std::vector<exposition::label> constant_labels(const exposition::family_list& families) {
  std::vector<exposition::label> common;
  bool first = true;
  for (const auto& f : families) {
    for (const auto& s : f.samples) {
      if (first) {
        common = s.labels().to_labels();
        first = false;
      } else {
        const auto labels = s.labels();
        std::erase_if(common, [&](const exposition::label& l) {
          const auto v = labels.find(l.name);
          return !v || *v != l.value;
        });
      }
      if (common.empty()) return common;
    }
  }
  std::sort(common.begin(), common.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return common;
}

// True when a label proves that no series of `a` can be one of `b`.
bool disjoint(const upstream_render& a, const upstream_render& b) {
  auto i = a.constant_labels.begin(), j = b.constant_labels.begin();
  while (i != a.constant_labels.end() && j != b.constant_labels.end()) {
    if (i->name < j->name) {
      ++i;
    } else if (j->name < i->name) {
      ++j;
    } else {
      if (i->value != j->value) return true;
      ++i;
      ++j;
    }
  }
  return false;
}

bool share_a_family(const upstream_render& a, const upstream_render& b) {
  std::unordered_set<std::string_view> names;
  for (const auto& f : a.families) names.insert(f.name);
  return std::any_of(b.families.begin(), b.families.end(),
                     [&](const auto& f) { return names.count(f.name) != 0; });
}

}  // namespace

std::shared_ptr<const exposition_view> render_view(
    const std::vector<std::shared_ptr<const snapshot>>& snapshots) {
  return render_full(snapshots);
}

std::shared_ptr<const exposition_view> exposition_view::upstream(std::string_view name) const {
  for (const auto& [n, v] : upstreams)
    if (n == name) return v;
  return nullptr;
}

std::shared_ptr<const upstream_render> render_upstream(std::shared_ptr<const snapshot> s) {
  auto r = std::make_shared<upstream_render>();
  r->source = s;
  auto parsed = exposition::parse_text(s->text);
  if (!parsed) {
    r->dropped_series = s->series;
    r->view = render_full({s});
    return r;
  }
  r->readable = true;
  const exposition::family_list* part = &*parsed;
  exposition::merge_stats stats;
  const auto merged = exposition::merge({&part, 1}, &stats);
  parsed->clear();
  auto v = std::make_shared<exposition_view>();
  v->served.push_back(s->upstream);
  v->last_modified = s->fetched_at;
  r->dropped_series = v->dropped_series = stats.samples_dropped + stats.duplicate_series;
  for (const auto& f : merged) v->series += f.samples.size();
  std::string text, om;
  exposition::write_text(merged, text);
  exposition::write_openmetrics(merged, om);

  r->families.resize(merged.size());
  for (std::size_t i = 0; i < merged.size(); ++i) {
    const auto& f = merged[i];
    auto& p = r->families[i];
    p.name = f.name;
    p.type = f.type;
    p.has_help = f.help.has_value();
    p.samples = f.samples.size();
    p.om_counter_ok = exposition::om_counter_samples_ok(f);
  }
  const auto text_at = locate(text, merged);
  const auto om_at = locate(om, merged);

  // The text body: the snapshot's own text when it is these bytes (it is:
  // series_text() wrote it from the same families; only a snapshot from an
  // older writer would differ), else the bytes just written.
  if (text == s->text) {
    body::builder b;
    b.refer(s->text);
    b.keep(s);
    b.mapped(s->text.file());
    v->text.plain = std::move(b).finish();
    std::string().swap(text);
  } else {
    v->text.plain = body(std::move(text));
  }
  const std::string_view text_bytes = v->text.plain.contiguous();

  // The OpenMetrics body: its own header lines, and the text body's sample
  // lines wherever they are the same bytes (no timestamps, or none that
  // differ in unit), so that both formats keep the series once.
  body::builder om_b;
  om_b.keep(v->text.plain);
  std::vector<std::size_t> om_head_at(merged.size()), om_samples_at(merged.size());
  for (std::size_t i = 0; i < merged.size(); ++i) {
    if (r->families[i].samples == 0) continue;
    const auto& o = om_at[i];
    const auto& t = text_at[i];
    om_head_at[i] = om_b.size();
    om_b.copy(std::string_view(om).substr(o.head, o.begin - o.head));
    om_samples_at[i] = om_b.size();
    const auto om_samples = std::string_view(om).substr(o.begin, o.end - o.begin);
    const auto text_samples = text_bytes.substr(t.begin, t.end - t.begin);
    if (om_samples == text_samples) {
      om_b.refer(text_samples);
    } else {
      om_b.copy(om_samples);
    }
  }
  v->openmetrics.plain = std::move(om_b).finish();

  // Each family's samples are compressed once, here; this view's gzip and
  // every merged view's are assembled from these pieces.
  gzip_builder text_gz, om_gz;
  // Per family: where its stored header block, its piece and the piece's
  // end lie in the text and the OpenMetrics gzip body.
  std::vector<std::array<std::size_t, 6>> gz_at(merged.size());
  for (std::size_t i = 0; i < merged.size(); ++i) {
    auto& p = r->families[i];
    if (p.samples == 0) continue;
    const auto& t = text_at[i];
    const auto& o = om_at[i];
    const auto text_piece = gzip_piece(text_bytes.substr(t.begin, t.end - t.begin));
    const auto om_piece = gzip_piece(std::string_view(om).substr(o.begin, o.end - o.begin));
    p.text_crc = text_piece.crc;
    p.om_crc = om_piece.crc;
    auto& g = gz_at[i];
    g[0] = text_gz.offset();
    text_gz.stored(text_bytes.substr(t.head, t.begin - t.head));
    g[1] = text_gz.offset();
    text_gz.piece(text_piece);
    g[2] = text_gz.offset();
    g[3] = om_gz.offset();
    om_gz.stored(std::string_view(om).substr(o.head, o.begin - o.head));
    g[4] = om_gz.offset();
    om_gz.piece(om_piece);
    g[5] = om_gz.offset();
  }
  v->text.gzip = std::move(text_gz).finish();
  v->openmetrics.gzip = std::move(om_gz).finish();

  // Every range as a view of the bytes `v` keeps; `om` is freed below.
  for (std::size_t i = 0; i < merged.size(); ++i) {
    auto& p = r->families[i];
    if (p.samples == 0) continue;
    const auto& t = text_at[i];
    const auto& o = om_at[i];
    p.text_head = text_bytes.substr(t.head, t.begin - t.head);
    p.text_help = text_bytes.substr(t.help_begin, t.help_end - t.help_begin);
    p.text_samples = text_bytes.substr(t.begin, t.end - t.begin);
    p.om_head = v->openmetrics.plain.slice(om_head_at[i], o.begin - o.head);
    p.om_help = p.om_head.substr(o.help_begin - o.head, o.help_end - o.help_begin);
    p.om_samples = v->openmetrics.plain.slice(om_samples_at[i], o.end - o.begin);
    const auto& g = gz_at[i];
    const auto& text_gz_bytes = v->text.gzip.bytes;
    const auto& om_gz_bytes = v->openmetrics.gzip.bytes;
    p.text_gz_head = text_gz_bytes.slice(g[0], g[1] - g[0]);
    p.text_gz_samples = text_gz_bytes.slice(g[1], g[2] - g[1]);
    p.om_gz_head = om_gz_bytes.slice(g[3], g[4] - g[3]);
    p.om_gz_samples = om_gz_bytes.slice(g[4], g[5] - g[4]);
  }
  r->constant_labels = constant_labels(merged);
  r->view = std::move(v);
  return r;
}

std::shared_ptr<exposition_view> merge_renders(
    const std::vector<std::shared_ptr<const upstream_render>>& parts) {
  std::vector<const upstream_render*> ok;
  for (const auto& p : parts)
    if (p->readable) ok.push_back(p.get());
  // Two upstreams that may share a series need the full merge's duplicate
  // check; a label on every sample (the `upstream` or organization label a
  // multi-organization config adds) rules that out cheaply.
  for (std::size_t i = 0; i < ok.size(); ++i) {
    for (std::size_t j = i + 1; j < ok.size(); ++j) {
      if (!disjoint(*ok[i], *ok[j]) && share_a_family(*ok[i], *ok[j])) {
        std::vector<std::shared_ptr<const snapshot>> sources;
        for (const auto& p : parts) sources.push_back(p->source);
        return render_full(sources);
      }
    }
  }

  auto v = std::make_shared<exposition_view>();
  struct merged_family {
    const upstream_render::family_piece* first = nullptr;
    const upstream_render::family_piece* help = nullptr;
    std::vector<std::pair<const upstream_render*, const upstream_render::family_piece*>> pieces;
    bool om_counter_ok = true;
    std::size_t samples = 0;
  };
  std::vector<merged_family> families;
  std::unordered_map<std::string_view, std::size_t> index;
  for (const auto& p : parts) {
    v->dropped_series += p->dropped_series;
    if (!p->readable) continue;
    v->served.push_back(p->source->upstream);
    if (!v->last_modified || p->source->fetched_at > *v->last_modified)
      v->last_modified = p->source->fetched_at;
    for (const auto& piece : p->families) {
      auto [it, added] = index.try_emplace(piece.name, families.size());
      if (added) families.emplace_back().first = &piece;
      auto& mf = families[it->second];
      // As exposition::merge: a family of another type is dropped whole.
      if (mf.first->type != piece.type) {
        v->dropped_series += piece.samples;
        continue;
      }
      if (!mf.help && piece.has_help) {
        mf.help = &piece;
      }
      mf.pieces.emplace_back(p.get(), &piece);
      mf.om_counter_ok = mf.om_counter_ok && piece.om_counter_ok;
      mf.samples += piece.samples;
    }
  }

  body::builder text, om;
  gzip_builder text_gz, om_gz;
  // The parts' bytes (and the snapshots' text they share) live as long as
  // the parts; the view refers to them.
  for (const auto& p : parts) {
    if (!p->readable) continue;
    text.keep(p);
    om.keep(p);
    // Which of those bytes are in a snapshot's memfd, for sendfile.
    text.mapped(p->view->text.plain);
    om.mapped(p->view->openmetrics.plain);
    text_gz.keep(p);
    om_gz.keep(p);
  }
  // A family's header: the first part's bytes when the merged header is the
  // same (always with one part, so its merged view is its own bytes), else
  // written here; `own_*` are that first part's header and its stored block.
  std::string scratch;
  auto header = [&](body::builder& out, gzip_builder& gz, std::string_view name, std::string_view help,
                    bool has_help, exposition::metric_type type, exposition::format f,
                    std::string_view own, std::string_view own_gz) {
    scratch.clear();
    exposition::write_header(scratch, name, type, has_help ? &help : nullptr, f);
    if (scratch == own) {
      out.refer(own);
      gz.refer_stored(own_gz, own);
    } else {
      out.copy(scratch);
      gz.stored(scratch);
    }
  };
  for (const auto& mf : families) {
    if (mf.samples == 0) continue;
    v->series += mf.samples;
    const auto* first = mf.pieces.front().second;
    header(text, text_gz, mf.first->name, mf.help ? mf.help->text_help : std::string_view{},
           mf.help != nullptr, mf.first->type, exposition::format::text, first->text_head,
           first->text_gz_head);
    for (const auto& [part, piece] : mf.pieces) {
      text.refer(piece->text_samples);
      text_gz.refer(piece->text_gz_samples, piece->text_crc, piece->text_samples.size());
    }
  }
  exposition::om_counter_names counters([&](std::unordered_set<std::string_view>& names) {
    for (const auto& other : families) names.insert(other.first->name);
  });
  for (const auto& mf : families) {
    if (mf.samples == 0) continue;
    std::string_view name = mf.first->name;
    exposition::metric_type type = mf.first->type;
    if (type == exposition::metric_type::counter) std::tie(name, type) = counters.announce(name, mf.om_counter_ok);
    const auto* first = mf.pieces.front().second;
    header(om, om_gz, name, mf.help ? mf.help->om_help : std::string_view{}, mf.help != nullptr, type,
           exposition::format::openmetrics, first->om_head, first->om_gz_head);
    for (const auto& [part, piece] : mf.pieces) {
      om.refer(piece->om_samples);
      om_gz.refer(piece->om_gz_samples, piece->om_crc, piece->om_samples.size());
    }
  }
  v->text.plain = std::move(text).finish();
  v->openmetrics.plain = std::move(om).finish();
  v->text.gzip = std::move(text_gz).finish();
  v->openmetrics.gzip = std::move(om_gz).finish();
  return v;
}

snapshot_store::snapshot_store() { view_.store(empty_view()); }

void snapshot_store::configure(
    const std::vector<std::pair<std::string, std::chrono::milliseconds>>& upstreams,
    wall_clock::time_point now) {
  std::vector<entry> next;
  for (const auto& [name, staleness] : upstreams) {
    entry e{name, staleness, nullptr, nullptr, {}};
    e.status.name = name;
    for (auto& old : entries_) {
      if (old.name == name) {
        e.current = old.current;
        e.rendered = old.rendered;
        e.status = old.status;
      }
    }
    next.push_back(std::move(e));
  }
  entries_ = std::move(next);
  // Upstreams added or removed by a reload: as for a first snapshot, the
  // view is behind what the self-metrics already show.
  behind_seq_ = ++publish_seq_;
  mark_dirty(now);
}

void snapshot_store::publish(std::shared_ptr<const snapshot> s, wall_clock::time_point now) {
  for (auto& e : entries_) {
    if (e.name == s->upstream) {
      ++publish_seq_;
      const auto& served = view()->served;
      if (std::find(served.begin(), served.end(), e.name) == served.end()) behind_seq_ = publish_seq_;
      e.current = std::move(s);  // s is null from here on: stop looking
      mark_dirty(now);
      return;
    }
  }
}

std::optional<wall_clock::time_point> snapshot_store::refresh(wall_clock::time_point now) {
  std::vector<std::string> fresh;
  std::optional<wall_clock::time_point> next;
  for (const auto& e : entries_) {
    if (!e.current) continue;
    const auto expires = e.current->fetched_at + e.max_staleness;
    if (now < expires) {
      fresh.push_back(e.name);
      if (!next || expires < *next) next = expires;
    }
  }
  if (fresh != rendered_names_) mark_dirty(now);
  return next;
}

void snapshot_store::mark_dirty(wall_clock::time_point now) {
  const bool was_dirty = dirty_;
  dirty_ = true;
  if (!schedule_) {
    if (auto job = begin_render(now)) (void)finish_render(render(*job));
  } else if (!was_dirty && !in_flight_) {
    schedule_();
  }
}

std::optional<snapshot_store::render_job> snapshot_store::begin_render(wall_clock::time_point now) {
  if (in_flight_ || !dirty_) return std::nullopt;
  render_job job;
  rendered_names_.clear();
  for (const auto& e : entries_) {
    auto& in = job.inputs.emplace_back();
    in.name = e.name;
    if (e.current && now < e.current->fetched_at + e.max_staleness) {
      in.fresh = e.current;
      if (e.rendered && e.rendered->source == e.current) in.rendered = e.rendered;
      rendered_names_.push_back(e.name);
    }
  }
  dirty_ = false;
  in_flight_ = true;
  job_seq_ = publish_seq_;
  return job;
}

snapshot_store::render_result snapshot_store::render(const render_job& job) {
  render_result result;
  std::vector<std::shared_ptr<const upstream_render>> parts;
  for (const auto& in : job.inputs) {
    std::shared_ptr<const upstream_render> r;
    if (in.fresh) {
      r = in.rendered;
      if (!r) {
        r = render_upstream(in.fresh);
        result.rendered.push_back(in.name);
      }
      parts.push_back(r);
    }
    result.renders.emplace_back(in.name, std::move(r));
  }
  auto v = merge_renders(parts);
  for (const auto& [name, r] : result.renders) v->upstreams.emplace_back(name, r ? r->view : empty_view());
  result.view = std::move(v);
  return result;
}

bool snapshot_store::finish_render(render_result result) {
  for (auto& e : entries_) {
    e.rendered.reset();
    for (auto& [name, r] : result.renders) {
      if (name == e.name && r && r->source == e.current) {
        e.rendered = std::move(r);
        break;
      }
    }
  }
  view_.store(std::move(result.view), std::memory_order_release);
  installed_seq_ = job_seq_;
  in_flight_ = false;
  return dirty_;
}

std::shared_ptr<const snapshot> snapshot_store::latest(const std::string& upstream) const {
  for (const auto& e : entries_)
    if (e.name == upstream) return e.current;
  return nullptr;
}

bool snapshot_store::is_fresh(const std::string& upstream, wall_clock::time_point now) const {
  for (const auto& e : entries_)
    if (e.name == upstream) return e.current && now < e.current->fetched_at + e.max_staleness;
  return false;
}

void snapshot_store::set_status(upstream_status status) {
  for (auto& e : entries_) {
    if (e.name == status.name) {
      e.status = std::move(status);
      return;
    }
  }
}

std::vector<upstream_status> snapshot_store::statuses(wall_clock::time_point now) const {
  std::vector<upstream_status> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) {
    auto& s = out.emplace_back(e.status);
    s.snapshot_fetched_at.reset();
    if (e.current) s.snapshot_fetched_at = e.current->fetched_at;
    s.max_staleness = e.max_staleness;
    if (s.budget_left_at) s.budget_left = s.budget_left_at(now);
  }
  return out;
}

std::chrono::milliseconds snapshot_store::max_staleness(const std::string& upstream) const {
  for (const auto& e : entries_)
    if (e.name == upstream) return e.max_staleness;
  return {};
}

}  // namespace cmp::snapshot
