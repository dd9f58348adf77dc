#include "cmp/snapshot/snapshot.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "cmp/exposition/transform.hpp"
#include "cmp/exposition/writer.hpp"

namespace cmp::snapshot {

namespace {

using exposition::format;

std::size_t next_line(std::string_view bytes, std::size_t from) {
  const auto* nl = static_cast<const char*>(std::memchr(bytes.data() + from, '\n', bytes.size() - from));
  return nl ? static_cast<std::size_t>(nl - bytes.data()) + 1 : bytes.size();
}

// Where write_family() put one family: its first byte, its escaped HELP
// text, its first sample line and its end. The writer's layout is fixed: an
// optional `# HELP <name> <text>` line, a `# TYPE` line, one line per sample
// (values and label values never contain a raw newline).
struct written {
  std::size_t head = 0, help_begin = 0, help_end = 0, samples = 0, end = 0;
};

written write_one(const exposition::family& f, std::string_view name, exposition::metric_type type, format fmt,
                  std::string& out) {
  written w;
  w.head = w.help_begin = w.help_end = out.size();
  exposition::write_family(f, name, type, fmt, out);
  std::size_t at = w.head;
  if (f.help) {
    w.help_begin = at + std::string_view("# HELP ").size() + name.size() + 1;
    at = next_line(out, w.help_begin);
    w.help_end = at - 1;
  }
  w.samples = next_line(out, at);
  w.end = out.size();
  return w;
}

// A sample line's series as the writers write it: its name, and its
// labels (name, escaped value) sorted by name. Escaping is canonical, so two
// lines are one series exactly when these are equal, whatever the label
// order (as exposition::merge() decides).
using label_pair = std::pair<std::string_view, std::string_view>;
std::string_view series_of(std::string_view line, std::vector<label_pair>& labels) {
  labels.clear();
  std::size_t i = line.find_first_of("{ ");
  const std::string_view name = line.substr(0, i);
  if (line[i] == '{') {
    for (++i; line[i] != '}';) {
      const std::size_t eq = line.find('=', i);
      std::size_t end = eq + 2;  // past ="
      while (line[end] != '"') end += line[end] == '\\' ? 2 : 1;
      labels.emplace_back(line.substr(i, eq - i), line.substr(eq + 2, end - eq - 2));
      i = end + 1;
      if (line[i] == ',') ++i;
    }
  }
  std::sort(labels.begin(), labels.end());
  return name;
}

// The series already taken into a merged view, by exposition::series_hash
// (recorded at render time) and their sample lines, open addressing: a
// merge of N organizations checks every sample once per rebuild. Hashes
// are compared first, the series only when they are equal.
class series_set {
 public:
  explicit series_set(std::size_t n) {
    std::size_t size = 64;
    while (size < n + n / 3) size *= 2;  // a load of at most 3/4
    slots_.resize(size);
  }
  // Whether the series of `line` (whose hash is `h`) is there.
  bool contains(std::uint64_t h, std::string_view line) {
    h |= 1;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i].hash == 0) return false;
      if (slots_[i].hash == h && same_series(slots_[i].line, line)) return true;
    }
  }
  // False if the series of `line` (whose hash is `h`) was there already.
  // `line` must stay valid while the set lives.
  bool insert(std::uint64_t h, std::string_view line) {
    h |= 1;  // 0 marks an empty slot
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i].hash == 0) {
        slots_[i] = {h, line.data()};
        return true;
      }
      if (slots_[i].hash == h && same_series(slots_[i].line, line)) return false;
    }
  }

 private:
  // A line kept by its start only (16 bytes a slot: at N=300 the set holds
  // 300k series): it runs to the end of its sample line, past the series.
  bool same_series(const char* a, std::string_view b) {
    const char* end = a;
    while (*end != '\n') ++end;  // every sample line ends with one
    const std::string_view la(a, static_cast<std::size_t>(end - a));
    return series_of(la, a_) == series_of(b, b_) && a_ == b_;
  }
  struct slot {
    std::uint64_t hash = 0;
    const char* line = nullptr;
  };
  std::vector<slot> slots_;
  std::vector<label_pair> a_, b_;
};

// One part's contribution to a merged family; `keep` lists which of its
// sample lines survive the duplicate check (empty: all of them).
struct piece {
  const snapshot* part;
  const snapshot::family* f;
  std::vector<bool> keep;
};

struct merged_family {
  const snapshot::family* first = nullptr;
  const snapshot::family* help = nullptr;
  std::vector<piece> pieces;
  bool om_counter_ok = true;
  std::size_t samples = 0;  // that survive
};

// The sample lines of `p` in `samples` (its text or OpenMetrics lines) that
// its keep list leaves; whole when it leaves all.
void refer_samples(body::builder& out, const piece& p, std::string_view samples) {
  if (p.keep.empty()) {
    out.refer(samples);
    return;
  }
  std::size_t at = 0;
  for (const bool keep : p.keep) {
    const std::size_t end = next_line(samples, at);
    if (keep) out.refer(samples.substr(at, end - at));
    at = end;
  }
}

// A family's header: the first piece's bytes when the merged header is the
// same (always with one part, so that its body is one segment), else
// written here.
void header(body::builder& out, std::string& scratch, std::string_view name, exposition::metric_type type,
            const std::string_view* help, format f, std::string_view own) {
  scratch.clear();
  exposition::write_header(scratch, name, type, help, f);
  if (scratch == own) {
    out.refer(own);
  } else {
    out.copy(scratch);
  }
}

// Groups the parts' families by name as exposition::merge() does, and
// finds which sample lines are duplicates of a series already taken.
std::vector<merged_family> group(const std::vector<const snapshot*>& parts, exposition_view& v) {
  std::vector<merged_family> families;
  std::unordered_map<std::string_view, std::size_t> index;
  std::size_t total = 0;
  for (const auto* p : parts) total += p->series_hashes.size();
  series_set taken(total);
  // A series is a duplicate when an earlier part served it: one part's own
  // samples of a series are its points at several timestamps (the parser
  // dropped true duplicates), so its series join `taken` after it.
  std::vector<std::pair<std::uint64_t, std::string_view>> own;
  for (const auto* p : parts) {
    for (const auto& [h, line] : own) taken.insert(h, line);
    own.clear();
    v.dropped_series += p->dropped_series;
    v.served.push_back(p->upstream);
    if (!v.last_modified || p->fetched_at > *v.last_modified) v.last_modified = p->fetched_at;
    for (const auto& f : p->families) {
      auto [it, added] = index.try_emplace(f.name, families.size());
      if (added) families.emplace_back().first = &f;
      auto& mf = families[it->second];
      if (mf.first->type != f.type) {
        v.dropped_series += f.samples;
        continue;
      }
      if (!mf.help && f.has_help) mf.help = &f;
      mf.om_counter_ok = mf.om_counter_ok && f.om_counter_ok;
      auto& pc = mf.pieces.emplace_back(piece{p, &f, {}});
      std::size_t at = 0;
      for (std::size_t i = 0; i < f.samples; ++i) {
        const std::size_t end = next_line(f.text_samples, at);
        const auto line = f.text_samples.substr(at, end - at);
        at = end;
        const std::uint64_t h = p->series_hashes[f.first_series + i];
        if (!taken.contains(h, line)) {
          own.emplace_back(h, line);
          continue;
        }
        if (pc.keep.empty()) pc.keep.assign(f.samples, true);
        pc.keep[i] = false;
        ++v.dropped_series;
      }
      mf.samples += f.samples - static_cast<std::size_t>(std::count(pc.keep.begin(), pc.keep.end(), false));
    }
  }
  return families;
}

// zlib's default level for a body of one or a few organizations (as
// nginx's gzip_static files are made); level 1 for the merged bodies of
// many: at N=300 each is ~37 MB, which level 6 took ~1 s of CPU per burst
// to compress, level 1 a third of that, for 20 % more bytes on the wire.
int gzip_level(const body& b) { return b.size() > (4u << 20) ? 1 : 6; }

// The merged view of `parts`, their own views included (one part).
std::shared_ptr<const exposition_view> build_view(const std::vector<const snapshot*>& parts) {
  auto v = std::make_shared<exposition_view>();
  const auto families = group(parts, *v);
  body::builder text, om;
  for (const auto* p : parts) {
    text.keep(p->rendered);
    om.keep(p->rendered);
  }
  std::string scratch;
  for (const auto& mf : families) {
    if (mf.samples == 0) continue;
    v->series += mf.samples;
    header(text, scratch, mf.first->name, mf.first->type, mf.help ? &mf.help->text_help : nullptr, format::text,
           mf.pieces.front().f->text_head);
    for (const auto& p : mf.pieces) refer_samples(text, p, p.f->text_samples);
  }
  exposition::om_counter_names counters([&](std::unordered_set<std::string_view>& names) {
    for (const auto& mf : families) names.insert(mf.first->name);
  });
  for (const auto& mf : families) {
    if (mf.samples == 0) continue;
    std::string_view name = mf.first->name;
    exposition::metric_type type = mf.first->type;
    if (type == exposition::metric_type::counter) std::tie(name, type) = counters.announce(name, mf.om_counter_ok);
    header(om, scratch, name, type, mf.help ? &mf.help->om_help : nullptr, format::openmetrics,
           mf.pieces.front().f->om_head);
    for (const auto& p : mf.pieces) refer_samples(om, p, p.f->om_samples);
  }
  v->text.plain = std::move(text).finish();
  v->openmetrics.plain = std::move(om).finish();
  v->text.gzip = gzip_begin(v->text.plain, gzip_level(v->text.plain));
  v->openmetrics.gzip = gzip_begin(v->openmetrics.plain, gzip_level(v->openmetrics.plain));
  return v;
}

}  // namespace

const std::shared_ptr<const exposition_view>& empty_view() {
  static const std::shared_ptr<const exposition_view> empty = build_view({});
  return empty;
}

std::shared_ptr<const snapshot> render_snapshot(std::string upstream, const exposition::family_list& families,
                                                wall_clock::time_point fetched_at,
                                                wall_clock::time_point window_end) {
  auto s = std::make_shared<snapshot>();
  s->upstream = std::move(upstream);
  s->fetched_at = fetched_at;
  s->window_end = window_end;
  const exposition::family_list* part = &families;
  exposition::merge_stats stats;
  const auto merged = exposition::merge({&part, 1}, &stats);
  s->dropped_series = stats.samples_dropped + stats.duplicate_series;

  auto bytes = std::make_shared<snapshot::bytes>();
  std::vector<written> text_at, om_at;
  std::vector<bool> om_shared;
  exposition::om_counter_names counters([&](std::unordered_set<std::string_view>& names) {
    for (const auto& f : merged) names.insert(f.name);
  });
  for (const auto& f : merged) {
    bytes->names += f.name;
    s->series += f.samples.size();
    for (const auto& sample : f.samples) s->series_hashes.push_back(exposition::series_hash(sample));
    text_at.push_back(write_one(f, f.name, f.type, format::text, bytes->text));
    std::string_view name = f.name;
    exposition::metric_type type = f.type;
    if (type == exposition::metric_type::counter)
      std::tie(name, type) = counters.announce(name, exposition::om_counter_samples_ok(f));
    om_at.push_back(write_one(f, name, type, format::openmetrics, bytes->openmetrics));
    // The same sample lines in both formats (no timestamps): kept once.
    const auto& t = text_at.back();
    auto& o = om_at.back();
    const bool same = std::string_view(bytes->openmetrics).substr(o.samples) ==
                      std::string_view(bytes->text).substr(t.samples, t.end - t.samples);
    om_shared.push_back(same);
    if (same) bytes->openmetrics.resize(o.samples);
    o.end = bytes->openmetrics.size();
  }
  // Shrunk before the views are taken: it moves the bytes.
  bytes->text.shrink_to_fit();
  bytes->openmetrics.shrink_to_fit();
  s->series_hashes.shrink_to_fit();

  const std::string_view text = bytes->text, om = bytes->openmetrics, names = bytes->names;
  std::size_t name_at = 0, first_series = 0;
  s->families.reserve(merged.size());
  for (std::size_t i = 0; i < merged.size(); ++i) {
    const auto& f = merged[i];
    const auto& t = text_at[i];
    const auto& o = om_at[i];
    auto& r = s->families.emplace_back();
    r.name = names.substr(name_at, f.name.size());
    name_at += f.name.size();
    r.type = f.type;
    r.has_help = f.help.has_value();
    r.om_counter_ok = exposition::om_counter_samples_ok(f);
    r.first_series = first_series;
    r.samples = f.samples.size();
    first_series += r.samples;
    r.text_head = text.substr(t.head, t.samples - t.head);
    r.text_help = text.substr(t.help_begin, t.help_end - t.help_begin);
    r.text_samples = text.substr(t.samples, t.end - t.samples);
    r.om_head = om.substr(o.head, o.samples - o.head);
    r.om_help = om.substr(o.help_begin, o.help_end - o.help_begin);
    r.om_samples = om_shared[i] ? r.text_samples : om.substr(o.samples, o.end - o.samples);
  }
  s->rendered = std::move(bytes);
  s->own = build_view({s.get()});
  return s;
}

std::shared_ptr<const exposition_view> merge_views(const std::vector<std::shared_ptr<const snapshot>>& parts) {
  if (parts.size() == 1) return parts.front()->own;
  std::vector<const snapshot*> raw;
  for (const auto& p : parts) raw.push_back(p.get());
  return build_view(raw);
}

std::shared_ptr<const exposition_view> served_views::upstream(std::string_view name) const {
  for (const auto& [n, v] : upstreams)
    if (n == name) return v;
  return nullptr;
}

snapshot_store::snapshot_store() { views_.store(std::make_shared<const served_views>()); }

void snapshot_store::configure(
    const std::vector<std::pair<std::string, std::chrono::milliseconds>>& upstreams,
    wall_clock::time_point now) {
  std::vector<entry> next;
  for (const auto& [name, staleness] : upstreams) {
    entry e{name, staleness, nullptr, {}};
    e.status.name = name;
    for (auto& old : entries_) {
      if (old.name == name) {
        e.current = old.current;
        e.status = old.status;
      }
    }
    next.push_back(std::move(e));
  }
  entries_ = std::move(next);
  // Upstreams added or removed by a reload: as for a first snapshot, the
  // views are behind what the self-metrics already show.
  behind_seq_ = ++publish_seq_;
  mark_dirty(now);
}

void snapshot_store::publish(std::shared_ptr<const snapshot> s, wall_clock::time_point now) {
  for (auto& e : entries_) {
    if (e.name == s->upstream) {
      ++publish_seq_;
      const auto& served = views()->all->served;
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
  if (fresh != rebuilt_names_) mark_dirty(now);
  return next;
}

void snapshot_store::mark_dirty(wall_clock::time_point now) {
  dirty_ = true;
  if (!schedule_) {
    if (auto job = begin_rebuild(now)) (void)finish_rebuild(rebuild(*job));
  } else if (!in_flight_) {
    schedule_();
  }
}

std::optional<snapshot_store::rebuild_job> snapshot_store::begin_rebuild(wall_clock::time_point now) {
  if (in_flight_ || !dirty_) return std::nullopt;
  rebuild_job job;
  rebuilt_names_.clear();
  for (const auto& e : entries_) {
    const bool fresh = e.current && now < e.current->fetched_at + e.max_staleness;
    job.fresh.emplace_back(e.name, fresh ? e.current : nullptr);
    if (fresh) rebuilt_names_.push_back(e.name);
  }
  dirty_ = false;
  in_flight_ = true;
  job_seq_ = publish_seq_;
  return job;
}

std::shared_ptr<const served_views> snapshot_store::rebuild(const rebuild_job& job) {
  auto views = std::make_shared<served_views>();
  std::vector<std::shared_ptr<const snapshot>> parts;
  for (const auto& [name, s] : job.fresh) {
    if (s) parts.push_back(s);
    views->upstreams.emplace_back(name, s ? s->own : empty_view());
  }
  views->all = parts.empty() ? empty_view() : merge_views(parts);
  return views;
}

bool snapshot_store::finish_rebuild(std::shared_ptr<const served_views> views) {
  views_.store(std::move(views), std::memory_order_release);
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
