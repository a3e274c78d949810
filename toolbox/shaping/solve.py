"""`toolbox shape-reward solve`: the exact hard and soft solutions of a known MDP (a built-in or a file).

Hard: V*, Q* and the optimal policy. Soft, at each temperature T with reference pi0 (notes §A2.1):
    Q_T = r + gamma P V_T,   V_T(s) = T log sum_a pi0(a|s) exp(Q_T(s,a)/T),   pi_T = pi0 exp((Q_T - V_T)/T),
and the ledger F = -V_T(s0) <= W[pi] = E_pi[sum c] + T sum E_pi KL(pi || pi0) for pi_T (equality), the hard
optimum pi* and the reference policy. Backward induction for a finite horizon, value iteration for an infinite
discounted one (`native.optimal_values`); policies evaluated exactly (`mdp.second_law`).
"""
from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path
from typing import Annotated, Callable

import numpy as np
from pydantic import Field

from toolbox.core.config import Count, Fraction, PosFloat
from toolbox.core.errors import UserInputError
from toolbox.core.guards import check_memory
from toolbox.core.io import atomic_write_text, save_figure, write_csv, write_json
from toolbox.shaping import native
from toolbox.shaping.dirichlet import policy_entropy
from toolbox.shaping.envs import env_size, make_env
from toolbox.shaping.mdp import TabularMDP, boltzmann_policy, greedy_policy, second_law, start_value
from toolbox.shaping.mdp_file import ROW_TOL, load_mdp

VI_TOL, VI_MAX_ITER = 1e-10, 100_000  # mdp.value_iteration's stopping rule (sup-norm change) and sweep cap


@dataclasses.dataclass
class SolveConfig:
    env: str = "riverswim"  # built-in MDP (the benchmark's names), used when no MDP file is given
    mdp: str = ""  # MDP file: .json / .toml / .npz (docs/shape-reward.md)
    horizon: Count | None = None  # None: the model's own; 0: infinite horizon (needs gamma < 1)
    gamma: Fraction | None = None  # None: the file's, else 1
    temperatures: Annotated[list[PosFloat], Field(min_length=1)] = dataclasses.field(
        default_factory=lambda: [0.1, 1.0])
    reference: str = "auto"  # auto (the file's pi0, else uniform) | uniform | counting | file | p_1,...,p_A


@dataclasses.dataclass
class Problem:
    """The MDP to solve and its reference measure pi0: prior [S, A], or None for the counting measure pi0 = 1."""

    mdp: TabularMDP
    prior: np.ndarray | None

    @property
    def reference(self) -> str:
        """The ledger's name for the policy compared with pi_T and pi*: pi0 itself, or under the counting measure
        (not a policy) the uniform policy."""
        return "reference" if self.prior is not None else "uniform"

    @property
    def reference_policy(self) -> np.ndarray:
        """That policy, time-indexed [H, S, A] for a finite horizon, stationary [S, A] for an infinite one."""
        S, A = self.mdp.n_states, self.mdp.n_actions
        policy = self.prior if self.prior is not None else np.full((S, A), 1.0 / A)
        return policy if self.mdp.discounted else np.broadcast_to(policy, (self.mdp.horizon, S, A))


def build(cfg: SolveConfig, seed: int = 0) -> Problem:
    """The model, its horizon and discount and the reference measure from the settings; every check (file
    contents, settings, memory, value-iteration sweeps) runs here, before a run folder exists."""
    if cfg.mdp:
        model, pi0 = load_mdp(cfg.mdp)
    else:
        S, A, H = env_size(cfg.env)
        check_memory(_memory(S, A, cfg.horizon or H, len(cfg.temperatures)), f"solving {cfg.env}")
        model, pi0 = make_env(cfg.env, seed), None
    gamma = model.gamma if cfg.gamma is None else cfg.gamma
    # a built-in's episode length is its horizon unless a discount alone is asked for: then the infinite horizon
    horizon = cfg.horizon if cfg.horizon is not None else (model.horizon if cfg.mdp or gamma == 1 else 0)
    if horizon == 0 and gamma == 1:
        raise UserInputError(f"{model.name}: no horizon and no discount; give a horizon (--horizon H) or a "
                             "discount gamma < 1 (--gamma) for an infinite horizon")
    model = dataclasses.replace(model, horizon=horizon, gamma=gamma).validate()
    S, A = model.n_states, model.n_actions
    check_memory(_memory(S, A, horizon, len(cfg.temperatures)), f"solving {model.name}",
                 "use a shorter horizon or fewer temperatures")
    if model.discounted:
        scale = max(float(np.abs(model.R).max()), max(cfg.temperatures) * math.log(A), VI_TOL)
        sweeps = math.log(VI_TOL / scale) / math.log(gamma) if gamma > 0 else 1
        if sweeps > VI_MAX_ITER:
            raise UserInputError(f"gamma = {gamma:g} needs about {sweeps:.3g} value-iteration sweeps (more than "
                                 f"{VI_MAX_ITER}); use a smaller gamma or a finite horizon")
    return Problem(model, _reference(cfg.reference, pi0, S, A))


def _reference(spec: str, pi0: np.ndarray | None, S: int, A: int) -> np.ndarray | None:
    """pi0 [S, A] from the `reference` setting (None: the counting measure)."""
    spec = spec.strip()
    if spec == "auto":
        spec = "file" if pi0 is not None else "uniform"
    if spec == "file":
        if pi0 is None:
            raise UserInputError("reference = file, but the MDP has no pi0 (only an MDP file can give one)")
        return pi0
    if spec == "uniform":
        return np.full((S, A), 1.0 / A)
    if spec == "counting":
        return None
    try:
        p = np.array([float(x) for x in spec.split(",")])
    except ValueError:
        raise UserInputError(f"reference {spec!r}: use auto, uniform, counting, file or {A} probabilities "
                             "p_1,...,p_A") from None
    if p.shape != (A,) or not np.isfinite(p).all() or (p <= 0).any() or abs(p.sum() - 1) > ROW_TOL:
        raise UserInputError(f"reference {spec!r}: need {A} probabilities > 0 that sum to 1 (one per action)")
    return np.broadcast_to(p, (S, A)).copy()


def _memory(S: int, A: int, H: int, temperatures: int) -> float:
    """Peak bytes: the model and the linear solve [S, A, S] / [S, S], Q, V and the policies per solution, and the
    value / policy tables (one row per step and state, about 100 bytes a cell)."""
    solutions, steps = temperatures + 1, max(H, 1)
    return 8 * (3 * S * A * S + 3 * S * S + 4 * solutions * steps * S * A) + 200 * solutions * steps * S * (A + 5)


def _first(x: np.ndarray, model: TabularMDP) -> np.ndarray:
    """The first step of a time-indexed array (a stationary one is its own first step)."""
    return x if model.discounted else x[0]


def solve(problem: Problem, temperatures: list[float]) -> dict:
    """Q, V and policy of the hard problem and of each temperature, and the ledger of each temperature."""
    model, prior = problem.mdp, problem.prior
    Q, V = native.optimal_values(model)
    optimal = greedy_policy(Q)  # ties split evenly
    out = {"hard": {"Q": Q, "V": V, "policy": optimal}, "soft": []}
    for T in temperatures:
        Q_T, V_T = native.optimal_values(model, T, prior)
        pi_T = boltzmann_policy(Q_T, T, prior)
        free_energy = -float(_first(V_T, model) @ model.start)
        ledger = {name: second_law(model, policy, T, prior, free_energy)
                  for name, policy in (("boltzmann", pi_T), ("optimal", optimal),
                                       (problem.reference, problem.reference_policy))}
        out["soft"].append({"temperature": T, "Q": Q_T, "V": V_T, "policy": pi_T, "ledger": ledger})
    return out


def run(cfg: SolveConfig, problem: Problem, out: Path, log: Callable[[str], None] = print) -> dict:
    """Solve, then write values.csv, policy.csv, ledger.csv, values.png and summary.json into `out`."""
    model = problem.mdp
    result = solve(problem, cfg.temperatures)
    hard, soft = result["hard"], result["soft"]
    s0 = model.start
    solutions = [("hard", 0.0, hard), *(("soft", r["temperature"], r) for r in soft)]
    _table(out / "values.csv", model, solutions, "V", "Q")
    _table(out / "policy.csv", model, solutions, None, "policy")
    ledger_rows = [{"temperature": r["temperature"], "policy": name, **entry}
                   for r in soft for name, entry in r["ledger"].items()]
    write_csv(out / "ledger.csv", ledger_rows)
    _plot(model, solutions, out / "values.png")
    Q0 = _first(hard["Q"], model)
    summary = {
        "v_star": float(_first(hard["V"], model) @ s0),
        "reference_value": float(start_value(model, problem.reference_policy) @ s0),
        "model": {"name": model.name, "source": cfg.mdp or "built-in", "states": model.n_states,
                  "actions": model.n_actions, "horizon": model.horizon or None, "gamma": model.gamma,
                  "discounted": model.discounted, "reference": cfg.reference,
                  "reference_policy": problem.reference},
        "hard": {"V": _first(hard["V"], model), "Q": Q0,
                 "optimal_actions": [np.flatnonzero(row).tolist() for row in _first(hard["policy"], model) > 0]},
        "soft": [{"temperature": r["temperature"], "v0": float(_first(r["V"], model) @ s0),
                  "free_energy": r["ledger"]["boltzmann"]["free_energy"],
                  "V": _first(r["V"], model), "policy": _first(r["policy"], model),
                  "policy_entropy": policy_entropy(_first(r["policy"], model)), "ledger": r["ledger"]}
                 for r in soft],
        "config": dataclasses.asdict(cfg),
    }
    write_json(out / "summary.json", summary)
    log(f"{model.name}: S={model.n_states}, A={model.n_actions}, "
        + (f"infinite horizon, gamma={model.gamma:g}" if model.discounted else
           f"horizon {model.horizon}, gamma={model.gamma:g}") + f"; V*(s0) = {summary['v_star']:.6g}")
    return summary


def _table(path: Path, model: TabularMDP, solutions: list, value_key: str | None, table_key: str) -> None:
    """CSV with one row per (solution, step, state): the value (if value_key) and the per-action table_key columns
    (numpy formatting: write_csv's per-cell conversion takes minutes on 10^5 rows)."""
    S, A = model.n_states, model.n_actions
    index = ["state"] if model.discounted else ["step", "state"]
    header = ["solution", "temperature", *index, *([value_key] if value_key else []),
              *(f"{table_key}_{a}" for a in range(A))]
    buf = io.StringIO()
    buf.write(",".join(header) + "\n")
    for kind, T, r in solutions:
        table = r[table_key].reshape(-1, S, A)
        H = table.shape[0]
        columns = [np.repeat(np.arange(H), S), np.tile(np.arange(S), H)][-len(index):]
        if value_key:
            columns.append(r[value_key].reshape(-1, S)[:H].ravel())  # V_H = 0 is left out
        block = np.column_stack([*columns, table.reshape(H * S, A)])
        fmt = f"{kind},{T!r}," + ",".join(["%d"] * len(index) + ["%.17g"] * (block.shape[1] - len(index)))
        np.savetxt(buf, block, fmt=fmt)
    atomic_write_text(path, buf.getvalue())


def _plot(model: TabularMDP, solutions: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    states = np.arange(model.n_states)
    for kind, T, r in solutions:
        label = "hard (T = 0)" if kind == "hard" else f"soft T = {T:g}"
        left.plot(states, _first(r["V"], model), marker="o", ms=3, label=label)
        right.plot(states, policy_entropy(_first(r["policy"], model)), marker="o", ms=3, label=label)
    first = "" if model.discounted else " at step 0"
    left.set(xlabel="state", ylabel="V(s)", title=f"{model.name}: optimal values{first}")
    right.set(xlabel="state", ylabel="H(pi(.|s)) [nats]", title=f"policy entropy{first}")
    left.legend(fontsize=8)
    save_figure(fig, path)
