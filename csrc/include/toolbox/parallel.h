// Minimal static-chunk parallel-for over [0, n) with std::thread (no OpenMP dependency).
#pragma once
#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace toolbox {

// Threads to use: TOOLBOX_NUM_THREADS if set (> 0), else the hardware concurrency.
int num_threads();

// Calls body(begin, end) on disjoint chunks covering [0, n); runs inline when n is small or one thread.
template <class Body>
void parallel_for(int64_t n, int64_t min_chunk, Body&& body) {
  const int64_t workers = std::min<int64_t>(num_threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk)));
  if (workers <= 1) {
    if (n > 0) body(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(workers);
  const int64_t step = (n + workers - 1) / workers;
  for (int64_t w = 0; w < workers; ++w) {
    const int64_t b = w * step, e = std::min(n, b + step);
    if (b >= e) break;
    pool.emplace_back([&, w, b, e] {
      try { body(b, e); } catch (...) { errors[w] = std::current_exception(); }
    });
  }
  for (auto& t : pool) t.join();
  for (auto& err : errors) if (err) std::rethrow_exception(err);
}

}  // namespace toolbox
