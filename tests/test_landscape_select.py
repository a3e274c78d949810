"""RL topic selection: the reward's parts, the agents against random and greedy baselines."""
import numpy as np
import pytest

from toolbox.core.errors import UserInputError
from toolbox.landscape import metrics as mt
from toolbox.landscape.select import SelectConfig, SetValue, select_topics, trend_scores


def _topics(k=8, v=400, seed=0):
    return np.random.default_rng(seed).dirichlet(np.full(v, 0.05), size=k)


def _trends(k, rising, strength=0.04):
    out = []
    for j in range(k):
        series = (0.1 + strength * np.arange(10)) if j == rising else 0.2 + 0.002 * np.sin(np.arange(10) + j)
        out.append(mt.trend(series))
    return out


def test_set_value_parts():
    phi = np.eye(3) * 0.9 + 0.1 / 3
    cfg = SelectConfig(alpha=1, beta=0, kappa=0, gamma=0.5, delta=0.2)
    value = SetValue(np.vstack([phi, phi[:1]]), np.zeros(4), None, cfg)
    parts = value.parts([0, 1])
    assert parts["diversity"] == pytest.approx(mt.jsd(phi[0], phi[1]) / np.log(2))
    assert value([0, 3]) == pytest.approx(-0.5)  # a duplicate pair: no diversity, one redundant pair
    assert value([0]) == 0.0


@pytest.mark.parametrize("agent", ["qlearn", "bandit"])
def test_agents_rank_the_rising_topic_first(agent):
    phi = _topics()
    for seed in range(10):
        rising = seed % 8
        res = select_topics(phi, _trends(8, rising), None, SelectConfig(agent=agent, select=3), seed)
        assert res["ranking"][0] == rising
        assert sorted(res["ranking"]) == list(range(8))
        assert res["labels"][0] == "emerging"
        assert res["comparison"]["agent"]["value"] >= res["comparison"]["random_mean"]


def test_qlearning_matches_greedy_and_avoids_redundant_pairs():
    phi = _topics(6)
    phi[1] = phi[0]  # a duplicate of the trending topic
    trends = _trends(6, 0)
    trends[1] = trends[0]
    res = select_topics(phi, trends, None, SelectConfig(select=3, gamma=2.0), 0)
    assert not {0, 1} <= set(res["selected"])
    assert res["comparison"]["agent"]["value"] == pytest.approx(res["comparison"]["greedy"]["value"])
    assert len(res["learning_curve"]) == 500


def test_aspect_similarity_steers_the_selection():
    phi = _topics(6)
    flat = _trends(6, rising=-1)
    res = select_topics(phi, flat, phi[4:5] * 10, SelectConfig(select=1, kappa=0), 0)
    assert res["selected"] == [4] and res["aspect_similarity"][4] == pytest.approx(1.0)


def test_trend_score_and_bad_settings():
    s = trend_scores(_trends(3, 1))
    assert s[1] > 0.5 and s[0] < 0.2
    with pytest.raises(UserInputError, match="agent"):
        select_topics(_topics(3), _trends(3, 0), None, SelectConfig(agent="dqn"), 0)
