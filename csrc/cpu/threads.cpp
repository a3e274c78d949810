#include <cstdlib>
#include <thread>

#include "toolbox/parallel.h"

namespace toolbox {

int num_threads() {
  if (const char* env = std::getenv("TOOLBOX_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace toolbox
