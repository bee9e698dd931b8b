// How native failures reach JavaScript: an Error with a string `code` (the codes of lib/core/errors.ts) and a message
// that names the GenAI call that failed. lib/core/errors.ts turns these into MultiloraError instances.
#pragma once

#include <exception>
#include <functional>
#include <optional>
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

/// Settles a worker's promise on the JS thread: rejected with `failure` if there is one, else resolved with what
/// `resolve` builds (a throw there rejects: a Napi::Error as it is, anything else as `code` naming `call`).
/// Returns whether the promise was rejected.
bool SettlePromise(Napi::Env env, const Napi::Promise::Deferred& deferred, const std::optional<Failure>& failure,
                   const std::function<Napi::Value()>& resolve, const std::string& call);

}  // namespace multilora
