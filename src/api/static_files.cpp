#include "api/static_files.hpp"

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace herald::api {
namespace fs = std::filesystem;

namespace {
std::string content_type_for(const fs::path& p) {
  const auto ext = p.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt" || ext == ".ts") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}
}  // namespace

namespace {

// Not served: dotfiles and everything under a dot-directory (.git, .env, editor swap files).
bool hidden(const fs::path& name) { return name.native().starts_with('.'); }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The request path percent-decoded, or nullopt when it could only name something by a
// trick: a bad escape, an encoded '/', NUL, '\\', or a "." / ".." segment.
std::optional<std::string> decode_path(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    char c = encoded[i];
    if (c == '%') {
      if (i + 2 >= encoded.size()) return std::nullopt;
      const int hi = hex_digit(encoded[i + 1]), lo = hex_digit(encoded[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '/') return std::nullopt;
      i += 2;
    }
    if (c == '\0' || c == '\\') return std::nullopt;
    out += c;
  }
  for (std::size_t b = 0; b < out.size();) {
    const auto e = std::min(out.find('/', b + 1), out.size());
    const std::string_view seg(out.data() + b + 1, e - b - 1);  // after the '/'
    if (seg == "." || seg == "..") return std::nullopt;
    b = e;
  }
  return out;
}

}  // namespace

static_files::static_files(const std::string& root_dir) {
  std::error_code ec;
  if (!fs::is_directory(root_dir, ec)) throw std::runtime_error("web-root \"" + root_dir + "\" is not a directory");
  fs::path root = fs::path(root_dir).lexically_normal();
  if (!root.has_filename() && root.has_relative_path()) root = root.parent_path();  // "web/" → "web"
  const fs::path canonical_root = fs::canonical(root, ec);
  if (ec) throw std::runtime_error("cannot read web-root \"" + root_dir + "\": " + ec.message());
  // Directory symlinks are not followed (the iterator's default). A symlink to a file is
  // served at the link's own path when its canonical target is inside the canonical root
  // (an alias, e.g. index.html → app-2.html); one that leads outside is skipped.
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (hidden(it->path().filename())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    if (it->is_symlink(ec)) {
      const auto target = fs::canonical(it->path(), ec);
      if (ec) continue;  // dangling
      const auto rel = target.lexically_relative(canonical_root);
      if (rel.empty() || *rel.begin() == "..") continue;
    }
    if (files_.size() == max_files)
      throw std::runtime_error("web-root \"" + root_dir + "\" has more than " + std::to_string(max_files) + " files");
    if (it->file_size() > max_file_bytes)
      throw std::runtime_error("web-root file " + it->path().string() + " is larger than 4 MiB");
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    // Keyed by the lexical path below the root: what the directory listing shows.
    std::string key = "/" + it->path().lexically_relative(root).generic_string();
    files_[key] = file{content_type_for(it->path()), body.str()};
  }
  if (ec) throw std::runtime_error("cannot read web-root \"" + root_dir + "\": " + ec.message());
}

const static_files::file* static_files::find(std::string_view encoded_path) const {
  if (encoded_path == "/") encoded_path = "/index.html";
  const auto path = decode_path(encoded_path);
  if (!path) return nullptr;
  auto it = files_.find(*path);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace herald::api
