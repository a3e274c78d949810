// Python bindings of the ISES information-set engine; every array is validated (dtype, rank, shape, contiguity,
// index ranges) before the GIL is released.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.h"
#include "toolbox/ises.h"
#include "toolbox/ises_ismcts.h"

namespace py = pybind11;
using namespace toolbox::bind;

namespace {

py::array indices(const py::handle& obj, const char* name, int64_t limit) {
  py::array arr = require_array<int32_t>(obj, name, 1);
  const int32_t* p = cptr<int32_t>(arr);
  for (int64_t i = 0; i < arr.shape(0); ++i)
    require(p[i] >= 0 && p[i] < limit, std::string(name) + ": index out of range [0, " + std::to_string(limit) + ")");
  return arr;
}

py::array feedback_table(const py::handle& obj, int n_outcomes) {
  require(n_outcomes >= 1 && n_outcomes <= 256, "n_outcomes must be in [1, 256]");
  return require_array<uint8_t>(obj, "table", 2);
}

py::array codes(const py::handle& obj, const char* name, int alphabet) {
  py::array arr = require_array<uint8_t>(obj, name, 2);
  const uint8_t* p = cptr<uint8_t>(arr);
  for (int64_t i = 0; i < arr.size(); ++i)
    require(p[i] < alphabet, std::string(name) + ": symbol out of range [0, " + std::to_string(alphabet) + ")");
  return arr;
}

// An information set for the solver: secret indices in [0, limit), strictly increasing (the memo's key).
py::array sorted_set(const py::handle& obj, int64_t limit) {
  py::array arr = indices(obj, "cand", limit);
  const int32_t* p = cptr<int32_t>(arr);
  require(arr.shape(0) > 0, "cand: the information set is empty");
  for (int64_t i = 1; i < arr.shape(0); ++i)
    require(p[i - 1] < p[i], "cand: secret indices must be strictly increasing (sorted, no repeats)");
  return arr;
}

// A guess game the solver can finish: each secret's own action wins against it, and no action wins against two
// secrets (then every information set can be split, and `win` means the secret is known).
void check_guess_game(const uint8_t* t, int64_t n_actions, int64_t n_secrets, int win, const int32_t* sa) {
  std::vector<int32_t> won(n_actions, -1);
  for (int64_t a = 0; a < n_actions; ++a)
    for (int64_t s = 0; s < n_secrets; ++s)
      if (t[a * n_secrets + s] == win) {
        require(won[a] < 0, "table: action " + std::to_string(a) + " wins against two secrets");
        won[a] = static_cast<int32_t>(s);
      }
  for (int64_t s = 0; s < n_secrets; ++s)
    require(won[sa[s]] == s, "table: the action of secret " + std::to_string(s) +
                                 " does not win against it (inconsistent guess game)");
}

std::optional<py::array> optional_history(const py::handle& obj, int64_t n_actions) {
  if (obj.is_none()) return std::nullopt;
  return indices(obj, "history", n_actions);
}

// The solver keeps its table and secret-action map alive.
struct Solver {
  py::array table, secret_action, codes;
  std::unique_ptr<toolbox::IsesOptimalSolver> impl;
};

}  // namespace

void init_ises(py::module_& m) {
  m.def("ises_mastermind_table",
        [](py::handle guesses_obj, py::handle secrets_obj, int colors) {
          require(colors >= 1 && colors <= 64, "colors must be in [1, 64]");
          py::array guesses = codes(guesses_obj, "guesses", colors);
          py::array secrets = codes(secrets_obj, "secrets", colors);
          const int64_t pegs = guesses.shape(1);
          require(pegs >= 1 && secrets.shape(1) == pegs, "guesses and secrets need the same number of pegs >= 1");
          require((pegs + 1) * (pegs + 1) <= 256, "too many pegs for uint8 feedback codes");
          py::array_t<uint8_t> out({guesses.shape(0), secrets.shape(0)});
          const uint8_t *g = cptr<uint8_t>(guesses), *s = cptr<uint8_t>(secrets);
          uint8_t* o = out.mutable_data();
          const int64_t ng = guesses.shape(0), ns = secrets.shape(0);
          {
            py::gil_scoped_release release;
            toolbox::ises_mastermind_table_cpu(g, ng, s, ns, static_cast<int>(pegs), colors, o);
          }
          return out;
        },
        py::arg("guesses"), py::arg("secrets"), py::arg("colors"),
        "Mastermind feedback table uint8 [G, S]: black * (pegs + 1) + white.");
  m.def("ises_wordle_table",
        [](py::handle guesses_obj, py::handle secrets_obj) {
          py::array guesses = codes(guesses_obj, "guesses", 26);
          py::array secrets = codes(secrets_obj, "secrets", 26);
          const int64_t length = guesses.shape(1);
          require(length >= 1 && length <= 5 && secrets.shape(1) == length,
                  "guesses and secrets need the same word length in [1, 5]");
          py::array_t<uint8_t> out({guesses.shape(0), secrets.shape(0)});
          const uint8_t *g = cptr<uint8_t>(guesses), *s = cptr<uint8_t>(secrets);
          uint8_t* o = out.mutable_data();
          const int64_t ng = guesses.shape(0), ns = secrets.shape(0);
          {
            py::gil_scoped_release release;
            toolbox::ises_wordle_table_cpu(g, ng, s, ns, static_cast<int>(length), o);
          }
          return out;
        },
        py::arg("guesses"), py::arg("secrets"), "Wordle feedback table uint8 [G, S], base-3 codes (2 = green).");
  m.def("ises_partition_scores",
        [](py::handle table_obj, py::handle cand_obj, py::handle actions_obj, int n_outcomes, py::object weights_obj) {
          py::array table = feedback_table(table_obj, n_outcomes);
          const int64_t n_actions_total = table.shape(0), n_secrets = table.shape(1);
          py::array cand = indices(cand_obj, "cand", n_secrets);
          py::array actions = indices(actions_obj, "actions", n_actions_total);
          const int64_t k = actions.shape(0), n = cand.shape(0);
          const int32_t *c = cptr<int32_t>(cand), *a = cptr<int32_t>(actions);
          const double* w = nullptr;
          if (!weights_obj.is_none()) {
            w = cptr<double>(require_array<double>(weights_obj, "weights", 1, {n_secrets}));
            double mass = 0.0;
            for (int64_t s = 0; s < n_secrets; ++s)
              require(std::isfinite(w[s]) && w[s] >= 0.0, "weights must be finite and >= 0");
            for (int64_t i = 0; i < n; ++i) mass += w[c[i]];
            require(n == 0 || mass > 0.0, "weights: the information set has zero prior mass");
          }
          const uint8_t* t = cptr<uint8_t>(table);
          py::array_t<double> gain(k);
          py::array_t<int64_t> biggest(k);
          py::array_t<int32_t> classes(k);
          double* g = gain.mutable_data();
          int64_t* b = biggest.mutable_data();
          int32_t* nc = classes.mutable_data();
          bool codes_ok;
          {
            py::gil_scoped_release release;
            codes_ok = toolbox::ises_partition_scores_cpu(t, n_secrets, c, n, w, a, k, n_outcomes, g, b, nc);
          }
          require(codes_ok, "table: an outcome code >= n_outcomes");
          return py::make_tuple(gain, biggest, classes);
        },
        py::arg("table"), py::arg("cand"), py::arg("actions"), py::arg("n_outcomes"), py::arg("weights") = py::none(),
        "(E[dH] bits, largest class, number of classes) of each action over the information set `cand`.");
  m.def("ises_filter",
        [](py::handle table_obj, py::handle cand_obj, int32_t action, int outcome) {
          py::array table = require_array<uint8_t>(table_obj, "table", 2);
          py::array cand = indices(cand_obj, "cand", table.shape(1));
          require(action >= 0 && action < table.shape(0), "action out of range");
          require(outcome >= 0 && outcome <= 255, "outcome must be a uint8 code in [0, 255]");
          const int64_t n = cand.shape(0);
          py::array_t<int32_t> out(n);
          const int64_t kept = toolbox::ises_filter_cpu(cptr<uint8_t>(table), table.shape(1), cptr<int32_t>(cand), n,
                                                        action, outcome, out.mutable_data());
          out.resize({kept});
          return out;
        },
        py::arg("table"), py::arg("cand"), py::arg("action"), py::arg("outcome"),
        "The secrets of `cand` whose feedback to `action` is `outcome`.");
  m.def("ises_sample_states",
        [](py::handle cand_obj, int64_t m_samples, uint64_t seed, uint32_t stream, uint64_t counter) {
          py::array cand = require_array<int32_t>(cand_obj, "cand", 1);
          require(cand.shape(0) > 0, "cand: the information set is empty");
          require(m_samples >= 0, "m must be >= 0");
          for (int64_t i = 0; i < cand.shape(0); ++i)
            require(cptr<int32_t>(cand)[i] >= 0, "cand: secret indices must be >= 0");
          py::array_t<int32_t> out(m_samples);
          toolbox::ises_sample_states_cpu(cptr<int32_t>(cand), cand.shape(0), m_samples, seed, stream, counter,
                                          out.mutable_data());
          return out;
        },
        py::arg("cand"), py::arg("m"), py::arg("seed"), py::arg("stream"), py::arg("counter"),
        "m secrets drawn uniformly with replacement from `cand` with Philox (seed, stream, counter).");
  m.def("ises_so_ismcts",
        [](py::handle table_obj, py::handle cand_obj, int win, py::handle secret_action_obj,
           py::handle twin_class_obj, py::object prior_obj, uint64_t seed, uint64_t stream, uint64_t counter,
           double budget_ms, int64_t iterations, double c, bool consistent, int64_t horizon, int64_t evaluations) {
          py::array table = require_array<uint8_t>(table_obj, "table", 2);
          const int64_t n_actions = table.shape(0), n_secrets = table.shape(1);
          require(n_actions > 0, "table: the game has no actions");
          py::array cand = indices(cand_obj, "cand", n_secrets);
          require(cand.shape(0) > 0, "cand: the information set is empty");
          require(win >= -1 && win <= 255, "win must be an outcome code in [0, 255], or -1 for a query game");
          require(std::isfinite(budget_ms) && budget_ms >= 0.0, "budget_ms must be finite and >= 0");
          require(iterations >= 0, "iterations must be >= 0");
          require(evaluations >= 0, "evaluations must be >= 0");
          require(budget_ms > 0.0 || iterations > 0 || evaluations > 0,
                  "so-ismcts needs a budget: budget_ms, iterations or evaluations");
          require(std::isfinite(c) && c >= 0.0, "c must be finite and >= 0");
          require(horizon >= 1, "horizon must be >= 1");
          toolbox::IsmctsGame game{cptr<uint8_t>(table), n_actions, n_secrets, win, nullptr, nullptr, nullptr};
          py::array secret_action, twin_class, prior;
          if (win >= 0) {
            require(!secret_action_obj.is_none(), "secret_action is required in a guess game (win >= 0)");
            secret_action = indices(secret_action_obj, "secret_action", n_actions);
            require(secret_action.shape(0) == n_secrets, "secret_action needs one action per secret");
            game.secret_action = cptr<int32_t>(secret_action);
          } else {
            require(!twin_class_obj.is_none(), "twin_class is required in a query game (win = -1)");
            twin_class = require_array<int64_t>(twin_class_obj, "twin_class", 1, {n_secrets});
            game.twin_class = cptr<int64_t>(twin_class);
          }
          const int32_t* cp = cptr<int32_t>(cand);
          const int64_t n_cand = cand.shape(0);
          if (!prior_obj.is_none()) {
            prior = require_array<double>(prior_obj, "prior", 1, {n_secrets});
            require(all_finite<double>(prior), "prior must be finite and >= 0");
            const double* w = cptr<double>(prior);
            double mass = 0.0;
            for (int64_t s = 0; s < n_secrets; ++s) require(w[s] >= 0.0, "prior must be finite and >= 0");
            for (int64_t i = 0; i < n_cand; ++i) mass += w[cp[i]];
            require(mass > 0.0, "prior: the information set has zero prior mass");
            game.prior = w;
          }
          const toolbox::IsmctsSettings settings{budget_ms, iterations, evaluations, c, consistent, horizon};
          const toolbox::Poll poll = signal_poll();
          toolbox::IsmctsResult r;
          {
            py::gil_scoped_release release;
            r = toolbox::ises_so_ismcts_cpu(game, cp, n_cand, seed, stream, counter, settings, poll);
          }
          const auto k = static_cast<py::ssize_t>(r.actions.size());
          py::array_t<int32_t> actions(k);
          py::array_t<int64_t> visits(k);
          py::array_t<double> reward(k);
          std::copy(r.actions.begin(), r.actions.end(), actions.mutable_data());
          std::copy(r.visits.begin(), r.visits.end(), visits.mutable_data());
          std::copy(r.reward.begin(), r.reward.end(), reward.mutable_data());
          return py::make_tuple(actions, visits, reward, r.iterations, r.evaluations, r.fallback);
        },
        py::arg("table"), py::arg("cand"), py::arg("win"), py::arg("secret_action"), py::arg("twin_class"),
        py::arg("prior"), py::arg("seed"), py::arg("stream"), py::arg("counter"), py::arg("budget_ms"),
        py::arg("iterations"), py::arg("c"), py::arg("consistent"), py::arg("horizon"), py::arg("evaluations") = 0,
        "SO-ISMCTS from information set `cand`: (root actions in expansion order, their visits, total rewards, "
        "iterations, feedback evaluations, fallback move or -1), drawing from SplitMix64(seed, stream, counter). "
        "evaluations > 0 caps the feedback evaluations: the most whole iterations that fit, at least one.");
  m.def("ises_splitmix64",
        [](uint64_t seed, uint64_t stream, uint64_t counter, py::handle bounds_obj) {
          py::array bounds = require_array<int64_t>(bounds_obj, "bounds", 1);
          const int64_t* b = cptr<int64_t>(bounds);
          for (int64_t i = 0; i < bounds.shape(0); ++i)
            require(b[i] >= 0 && b[i] <= (int64_t{1} << 53), "bounds must be in [0, 2^53]");
          toolbox::SplitMix64 gen(seed, stream, counter);
          py::array_t<double> out(bounds.shape(0));
          double* o = out.mutable_data();
          for (int64_t i = 0; i < bounds.shape(0); ++i)
            o[i] = b[i] ? static_cast<double>(gen.below(static_cast<uint64_t>(b[i]))) : gen.uniform();
          return out;
        },
        py::arg("seed"), py::arg("stream"), py::arg("counter"), py::arg("bounds"),
        "Draws of SplitMix64(seed, stream, counter) in order: below(n) for each bound n > 0, uniform() for 0.");
  py::class_<Solver>(m, "IsesOptimalSolver")
      .def(py::init([](py::handle table_obj, int n_outcomes, int win, py::handle secret_action_obj, int beam,
                       py::handle codes_obj, int colors) {
             py::array table = feedback_table(table_obj, n_outcomes);
             require(win >= 0 && win < n_outcomes, "win must be an outcome code");
             py::array sa = indices(secret_action_obj, "secret_action", table.shape(0));
             require(sa.shape(0) == table.shape(1), "secret_action needs one action per secret");
             require(beam >= 0, "beam must be >= 0 (0: exact search)");
             const uint8_t* t = cptr<uint8_t>(table);
             for (int64_t i = 0; i < table.size(); ++i)
               if (t[i] >= n_outcomes) throw py::value_error("table: outcome code >= n_outcomes");
             auto s = std::make_unique<Solver>();
             s->table = table;
             s->secret_action = sa;
             int pegs = 0;
             if (!codes_obj.is_none()) {
               require(colors >= 1 && colors <= 64, "colors must be in [1, 64]");
               s->codes = codes(codes_obj, "codes", colors);
               pegs = static_cast<int>(s->codes.shape(1));
               require(s->codes.shape(0) == table.shape(0) && table.shape(0) == table.shape(1),
                       "codes: symmetry needs one code per action and actions = secrets");
               require(pegs >= 1 && pegs <= 6 && std::pow(colors, pegs) <= (1 << 24),
                       "codes: symmetry supports at most 6 pegs and colors^pegs <= 2^24");
               const int32_t* m_sa = cptr<int32_t>(sa);
               for (int64_t i = 0; i < sa.shape(0); ++i)
                 require(m_sa[i] == i, "codes: symmetry needs secret_action to be the identity");
               const uint8_t* c = cptr<uint8_t>(s->codes);
               std::set<std::vector<uint8_t>> distinct;
               for (int64_t i = 0; i < s->codes.shape(0); ++i) distinct.emplace(c + i * pegs, c + (i + 1) * pegs);
               require(static_cast<int64_t>(distinct.size()) == s->codes.shape(0), "codes: codes must be distinct");
             }
             check_guess_game(t, table.shape(0), table.shape(1), win, cptr<int32_t>(sa));
             s->impl = std::make_unique<toolbox::IsesOptimalSolver>(
                 t, table.shape(0), table.shape(1), n_outcomes, win, cptr<int32_t>(sa), beam,
                 pegs ? cptr<uint8_t>(s->codes) : nullptr, pegs, colors);
             return s;
           }),
           py::arg("table"), py::arg("n_outcomes"), py::arg("win"), py::arg("secret_action"), py::arg("beam") = 0,
           py::arg("codes") = py::none(), py::arg("colors") = 0,
           "Exact solver; `codes` [actions, pegs] over `colors` enables the position/colour symmetry reduction.")
      .def("solve",
           [](Solver& s, py::handle cand_obj, int32_t first_action, py::handle history_obj) {
             py::array cand = sorted_set(cand_obj, s.table.shape(1));
             require(first_action >= -1 && first_action < s.table.shape(0), "first_action out of range [-1, actions)");
             const int32_t* c = cptr<int32_t>(cand);
             const int64_t n = cand.shape(0);
             const auto h = optional_history(history_obj, s.table.shape(0));
             const toolbox::Poll poll = signal_poll();
             int64_t total;
             {
               py::gil_scoped_release release;
               total = s.impl->solve(c, n, first_action, h ? cptr<int32_t>(*h) : nullptr, h ? h->shape(0) : 0, poll);
             }
             require(total < std::numeric_limits<int64_t>::max() / 4, "no strategy identifies every secret of cand");
             return total;
           },
           py::arg("cand"), py::arg("first_action") = -1, py::arg("history") = py::none(),
           "Minimal total number of guesses over the secrets of `cand` (first guess fixed when >= 0); `history`, "
           "the actions played to reach `cand`, enables the symmetry reduction.")
      .def("best_action",
           [](Solver& s, py::handle cand_obj, py::handle history_obj) {
             py::array cand = sorted_set(cand_obj, s.table.shape(1));
             const int32_t* c = cptr<int32_t>(cand);
             const int64_t n = cand.shape(0);
             const auto h = optional_history(history_obj, s.table.shape(0));
             const toolbox::Poll poll = signal_poll();
             py::gil_scoped_release release;
             return s.impl->best_action(c, n, h ? cptr<int32_t>(*h) : nullptr, h ? h->shape(0) : 0, poll);
           },
           py::arg("cand"), py::arg("history") = py::none())
      .def_property_readonly("nodes", [](const Solver& s) { return s.impl->nodes(); })
      .def_property_readonly("memo_size", [](const Solver& s) { return s.impl->memo_size(); });
}
