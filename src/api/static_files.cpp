#include "api/static_files.hpp"

#include <filesystem>
#include <fstream>
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

static_files::static_files(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw std::runtime_error("web-root \"" + root + "\" is not a directory");
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    if (files_.size() == max_files)
      throw std::runtime_error("web-root \"" + root + "\" has more than " + std::to_string(max_files) + " files");
    if (it->file_size() > max_file_bytes)
      throw std::runtime_error("web-root file " + it->path().string() + " is larger than 4 MiB");
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    std::string key = "/" + fs::relative(it->path(), root).generic_string();
    files_[key] = file{content_type_for(it->path()), body.str()};
  }
  if (ec) throw std::runtime_error("cannot read web-root \"" + root + "\": " + ec.message());
}

const static_files::file* static_files::find(std::string_view path) const {
  auto it = files_.find(std::string(path == "/" ? "/index.html" : path));
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace herald::api
