#include "key_file.hpp"

#include <fstream>
#include <sstream>

namespace cmp::mock {

std::optional<std::string> read_key(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string key = ss.str();
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) {
    key.pop_back();
  }
  if (key.empty()) return std::nullopt;
  return key;
}

bool key_file::identity::operator==(const identity& o) const {
  return ok == o.ok && dev == o.dev && ino == o.ino && size == o.size &&
         mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
         ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
}

key_file::identity key_file::stat_of(const std::string& path) {
  identity id;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return id;
  id.ok = true;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = st.st_size;
  id.mtime = st.st_mtim;
  id.ctime = st.st_ctim;
  return id;
}

key_file::key_file(std::string path, std::string loaded)
    : path_(std::move(path)), key_(std::move(loaded)), seen_(stat_of(path_)) {}

std::optional<std::string> key_file::changed() {
  auto now = stat_of(path_);
  if (now == seen_) return std::nullopt;
  seen_ = now;
  auto key = read_key(path_);
  if (!key || *key == key_) return std::nullopt;
  key_ = *key;
  return key;
}

}  // namespace cmp::mock
