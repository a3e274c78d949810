// CPU kernels of the ISES information-set engine (see toolbox/ises.h); numpy references in toolbox/ises/engine.py.
#include "toolbox/ises.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "toolbox/parallel.h"
#include "toolbox/philox.h"

namespace toolbox {

void ises_mastermind_table_cpu(const uint8_t* guesses, int64_t n_guesses, const uint8_t* secrets, int64_t n_secrets,
                               int pegs, int colors, uint8_t* out) {
  // Colour counts of every secret once, so white pegs are sum_c min(count_g[c], count_s[c]) - black.
  std::vector<uint8_t> secret_counts(static_cast<size_t>(n_secrets) * colors, 0);
  for (int64_t s = 0; s < n_secrets; ++s)
    for (int p = 0; p < pegs; ++p) ++secret_counts[s * colors + secrets[s * pegs + p]];
  parallel_for(n_guesses, 16, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> gc(colors);
    for (int64_t g = begin; g < end; ++g) {
      const uint8_t* code = guesses + g * pegs;
      std::fill(gc.begin(), gc.end(), 0);
      for (int p = 0; p < pegs; ++p) ++gc[code[p]];
      uint8_t* row = out + g * n_secrets;
      for (int64_t s = 0; s < n_secrets; ++s) {
        const uint8_t* sec = secrets + s * pegs;
        const uint8_t* sc = secret_counts.data() + s * colors;
        int black = 0, common = 0;
        for (int p = 0; p < pegs; ++p) black += code[p] == sec[p];
        for (int p = 0; p < pegs; ++p) {  // sum over the guess's distinct colours only
          const uint8_t c = code[p];
          bool first = true;
          for (int q = 0; q < p; ++q) first &= code[q] != c;
          if (first) common += std::min(gc[c], sc[c]);
        }
        row[s] = static_cast<uint8_t>(black * (pegs + 1) + (common - black));
      }
    }
  });
}

void ises_wordle_table_cpu(const uint8_t* guesses, int64_t n_guesses, const uint8_t* secrets, int64_t n_secrets,
                           int length, uint8_t* out) {
  parallel_for(n_guesses, 16, [&](int64_t begin, int64_t end) {
    int digit[8];
    for (int64_t g = begin; g < end; ++g) {
      const uint8_t* word = guesses + g * length;
      uint8_t* row = out + g * n_secrets;
      for (int64_t s = 0; s < n_secrets; ++s) {
        const uint8_t* answer = secrets + s * length;
        unsigned used = 0;  // answer positions already matched (greens first, then yellows left to right)
        for (int i = 0; i < length; ++i) {
          digit[i] = word[i] == answer[i] ? 2 : 0;
          used |= static_cast<unsigned>(digit[i] == 2) << i;
        }
        int code = 0;
        for (int i = 0; i < length; ++i) {
          if (!digit[i]) {
            for (int j = 0; j < length; ++j) {
              if (!((used >> j) & 1u) && answer[j] == word[i]) {
                used |= 1u << j;
                digit[i] = 1;
                break;
              }
            }
          }
          code = code * 3 + digit[i];
        }
        row[s] = static_cast<uint8_t>(code);
      }
    }
  });
}

namespace {

// c log2 c for c = 0..n, so that E[dH] = log2 n - (1/n) sum_o c_o log2 c_o needs no log in the inner loop.
std::vector<double> xlog2x_table(int64_t n) {
  std::vector<double> t(n + 1, 0.0);
  for (int64_t c = 2; c <= n; ++c) t[c] = static_cast<double>(c) * std::log2(static_cast<double>(c));
  return t;
}

}  // namespace

void ises_partition_scores_cpu(const uint8_t* table, int64_t n_secrets, const int32_t* cand, int64_t n_cand,
                               const double* weights, const int32_t* actions, int64_t n_actions, int n_outcomes,
                               double* gain, int64_t* max_class, int32_t* n_classes) {
  const std::vector<double> xlogx = weights ? std::vector<double>() : xlog2x_table(n_cand);
  double total_weight = 0.0;
  if (weights)
    for (int64_t i = 0; i < n_cand; ++i) total_weight += weights[cand[i]];
  const int64_t min_chunk = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, n_cand));
  parallel_for(n_actions, min_chunk, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> count(256);  // any uint8 code is in bounds; only codes < n_outcomes are scored
    std::vector<double> mass(weights ? 256 : 0);
    for (int64_t k = begin; k < end; ++k) {
      const uint8_t* row = table + static_cast<int64_t>(actions[k]) * n_secrets;
      std::fill(count.begin(), count.end(), 0);
      for (int64_t i = 0; i < n_cand; ++i) ++count[row[cand[i]]];
      if (weights) {
        std::fill(mass.begin(), mass.end(), 0.0);
        for (int64_t i = 0; i < n_cand; ++i) mass[row[cand[i]]] += weights[cand[i]];
      }
      int64_t biggest = 0;
      int32_t classes = 0;
      double sum = 0.0;
      for (int o = 0; o < n_outcomes; ++o) {
        if (!count[o]) continue;
        biggest = std::max(biggest, count[o]);
        ++classes;
        if (weights) {
          const double p = mass[o] / total_weight;
          if (p > 0) sum -= p * std::log2(p);
        } else {
          sum += xlogx[count[o]];
        }
      }
      gain[k] = weights ? sum : (n_cand > 0 ? std::log2(static_cast<double>(n_cand)) - sum / n_cand : 0.0);
      max_class[k] = biggest;
      n_classes[k] = classes;
    }
  });
}

int64_t ises_filter_cpu(const uint8_t* table, int64_t n_secrets, const int32_t* cand, int64_t n_cand, int32_t action,
                        int outcome, int32_t* out) {
  const uint8_t* row = table + static_cast<int64_t>(action) * n_secrets;
  int64_t m = 0;
  for (int64_t i = 0; i < n_cand; ++i)
    if (row[cand[i]] == outcome) out[m++] = cand[i];
  return m;
}

void ises_sample_states_cpu(const int32_t* cand, int64_t n_cand, int64_t m, uint64_t seed, uint32_t stream,
                            uint64_t counter, int32_t* out) {
  for (int64_t j = 0; j < m; j += 4) {
    double u[4];
    philox_uniform4(seed, stream, static_cast<uint64_t>(j / 4), counter, u);
    for (int64_t r = 0; r < 4 && j + r < m; ++r)
      out[j + r] = cand[std::min<int64_t>(n_cand - 1, static_cast<int64_t>(u[r] * static_cast<double>(n_cand)))];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Exact solver. T(I) = |I| + sum_{o != win} T(I_o(a)) minimised over a, T({s}) = 1 (guess it).

namespace {

struct VecHash {
  size_t operator()(const std::vector<int32_t>& v) const noexcept {
    uint64_t h = 1469598103934665603ull ^ v.size();
    for (int32_t x : v) h = (h ^ static_cast<uint32_t>(x)) * 1099511628211ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

struct MemoEntry {
  int64_t value;   // exact total, or a lower bound when !exact
  bool exact;
  int32_t action;  // best action when exact
};

}  // namespace

struct IsesOptimalSolver::Impl {
  const uint8_t* table;
  int64_t n_actions, n_secrets;
  int n_outcomes, win;
  const int32_t* secret_action;
  int beam;
  std::vector<int64_t> level_capacity;  // K^(d-1), K = n_outcomes - 1 non-winning classes per guess
  std::unordered_map<std::vector<int32_t>, MemoEntry, VecHash> memo;
  int64_t nodes = 0;

  // Lower bound on T for m secrets: level d of any strategy tree solves at most K^(d-1) of them.
  int64_t lower_bound(int64_t m) const {
    int64_t total = 0, depth = 1;
    for (int64_t cap : level_capacity) {
      const int64_t take = std::min(m, cap);
      total += take * depth;
      m -= take;
      ++depth;
      if (!m) break;
    }
    return total + m * depth;
  }

  struct Option {
    int64_t bound;
    double gain;
    int32_t action;
  };

  // Actions worth trying for `cand`, ordered by lower bound (then larger E[dH]), truncated to the beam. Actions
  // that induce the same partition (same classes, same winning secret) lead to the same subproblems, so only
  // the first of them is kept; this is exact.
  std::vector<Option> options(const std::vector<int32_t>& cand) {
    const int64_t n = static_cast<int64_t>(cand.size());
    std::vector<char> in_cand(n_actions, 0);
    for (int32_t s : cand) in_cand[secret_action[s]] = 1;
    std::vector<Option> found(n_actions);
    std::vector<uint64_t> signature(n_actions);
    parallel_for(n_actions, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n)), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> count(256);
      std::vector<int> relabel(256);
      for (int64_t a = begin; a < end; ++a) {
        const uint8_t* row = table + a * n_secrets;
        std::fill(count.begin(), count.end(), 0);
        std::fill(relabel.begin(), relabel.end(), -1);
        uint64_t h = 1469598103934665603ull;
        int next = 0;
        for (int32_t s : cand) {
          const uint8_t o = row[s];
          ++count[o];
          if (relabel[o] < 0) relabel[o] = o == win ? 255 : next++;
          h = (h ^ static_cast<uint64_t>(relabel[o])) * 1099511628211ull;
        }
        int64_t bound = n, biggest = 0;
        double sum = 0.0;
        for (int o = 0; o < n_outcomes; ++o) {
          if (!count[o]) continue;
          biggest = std::max(biggest, count[o]);
          sum += static_cast<double>(count[o]) * std::log2(static_cast<double>(count[o]));
          if (o != win) bound += lower_bound(count[o]);
        }
        const bool useless = biggest == n && !in_cand[a];  // learns nothing and cannot win
        found[a] = {useless ? -1 : bound, std::log2(static_cast<double>(n)) - sum / n, static_cast<int32_t>(a)};
        signature[a] = h;
      }
    });
    std::vector<Option> out;
    std::unordered_map<uint64_t, int32_t> seen;
    for (int32_t a = 0; a < n_actions; ++a) {
      if (found[a].bound < 0) continue;
      auto it = seen.find(signature[a]);
      if (it != seen.end() && same_partition(cand, it->second, a)) continue;
      if (it == seen.end()) seen.emplace(signature[a], a);
      out.push_back(found[a]);
    }
    const auto by_bound = [](const Option& x, const Option& y) {
      if (x.bound != y.bound) return x.bound < y.bound;
      if (x.gain != y.gain) return x.gain > y.gain;
      return x.action < y.action;
    };
    if (beam > 0 && static_cast<int64_t>(out.size()) > beam) {  // the beam best by bound and the beam best by E[dH]
      std::sort(out.begin(), out.end(), [](const Option& x, const Option& y) {
        return x.gain != y.gain ? x.gain > y.gain : x.action < y.action;
      });
      std::partial_sort(out.begin() + beam, out.begin() + std::min<int64_t>(2 * beam, out.size()), out.end(), by_bound);
      out.resize(std::min<int64_t>(2 * beam, out.size()));
    }
    std::sort(out.begin(), out.end(), by_bound);
    return out;
  }

  // Whether actions a and b split `cand` into the same classes with the same winning secret.
  bool same_partition(const std::vector<int32_t>& cand, int32_t a, int32_t b) const {
    int map_ab[256], map_ba[256];
    std::fill_n(map_ab, 256, -1);
    std::fill_n(map_ba, 256, -1);
    const uint8_t *ra = table + static_cast<int64_t>(a) * n_secrets, *rb = table + static_cast<int64_t>(b) * n_secrets;
    for (int32_t s : cand) {
      const uint8_t x = ra[s], y = rb[s];
      if ((x == win) != (y == win)) return false;
      if (map_ab[x] < 0 && map_ba[y] < 0) {
        map_ab[x] = y;
        map_ba[y] = x;
      } else if (map_ab[x] != y || map_ba[y] != x) {
        return false;
      }
    }
    return true;
  }

  std::vector<std::vector<int32_t>> split(const std::vector<int32_t>& cand, int32_t action) const {
    std::vector<std::vector<int32_t>> parts(n_outcomes);
    const uint8_t* row = table + static_cast<int64_t>(action) * n_secrets;
    for (int32_t s : cand) parts[row[s]].push_back(s);
    parts[win].clear();
    std::vector<std::vector<int32_t>> out;
    for (auto& p : parts)
      if (!p.empty()) out.push_back(std::move(p));
    std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.size() > y.size(); });
    return out;
  }

  // Total guesses of playing `action` first and then optimally, if below `bound`; otherwise some value >= bound.
  int64_t after(const std::vector<int32_t>& cand, int32_t action, int64_t bound) {
    const auto parts = split(cand, action);
    int64_t total = static_cast<int64_t>(cand.size()), rest = 0;
    for (const auto& p : parts) rest += lower_bound(static_cast<int64_t>(p.size()));
    for (const auto& p : parts) {
      rest -= lower_bound(static_cast<int64_t>(p.size()));
      if (total + rest >= bound) return bound;
      total += solve(p, bound - total - rest);
      if (total + rest >= bound) return bound;
    }
    return total;
  }

  // min over strategies of T(cand) if it is < bound, otherwise a value >= bound.
  int64_t solve(const std::vector<int32_t>& cand, int64_t bound) {
    const int64_t n = static_cast<int64_t>(cand.size());
    if (n == 1) return 1;
    if (n == 2) return 3;
    auto it = memo.find(cand);
    if (it != memo.end()) {
      if (it->second.exact || it->second.value >= bound) return it->second.value;
    }
    ++nodes;
    int64_t best = bound;
    int32_t best_action = -1;
    const std::vector<Option> opts = options(cand);
    for (const Option& opt : opts) {
      if (opt.bound >= best) break;
      const int64_t v = after(cand, opt.action, best);
      if (v < best) {
        best = v;
        best_action = opt.action;
        if (best == opts.front().bound) break;  // no action can do better
      }
    }
    if (best_action >= 0)
      memo[cand] = {best, true, best_action};
    else
      memo[cand] = {bound, false, -1};
    return best;
  }
};

IsesOptimalSolver::IsesOptimalSolver(const uint8_t* table, int64_t n_actions, int64_t n_secrets, int n_outcomes,
                                     int win, const int32_t* secret_action, int beam)
    : impl_(new Impl{table, n_actions, n_secrets, n_outcomes, win, secret_action, beam, {}, {}, 0}) {
  const int64_t k = std::max(1, n_outcomes - 1);
  int64_t cap = 1;
  while (cap < n_secrets) {
    impl_->level_capacity.push_back(cap);
    cap = cap > n_secrets / k ? n_secrets : cap * k;
  }
  impl_->level_capacity.push_back(cap);
}

IsesOptimalSolver::~IsesOptimalSolver() = default;

int64_t IsesOptimalSolver::solve(const int32_t* cand, int64_t n_cand, int32_t first_action) {
  std::vector<int32_t> c(cand, cand + n_cand);
  const int64_t inf = std::numeric_limits<int64_t>::max() / 4;
  if (first_action >= 0) return impl_->after(c, first_action, inf);
  return impl_->solve(c, inf);
}

int32_t IsesOptimalSolver::best_action(const int32_t* cand, int64_t n_cand) {
  std::vector<int32_t> c(cand, cand + n_cand);
  if (n_cand <= 2) return impl_->secret_action[c[0]];
  impl_->solve(c, std::numeric_limits<int64_t>::max() / 4);
  return impl_->memo.at(c).action;
}

int64_t IsesOptimalSolver::nodes() const { return impl_->nodes; }
int64_t IsesOptimalSolver::memo_size() const { return static_cast<int64_t>(impl_->memo.size()); }

}  // namespace toolbox
