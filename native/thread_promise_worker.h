// The base of the long async operations (generate, load): like PromiseWorker, but the slow work runs on a thread of
// its own instead of libuv's pool. A generation runs for seconds or minutes; on the 4-thread pool, four of them
// would hold every thread, and fs, dns and crypto calls of the whole process would wait for one to end (measured:
// scripts/measure-threads.mjs, docs/RELIABILITY.md). The result comes back to the JS thread through a thread-safe
// function, where the Promise is settled inside a callback scope (async hooks, microtasks), as an AsyncWorker would.
//
// Subclasses copy their JS inputs in their constructor, work in Run() (no N-API there), build the JS result in
// Resolve() and clean up in Settled(), on the JS thread. A failure in Run() is recorded with Fail().
//
// Teardown. Every started worker is listed in its environment's AddonData until it settles. StopAll() asks each
// to stop (Stop(): a generation aborts at its next step) and joins its thread: lib/core/pipeline.ts calls it on
// process 'exit', so that no thread is inside GenAI while the process runs its static destructors. TearDown() runs
// as the environment's cleanup hook (worker_threads termination, environment shutdown): StopAll(), then Abandon()
// and delete each worker, whose promise never settles. No JS runs in either.
#pragma once

#include <optional>
#include <thread>

#include <napi.h>

#include "errors.h"

namespace multilora {

class ThreadPromiseWorker {
 public:
  ThreadPromiseWorker(Napi::Env env, const char* name);
  virtual ~ThreadPromiseWorker();
  ThreadPromiseWorker(const ThreadPromiseWorker&) = delete;
  ThreadPromiseWorker& operator=(const ThreadPromiseWorker&) = delete;

  /// Starts the thread and returns the promise. On failure, deletes this worker and throws a JS error.
  Napi::Promise Start();

  /// Asks every running worker of `env` to stop, and waits for their threads. The JS thread of `env` only.
  static void StopAll(napi_env env);
  /// The environment's cleanup hook: StopAll, then drops every worker unsettled. `arg`: the napi_env.
  static void TearDown(void* arg);

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Resolve(Napi::Env env) = 0;
  /// Runs on the JS thread once the promise is settled, either way.
  virtual void Settled(Napi::Env env) {}
  /// The JS thread is about to wait for this run: make it end soon. Runs on the JS thread, calls no JS.
  virtual void Stop() {}
  /// The run is over and its promise will never settle (the environment is going away): release what Settled()
  /// would have released, without calling into JS. Also after a Settled() that ran: then it has nothing to do.
  virtual void Abandon() {}

  void Fail(Failure failure) { failure_ = std::move(failure); }
  /// In Settled(): whether the promise was rejected.
  bool Rejected() const { return rejected_; }

 private:
  /// The thread: Run(), then hands this worker back to the JS thread.
  void Main();
  /// The thread-safe function's call on the JS thread (env is null when it is being torn down).
  static void Complete(napi_env env, napi_value, void*, void* data);
  void Settle(Napi::Env env);
  void Join();

  napi_env env_;
  const char* name_;
  Napi::Promise::Deferred deferred_;
  Napi::AsyncContext context_;
  napi_threadsafe_function done_ = nullptr;
  std::thread thread_;
  std::optional<Failure> failure_;
  bool rejected_ = false;
};

}  // namespace multilora
