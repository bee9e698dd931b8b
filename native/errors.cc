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

bool SettlePromise(Napi::Env env, const Napi::Promise::Deferred& deferred, const std::optional<Failure>& failure,
                   const std::function<Napi::Value()>& resolve, const std::string& call) {
  if (failure) {
    deferred.Reject(MakeError(env, failure->code, failure->message).Value());
    return true;
  }
  try {
    deferred.Resolve(resolve());
    return false;
  } catch (const Napi::Error& e) {
    deferred.Reject(e.Value());
  } catch (...) {
    Failure described = DescribeCurrentException(kErrGenai, call);
    deferred.Reject(MakeError(env, described.code, described.message).Value());
  }
  return true;
}

}  // namespace multilora
