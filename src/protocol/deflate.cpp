#include "protocol/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <stdexcept>

namespace herald::protocol {
namespace {

struct deflater {
  z_stream z{};
  deflater() {
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      throw std::runtime_error("zlib deflateInit2 failed");
  }
  ~deflater() { deflateEnd(&z); }
};

struct inflater {
  z_stream z{};
  inflater() {
    if (inflateInit2(&z, -15) != Z_OK) throw std::runtime_error("zlib inflateInit2 failed");
  }
  ~inflater() { inflateEnd(&z); }
};

}  // namespace

std::string deflate_message(std::string_view payload) {
  thread_local deflater d;
  deflateReset(&d.z);
  std::string out;
  out.resize(deflateBound(&d.z, payload.size()) + 16);
  d.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
  d.z.avail_in = static_cast<uInt>(payload.size());
  d.z.next_out = reinterpret_cast<Bytef*>(out.data());
  d.z.avail_out = static_cast<uInt>(out.size());
  deflate(&d.z, Z_SYNC_FLUSH);
  out.resize(out.size() - d.z.avail_out);
  // RFC 7692 7.2.1: drop the 00 00 FF FF that ends a sync flush.
  if (out.size() >= 4 && out.compare(out.size() - 4, 4, std::string_view("\0\0\xff\xff", 4)) == 0)
    out.resize(out.size() - 4);
  return out;
}

inflate_error inflate_message(std::string_view compressed, std::size_t max_bytes, std::string& out) {
  thread_local inflater inf;
  inflateReset(&inf.z);
  static const unsigned char tail[4] = {0, 0, 0xff, 0xff};
  out.clear();
  const std::size_t chunk = std::clamp<std::size_t>(compressed.size() * 4, 1024, max_bytes + 1);
  bool ended = false;  // the sender closed the deflate stream (BFINAL)
  auto run = [&](const unsigned char* in, std::size_t n) -> inflate_error {
    inf.z.next_in = const_cast<Bytef*>(in);
    inf.z.avail_in = static_cast<uInt>(n);
    for (;;) {
      if (out.size() > max_bytes) return inflate_error::too_big;
      const std::size_t have = out.size();
      out.resize(have + chunk);
      inf.z.next_out = reinterpret_cast<Bytef*>(out.data() + have);
      inf.z.avail_out = static_cast<uInt>(chunk);
      const int rc = inflate(&inf.z, Z_SYNC_FLUSH);
      out.resize(have + chunk - inf.z.avail_out);
      if (out.size() > max_bytes) return inflate_error::too_big;
      if (rc == Z_STREAM_END) {
        ended = true;
        return inflate_error::none;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return inflate_error::corrupt;
      if (inf.z.avail_in == 0 && inf.z.avail_out != 0) return inflate_error::none;
      if (rc == Z_BUF_ERROR && inf.z.avail_out != 0) return inflate_error::corrupt;  // stuck
    }
  };
  auto e = run(reinterpret_cast<const unsigned char*>(compressed.data()), compressed.size());
  if (e == inflate_error::none && !ended) e = run(tail, sizeof tail);
  return e;
}

}  // namespace herald::protocol
