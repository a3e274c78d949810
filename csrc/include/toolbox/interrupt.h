// Cooperative interruption of long native loops: the binding passes a poll that re-acquires the GIL and throws
// when a signal (Ctrl-C) is pending. Kernels call it between chunks of work, on the calling thread only (never
// inside parallel_for), so that the exception unwinds through plain C++ frames.
#pragma once
#include <chrono>
#include <functional>

namespace toolbox {

using Poll = std::function<void()>;

// Calls the poll at most every `period` (steady clock), so a hot loop may ask on every iteration.
class PollEvery {
 public:
  explicit PollEvery(const Poll* poll, std::chrono::milliseconds period = std::chrono::milliseconds(100))
      : poll_(poll && *poll ? poll : nullptr), period_(period), last_(std::chrono::steady_clock::now()) {}
  void operator()() {
    if (!poll_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < period_) return;
    last_ = now;
    (*poll_)();
  }

 private:
  const Poll* poll_;
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace toolbox
