#pragma once
// Static files served by GET (the demo pages and the browser client), read once at
// start-up from --web-root into memory: requests are answered by exact lookup of the
// decoded path, so nothing that was not loaded can be reached. Loaded: regular files
// below the root, by their lexical path; not dotfiles or anything under a dot-directory,
// not symlinks whose target is outside the root, not through directory symlinks.
#include <string>
#include <string_view>
#include <unordered_map>

namespace herald::api {

class static_files {
 public:
  static constexpr std::size_t max_files = 500;
  static constexpr std::size_t max_file_bytes = 4 * 1024 * 1024;

  /// Loads the files under `root` (throws std::runtime_error naming the problem).
  explicit static_files(const std::string& root);

  struct file {
    std::string content_type;
    std::string body;
  };
  /// The file for a request's still percent-encoded path ("/" is "/index.html"); nullptr
  /// when there is none, or when the decoded path holds NUL, '\\', a "."/".." segment or
  /// an encoded '/'.
  const file* find(std::string_view encoded_path) const;
  std::size_t size() const noexcept { return files_.size(); }

 private:
  std::unordered_map<std::string, file> files_;
};

}  // namespace herald::api
