"""shape-reward agents: valid policies, learning signals, the regret ordering and the DeepSea score."""
from __future__ import annotations

import numpy as np
import pytest

from toolbox.core.errors import UserInputError
from toolbox.core.executor import map_tasks
from toolbox.shaping.agents import AGENTS, ThermoExplorer, make_agent, parse_agent
from toolbox.shaping.experiment import Task, deepsea_episodes, deepsea_solution, mean_ci, run_task


@pytest.mark.parametrize("spec", [*AGENTS, "thermo:beta=1,samples=4", "thermo:beta=-1,samples=4",
                                  "ucbvi:simplified=1"])
def test_agents_hand_out_valid_policies(spec):
    result = run_task(Task("riverswim", spec, 0, 15))
    assert result["regret"].shape == (15,)
    assert (result["regret"] >= -1e-9).all() and (result["regret"] <= result["v_star"] + 1e-9).all()
    assert (result["second_law_gap"] >= -1e-9).all()  # the second law holds for every agent's policy
    assert np.all(np.diff(result["epistemic_total"]) <= 1e-9)  # more data never adds epistemic entropy


def test_parse_agent_and_bad_specs():
    assert parse_agent("thermo:beta=1,eta=0.5") == ("thermo", {"beta": 1.0, "eta": 0.5})
    for bad in ("nope", "thermo:beta", "thermo:beta=x", "thermo:gamma=1"):
        with pytest.raises(UserInputError):
            make_agent(bad, 3, 2, 4, 10, np.random.default_rng(0))


def test_information_bonus_is_the_shaping_term():
    rng = np.random.default_rng(0)
    plain = ThermoExplorer(4, 2, 5, 10, rng, eta=0.0)
    shaped = ThermoExplorer(4, 2, 5, 10, rng, eta=0.5)
    for agent in (plain, shaped):
        agent.observe({"states": np.array([0, 0, 0]), "actions": np.array([0, 0, 0]),
                       "rewards": np.zeros(3), "next_states": np.array([1, 1, 1])})
    bonus = shaped.shaped_reward() - plain.shaped_reward()
    assert (bonus > 0).all()
    assert bonus[0, 0] < bonus[0, 1]  # the visited pair promises less information


def test_thermo_learns_the_soft_optimum_on_riverswim():
    """At its own temperature the explorer's second-law gap W - F* on the true MDP vanishes with data."""
    result = run_task(Task("riverswim", "thermo", 1, 400, ledger_temperature=0.1))
    assert result["second_law_gap"][:20].mean() > 1.0
    assert result["second_law_gap"][-50:].mean() < 0.05


def test_regret_ordering_short():
    """The Osband et al. 2013 premise at small scale: PSRL and UCBVI beat epsilon-greedy on RiverSwim."""
    def total(agent):
        return np.mean([run_task(Task("riverswim", agent, s, 300, ledger=False))["regret"].sum() for s in range(3)])

    eps = total("eps-greedy")
    assert total("psrl") < 0.5 * eps
    assert total("ucbvi:simplified=1") < 0.5 * eps


def test_deepsea_solution_scoring():
    bad = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], float)  # running share 5/6 at ep 6 ... 4/5 at ep 5
    sol = deepsea_solution(bad, size=2, thresh=0.8, forgiveness=0)
    assert sol["first_episode"] == 6 and sol["solved"] and not sol["beats_dithering"]  # 6 >= 2^2
    assert deepsea_solution(bad, size=3, forgiveness=0)["beats_dithering"]
    assert not deepsea_solution(np.ones(50), 5)["solved"]
    assert deepsea_episodes(12, 10_000) == 4196 and deepsea_episodes(14, 10_000) == 10_000


def test_deepsea_dithering_fails_and_psrl_explores():
    n = 6
    episodes = deepsea_episodes(n, 10_000)
    dither = run_task(Task(f"deepsea-{n}", "eps-greedy", 0, episodes, ledger=False))
    psrl = run_task(Task(f"deepsea-{n}", "psrl", 0, episodes, ledger=False))
    assert not deepsea_solution(dither["bad"], n)["beats_dithering"]
    assert deepsea_solution(psrl["bad"], n)["beats_dithering"]


def test_mean_ci():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    mean, half = mean_ci(x)
    np.testing.assert_allclose(mean, [3, 5])
    assert half[0] == pytest.approx(4.302653 * 2 / np.sqrt(3), rel=1e-5)
    assert mean_ci(x[:1])[1].tolist() == [0, 0]


def test_backends_give_identical_results():
    tasks = [Task("chain-4", "psrl", s, 10) for s in range(2)]
    serial = map_tasks(run_task, tasks, backend="serial")
    process = map_tasks(run_task, tasks, backend="process", workers=2)
    for a, b in zip(serial, process):
        np.testing.assert_array_equal(a["regret"], b["regret"])
        np.testing.assert_array_equal(a["epistemic_total"], b["epistemic_total"])


@pytest.mark.slow
def test_regret_ordering_riverswim_20_seeds_2000_episodes():
    """Notes §7.4 at full scale: mean regret of PSRL and UCBVI below epsilon-greedy (0.1)."""
    tasks = [Task("riverswim", a, s, 2000, ledger=False) for a in ("psrl", "ucbvi:simplified=1", "eps-greedy")
             for s in range(20)]
    totals = np.array([r["regret"].sum() for r in map_tasks(run_task, tasks, backend="process")]).reshape(3, 20)
    psrl, ucbvi, eps = totals.mean(1)
    assert psrl < eps and ucbvi < eps
