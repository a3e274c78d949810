// CPU kernels of the ISES information-set engine (see toolbox/ises.h); numpy references in toolbox/ises/engine.py.
#include "toolbox/ises.h"

#include <algorithm>
#include <atomic>
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

bool ises_partition_scores_cpu(const uint8_t* table, int64_t n_secrets, const int32_t* cand, int64_t n_cand,
                               const double* weights, const int32_t* actions, int64_t n_actions, int n_outcomes,
                               double* gain, int64_t* max_class, int32_t* n_classes) {
  std::atomic<bool> codes_ok{true};
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
      for (int o = n_outcomes; o < 256; ++o)
        if (count[o]) codes_ok.store(false, std::memory_order_relaxed);
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
  return codes_ok.load();
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

// Guess equivalence for codes of `pegs` symbols over `colors` (Mastermind, Bulls and Cows; Ville 2013): the
// feedback is invariant under permuting positions and colours, so guesses that a permutation fixing the history
// maps onto each other lead to the same value. The permutations used fix every earlier guess, except that colours
// absent from every candidate ("zero" colours) may be exchanged freely, as may colours never guessed ("free").
// `representatives` keeps one guess per orbit: the one with the smallest index.
class CodeSymmetry {
 public:
  CodeSymmetry(const uint8_t* codes, int64_t n_codes, int pegs, int colors)
      : codes_(codes), n_codes_(n_codes), pegs_(pegs), colors_(colors) {
    int64_t size = 1;
    for (int p = 0; p < pegs; ++p) size *= colors;
    index_.assign(size, -1);
    for (int64_t i = 0; i < n_codes; ++i) index_[key(codes + i * pegs)] = static_cast<int32_t>(i);
    std::vector<int8_t> perm(pegs);
    std::iota(perm.begin(), perm.end(), 0);
    do positions_.push_back(perm); while (std::next_permutation(perm.begin(), perm.end()));
  }

  // The actions that represent their orbits (the smallest index of each) for information set `cand` after
  // `history`; cached by (history, colour classes), which is all the orbits depend on.
  const std::vector<int32_t>& representatives(const std::vector<int32_t>& cand, const std::vector<int32_t>& history) {
    enum : int8_t { kZero = 0, kPlayed = 1, kFree = 2 };
    std::vector<int8_t> cls(colors_, kZero);
    for (int32_t s : cand)
      for (int p = 0; p < pegs_; ++p) cls[codes_[s * pegs_ + p]] = kFree;
    for (int32_t g : history)
      for (int p = 0; p < pegs_; ++p)
        if (cls[codes_[g * pegs_ + p]] != kZero) cls[codes_[g * pegs_ + p]] = kPlayed;
    std::string cache_key(reinterpret_cast<const char*>(cls.data()), cls.size());
    cache_key.append(reinterpret_cast<const char*>(history.data()), history.size() * sizeof(int32_t));
    if (const auto it = cache_.find(cache_key); it != cache_.end()) return it->second;
    if (cache_.size() >= 4096) cache_.clear();  // at most ~80 MB
    std::vector<uint8_t> zero, free;  // colours of each exchangeable class, ascending
    for (int c = 0; c < colors_; ++c) {
      if (cls[c] == kZero) zero.push_back(static_cast<uint8_t>(c));
      if (cls[c] == kFree) free.push_back(static_cast<uint8_t>(c));
    }
    // Position permutations rho with a colour map pi such that every guess g satisfies pi(g[i]) = g[rho(i)] for
    // played colours, and zero colours go to zero colours.
    struct Element { const std::vector<int8_t>* rho; std::vector<int16_t> pi; };
    std::vector<Element> group;
    for (const auto& rho : positions_) {
      std::vector<int16_t> pi(colors_, -1), inv(colors_, -1);
      bool ok = true;
      for (size_t h = 0; h < history.size() && ok; ++h) {
        const uint8_t* g = codes_ + static_cast<int64_t>(history[h]) * pegs_;
        for (int i = 0; i < pegs_ && ok; ++i) {
          const uint8_t c = g[i], d = g[rho[i]];
          if (cls[c] != cls[d]) ok = false;
          else if (cls[c] == kPlayed) {
            ok = (pi[c] < 0 || pi[c] == d) && (inv[d] < 0 || inv[d] == c);
            pi[c] = d;
            inv[d] = c;
          }
        }
      }
      if (ok) group.push_back({&rho, std::move(pi)});
    }
    const int64_t n_actions = n_codes_;
    std::vector<char> keep(n_actions);
    parallel_for(n_actions, 4096, [&](int64_t begin, int64_t end) {
      std::vector<uint8_t> image(pegs_);
      std::vector<int16_t> relabel(colors_);
      for (int64_t a = begin; a < end; ++a) {
        const uint8_t* code = codes_ + a * pegs_;
        bool smallest = true;
        for (size_t e = 0; e < group.size() && smallest; ++e) {
          const auto& rho = *group[e].rho;
          for (int i = 0; i < pegs_; ++i)
            image[rho[i]] = cls[code[i]] == kPlayed ? static_cast<uint8_t>(group[e].pi[code[i]]) : code[i];
          std::fill(relabel.begin(), relabel.end(), -1);  // zero and free colours by order of first appearance
          size_t next_zero = 0, next_free = 0;
          for (int i = 0; i < pegs_; ++i) {
            const uint8_t c = image[i];
            if (cls[c] == kPlayed) continue;
            if (relabel[c] < 0) relabel[c] = cls[c] == kZero ? zero[next_zero++] : free[next_free++];
            image[i] = static_cast<uint8_t>(relabel[c]);
          }
          smallest = index_[key(image.data())] >= a;
        }
        keep[a] = smallest;
      }
    });
    std::vector<int32_t>& reps = cache_[cache_key];
    for (int32_t a = 0; a < n_actions; ++a)
      if (keep[a]) reps.push_back(a);
    return reps;
  }

 private:
  int64_t key(const uint8_t* code) const {
    int64_t k = 0;
    for (int p = 0; p < pegs_; ++p) k = k * colors_ + code[p];
    return k;
  }

  const uint8_t* codes_;
  int64_t n_codes_;
  int pegs_, colors_;
  std::vector<int32_t> index_;  // mixed-radix key -> code index (-1: not a code)
  std::vector<std::vector<int8_t>> positions_;
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace

struct IsesOptimalSolver::Impl {
  const uint8_t* table;
  int64_t n_actions, n_secrets;
  int n_outcomes, win;
  const int32_t* secret_action;
  int beam;
  std::unique_ptr<CodeSymmetry> symmetry;
  int branching = 1;                    // K: the most non-winning classes one guess can make
  std::vector<int64_t> level_capacity;  // K^(d-1)
  std::vector<double> c_log2_c;         // c log2 c for c = 0..n_secrets
  std::vector<int64_t> lower_bounds;    // fill(m, 0) for m = 0..n_secrets
  static constexpr int64_t kSmallSet = 255;  // sets up to this size (uint8 counts) go through the transposed table
  std::vector<uint8_t> transposed;      // [secrets, actions]
  std::unordered_map<std::vector<int32_t>, MemoEntry, VecHash> memo;
  int64_t nodes = 0;
  PollEvery tick{nullptr};  // the caller's poll during solve() and best_action()

  Impl(const uint8_t* table_, int64_t n_actions_, int64_t n_secrets_, int n_outcomes_, int win_,
       const int32_t* secret_action_, int beam_)
      : table(table_), n_actions(n_actions_), n_secrets(n_secrets_), n_outcomes(n_outcomes_), win(win_),
        secret_action(secret_action_), beam(beam_), c_log2_c(n_secrets_ + 1, 0.0) {
    // K: the most non-winning outcomes any action produces (at most n_outcomes - 1; 13 of 24 in Mastermind)
    std::vector<int> distinct(n_actions);
    parallel_for(n_actions, 64, [&](int64_t begin, int64_t end) {
      for (int64_t a = begin; a < end; ++a) {
        uint64_t seen[4] = {0, 0, 0, 0};
        for (int64_t s = 0; s < n_secrets; ++s) {
          const uint8_t o = table[a * n_secrets + s];
          seen[o >> 6] |= uint64_t{1} << (o & 63);
        }
        seen[win >> 6] &= ~(uint64_t{1} << (win & 63));
        for (uint64_t w : seen) distinct[a] += __builtin_popcountll(w);
      }
    });
    for (int d : distinct) branching = std::max(branching, d);
    const int64_t k = branching;
    for (int64_t cap = 1, covered = 0; covered < n_secrets; cap = cap > n_secrets / k ? n_secrets : cap * k) {
      level_capacity.push_back(cap);
      covered += cap;
    }
    for (int64_t c = 2; c <= n_secrets; ++c) c_log2_c[c] = c * std::log2(static_cast<double>(c));
    for (int64_t m = 0; m <= n_secrets; ++m) lower_bounds.push_back(fill(m, 0));
    transposed.resize(n_actions * n_secrets);
    parallel_for(n_secrets, 64, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s)
        for (int64_t a = 0; a < n_actions; ++a) transposed[s * n_actions + a] = table[a * n_secrets + s];
    });
  }

  // Lower bound on the guesses to find m secrets when the levels of the strategy tree hold at most `capacity`
  // (level d of a tree solves at most K^(d-1) secrets; `skip` levels already spent).
  int64_t fill(int64_t m, size_t skip) const {
    int64_t total = 0, depth = 1;
    for (size_t l = skip; l < level_capacity.size() && m; ++l, ++depth) {
      const int64_t take = std::min(m, level_capacity[l]);
      total += take * depth;
      m -= take;
    }
    return total + m * depth;
  }
  int64_t lower_bound(int64_t m) const { return lower_bounds[m]; }
  // Actions per thread when scoring a set of n secrets: ~2^18 table reads, so small sets stay on one thread.
  static int64_t chunk(int64_t n) { return std::max<int64_t>(64, (int64_t{1} << 18) / std::max<int64_t>(1, n)); }
  // A first guess outside the information set finds nobody: T >= m + (levels K, K^2, ... below it).
  int64_t outside_bound(int64_t m) const { return m + fill(m, 1); }

  // The best lower bound known for a subproblem: the counting bound or what the memo proved.
  int64_t known_bound(const std::vector<int32_t>& part) const {
    const int64_t lb = lower_bound(static_cast<int64_t>(part.size()));
    if (part.size() <= 2) return lb;
    const auto it = memo.find(part);
    return it == memo.end() ? lb : std::max(lb, it->second.value);
  }

  struct Option {
    int64_t bound;
    double gain;
    int32_t action;
  };

  // Every action of `actions` scored on `cand`: its lower bound n + sum_o LB(|I_o|) and E[dH] (unordered).
  // An action that learns nothing and cannot win gets bound -1.
  std::vector<Option> score(const std::vector<int32_t>& cand, const std::vector<int32_t>& actions) const {
    const int64_t n = static_cast<int64_t>(cand.size()), m = static_cast<int64_t>(actions.size());
    const double log2_n = std::log2(static_cast<double>(n));
    std::vector<Option> found(m);
    const auto finish = [&](int64_t i, const int32_t* count, const uint8_t* touched, int classes) {
      int64_t bound = n, biggest = 0;
      double sum = 0.0;
      bool wins = false;
      for (int k = 0; k < classes; ++k) {
        const uint8_t o = touched[k];
        biggest = std::max<int64_t>(biggest, count[o]);
        sum += c_log2_c[count[o]];
        if (o != win) bound += lower_bounds[count[o]];
        else wins = true;
      }
      const bool useless = biggest == n && !wins;
      found[i] = {useless ? -1 : bound, log2_n - sum / n, actions[i]};
    };
    if (n <= kSmallSet) {  // column-wise through the transposed table: n contiguous reads instead of n cache misses
      parallel_for(m, std::max<int64_t>(256, chunk(n)), [&](int64_t begin, int64_t end) {
        std::vector<uint8_t> counts((end - begin) * n_outcomes, 0);
        for (int32_t s : cand) {
          const uint8_t* column = transposed.data() + static_cast<int64_t>(s) * n_actions;
          for (int64_t i = begin; i < end; ++i) ++counts[(i - begin) * n_outcomes + column[actions[i]]];
        }
        int32_t count[256];
        uint8_t touched[256];
        for (int64_t i = begin; i < end; ++i) {
          const uint8_t* c = counts.data() + (i - begin) * n_outcomes;
          int classes = 0;
          for (int o = 0; o < n_outcomes; ++o)
            if (c[o]) {
              count[o] = c[o];
              touched[classes++] = static_cast<uint8_t>(o);
            }
          finish(i, count, touched, classes);
        }
      });
      return found;
    }
    parallel_for(m, chunk(n), [&](int64_t begin, int64_t end) {
      int32_t count[256] = {};
      uint8_t touched[256];
      for (int64_t i = begin; i < end; ++i) {
        const int32_t a = actions[i];
        const uint8_t* row = table + static_cast<int64_t>(a) * n_secrets;
        int classes = 0;
        for (int32_t s : cand) {
          const uint8_t o = row[s];
          if (!count[o]++) touched[classes++] = o;
        }
        finish(i, count, touched, classes);
        for (int k = 0; k < classes; ++k) count[touched[k]] = 0;
      }
    });
    return found;
  }

  // The options worth searching, ordered by lower bound (then larger E[dH], then index): in exact search those
  // with a bound below `below`; with a beam, the beam best by bound and the beam best by E[dH] among actions with
  // distinct partitions.
  std::vector<Option> rank(const std::vector<int32_t>& cand, std::vector<Option> found, int64_t below) const {
    found.erase(std::remove_if(found.begin(), found.end(),
                               [&](const Option& o) { return o.bound < 0 || (!beam && o.bound >= below); }),
                found.end());
    const auto by_bound = [](const Option& x, const Option& y) {
      if (x.bound != y.bound) return x.bound < y.bound;
      if (x.gain != y.gain) return x.gain > y.gain;
      return x.action < y.action;
    };
    if (beam > 0) {
      std::sort(found.begin(), found.end(), [](const Option& x, const Option& y) { return x.action < y.action; });
      PartitionSet seen;
      std::vector<Option> distinct;
      for (const Option& o : found)
        if (seen.insert(*this, cand, o.action)) distinct.push_back(o);
      found = std::move(distinct);
      if (static_cast<int64_t>(found.size()) > beam) {
        std::sort(found.begin(), found.end(), [](const Option& x, const Option& y) {
          return x.gain != y.gain ? x.gain > y.gain : x.action < y.action;
        });
        const int64_t keep = std::min<int64_t>(2 * beam, found.size());
        std::partial_sort(found.begin() + beam, found.begin() + keep, found.end(), by_bound);
        found.resize(keep);
      }
    }
    std::sort(found.begin(), found.end(), by_bound);
    return found;
  }

  // Actions that split `cand` into the same classes with the same winning secret lead to the same subproblems:
  // only the first of them needs searching (exact).
  struct PartitionSet {
    std::unordered_multimap<uint64_t, int32_t> seen;
    // False if an action with the same partition was inserted before.
    bool insert(const Impl& impl, const std::vector<int32_t>& cand, int32_t action) {
      const uint64_t h = impl.signature(cand, action);
      const auto range = seen.equal_range(h);
      for (auto it = range.first; it != range.second; ++it)
        if (impl.same_partition(cand, it->second, action)) return false;
      seen.emplace(h, action);
      return true;
    }
  };

  uint64_t signature(const std::vector<int32_t>& cand, int32_t action) const {
    int relabel[256];
    std::fill_n(relabel, n_outcomes, -1);
    const uint8_t* row = table + static_cast<int64_t>(action) * n_secrets;
    uint64_t h = 1469598103934665603ull;
    int next = 0;
    for (int32_t s : cand) {
      const uint8_t o = row[s];
      if (relabel[o] < 0) relabel[o] = o == win ? 255 : next++;
      h = (h ^ static_cast<uint64_t>(relabel[o])) * 1099511628211ull;
    }
    return h;
  }

  // Whether actions a and b split `cand` into the same classes with the same winning secret.
  bool same_partition(const std::vector<int32_t>& cand, int32_t a, int32_t b) const {
    int map_ab[256], map_ba[256];
    std::fill_n(map_ab, n_outcomes, -1);
    std::fill_n(map_ba, n_outcomes, -1);
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
  // `history` (the guesses before, or null when unknown) enables the symmetry reduction below.
  int64_t after(const std::vector<int32_t>& cand, int32_t action, int64_t bound, const std::vector<int32_t>* history) {
    const auto parts = split(cand, action);
    std::vector<int32_t> next;
    if (history) {
      next = *history;
      next.push_back(action);
    }
    std::vector<int64_t> floor(parts.size());
    std::vector<std::vector<Option>> scores(parts.size());
    int64_t total = static_cast<int64_t>(cand.size()), rest = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (static_cast<int64_t>(parts[i].size()) > branching + 1 && !memo.count(parts[i]))
        scores[i] = raise_bound(parts[i], history ? &next : nullptr);
      rest += floor[i] = known_bound(parts[i]);
      if (total + rest >= bound) return bound;
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      rest -= floor[i];
      if (total + rest + floor[i] >= bound) return bound;
      total += solve(parts[i], bound - total - rest, history ? &next : nullptr, std::move(scores[i]));
      if (total + rest >= bound) return bound;
    }
    return total;
  }

  // The actions worth scoring for `cand`: the candidates' own guesses and/or the others (one per symmetry orbit).
  std::vector<int32_t> actions_for(const std::vector<int32_t>& cand, const std::vector<int32_t>* history,
                                   bool inside, bool outside) const {
    if (!outside) {  // the candidates' own guesses only: no need to look at the other actions
      std::vector<int32_t> actions(cand.size());
      for (size_t i = 0; i < cand.size(); ++i) actions[i] = secret_action[cand[i]];
      std::sort(actions.begin(), actions.end());
      actions.erase(std::unique(actions.begin(), actions.end()), actions.end());
      return inside ? actions : std::vector<int32_t>{};
    }
    std::vector<char> in_cand(n_actions, 0);
    for (int32_t s : cand) in_cand[secret_action[s]] = 1;
    std::vector<int32_t> actions;
    if (symmetry && history) {
      for (int32_t a : symmetry->representatives(cand, *history))
        if (inside || !in_cand[a]) actions.push_back(a);
    } else {
      for (int32_t a = 0; a < n_actions; ++a)
        if (inside || !in_cand[a]) actions.push_back(a);
    }
    return actions;
  }

  // Scores a large subproblem's options and records its one-step lower bound (the least bound of its options)
  // before anything is searched, so that a poor action is cut before its first class is solved (Ville's dynamic
  // lower bound). The scores are kept for the search of that subproblem.
  std::vector<Option> raise_bound(const std::vector<int32_t>& part, const std::vector<int32_t>* history) {
    std::vector<Option> found = score(part, actions_for(part, history, true, true));
    int64_t least = std::numeric_limits<int64_t>::max();
    for (const Option& o : found)
      if (o.bound >= 0) least = std::min(least, o.bound);
    if (least < std::numeric_limits<int64_t>::max()) memo[part] = {least, false, -1};
    return found;
  }

  // Plays the options in order of their bounds while they can beat `best`, each partition once.
  void search(const std::vector<int32_t>& cand, const std::vector<Option>& opts, const std::vector<int32_t>* history,
              int64_t& best, int32_t& best_action) {
    PartitionSet tried;
    for (const Option& opt : opts) {
      if (opt.bound >= best) break;
      if (!beam && !tried.insert(*this, cand, opt.action)) continue;
      const int64_t v = after(cand, opt.action, best, history);
      if (v < best) {
        best = v;
        best_action = opt.action;
      }
    }
  }

  // min over strategies of T(cand) if it is < bound, otherwise a value >= bound. Small sets try the candidates'
  // own guesses first (cheap to score): a guess outside the set costs at least 2n there, which they often beat.
  // The other actions are tried one per symmetry orbit when the history is known. `scores`: the options of
  // `cand` when already scored.
  int64_t solve(const std::vector<int32_t>& cand, int64_t bound, const std::vector<int32_t>* history,
                std::vector<Option> scores = {}) {
    const int64_t n = static_cast<int64_t>(cand.size());
    if (n == 1) return 1;
    if (n == 2) return 3;
    auto it = memo.find(cand);
    if (it != memo.end() && (it->second.exact || it->second.value >= bound)) return it->second.value;
    ++nodes;
    tick();  // may throw (Ctrl-C); the memo then holds only finished nodes and valid lower bounds
    int64_t best = bound;
    int32_t best_action = -1;
    const bool small = n <= branching + 1;
    if (small) search(cand, rank(cand, score(cand, actions_for(cand, history, true, false)), best), history, best,
                      best_action);
    if (!small || best > outside_bound(n)) {
      if (scores.empty()) scores = score(cand, actions_for(cand, history, !small, true));
      search(cand, rank(cand, std::move(scores), best), history, best, best_action);
    }
    if (best_action >= 0)
      memo[cand] = {best, true, best_action};
    else
      memo[cand] = {bound, false, -1};
    return best;
  }
};

IsesOptimalSolver::IsesOptimalSolver(const uint8_t* table, int64_t n_actions, int64_t n_secrets, int n_outcomes,
                                     int win, const int32_t* secret_action, int beam, const uint8_t* codes, int pegs,
                                     int colors)
    : impl_(new Impl(table, n_actions, n_secrets, n_outcomes, win, secret_action, beam)) {
  if (codes) impl_->symmetry = std::make_unique<CodeSymmetry>(codes, n_actions, pegs, colors);
}

IsesOptimalSolver::~IsesOptimalSolver() = default;

int64_t IsesOptimalSolver::solve(const int32_t* cand, int64_t n_cand, int32_t first_action, const int32_t* history,
                                 int64_t n_history, const Poll& poll) {
  impl_->tick = PollEvery(&poll);
  std::vector<int32_t> c(cand, cand + n_cand), h;
  if (history) h.assign(history, history + n_history);
  const std::vector<int32_t>* known = history ? &h : nullptr;
  const int64_t inf = std::numeric_limits<int64_t>::max() / 4;
  if (first_action >= 0) return impl_->after(c, first_action, inf, known);
  return impl_->solve(c, inf, known);
}

int32_t IsesOptimalSolver::best_action(const int32_t* cand, int64_t n_cand, const int32_t* history,
                                       int64_t n_history, const Poll& poll) {
  impl_->tick = PollEvery(&poll);
  std::vector<int32_t> c(cand, cand + n_cand), h;
  if (n_cand <= 2) return impl_->secret_action[c[0]];
  if (history) h.assign(history, history + n_history);
  impl_->solve(c, std::numeric_limits<int64_t>::max() / 4, history ? &h : nullptr);
  return impl_->memo.at(c).action;
}

int64_t IsesOptimalSolver::nodes() const { return impl_->nodes; }
int64_t IsesOptimalSolver::memo_size() const { return static_cast<int64_t>(impl_->memo.size()); }

}  // namespace toolbox
