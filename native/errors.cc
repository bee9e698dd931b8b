#include "errors.h"

namespace multilora {

Failure DescribeCurrentException(const char* code, const std::string& call) {
  try {
    throw;
  } catch (const std::exception& e) {
    return {code, call + " failed: " + e.what()};
  } catch (...) {
    return {code, call + " failed with an exception that is not a std::exception"};
  }
}

Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Value().Set("code", Napi::String::New(env, code));
  return error;
}

}  // namespace multilora
