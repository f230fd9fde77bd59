#pragma once
// Static files served by GET (the demo pages and the browser client), read once at
// start-up from --web-root into memory: requests are answered by exact path lookup, so
// nothing outside the directory can be reached.
#include <string>
#include <string_view>
#include <unordered_map>

namespace herald::api {

class static_files {
 public:
  static constexpr std::size_t max_files = 500;
  static constexpr std::size_t max_file_bytes = 4 * 1024 * 1024;

  /// Loads every regular file under `root` (throws std::runtime_error naming the problem).
  explicit static_files(const std::string& root);

  struct file {
    std::string content_type;
    std::string body;
  };
  /// The file for a request path ("/" is "/index.html"); nullptr when there is none.
  const file* find(std::string_view path) const;
  std::size_t size() const noexcept { return files_.size(); }

 private:
  std::unordered_map<std::string, file> files_;
};

}  // namespace herald::api
