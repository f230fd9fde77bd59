#pragma once
// A client-facing error: an HTTP status, a stable machine code and a human message.
// Every refusal herald makes travels as one of these until a transport renders it
// (JSON body `{"error":{"code":..,"message":..}}`, an SSE/poll error reply, a close code).
#include <string>

namespace herald::util {

struct api_error {
  int status = 400;
  std::string code;
  std::string message;
  /// More members of the error object, as JSON text without braces (e.g.
  /// `"next_offset":5` of a 409 offset_mismatch); empty: none.
  std::string extra_json = {};
};

inline api_error bad_request(std::string code, std::string message) {
  return {400, std::move(code), std::move(message)};
}

}  // namespace herald::util
