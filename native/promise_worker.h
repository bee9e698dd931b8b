// The base of every async operation: an AsyncWorker that settles a Promise. Subclasses copy their JS inputs into
// plain C++ fields in their constructor, do the slow work in Run() (no N-API there), and build the JS result in
// Resolve(). A failure in Run() is recorded with Fail() and rejects the promise with a coded error.
#pragma once

#include <optional>
#include <string>

#include <napi.h>

#include "errors.h"

namespace multilora {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), name_(name) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  /// Queues the worker and returns its promise.
  Napi::Promise Start() {
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Resolve(Napi::Env env) = 0;
  /// Runs on the JS thread once the promise is settled, either way.
  virtual void Settled(Napi::Env env) {}

  void Fail(Failure failure) { failure_ = std::move(failure); }
  /// In Settled(): whether the promise was rejected.
  bool Rejected() const { return rejected_; }

 private:
  void Execute() final { Run(); }

  void OnOK() final {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    rejected_ = SettlePromise(env, deferred_, failure_, [&] { return Resolve(env); }, name_);
    Settled(env);
  }

  void OnError(const Napi::Error& e) final {
    rejected_ = true;
    deferred_.Reject(e.Value());
    Settled(Env());
  }

  Napi::Promise::Deferred deferred_;
  const char* name_;
  std::optional<Failure> failure_;
  bool rejected_ = false;
};

}  // namespace multilora
