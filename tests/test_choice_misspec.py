"""Misspecification classes, exact expected effects, the per-class sweep and the detector (infer-choice)."""
import numpy as np
import pytest

from toolbox.choice import detect, misspec
from toolbox.choice.model import ChoiceProblem, Observation, choice_logprobs, entropy, posterior, unit_directions
from toolbox.choice.scenarios import peanuts
from toolbox.core.errors import UserInputError
from toolbox.core.rng import numpy_generator


def _mask(*idx, n=5):
    m = np.zeros(n, bool)
    m[list(idx)] = True
    return m


REWARDS = np.array([5.0, 4.0, 3.0, 2.0, 1.0])  # option 0 is the best


@pytest.mark.parametrize("assumed, true, want", [
    ((0, 1), (0, 1, 2), "A1"), ((1, 2), (0, 1, 2), "A2"),
    ((0, 1, 2), (0, 1), "B1"), ((0, 1, 2), (1, 2), "B3"),
    ((0, 1), (0, 2), "C1"), ((1, 2), (0, 1), "C2"), ((0, 1), (1, 2), "C3"),
    ((1, 2), (0, 3), "D2"), ((0, 3), (1, 2), "D3"), ((0, 1), (0, 1), "exact"),
])
def test_classify_every_cell(assumed, true, want):
    assert misspec.classify(_mask(*assumed), _mask(*true), REWARDS) == want


def test_classify_rejects_empty_sets():
    with pytest.raises(UserInputError):
        misspec.classify(_mask(), _mask(0), REWARDS)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 5.0])
def test_peanuts_effects_closed_form(beta):
    scn = peanuts(beta)
    eff = misspec.misspecification_effects(scn.problem, scn.assumed, scn.true, scn.true_theta)
    assert eff.cls == "B3"
    assert eff.p_true_mis == pytest.approx(1 / (1 + np.exp(beta)), abs=1e-12)
    assert abs(eff.p_true_cor - 0.5) < 1e-9
    assert eff.entropy_cor == pytest.approx(np.log(2))
    assert eff.confidently_wrong  # entropy falls while the true reward loses mass


def test_correct_specification_has_zero_effect():
    rng = numpy_generator(5)
    p = ChoiceProblem(rng.standard_normal((6, 2)), unit_directions(2, 16), np.ones(16), 2.0)
    s = p.mask([0, 2, 3])
    eff = misspec.misspecification_effects(p, s, s, 4)
    assert eff.cls == "exact" and eff.d_p_true == 0 and eff.d_entropy == 0 and eff.d_regret == 0


@pytest.mark.parametrize("cls", ["A2", "B3", "C1", "D3"])
def test_exact_expectation_matches_monte_carlo_over_human_choices(cls):
    """The vectorised expectation equals the average of plain posteriors over simulated human choices."""
    rng = numpy_generator(6, misspec.CLASSES.index(cls))
    thetas = unit_directions(2, 16)
    feats, assumed, true, star = (x[0] for x in misspec.sample_instances(rng, cls, 1, 8, 2, thetas))
    p = ChoiceProblem(feats, thetas, np.ones(16), 2.0)
    eff = misspec.misspecification_effects(p, assumed, true, int(star))
    assert eff.cls == cls
    probs = np.exp(choice_logprobs(p.utilities()[star], true))
    picks = rng.choice(8, size=4000, p=probs / probs.sum())
    cache = {c: posterior(p, [Observation(int(c), assumed)]) for c in np.unique(picks)}
    mc_p = np.mean([cache[c][star] for c in picks])
    mc_h = np.mean([entropy(cache[c]) for c in picks])
    se = np.std([cache[c][star] for c in picks]) / np.sqrt(len(picks))
    assert abs(mc_p - eff.p_true_mis) < 4 * se + 1e-9
    assert mc_h == pytest.approx(eff.entropy_mis, abs=0.03)


@pytest.mark.parametrize("cls", misspec.CLASSES)
def test_sample_instance_realises_class(cls):
    rng = numpy_generator(7)
    thetas = unit_directions(2, 16)
    feats, assumed, true, star = misspec.sample_instances(rng, cls, 5, 8, 2, thetas)
    assert feats.shape == (5, 8, 2) and assumed.shape == true.shape == (5, 8) and star.shape == (5,)
    for f, a, t, s in zip(feats, assumed, true, star):
        assert misspec.classify(a, t, f @ thetas[s]) == cls


def test_sweep_reproduces_qualitative_finding():
    """Must show: classes with c* only in the robot's set (x3) are harmful and mostly confidently wrong; classes
    where c* is available to the human and the robot's set adds information (B1, C2, D2) help."""
    tasks = [misspec.SweepTask(cls, 2.0, 150, 8, 2, 16, 0) for cls in misspec.CLASSES]
    rows = [r for task in tasks for r in misspec.run_sweep_task(task)]
    table = {r["class"]: r for r in misspec.summarise_sweep(rows)}
    for cls in ("B3", "C3", "D3"):
        assert table[cls]["verdict"] == "harmful"
        assert table[cls]["d_p_true"] + 2 * table[cls]["d_p_true_se"] < 0
        assert table[cls]["d_regret"] - 2 * table[cls]["d_regret_se"] > 0
        assert table[cls]["confidently_wrong_rate"] > 0.3
    assert table["B3"]["d_entropy"] + 2 * table["B3"]["d_entropy_se"] < 0  # B3: more certain, and wrong
    for cls in ("B1", "C2", "D2"):
        assert table[cls]["verdict"] == "helpful"
    assert table["C1"]["verdict"] == "neutral"
    for cls in ("A1", "A2"):  # the robot ignores rejected options: less certain, never confidently wrong
        assert table[cls]["d_entropy"] > 0 and table[cls]["confidently_wrong_rate"] < 0.1


def test_sweep_task_is_deterministic():
    task = misspec.SweepTask("C3", 1.0, 5, 8, 2, 16, 3)
    assert misspec.run_sweep_task(task) == misspec.run_sweep_task(task)


def test_ppc_flags_absurd_choices_and_passes_model_choices():
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.0, 0.0]])
    p = ChoiceProblem(feats, unit_directions(2, 16), np.ones(16), 5.0)
    full = np.ones(5, bool)
    absurd = [Observation(4, full)] * 10  # the centre option is never best under any reward direction
    b = posterior(p, absurd)
    assert detect.posterior_predictive_pvalue(p, absurd, b, numpy_generator(0)) < 0.05
    rng = numpy_generator(1)
    probs = np.exp(choice_logprobs(p.utilities()[3], full))
    typical = [Observation(int(c), full) for c in rng.choice(5, size=10, p=probs)]
    assert detect.posterior_predictive_pvalue(p, typical, posterior(p, typical), numpy_generator(0)) > 0.05


def test_robustness_report_peanuts():
    scn = peanuts(1.0)
    keep = detect.chosen_mask(2, scn.observations)
    family = detect.plausible_sets(scn.assumed, keep, 2, numpy_generator(0), names=scn.problem.names)
    rep = detect.robustness_report(scn.problem, scn.observations, scn.assumed, family)
    assert rep["family_size"] == 1  # only 'cheap' can be removed; nothing to add
    assert rep["worst_case_tv"] == pytest.approx(0.5 - 1 / (1 + np.e), abs=1e-12)
    assert rep["members"][0]["set"] == "-cheap"


def test_plausible_sets_keep_chosen_and_cap_size():
    assumed = np.array([1, 1, 1, 0, 0], bool)
    keep = np.array([1, 0, 0, 0, 0], bool)
    family = detect.plausible_sets(assumed, keep, 2, numpy_generator(0))
    assert all(m[0] for _, m in family)
    assert len(family) == 2 + 2 + 1 + 1  # remove 1 of {1,2}, add 1 of {3,4}, remove both, add both
    assert len(detect.plausible_sets(assumed, keep, 2, numpy_generator(0), max_sets=3)) == 3


def _flag_rate(seed, reps, n_obs, human_size):
    """Fraction of random problems where the evidence check flags the full assumed set; the human chooses from
    the first `human_size` options (6 = correctly specified)."""
    rng = numpy_generator(seed)
    thetas = unit_directions(2, 16)
    full = np.ones(6, bool)
    flags = []
    for _ in range(reps):
        p = ChoiceProblem(rng.standard_normal((6, 2)), thetas, np.ones(16), 2.0)
        probs = np.exp(choice_logprobs(p.utilities()[rng.integers(16)], np.arange(6) < human_size))
        obs = [Observation(int(c), full) for c in rng.choice(6, size=n_obs, p=probs / probs.sum())]
        family = detect.plausible_sets(full, detect.chosen_mask(6, obs), 2, rng)
        flags.append(detect.robustness_report(p, obs, full, family)["misspecification_suspected"])
    return float(np.mean(flags))


def test_set_evidence_flag_is_calibrated_and_has_power():
    """Posterior odds = mean Bayes factor (mean 1 under a correct set): false alarms stay below ~5%, while a human
    who never sees 2 of the 6 options is flagged far more often (measured 0.375 with 15 choices; the rest are cases
    where the hidden options were unlikely picks anyway, which no test on choices alone can see)."""
    assert _flag_rate(0, 120, 5, 6) <= 0.06
    assert _flag_rate(1, 40, 15, 4) > 0.25


def test_gridworld_evidence_points_at_the_detour(tmp_path):
    from toolbox.choice.pipeline import InferConfig, run_infer

    doc = run_infer(InferConfig(scenario="gridworld", sampler_check=False), tmp_path, 0)
    rob = doc["robustness"]
    assert rob["misspecification_suspected"] and rob["p_assumed_set"] < 0.05
    assert rob["best_supported_set"].startswith("blocked 1,")  # a bottom-row cell: the detour the human avoids
    assert rob["robust_choice_regret"] < doc["robot_regret"]
