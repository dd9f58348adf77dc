#pragma once
// The mock's accepted key when it comes from --api-key-file: re-read when the
// file changes (inode, size, mtime or ctime), so a test can rotate the key the
// way a secret manager does (replace the file) and the mock accepts only the
// new key from the next request on. A file that is missing, empty or
// unreadable keeps the last key. Not thread-safe: used on the io thread.

#include <optional>
#include <string>

#include <sys/stat.h>

namespace cmp::mock {

class key_file {
 public:
  key_file(std::string path, std::string loaded);
  // The new key if the file changed and holds one; nullopt otherwise.
  std::optional<std::string> changed();

 private:
  struct identity {
    bool ok = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime{};
    timespec ctime{};
    bool operator==(const identity& o) const;
  };
  static identity stat_of(const std::string& path);

  std::string path_;
  std::string key_;
  identity seen_;
};

// Reads a key file: contents without trailing newlines, spaces or CRs;
// nullopt when unreadable or empty.
std::optional<std::string> read_key(const std::string& path);

}  // namespace cmp::mock
