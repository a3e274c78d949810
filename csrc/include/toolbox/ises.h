// ISES information-set enumeration (Meng & Lucas, CoG 2024): feedback tables, partition histograms of an
// information set by each candidate action, expected entropy reduction for many actions at once, filtering,
// sampled variants (Philox state sampling) and an exact minimum-expected-guesses solver for guess games.
// A feedback table is uint8 [actions, secrets]: entry (a, s) is the outcome code f(a, s) < n_outcomes <= 256.
#pragma once
#include <cstdint>
#include <memory>

#include "toolbox/interrupt.h"

namespace toolbox {

// Mastermind feedback: code = black * (pegs + 1) + white for codes over `colors` colours (also Bulls and Cows).
void ises_mastermind_table_cpu(const uint8_t* guesses, int64_t n_guesses, const uint8_t* secrets, int64_t n_secrets,
                               int pegs, int colors, uint8_t* out);

// Wordle feedback over letters 0..25: digit 2 green, 1 yellow, 0 grey; code = sum_i digit_i * 3^(len-1-i).
void ises_wordle_table_cpu(const uint8_t* guesses, int64_t n_guesses, const uint8_t* secrets, int64_t n_secrets,
                           int length, uint8_t* out);

// For each action a in `actions`: the outcome histogram of the information set `cand` (optionally weighted by a
// prior over secrets) and from it E[dH](a) = -sum_o P(o|a) log2 P(o|a) (eq. 1.2.3), the largest class and the
// number of non-empty classes. Threads over actions. Returns false when a scored entry holds a code >= n_outcomes
// (never read out of bounds; the results are then meaningless).
bool ises_partition_scores_cpu(const uint8_t* table, int64_t n_secrets, const int32_t* cand, int64_t n_cand,
                               const double* weights, const int32_t* actions, int64_t n_actions, int n_outcomes,
                               double* gain, int64_t* max_class, int32_t* n_classes);

// Secrets of `cand` whose feedback to `action` is `outcome` (the new information set); returns their number.
int64_t ises_filter_cpu(const uint8_t* table, int64_t n_secrets, const int32_t* cand, int64_t n_cand, int32_t action,
                        int outcome, int32_t* out);

// State sampling: m secrets drawn uniformly with replacement from `cand` by Philox (uniform j of the sample is
// uniform j % 4 of counter (j / 4, counter)); sampled ISES then scores actions on the sample with
// ises_partition_scores_cpu.
void ises_sample_states_cpu(const int32_t* cand, int64_t n_cand, int64_t m, uint64_t seed, uint32_t stream,
                            uint64_t counter, int32_t* out);

// Exact minimum total number of guesses (sum over secrets of the guesses to identify each) for guess games where
// guessing a secret's own action wins (outcome `win`). Branch and bound with memoisation; `beam` > 0 restricts
// each node to the `beam` best actions by lower bound plus the `beam` best by E[dH] (then the result is the best
// strategy in that restricted space, an upper bound on the optimum). For codes of `pegs` symbols over `colors`
// (`codes` [n_actions, pegs], actions = secrets, as in Mastermind and Bulls and Cows) the solver also tries one
// guess per orbit of the position and colour permutations that fix the history (exact); that needs the history.
class IsesOptimalSolver {
 public:
  IsesOptimalSolver(const uint8_t* table, int64_t n_actions, int64_t n_secrets, int n_outcomes, int win,
                    const int32_t* secret_action, int beam, const uint8_t* codes = nullptr, int pegs = 0,
                    int colors = 0);
  ~IsesOptimalSolver();
  // Minimal total guesses for the information set `cand` (sorted secret indices); first_action >= 0 fixes the
  // first guess. `history` (the actions that led to `cand`; null when unknown) enables the symmetry reduction.
  // `poll` (toolbox/interrupt.h) is called about every 100 ms of search; what it throws leaves the solver usable.
  int64_t solve(const int32_t* cand, int64_t n_cand, int32_t first_action, const int32_t* history = nullptr,
                int64_t n_history = 0, const Poll& poll = nullptr);
  // The best action found for `cand` (solves it first if needed).
  int32_t best_action(const int32_t* cand, int64_t n_cand, const int32_t* history = nullptr, int64_t n_history = 0,
                      const Poll& poll = nullptr);
  int64_t nodes() const;
  int64_t memo_size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace toolbox
