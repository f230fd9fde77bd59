// Fuzz target: the stream ingest's parsers (protocol/ingest_parser.hpp), which read the
// body of POST /api/stream as it arrives. The first input byte picks the split points of
// the rest (a read may end anywhere), the body is the rest.
//
// Properties:
//  1. no parser crashes on any bytes, fed in any pieces;
//  2. NDJSON and SSE give the same messages (or the same error) whether the body comes
//     whole or in pieces, and every message's data is valid JSON within the limit;
//  3. text deltas accept exactly the valid UTF-8 bodies, every piece taken is valid
//     UTF-8, and the pieces concatenate to the body.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/ingest_parser.hpp"
#include "protocol/json_text.hpp"
#include "protocol/utf8.hpp"

namespace p = herald::protocol;

namespace {

constexpr std::size_t max_data = 512;

std::vector<std::string_view> pieces(std::string_view body, std::uint8_t seed) {
  std::vector<std::string_view> out;
  std::size_t step = 1 + seed % 13;
  while (!body.empty()) {
    const auto n = std::min(step, body.size());
    out.push_back(body.substr(0, n));
    body.remove_prefix(n);
    step = 1 + (step * 7 + seed) % 17;
  }
  return out;
}

template <class Parser>
std::pair<std::vector<p::ingest_item>, bool> run(Parser parser, const std::vector<std::string_view>& parts) {
  std::vector<p::ingest_item> items;
  for (auto part : parts)
    if (parser.feed(part, items)) return {items, false};
  if constexpr (requires { parser.finish(items); })
    if (parser.finish(items)) return {items, false};
  return {items, true};
}

bool same(const std::vector<p::ingest_item>& a, const std::vector<p::ingest_item>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].event != b[i].event || a[i].data_json != b[i].data_json) return false;
  return true;
}

template <class Parser>
void check_messages(std::string_view body, const std::vector<std::string_view>& parts) {
  auto whole = run(Parser(max_data), {body});
  auto split = run(Parser(max_data), parts);
  FUZZ_CHECK(whole.second == split.second, "the same verdict whatever the pieces");
  FUZZ_CHECK(same(whole.first, split.first), "the same messages whatever the pieces");
  for (const auto& item : whole.first) {
    FUZZ_CHECK(p::valid_json(item.data_json), "a message's data is valid JSON");
    FUZZ_CHECK(item.data_json.size() <= max_data, "a message's data is within the limit");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto parts = pieces(body, data[0]);

  check_messages<p::ndjson_splitter>(body, parts);
  check_messages<p::sse_event_parser>(body, parts);

  p::text_deltas text;
  std::string taken;
  bool ok = true;
  for (auto part : parts) {
    if (!text.append(part)) {
      ok = false;
      break;
    }
    auto t = text.take();
    FUZZ_CHECK(p::valid_utf8(t), "text taken is whole UTF-8 characters");
    taken += t;
  }
  if (ok && text.complete()) {
    taken += text.take();
    FUZZ_CHECK(taken == body, "the text taken is the body");
  }
  FUZZ_CHECK((ok && text.complete()) == p::valid_utf8(body), "text is accepted exactly when it is UTF-8");
  return 0;
}
