#include "thread_promise_worker.h"

#include <system_error>
#include <vector>

#include "addon_data.h"

namespace multilora {

ThreadPromiseWorker::ThreadPromiseWorker(Napi::Env env, const char* name)
    : env_(env), name_(name), deferred_(Napi::Promise::Deferred::New(env)), context_(env, name) {}

ThreadPromiseWorker::~ThreadPromiseWorker() { Join(); }

Napi::Promise ThreadPromiseWorker::Start() {
  Napi::Env env(env_);
  Napi::Promise promise = deferred_.Promise();
  // No JS function: Complete() does the work. An unbounded queue: the one call never blocks the thread.
  napi_status status = napi_create_threadsafe_function(env_, nullptr, nullptr, Napi::String::New(env, name_), 0, 1,
                                                       nullptr, nullptr, nullptr, &ThreadPromiseWorker::Complete, &done_);
  if (status != napi_ok) {
    delete this;
    throw MakeError(env, kErrGenai, std::string("Cannot start ") + name_ + ": napi_create_threadsafe_function failed");
  }
  try {
    thread_ = std::thread(&ThreadPromiseWorker::Main, this);
  } catch (const std::system_error& e) {
    napi_release_threadsafe_function(done_, napi_tsfn_abort);
    delete this;
    throw MakeError(env, kErrGenai, std::string("Cannot start a thread for ") + name_ + ": " + e.what());
  }
  GetAddonData(env).running.insert(this);
  return promise;
}

void ThreadPromiseWorker::Main() {
  try {
    Run();
  } catch (...) {
    Fail(DescribeCurrentException(kErrGenai, name_));
  }
  // napi_closing when the environment is going away: then TearDown() deletes this worker, after joining.
  napi_call_threadsafe_function(done_, this, napi_tsfn_nonblocking);
  napi_release_threadsafe_function(done_, napi_tsfn_release);
}

void ThreadPromiseWorker::Join() {
  if (thread_.joinable()) thread_.join();
}

void ThreadPromiseWorker::Complete(napi_env env, napi_value, void*, void* data) {
  if (env == nullptr) return;  // the queue being emptied at teardown: TearDown() owns the worker
  auto* self = static_cast<ThreadPromiseWorker*>(data);
  // Only a worker still listed is alive: one that TearDown() abandoned is not.
  if (GetAddonData(env).running.erase(self) == 0) return;
  self->Join();  // the thread is past its last use of the worker, or nearly
  Napi::Env e(env);
  bool settled = false;
  try {
    Napi::HandleScope scope(e);
    Napi::CallbackScope callback(e, self->context_);
    self->Settle(e);
    settled = true;
  } catch (const Napi::Error&) {
    // The environment can no longer run JS (a worker's process.exit() between the run's end and this call): the
    // promise cannot settle. An exception must not leave this C callback.
  }
  if (!settled) self->Abandon();
  delete self;
}

void ThreadPromiseWorker::Settle(Napi::Env env) {
  rejected_ = SettlePromise(env, deferred_, failure_, [&] { return Resolve(env); }, name_);
  Settled(env);
}

void ThreadPromiseWorker::StopAll(napi_env env) {
  AddonData& data = GetAddonData(Napi::Env(env));
  std::vector<ThreadPromiseWorker*> running(data.running.begin(), data.running.end());
  for (ThreadPromiseWorker* worker : running) worker->Stop();  // all at once: they stop in parallel
  for (ThreadPromiseWorker* worker : running) worker->Join();
}

void ThreadPromiseWorker::TearDown(void* arg) {
  auto env = static_cast<napi_env>(arg);
  StopAll(env);
  AddonData& data = GetAddonData(Napi::Env(env));
  std::vector<ThreadPromiseWorker*> running(data.running.begin(), data.running.end());
  data.running.clear();
  for (ThreadPromiseWorker* worker : running) {
    worker->Abandon();
    delete worker;
  }
}

}  // namespace multilora
