// How native failures reach JavaScript: an Error with a string `code` (the codes of lib/errors.ts) and a message
// that names the GenAI call that failed. lib/errors.ts turns these into MultiloraError instances.
#pragma once

#include <exception>
#include <string>

#include <napi.h>

namespace multilora {

inline constexpr const char* kErrGenai = "ERR_GENAI";
inline constexpr const char* kErrAdapterInvalid = "ERR_ADAPTER_INVALID";
inline constexpr const char* kErrInvalidArgument = "ERR_INVALID_ARGUMENT";
inline constexpr const char* kErrBusy = "ERR_BUSY";
inline constexpr const char* kErrDisposed = "ERR_DISPOSED";
inline constexpr const char* kErrAborted = "ERR_ABORTED";
inline constexpr const char* kErrModelInvalid = "ERR_MODEL_INVALID";

/// A failure caught on a worker thread, kept as plain strings until it can become a JS error.
struct Failure {
  std::string code;
  std::string message;
};

/// Describes the exception in flight (call inside a catch block): "<call> failed: <what>".
Failure DescribeCurrentException(const char* code, const std::string& call);

/// A JS Error with `code` set.
Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message);

}  // namespace multilora
