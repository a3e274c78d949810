"""The analytic identities of the notes (§7.1-7.3, 7.5), recomputed by the library on every run.

Each row: what is checked, the computed value, the reference from the notes (or a closed form) and the error.
"""
from __future__ import annotations

import numpy as np

from toolbox.core.rng import numpy_generator
from toolbox.shaping import native
from toolbox.shaping.agents import certainty_equivalent
from toolbox.shaping.dirichlet import entropy_split
from toolbox.shaping.envs import deepsea
from toolbox.shaping.mdp import boltzmann_policy, deepsea_soft_value_closed_form, second_law, single_state_mdp

# Reference values of the notes (rewards.md §7); tolerances are those of the notes or their printed precision.
DEEPSEA_SOFT = [(10, 1.0, 6.9281413017), (10, 0.1, 0.9947678887), (5, 1.0, 3.5127883549)]
SECOND_LAW = {"costs": (1.0, 0.0, 2.0), "temperature": 0.5, "free_energy": 0.477840,
              "policy": (0.117310, 0.866813, 0.015876), "uniform_work": 1.0,
              "greedy_work": 0.549306}
DIRICHLET = {(1, 1): (0.693147, 0.5, 0.193147), (1, 1, 1): (1.098612, 0.833333, 0.265279)}
GVI = {"values": (0.2, 0.9), "weights": (0.5, 0.5),
       "betas": {-50.0: 0.2139, -1.0: 0.4900, 0.0: 0.5500, 1.0: 0.6100, 50.0: 0.8861}}


def _row(check: str, value: float, reference: float, tol: float) -> dict:
    err = abs(value - reference)
    return {"check": check, "value": value, "reference": reference, "abs_err": err, "tol": tol, "ok": err <= tol}


def analytic_checks(random_policies: int = 1000, seed: int = 0) -> list[dict]:
    rows = []
    for N, T, ref in DEEPSEA_SOFT:  # §7.1: soft VI on deterministic DeepSea (pi0 = 1) against the closed form
        env = deepsea(N, randomize_actions=True, mapping_seed=seed)
        v0 = float(native.backward_induction(env.R, env.P, N, T)[1][0] @ env.start)
        rows.append(_row(f"DeepSea N={N} T={T}: soft V0 (kernel)", v0, ref, 1e-8))
        rows.append(_row(f"DeepSea N={N} T={T}: closed form", deepsea_soft_value_closed_form(N, T), ref, 1e-8))
    bandit = single_state_mdp([-1.0, 0.0])
    v_bandit = float(native.backward_induction(bandit.R, bandit.P, 1, 1.0)[1][0, 0])
    rows.append(_row("bandit r=(1,0) T=1: log(1+e)", v_bandit, float(np.log1p(np.e)), 1e-10))

    # §7.2: the second law on one state
    sl = SECOND_LAW
    one = single_state_mdp(sl["costs"])
    prior = np.full(3, 1 / 3)
    Q, V = native.backward_induction(one.R, one.P, 1, sl["temperature"], prior)
    pi_star = boltzmann_policy(Q, sl["temperature"], prior)
    rows.append(_row("second law: F*", -float(V[0, 0]), sl["free_energy"], 1e-6))
    for a, ref in enumerate(sl["policy"]):
        rows.append(_row(f"second law: pi*({a})", float(pi_star[0, 0, a]), ref, 1e-6))
    at_optimum = second_law(one, pi_star, sl["temperature"], prior)
    rows.append(_row("second law: W(pi*) - F*", at_optimum["gap"], 0.0, 1e-12))
    uniform = second_law(one, np.full((1, 1, 3), 1 / 3), sl["temperature"], prior)
    rows.append(_row("second law: W(uniform)", uniform["work"], sl["uniform_work"], 1e-12))
    greedy = second_law(one, np.array([[[0.0, 1.0, 0.0]]]), sl["temperature"], prior)
    rows.append(_row("second law: W(greedy) = T log 3", greedy["work"], sl["greedy_work"], 1e-6))
    policies = numpy_generator(seed, 3).dirichlet(np.ones(3), random_policies)
    min_gap = min(second_law(one, p[None, None, :], sl["temperature"], prior)["gap"] for p in policies)
    rows.append({**_row(f"second law: min W - F* over {random_policies} random policies", min_gap, 0.0, 0.0),
                 "ok": min_gap >= -1e-12})

    for alpha, refs in DIRICHLET.items():  # §7.3: the Dirichlet entropy split
        split = entropy_split(alpha)
        for key, ref in zip(("predictive", "aleatoric", "epistemic"), refs):
            rows.append(_row(f"Dir{alpha}: {key}", float(split[key]), ref, 1e-6))

    values, weights = np.array(GVI["values"]), np.array(GVI["weights"])  # §7.5: generalised VI limits
    for beta, ref in GVI["betas"].items():
        rows.append(_row(f"GVI certainty equivalent beta={beta:g}", float(certainty_equivalent(values, beta, weights)),
                         ref, 5e-5))
    grid = np.linspace(-50, 50, 201)
    ce = np.array([certainty_equivalent(values, b, weights) for b in grid])
    rows.append({**_row("GVI: certainty equivalent non-decreasing in beta (min step)", float(np.diff(ce).min()),
                        0.0, 0.0), "ok": bool(np.diff(ce).min() >= -1e-12)})
    return rows
