// SO-ISMCTS (Cowling, Powley & Whitehouse 2012) on the ISES information-set engine: the C++ twin of
// toolbox.ises.agents.SOISMCTS. Both draw from the SplitMix64 generator below in the same order, so for the same
// seed they build the same tree (same root statistics, same move).
#pragma once
#include <cstdint>
#include <vector>

#include "toolbox/interrupt.h"

namespace toolbox {

// SplitMix64 (Steele, Lea & Flood, OOPSLA 2014), mirrored by toolbox.ises.engine.SplitMix64: the state advances
// by the golden-ratio increment and each output is mix(state). Seeded from (seed, stream, counter) as
// mix(mix(mix(seed) ^ stream) ^ counter).
class SplitMix64 {
 public:
  static constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  SplitMix64(uint64_t seed, uint64_t stream, uint64_t counter) : state_(mix(mix(mix(seed) ^ stream) ^ counter)) {}
  uint64_t next() { return mix(state_ += kGolden); }
  // Uniform in [0, n), n >= 1, exactly: outputs below 2^64 mod n are rejected, the rest reduced mod n.
  uint64_t below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
      const uint64_t x = next();
      if (x >= threshold) return x % n;
    }
  }
  // Uniform double in [0, 1) from the top 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// A game the native search can play: its full feedback table uint8 [n_actions, n_secrets], every action legal
// after every history. Guess games: win >= 0 and secret_action [n_secrets]; query games: win = -1 and twin_class
// [n_secrets] (the game ends when I holds one twin class; the player then declares min(I), i.e. cand[0]).
// prior [n_secrets] or null (uniform).
struct IsmctsGame {
  const uint8_t* table;
  int64_t n_actions, n_secrets;
  int win;
  const int32_t* secret_action;
  const int64_t* twin_class;
  const double* prior;
};

struct IsmctsSettings {
  double budget_ms;     // wall clock per decision (0: none), checked before every iteration
  int64_t iterations;   // iteration cap (0: none)
  int64_t evaluations;  // feedback-evaluation cap (0: none): the most whole iterations that fit, at least one
  double c;             // UCB1 exploration constant
  bool consistent;      // rollout: guess a secret still in I (guess games) instead of a uniform action
  int64_t horizon;      // the most actions of one simulated game; reward (horizon - used + 1) / horizon if solved
};

// The root's statistics, in expansion order, and the work done.
struct IsmctsResult {
  std::vector<int32_t> actions;
  std::vector<int64_t> visits;
  std::vector<double> reward;  // total reward per root action
  int64_t iterations = 0;
  int64_t evaluations = 0;     // feedback values f(a, s) computed: |I| per simulated action
  int32_t fallback = -1;       // the move when no iteration fitted in the budget (else -1)
};

// The search from information set `cand` (in the caller's order; draws from SplitMix64(seed, stream, counter)).
IsmctsResult ises_so_ismcts_cpu(const IsmctsGame& game, const int32_t* cand, int64_t n_cand, uint64_t seed,
                                uint64_t stream, uint64_t counter, const IsmctsSettings& settings,
                                const Poll& poll = nullptr);

}  // namespace toolbox
