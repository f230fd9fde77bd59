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
};

inline api_error bad_request(std::string code, std::string message) {
  return {400, std::move(code), std::move(message)};
}

}  // namespace herald::util
