// SO-ISMCTS on the information-set engine (see toolbox/ises_ismcts.h); the reference is
// toolbox.ises.agents.SOISMCTS, which makes the same random draws in the same order.
#include "toolbox/ises_ismcts.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace toolbox {

namespace {

// Statistics of one action at a node (n(a), availability n'(a), total reward) and its children by observation.
struct Edge {
  int32_t action;
  int64_t visits = 0, avail = 1;
  double reward = 0.0;
  std::vector<std::pair<int, int32_t>> children;  // (observation, node index)
};

// An information-set node. The untried actions are kept as a lazy Fisher-Yates shuffle of 0..n_actions-1:
// position i holds `moved[i]` if present, else i; the first `untried` positions are still untried.
struct Node {
  std::vector<Edge> edges;  // in expansion order
  int64_t untried = -1;     // -1: not visited yet
  std::unordered_map<int64_t, int32_t> moved;
};

class Search {
 public:
  Search(const IsmctsGame& game, const IsmctsSettings& settings, SplitMix64& gen)
      : g_(game), s_(settings), gen_(gen), mark_(game.win >= 0 ? game.n_actions : 0, 0) {
    nodes_.emplace_back();
  }

  // One iteration with determinisation `secret` from the root information set `root`: a simulation that leaves
  // the tree's statistics alone, then, if its feedback evaluations fit in `allowance` (< 0: no limit), the backup.
  // Returns the evaluations, or -1 when the iteration did not fit (the tree is then as before it).
  int64_t iterate(const std::vector<int32_t>& root, int32_t secret, int64_t allowance) {
    cand_ = root;
    path_.clear();
    int64_t used = 0, evaluations = 0, expanded = -1;  // expanded: the drawn shuffle position j, if any
    bool over = false;
    int32_t node = 0;
    while (!over && used < s_.horizon) {  // selection and expansion in the shared tree
      Node& n = nodes_[node];
      if (n.untried < 0) n.untried = g_.n_actions;
      // every action is available in every determinisation: n'(a) + 1 this iteration (added in the backup)
      size_t pick = n.edges.size();
      int32_t action;
      if (n.untried > 0) {
        expanded = static_cast<int64_t>(gen_.below(static_cast<uint64_t>(n.untried)));
        action = slot(n, expanded);
      } else {  // UCB1 with availability counts; the first maximum wins
        double best = -std::numeric_limits<double>::infinity();
        for (size_t i = 0; i < n.edges.size(); ++i) {
          const Edge& e = n.edges[i];
          const double v = static_cast<double>(std::max<int64_t>(1, e.visits));
          const double ucb = e.reward / v + s_.c * std::sqrt(log_of(e.avail + 1) / v);
          if (ucb > best) {
            best = ucb;
            pick = i;
          }
        }
        action = n.edges[pick].action;
      }
      evaluations += static_cast<int64_t>(cand_.size());
      const int outcome = step(action, secret, over);
      ++used;
      path_.emplace_back(node, pick);
      if (expanded >= 0) break;
      node = child(node, pick, outcome);
    }
    while (!over && used < s_.horizon) {  // rollout
      int32_t action;
      if (s_.consistent && g_.win >= 0) {
        const int64_t k = consistent_options();
        action = k ? kth_option(static_cast<int64_t>(gen_.below(static_cast<uint64_t>(k))))
                   : static_cast<int32_t>(gen_.below(static_cast<uint64_t>(g_.n_actions)));
      } else {
        action = static_cast<int32_t>(gen_.below(static_cast<uint64_t>(g_.n_actions)));
      }
      evaluations += static_cast<int64_t>(cand_.size());
      step(action, secret, over);
      ++used;
    }
    if (allowance >= 0 && evaluations > allowance) return -1;
    const bool solved = over && (g_.win >= 0 || cand_[0] == secret);  // query games: declare min(I)
    const double reward =
        solved ? static_cast<double>(s_.horizon - used + 1) / static_cast<double>(s_.horizon) : 0.0;
    for (const auto& [node_index, edge] : path_) {
      Node& n = nodes_[node_index];
      for (Edge& e : n.edges) ++e.avail;
      if (edge == n.edges.size()) {  // the expansion: one step of the shuffle, a new edge (n'(a) = 1)
        const int64_t last = --n.untried;
        n.edges.push_back(Edge{slot(n, expanded)});
        n.moved[expanded] = slot(n, last);
        n.moved.erase(last);
      }
      Edge& e = n.edges[edge];
      ++e.visits;
      e.reward += reward;
    }
    return evaluations;
  }

  // The move when no iteration ran: a secret still in I (guess games), else a uniform action.
  int32_t fallback(const std::vector<int32_t>& root) {
    cand_ = root;
    const int64_t k = g_.win >= 0 ? consistent_options() : 0;
    return k ? kth_option(static_cast<int64_t>(gen_.below(static_cast<uint64_t>(k))))
             : static_cast<int32_t>(gen_.below(static_cast<uint64_t>(g_.n_actions)));
  }

  const Node& root() const { return nodes_[0]; }

 private:
  // log(k), tabulated as the counts grow (the same values as std::log: the reference calls math.log)
  double log_of(int64_t k) {
    while (static_cast<int64_t>(logs_.size()) <= k) logs_.push_back(std::log(static_cast<double>(logs_.size())));
    return logs_[k];
  }

  static int32_t slot(const Node& n, int64_t i) {
    const auto it = n.moved.find(i);
    return it == n.moved.end() ? static_cast<int32_t>(i) : it->second;
  }

  int32_t child(int32_t node, size_t edge, int outcome) {
    for (const auto& [o, index] : nodes_[node].edges[edge].children)
      if (o == outcome) return index;
    const auto index = static_cast<int32_t>(nodes_.size());
    nodes_.emplace_back();  // invalidates references into nodes_
    nodes_[node].edges[edge].children.emplace_back(outcome, index);
    return index;
  }

  // Applies `action` in the determinised world: I <- I_o(a); returns the observation o.
  int step(int32_t action, int32_t secret, bool& over) {
    const uint8_t* row = g_.table + static_cast<int64_t>(action) * g_.n_secrets;
    const uint8_t outcome = row[secret];
    next_.resize(cand_.size());
    size_t kept = 0;
    for (int32_t s : cand_) {  // branch-free: the outcome classes are unpredictable
      next_[kept] = s;
      kept += row[s] == outcome;
    }
    next_.resize(kept);
    std::swap(cand_, next_);
    if (g_.win >= 0) {
      over = outcome == g_.win;
    } else {
      over = true;
      for (int32_t s : cand_) over &= g_.twin_class[s] == g_.twin_class[cand_[0]];
    }
    return outcome;
  }

  // The distinct actions guessing a secret of I (into options_, unordered); returns their number.
  int64_t consistent_options() {
    options_.clear();
    for (int32_t s : cand_) {
      const int32_t a = g_.secret_action[s];
      if (!mark_[a]) {
        mark_[a] = 1;
        options_.push_back(a);
      }
    }
    for (int32_t a : options_) mark_[a] = 0;
    return static_cast<int64_t>(options_.size());
  }

  // The k-th smallest of options_ (the reference indexes the ascending list).
  int32_t kth_option(int64_t k) {
    std::nth_element(options_.begin(), options_.begin() + k, options_.end());
    return options_[k];
  }

  const IsmctsGame& g_;
  const IsmctsSettings& s_;
  SplitMix64& gen_;
  std::vector<Node> nodes_;
  std::vector<int32_t> cand_, next_, options_;
  std::vector<char> mark_;
  std::vector<double> logs_;
  std::vector<std::pair<int32_t, size_t>> path_;
};

}  // namespace

IsmctsResult ises_so_ismcts_cpu(const IsmctsGame& game, const int32_t* cand, int64_t n_cand, uint64_t seed,
                                uint64_t stream, uint64_t counter, const IsmctsSettings& settings, const Poll& poll) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  SplitMix64 gen(seed, stream, counter);
  const std::vector<int32_t> root(cand, cand + n_cand);
  std::vector<double> cdf;  // determinisation s ~ p(s | I) by inverting the prior's CDF over I
  if (game.prior) {
    double total = 0.0;
    for (int32_t s : root) cdf.push_back(total += game.prior[s]);
  }
  Search search(game, settings, gen);
  PollEvery tick(&poll);
  IsmctsResult out;
  for (;;) {
    if (settings.iterations && out.iterations >= settings.iterations) break;
    if (settings.evaluations && out.iterations && out.evaluations >= settings.evaluations) break;
    if (settings.budget_ms > 0 &&
        std::chrono::duration<double, std::milli>(Clock::now() - start).count() >= settings.budget_ms)
      break;
    tick();
    int64_t i;
    if (cdf.empty()) {
      i = static_cast<int64_t>(gen.below(static_cast<uint64_t>(n_cand)));
    } else {
      const double x = gen.uniform() * cdf.back();
      i = std::min<int64_t>(n_cand - 1, std::upper_bound(cdf.begin(), cdf.end(), x) - cdf.begin());
    }
    // under an evaluation cap, every iteration after the first must fit in what is left of it
    const int64_t allowance = settings.evaluations && out.iterations ? settings.evaluations - out.evaluations : -1;
    const int64_t evaluations = search.iterate(root, root[i], allowance);
    if (evaluations < 0) break;
    out.evaluations += evaluations;
    ++out.iterations;
  }
  for (const Edge& e : search.root().edges) {
    out.actions.push_back(e.action);
    out.visits.push_back(e.visits);
    out.reward.push_back(e.reward);
  }
  if (out.actions.empty()) out.fallback = search.fallback(root);
  return out;
}

}  // namespace toolbox
