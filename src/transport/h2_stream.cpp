#include "transport/h2_stream.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include <boost/asio/post.hpp>

#include "transport/client_events.hpp"
#include "transport/h2_session.hpp"
#include "transport/longpoll_request.hpp"
#include "transport/request_head.hpp"
#include "transport/sse_session.hpp"
#include "util/clock.hpp"

namespace herald::transport {

namespace http = boost::beast::http;

namespace {

// RFC 9113 8.2.1 and RFC 7541 4.1: a field's size is its name, its value and 32.
constexpr std::size_t field_overhead = 32;

ssize_t read_source(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length, std::uint32_t* flags,
                    nghttp2_data_source* source, void*) {
  return static_cast<h2_stream*>(source->ptr)->read(buf, length, flags);
}

}  // namespace

h2_stream::h2_stream(std::shared_ptr<h2_session> conn, std::int32_t id)
    : http_exchange(conn->thread(), conn->state()), conn_(std::move(conn)), id_(id), progress_ms_(util::steady_ms()) {
  req_.version(11);  // routed as HTTP/1.1 would be (keep_alive() is true; nothing closes)
}

h2_stream::~h2_stream() = default;

bool h2_stream::add_header(std::string_view name, std::string_view value) {
  progress_ms_ = util::steady_ms();
  header_bytes_ += name.size() + value.size() + field_overhead;
  if (header_bytes_ > 4 * st_.opts.max_header_bytes) return false;
  if (header_bytes_ > st_.opts.max_header_bytes) header_too_large_ = true;
  if (header_too_large_) return true;  // answered 431 at the end of the block
  if (name.empty() || name[0] != ':') {
    req_.insert(name, value);
  } else if (name == ":method") {
    req_.method_string(value);
  } else if (name == ":path") {
    req_.target(value);
  } else if (name == ":authority") {
    // Host for the routing, as HTTP/1.1 has it (RFC 9113 8.3.1: :authority replaces it).
    if (req_.find(http::field::host) == req_.end()) req_.set(http::field::host, value);
  }
  return true;
}

void h2_stream::headers_done() {
  if (header_too_large_) {
    limit_refused(metrics::counter::limit_header_size, "header_size", {{"transport", "h2"}});
    answered_early_ = !complete_;
    return send_error(
        {431, "too_large", "request headers exceed " + std::to_string(st_.opts.max_header_bytes) + " bytes"});
  }
  // Endpoints that read their own body as it arrives, or upgrade, speak HTTP/1.1 only.
  const std::string_view target = req_.target();
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/ws" || path == "/api/stream") reset(NGHTTP2_HTTP_1_1_REQUIRED);
}

void h2_stream::add_body(std::string_view data) {
  progress_ms_ = util::steady_ms();
  if (body_too_large_ || header_too_large_ || closed_) return;
  if (req_.body().size() + data.size() > st_.opts.max_body_bytes) {
    body_too_large_ = true;
    answered_early_ = true;
    limit_refused(metrics::counter::limit_message_size, "message_size", {{"what", "request body"}});
    return send_error({413, "too_large", "request body exceeds " + std::to_string(st_.opts.max_body_bytes) + " bytes"});
  }
  req_.body().append(data);
}

void h2_stream::request_done() {
  complete_ = true;
  if (header_too_large_ || body_too_large_ || closed_ || submitted_) return;
  auto head = check_request_head(req_, false);
  if (auto* refusal = std::get_if<head_refusal>(&head)) return send_error(refusal->error);
  head_ = std::get<request_head>(head);
  route();
}

void h2_stream::response_sent() {
  // Answered before the client finished sending (413, 431): it need not go on.
  if (answered_early_ && !complete_) reset(NGHTTP2_NO_ERROR);
}

void h2_stream::closed() {
  if (closed_) return;
  closed_ = true;
  bufs_ = nullptr;
  done_ = nullptr;  // the session's write never completes: it is ending (below)
  if (auto p = std::exchange(poll_, nullptr)) p->client_gone();
  if (auto s = std::exchange(sse_, nullptr)) s->sink_closed();
}

std::optional<boost::asio::ip::address> h2_stream::peer_address() { return conn_->peer_address(); }

void h2_stream::open_sse(subscribe_request sub, const auth::identity& who) {
  auto s = std::make_shared<sse_session>(tcp_socket(tc_.ioc()), nullptr, tc_, st_);
  s->use_sink(self());
  s->adopt(who, ip_slot{});  // the connection holds the address's slot
  if (!client_id_.empty()) s->set_client_id(std::move(client_id_));
  sse_ = s;
  s->start(std::move(sub), std::move(cors_));
}

void h2_stream::start_ws(const auth::identity*, const util::api_error*, std::uint16_t) {
  reset(NGHTTP2_HTTP_1_1_REQUIRED);  // not reached: headers_done() resets /ws
}

void h2_stream::response_head(int status, std::string_view content_type, long long content_length,
                              const header_list& headers) {
  status_ = status;
  response_fields_.clear();
  if (!content_type.empty()) response_fields_.emplace_back("content-type", content_type);
  if (content_length >= 0) response_fields_.emplace_back("content-length", std::to_string(content_length));
  for (const auto& [name, value] : headers) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    // Connection-specific fields have no place in HTTP/2 (RFC 9113 8.2.2).
    if (lower == "connection" || lower == "keep-alive" || lower == "transfer-encoding" || lower == "upgrade") continue;
    response_fields_.emplace_back(std::move(lower), value);
  }
}

void h2_stream::send() {
  // A whole response in out(): taken, then the stream ends.
  poll_.reset();  // answered: a reset no longer concerns the poll
  end_ = true;
  if (!out_.empty()) {
    bufs_ = &out_.start();
    buf_index_ = buf_offset_ = taken_ = 0;
    done_ = [s = self()](const boost::system::error_code&, std::size_t) { s->out_.done(); };
  }
  submit();
}

void h2_stream::sink_write(const std::vector<boost::asio::const_buffer>& bufs, write_done done) {
  if (closed_) {
    net::post(tc_.ioc(), [done = std::move(done)] { done(net::error::connection_reset, 0); });
    return;
  }
  bufs_ = &bufs;
  buf_index_ = buf_offset_ = taken_ = 0;
  done_ = std::move(done);
  submit();
}

void h2_stream::sink_close(bool graceful) {
  // The session is ending itself (from inside its own call, which this reference may be
  // all that keeps alive): let go of it once that call has returned.
  if (sse_) net::post(tc_.ioc(), [s = std::move(sse_)] {});
  if (closed_) return;
  // Graceful: END_STREAM after what was taken (or a head alone: 204).
  if (!graceful || (!submitted_ && !status_)) return reset(NGHTTP2_CANCEL);
  bufs_ = nullptr;
  done_ = nullptr;
  end_ = true;
  submit();
}

void h2_stream::submit() {
  if (closed_ || conn_->closed()) return;
  if (submitted_) {
    if (deferred_) {
      deferred_ = false;
      nghttp2_session_resume_data(conn_->native(), id_);
    }
    return conn_->want_write();
  }
  submitted_ = true;
  const std::string status = std::to_string(status_ ? status_ : 500);
  std::vector<nghttp2_nv> nva;
  nva.reserve(response_fields_.size() + 1);
  auto nv = [](std::string_view n, std::string_view v) {
    return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                      reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE};  // nghttp2 copies them
  };
  nva.push_back(nv(":status", status));
  for (const auto& [n, v] : response_fields_) nva.push_back(nv(n, v));
  nghttp2_data_provider source{};
  source.source.ptr = this;
  source.read_callback = read_source;
  const bool body = bufs_ || !end_;
  if (nghttp2_submit_response(conn_->native(), id_, nva.data(), nva.size(), body ? &source : nullptr) != 0)
    return reset(NGHTTP2_INTERNAL_ERROR);
  response_fields_.clear();
  conn_->want_write();
}

long h2_stream::read(std::uint8_t* buf, std::size_t length, std::uint32_t* flags) {
  if (closed_) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets the stream
  if (!bufs_) {
    if (end_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  std::size_t n = 0;
  while (n < length && buf_index_ < bufs_->size()) {
    const auto& b = (*bufs_)[buf_index_];
    const std::size_t k = std::min(length - n, b.size() - buf_offset_);
    std::memcpy(buf + n, static_cast<const char*>(b.data()) + buf_offset_, k);
    n += k;
    buf_offset_ += k;
    if (buf_offset_ == b.size()) {
      ++buf_index_;
      buf_offset_ = 0;
    }
  }
  taken_ += n;
  progress_ms_ = util::steady_ms();
  if (buf_index_ == bufs_->size()) {
    // All taken: the write is complete for the session (posted: nghttp2 is framing now).
    bufs_ = nullptr;
    if (done_) net::post(tc_.ioc(), [done = std::move(done_), n = taken_] { done({}, n); });
    done_ = nullptr;
    if (end_) *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return static_cast<long>(n);
}

void h2_stream::reset(std::uint32_t error_code) {
  if (closed_) return;
  conn_->reset_stream(id_, error_code);
}

}  // namespace herald::transport
