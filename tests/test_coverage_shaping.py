"""Coverage (#19): shape-reward's kernel dispatch (reference path, torch entry on the CPU) against closed forms,
the demo's identities as reference checks, and the CLI's human tables and its exit code when an analytic check
fails."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from toolbox.core.errors import UserInputError
from toolbox.shaping import mdp
from toolbox.shaping import native as snative

runner = CliRunner()
R_BANDIT = np.array([[0.3, 1.0, -0.5]])  # one state, three actions, each a self-loop
P_BANDIT = np.ones((1, 3, 1))


@pytest.mark.parametrize("kernels", ["native", "reference"])
def test_bandit_values_in_closed_form(kernels, monkeypatch):
    """One state, self-loops: hard V_h = (H - h) max r; soft (counting measure) V_h = (H - h) T log sum e^{r/T};
    a uniform policy's regularised return per step is mean r - T KL(u || 1) = mean r + T log 3."""
    monkeypatch.setenv("TOOLBOX_KERNELS", kernels)
    H, T = 4, 0.5
    Q, V = snative.backward_induction(R_BANDIT, P_BANDIT, H, 0.0)
    np.testing.assert_allclose(V[:, 0], [4.0, 3.0, 2.0, 1.0, 0.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(Q[0, 0], R_BANDIT[0] + 3.0, rtol=0, atol=1e-12)
    _, V_soft = snative.backward_induction(R_BANDIT, P_BANDIT, H, T)
    soft = T * np.log(np.exp(R_BANDIT[0] / T).sum())
    np.testing.assert_allclose(V_soft[:, 0], soft * np.arange(H, -1, -1), rtol=1e-12, atol=1e-12)
    uniform = np.full((H, 1, 3), 1 / 3)
    np.testing.assert_allclose(snative.policy_evaluation(R_BANDIT, P_BANDIT, uniform, 0.0)[:, 0],
                               R_BANDIT.mean() * np.arange(H, -1, -1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(snative.policy_evaluation(R_BANDIT, P_BANDIT, uniform, T)[:, 0],
                               (R_BANDIT.mean() + T * np.log(3)) * np.arange(H, -1, -1), rtol=0, atol=1e-12)
    # the second law: the soft optimum is never below the regularised value of any policy
    assert V_soft[0, 0] >= snative.policy_evaluation(R_BANDIT, P_BANDIT, uniform, T)[0, 0]


def test_torch_entry_on_cpu_matches_numpy_batch():
    rng = np.random.default_rng(0)
    R = rng.normal(size=(3, 4, 2))
    P = rng.dirichlet(np.ones(4), size=(3, 4, 2))
    Qt, Vt = snative.backward_induction_torch(torch.from_numpy(R), torch.from_numpy(P), 5, 0.2)
    assert Qt.dtype == torch.float64 and Qt.shape == (3, 5, 4, 2) and Vt.shape == (3, 6, 4)
    for b in range(3):
        Q, V = mdp.backward_induction(R[b], P[b], 5, 0.2)
        np.testing.assert_allclose(Qt[b].numpy(), Q, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(Vt[b].numpy(), V, rtol=1e-12, atol=1e-12)
    with pytest.raises(UserInputError, match="R must be float64"):
        snative.backward_induction_torch(torch.from_numpy(R).float(), torch.from_numpy(P), 5)
    with pytest.raises(UserInputError, match="temperature must be finite"):
        snative.policy_evaluation(R[0], P[0], np.full((5, 4, 2), 0.5), -1.0)
    with pytest.raises(UserInputError, match="policy: every"):
        snative.policy_evaluation(R[0], P[0], np.full((5, 4, 2), 0.7), 0.0)


def test_demo_entry_turns_each_identity_into_a_check(tmp_path, monkeypatch):
    """An identity with a tolerance is checked against its reference; an inequality (tol 0) as 'holds' = 1. A failed
    one is what `toolbox demo` reports as a mismatch."""
    from toolbox.demo import missed_checks
    from toolbox.shaping import demo

    doc = {"regret": [{"agent": "thermo", "cumulative_regret": 12.345}], "deepsea_scores": {"thermo": 0.5},
           "checks": [{"check": "soft value", "value": 1.0 + 1e-12, "reference": 1.0, "tol": 1e-9, "ok": True},
                      {"check": "second law W >= F*", "value": -0.1, "reference": 0.0, "tol": 0.0, "ok": False}]}
    monkeypatch.setattr(demo, "run", lambda cfg, out, log: doc)
    res = demo.run_demo(tmp_path, log=lambda *a, **k: None)
    assert res["checks"] == [{"name": "soft value", "value": 1.0 + 1e-12, "reference": 1.0, "tolerance": 1e-9},
                             {"name": "second law W >= F* holds", "value": 0.0, "reference": 1.0, "tolerance": 0.0}]
    assert missed_checks(res) == ["second law W >= F* holds = 0.0 (reference 1.0 +- 0.0)"]
    assert res["riverswim_regret"] == {"thermo": 12.3}
    assert res["headline"] == "1 identities ok; RiverSwim regret (300 ep) thermo 12.3; DeepSea 5-8 score thermo 0.50"


SMALL = ["shape-reward", "--env", "chain-4", "--agent", "thermo", "--agent", "eps-greedy", "--episodes", "15",
         "--seeds", "2", "--deepsea-size", "4", "--backend", "serial", "--device", "cpu"]


def test_cli_human_tables(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app_(), [*SMALL, "--out", str(out)], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    text = res.output
    assert "analytic checks (notes §7)" in text and "cumulative regret (mean ± 95% CI)" in text
    assert "DeepSea score (bsuite" in text
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.count("│") >= 3]
    for agent, score in summary["deepsea_scores"].items():  # a two-column row per agent, floats as {:.4g}
        assert [agent, f"{score:.4g}"] in rows, (agent, score, rows)
    for r in summary["regret"]:
        assert [r["env"], r["agent"], str(r["seeds"]), f"{r['cumulative_regret']:.4g}", f"{r['ci95']:.4g}"] == \
            next(row[:5] for row in rows if row[:2] == [r["env"], r["agent"]])


def test_cli_failed_analytic_check_exits_1(tmp_path, monkeypatch):
    from toolbox.shaping import pipeline

    real = pipeline.run

    def failing(cfg, out, **kw):
        doc = real(cfg, out, **kw)
        doc["checks_passed"] = False
        return doc

    monkeypatch.setattr(pipeline, "run", failing)
    out = tmp_path / "run"
    res = runner.invoke(app_(), [*SMALL, "--no-deepsea", "--out", str(out), "--json"])
    assert res.exit_code == 1, res.output
    assert json.loads(res.stdout)["checks_passed"] is False  # the document is still printed
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"


def app_():
    from toolbox.cli.main import app

    return app
