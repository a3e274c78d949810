"""`toolbox shape-reward solve`: exact hard and soft values against closed forms, the discounted / finite-horizon
link, the temperature limits, the second-law ledger, MDP files (round trip, every bad-file case) and the CLI."""
from __future__ import annotations

import csv
import json
from itertools import product

import numpy as np
import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.core.errors import UserInputError
from toolbox.shaping.mdp import (TabularMDP, deepsea_soft_value_closed_form, discounted_policy_evaluation,
                                 greedy_policy, policy_evaluation)
from toolbox.shaping.solve import Problem, solve

runner = CliRunner()

# Two states, shore (0) and island (1); action 0 stays, action 1 swims across at cost C; staying on the island pays B.
B, C = 0.3, 0.7
NEXT = np.array([[0, 1], [1, 0]])  # next state of (s, a)
P2 = np.eye(2)[NEXT]  # [S, A, S], deterministic
R2 = np.array([[0.0, -C], [B, B - C]])


def island(horizon: int = 6, gamma: float = 1.0) -> TabularMDP:
    return TabularMDP("island", P2.copy(), R2.copy(), horizon, np.array([1.0, 0.0]), gamma=gamma).validate()


def soft_closed_form(T: float, H: int, prior: float = 0.5) -> np.ndarray:
    """exp(V_0(s)/T) = sum over the A^H action sequences of prod pi0 exp(r/T): the transfer matrix
    M[s, s'] = sum_a pi0 e^{r(s,a)/T} [s' = next(s, a)] raised to the H-th power (deterministic MDP)."""
    M = np.zeros((2, 2))
    for s, a in product(range(2), range(2)):
        M[s, NEXT[s, a]] += prior * np.exp(R2[s, a] / T)
    return T * np.log(np.linalg.matrix_power(M, H) @ np.ones(2))


def values(mdp: TabularMDP, temperatures, reference: str = "uniform") -> dict:
    """`solve` on the island MDP; reference uniform (pi0 = 1/2) or counting (pi0 = 1, ledger on the uniform policy)."""
    return solve(Problem(mdp, np.full((2, 2), 0.5) if reference == "uniform" else None), list(temperatures))


def first(V, mdp):
    return V if mdp.discounted else V[0]


def test_hard_values_closed_form_finite_and_discounted():
    # finite H: swim once (-C) then collect B for the H-1 remaining steps, or stay ashore (0)
    for H in (1, 2, 3, 6):
        out = values(island(H), [1.0])
        assert first(out["hard"]["V"], island(H)) == pytest.approx([max(0.0, -C + (H - 1) * B), H * B], abs=1e-12)
    # discounted: V*(1) = B / (1 - gamma), V*(0) = max(0, -C + gamma V*(1)); the switch is at gamma = C / (B + C)
    for gamma in (0.5, 0.68, 0.72, 0.95):
        out = values(island(0, gamma), [1.0])
        v1 = B / (1 - gamma)
        assert out["hard"]["V"] == pytest.approx([max(0.0, -C + gamma * v1), v1], abs=1e-8)
        swim = -C + gamma * v1 > 0
        assert out["hard"]["policy"][0].tolist() == ([0.0, 1.0] if swim else [1.0, 0.0])


@pytest.mark.parametrize("T", [0.05, 0.4, 3.0])
@pytest.mark.parametrize("reference", ["uniform", "counting"])
def test_soft_value_is_the_path_partition_function(T, reference):
    mdp = island(7)
    out = values(mdp, [T], reference)
    expected = soft_closed_form(T, 7, prior=0.5 if reference == "uniform" else 1.0)
    assert out["soft"][0]["V"][0] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # and every step h solves the horizon H - h problem
    assert out["soft"][0]["V"][3] == pytest.approx(soft_closed_form(T, 4, 0.5 if reference == "uniform" else 1.0))


def test_temperature_limits_and_ordering():
    """V^pi0 <= V_T <= V* (uniform pi0), V_T decreasing in T, -> V* as T -> 0 (within T H log A), -> V^pi0 as
    T -> inf (the O(1/T) variance term)."""
    mdp = island(6)
    Ts = [1e-4, 0.01, 0.1, 1.0, 10.0, 1e4]
    out = values(mdp, Ts)
    v_star = out["hard"]["V"][0, 0]
    uniform = np.full((6, 2, 2), 0.5)
    v_ref = policy_evaluation(mdp.R, mdp.P, uniform)[0, 0]
    v_T = np.array([r["V"][0, 0] for r in out["soft"]])
    assert np.all(np.diff(v_T) < 0) and np.all(v_T <= v_star + 1e-12) and np.all(v_T >= v_ref - 1e-12)
    assert 0 < v_star - v_T[0] <= 1e-4 * 6 * np.log(2) + 1e-12
    assert abs(v_T[-1] - v_ref) < 1e-3 and abs(v_T[-2] - v_ref) > abs(v_T[-1] - v_ref) * 100
    # the Boltzmann policy goes from the greedy one to the reference
    assert out["soft"][0]["policy"][0] == pytest.approx(greedy_policy(out["hard"]["Q"])[0], abs=1e-6)
    assert out["soft"][-1]["policy"] == pytest.approx(uniform, abs=1e-3)


def test_ledger_second_law():
    """W(pi_T) = F exactly; the hard optimum and the reference pay a positive gap; work = cost + T KL, and the
    reference policy pays no KL."""
    for mdp in (island(6), island(0, 0.8)):
        for r in values(mdp, [0.2, 2.0])["soft"]:
            led = r["ledger"]
            F = -first(r["V"], mdp) @ mdp.start
            assert led["boltzmann"]["free_energy"] == pytest.approx(F, abs=1e-12)
            assert led["boltzmann"]["gap"] == pytest.approx(0.0, abs=1e-9)
            assert led["optimal"]["gap"] > 1e-6 and led["reference"]["gap"] > 1e-6
            assert led["reference"]["kl_cost"] == pytest.approx(0.0, abs=1e-12)
            for entry in led.values():
                assert entry["work"] == pytest.approx(entry["expected_cost"] + entry["kl_cost"], abs=1e-12)


def test_long_horizon_approaches_the_discounted_value():
    """Finite horizon H with discount gamma: |V_H - V_inf| <= gamma^H max|V_inf|, hard and soft."""
    gamma = 0.9
    inf = values(island(0, gamma), [0.5])
    for H in (10, 50, 200):
        fin = values(island(H, gamma), [0.5])
        bound = gamma ** H * np.abs(inf["hard"]["V"]).max() + 1e-8
        assert np.abs(fin["hard"]["V"][0] - inf["hard"]["V"]).max() <= bound
        assert np.abs(fin["soft"][0]["V"][0] - inf["soft"][0]["V"]).max() <= gamma ** H * 10 + 1e-8
    assert fin["soft"][0]["V"][0] == pytest.approx(inf["soft"][0]["V"], abs=1e-8)


def test_discounted_soft_fixed_point_and_exact_policy_evaluation():
    mdp, T, gamma = island(0, 0.85), 0.3, 0.85
    out = values(mdp, [T])
    V = out["soft"][0]["V"]
    backup = T * np.log((0.5 * np.exp((R2 + gamma * P2 @ V) / T)).sum(-1))
    assert V == pytest.approx(backup, abs=1e-9)
    # the linear solve equals 2,000 steps of the finite-horizon evaluation
    pi = out["soft"][0]["policy"]
    exact = discounted_policy_evaluation(mdp.R, mdp.P, pi, gamma, T, np.full((2, 2), 0.5))
    long = policy_evaluation(mdp.R, mdp.P, np.broadcast_to(pi, (2000, 2, 2)), T, np.full((2, 2), 0.5), gamma)[0]
    assert exact == pytest.approx(long, abs=1e-10)
    assert exact == pytest.approx(V, abs=1e-8)  # W(pi_T) = F: the Boltzmann policy attains the soft value


def test_infinite_horizon_needs_a_discount():
    with pytest.raises(UserInputError, match="gamma"):
        island(0, 1.0)


# ------------------------------------------------------------------------------------------------------ CLI
def _write(path, fmt: str, data: dict) -> None:
    if fmt == "json":
        path.write_text(json.dumps(data))
    elif fmt == "toml":
        import tomli_w

        path.write_text(tomli_w.dumps(data))
    else:
        np.savez(path, **{k: np.asarray(v) for k, v in data.items()})


def _invoke(tmp_path, monkeypatch, *args):
    monkeypatch.chdir(tmp_path)
    return runner.invoke(app, ["shape-reward", "solve", *args])


ISLAND = {"P": P2.tolist(), "R": R2.tolist(), "horizon": 7}


@pytest.mark.parametrize("fmt", ["json", "toml", "npz"])
def test_file_round_trip(tmp_path, monkeypatch, fmt):
    path = tmp_path / f"island.{fmt}"
    _write(path, fmt, {**ISLAND, "pi0": [0.25, 0.75]})
    out = tmp_path / "run"
    result = _invoke(tmp_path, monkeypatch, "--mdp", str(path), "--temperature", "0.4", "--temperature", "2",
                     "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # exactly one JSON document
    assert doc["model"] == {**doc["model"], "states": 2, "actions": 2, "horizon": 7, "gamma": 1.0,
                            "discounted": False}
    assert doc["v_star"] == pytest.approx(-C + 6 * B)
    M_pi0 = [0.25, 0.75]
    for r, T in zip(doc["soft"], (0.4, 2.0)):
        M = np.zeros((2, 2))
        for s, a in product(range(2), range(2)):
            M[s, NEXT[s, a]] += M_pi0[a] * np.exp(R2[s, a] / T)
        assert r["V"] == pytest.approx(T * np.log(np.linalg.matrix_power(M, 7) @ np.ones(2)), rel=1e-12)
        assert r["ledger"]["boltzmann"]["gap"] == pytest.approx(0, abs=1e-9)
    with open(out / "values.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 7 * 2 and set(rows[0]) == {"solution", "temperature", "step", "state", "V", "Q_0", "Q_1"}
    with open(out / "policy.csv") as fh:
        pol = list(csv.DictReader(fh))
    assert all(abs(float(p["policy_0"]) + float(p["policy_1"]) - 1) < 1e-12 for p in pol)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["v_star"] == doc["v_star"]
    assert (out / "values.png").stat().st_size > 0 and (out / "ledger.csv").stat().st_size > 0


def test_reward_per_transition_is_averaged_under_P(tmp_path, monkeypatch):
    P = np.array([[[0.3, 0.7], [1.0, 0.0]], [[0.5, 0.5], [0.1, 0.9]]])
    R3 = np.arange(8.0).reshape(2, 2, 2)
    path = tmp_path / "m.json"
    _write(path, "json", {"P": P.tolist(), "R": R3.tolist(), "gamma": 0.5})
    result = _invoke(tmp_path, monkeypatch, "--mdp", str(path), "--out", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model"]["discounted"] and doc["model"]["horizon"] is None  # no horizon + gamma < 1: infinite
    R = (P * R3).sum(-1)
    assert doc["hard"]["Q"] == pytest.approx(R + 0.5 * P @ np.array(doc["hard"]["V"]), abs=1e-9)


BAD = {
    "row not stochastic": ({**ISLAND, "P": [[[0.5, 0.4], [0, 1]], [[0, 1], [1, 0]]]}, "P[0, 0, :] sums to 0.9"),
    "P not square": ({**ISLAND, "P": [[[1, 0, 0], [0, 1, 0]], [[0, 1, 0], [1, 0, 0]]]}, "P must be [S, A, S]"),
    "R wrong shape": ({**ISLAND, "R": [[0, 1, 2], [1, 1, 1]]}, "R must be [S, A] = [2, 2] or [S, A, S]"),
    "NaN reward": ({**ISLAND, "R": [[0, float("nan")], [1, 1]]}, "R has a non-finite entry (NaN or inf) at [0, 1]"),
    "negative probability": ({**ISLAND, "P": [[[1.5, -0.5], [0, 1]], [[0, 1], [1, 0]]]}, "must be >= 0"),
    "ragged": ({**ISLAND, "R": [[0, 1], [1]]}, "R must be a rectangular array of numbers"),
    "missing R": ({"P": ISLAND["P"], "horizon": 3}, "missing R"),
    "typo key": ({**ISLAND, "gama": 0.9}, "unknown key(s) gama"),
    "start off": ({**ISLAND, "start": [0.5, 0.6]}, "start[:] sums to 1.1"),
    "pi0 zero": ({**ISLAND, "pi0": [1.0, 0.0]}, "pi0[1] = 0 must be > 0"),
    "horizon 0": ({**ISLAND, "horizon": 0}, "horizon must be >= 1"),
    "fractional horizon": ({**ISLAND, "horizon": 2.5}, "horizon must be a single integer"),
    "gamma > 1": ({**ISLAND, "gamma": 1.5}, "gamma must be in [0, 1]"),
    "neither horizon nor gamma": ({"P": ISLAND["P"], "R": ISLAND["R"]}, "no horizon and no discount"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_file_is_one_line_exit_2_and_no_run_folder(tmp_path, monkeypatch, case):
    data, needle = BAD[case]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))  # json writes NaN as the literal NaN, which Python's reader accepts
    result = _invoke(tmp_path, monkeypatch, "--mdp", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name, content, needle", [
    ("m.json", "{not json", "not a readable JSON file"),
    ("m.npz", "not a zip", "not a readable NPZ file"),
    ("m.csv", "1,2", "unknown MDP file type .csv"),
    ("m.toml", "P = [[[1.0]]]\nR = [[0.0]]\nhorizon = 2\n[extra]\n", "unknown key(s) extra"),
    ("absent.json", None, "MDP file not found"),
])
def test_unreadable_files(tmp_path, monkeypatch, name, content, needle):
    if content is not None:
        (tmp_path / name).write_text(content)
    result = _invoke(tmp_path, monkeypatch, "--mdp", str(tmp_path / name))
    assert result.exit_code == 2 and needle in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, needle", [
    (["--env", "riverswim", "--mdp", "x.json"], "give --env or --mdp, not both"),
    (["--horizon", "0"], "no horizon and no discount"),
    (["--gamma", "0.99999"], "value-iteration sweeps"),
    (["--temperature", "0"], "temperatures.0: input should be greater than 0"),
    (["--reference", "0.5,0.6"], "need 2 probabilities > 0 that sum to 1"),
    (["--reference", "file"], "the MDP has no pi0"),
    (["--env", "lake"], "unknown environment"),
    (["--set", "horizon=-1"], "horizon: input should be greater than or equal to 0"),
    (["--set", "bogus=1"], "unknown setting bogus"),
])
def test_bad_settings(tmp_path, monkeypatch, args, needle):
    result = _invoke(tmp_path, monkeypatch, *args)
    assert result.exit_code == 2 and needle in result.output, result.output
    assert not (tmp_path / "runs").exists()


def test_builtin_deepsea_against_its_closed_form(tmp_path, monkeypatch):
    """Soft VI on DeepSea-7 (counting measure) at T = 0.3 through the CLI equals the path-sum closed form."""
    result = _invoke(tmp_path, monkeypatch, "--env", "deepsea-7", "--reference", "counting", "--temperature", "0.3",
                     "--seed", "3", "--json", "--track", "none")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["soft"][0]["v0"] == pytest.approx(deepsea_soft_value_closed_form(7, 0.3), abs=1e-10)
    assert doc["v_star"] == pytest.approx(1 - 0.01) and set(doc["soft"][0]["ledger"]) == {"boltzmann", "optimal",
                                                                                           "uniform"}
    assert (tmp_path / "runs").is_dir()


def test_builtin_discounted_matches_long_horizon(tmp_path, monkeypatch):
    docs = []
    for extra in (["--horizon", "0"], ["--horizon", "400"]):
        result = _invoke(tmp_path, monkeypatch, "--env", "chain-5", "--gamma", "0.9", *extra, "--json",
                         "--out", str(tmp_path / extra[1]))
        assert result.exit_code == 0, result.output
        docs.append(json.loads(result.stdout))
    inf, fin = docs
    assert inf["model"]["discounted"] and not fin["model"]["discounted"]
    assert fin["hard"]["V"] == pytest.approx(inf["hard"]["V"], abs=1e-8)
    assert fin["soft"][0]["V"] == pytest.approx(inf["soft"][0]["V"], abs=1e-8)


def test_old_benchmark_form_still_runs_and_help_lists_both(tmp_path):
    args = ["--env", "chain-4", "--agent", "psrl", "--episodes", "5", "--seeds", "1", "--no-deepsea",
            "--backend", "serial", "--json", "--track", "none"]
    old = runner.invoke(app, ["shape-reward", *args, "--out", str(tmp_path / "old")])
    new = runner.invoke(app, ["shape-reward", "run", *args, "--out", str(tmp_path / "new")])
    assert old.exit_code == 0 and new.exit_code == 0, old.output + new.output
    assert json.loads(old.stdout)["regret"] == json.loads(new.stdout)["regret"]
    help_text = runner.invoke(app, ["shape-reward", "--help"]).output
    assert "solve" in help_text and "run" in help_text and "--agent" in help_text
    assert "shape-reward" in runner.invoke(app, ["--help"]).output
