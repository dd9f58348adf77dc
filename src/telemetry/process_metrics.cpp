#include "cmp/telemetry/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace cmp::telemetry {

namespace {

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

}  // namespace

process_sample read_process_sample() {
  process_sample s;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (std::ifstream stat("/proc/self/stat"); stat) {
    std::string line;
    std::getline(stat, line);
    // Field 2 (comm) may contain spaces; everything after the last ')' is regular.
    if (auto close = line.rfind(')'); close != std::string::npos) {
      std::istringstream rest(line.substr(close + 2));
      std::string field;
      // Fields 3.. ; utime=14, stime=15, starttime=22, vsize=23, rss=24.
      double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
      for (int i = 3; i <= 24 && rest >> field; ++i) {
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
        if (i == 22) start = std::stod(field);
        if (i == 23) vsize = std::stod(field);
        if (i == 24) rss = std::stod(field);
      }
      s.cpu_seconds = (utime + stime) / ticks;
      s.virtual_bytes = vsize;
      s.resident_bytes = rss * page;
      s.start_time_seconds = boot_time_seconds() + start / ticks;
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    int n = 0;
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
    s.open_fds = n - 1;  // the directory stream itself
  }
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0) s.max_fds = static_cast<double>(rl.rlim_cur);
  return s;
}

const process_sample& process_metrics::sample(std::chrono::steady_clock::time_point now) {
  if (!valid_ || now - read_at_ >= std::chrono::seconds(1)) {
    cached_ = read_process_sample();
    read_at_ = now;
    valid_ = true;
  }
  return cached_;
}

}  // namespace cmp::telemetry
