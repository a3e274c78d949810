"""The Entrocraft adapter for upstream verl: the algorithm on plain tensors (no verl needed), then the registered
estimator and the hooks on verl's own DataProto / TensorDict batches as its trainers pass them (skipped without
verl). No GPU, no Ray, nothing downloaded."""
import numpy as np
import pytest
import torch

from toolbox.core.errors import UserInputError
from toolbox.entrocraft import advantages as adv_mod
from toolbox.entrocraft.verl_adapter import (
    VerlSettings,
    band_at,
    base_advantages,
    entrocraft_step,
    group_ids,
    settings_from_config,
)

# 4 prompts x G = 3 rollouts, rows interleaved (verl's balance_batch reorders rows: groups are not contiguous)
UID = np.array(["p2", "p0", "p1", "p3", "p0", "p2", "p1", "p3", "p1", "p0", "p3", "p2"], dtype=object)
SCORES = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
B, L = 12, 6


def _batch(entropy_value=0.5):
    rewards = torch.zeros(B, L)
    lengths = torch.tensor([6, 4, 5, 6, 2, 6, 3, 6, 6, 5, 1, 6])
    mask = (torch.arange(L)[None] < lengths[:, None]).long()
    rewards[torch.arange(B), lengths - 1] = SCORES           # outcome reward on the last response token
    h = torch.full((B, L), entropy_value)
    h[mask == 0] = 50.0                                       # padding: must not enter the batch entropy
    return rewards, mask, h


def _grpo_reference():
    """advantages.grpo on the groups laid out contiguously, mapped back to the interleaved rows."""
    gid = group_ids(UID)
    order = np.argsort(gid, kind="stable")
    ref = np.empty(B)
    ref[order] = adv_mod.grpo(SCORES.numpy()[order], 3)
    return ref


def test_grpo_inside_band_equals_reference():
    rewards, mask, h = _batch(0.5)
    res = entrocraft_step(rewards, mask, UID, h, (0.4, 0.6))
    assert res.mode == 0 and res.entropy == pytest.approx(0.5) and res.accept.all()
    np.testing.assert_allclose(res.advantages[:, 0].numpy(), _grpo_reference(), rtol=1e-6, atol=1e-6)
    assert torch.equal(res.response_mask, mask)
    assert torch.all(res.advantages[mask == 0] == 0)


@pytest.mark.parametrize("band,mode", [((0.1, 0.2), 1), ((0.8, 0.9), -1)])
def test_paper_mode_zeroes_the_rejected_rows(band, mode):
    rewards, mask, h = _batch(0.5)
    res = entrocraft_step(rewards, mask, UID, h, band)
    ref = _grpo_reference()
    keep = mode * ref >= 0
    assert res.mode == mode and 0 < keep.sum() < B
    np.testing.assert_array_equal(res.accept, keep)
    assert torch.equal(res.response_mask, mask * torch.as_tensor(keep).long()[:, None])
    np.testing.assert_allclose(res.advantages[:, 0].numpy(), np.where(keep, ref, 0.0), atol=1e-6)
    assert torch.equal(mask, _batch()[1])   # the input mask is not modified


@pytest.mark.parametrize("band,expected", [((0.1, 0.2), lambda r: np.where(r > 0, r, 0.0)),   # RAFT++
                                           ((0.8, 0.9), lambda r: np.where(r < 0, r, 0.0))])  # NSR
def test_release_mode_switches_estimator_and_rejects_nothing(band, expected):
    rewards, mask, h = _batch(0.5)
    rewards = rewards * 2 - (mask * (torch.arange(L)[None] == 0))   # rewards in {-1, +1}: both signs occur
    r = rewards.sum(-1).numpy()
    res = entrocraft_step(rewards, mask, UID, h, band, VerlSettings(filter_mode="release"))
    assert res.accept.all() and torch.equal(res.response_mask, mask)
    np.testing.assert_allclose(res.advantages[:, 0].numpy(), expected(r))


def test_batch_entropy_reads_masked_tokens_only():
    _, mask, _ = _batch()
    rewards = torch.zeros(B, L)
    h = torch.rand(B, L, dtype=torch.float64) * mask + 50.0 * (1 - mask)
    tok = float((h * mask).sum() / mask.sum())
    seq = float(((h * mask).sum(1) / mask.sum(1)).mean())
    assert entrocraft_step(rewards, mask, UID, h, (0, 1)).entropy == pytest.approx(tok, rel=1e-9)
    res = entrocraft_step(rewards, mask, UID, h, (0, 1), VerlSettings(aggregation="seq-mean"))
    assert res.entropy == pytest.approx(seq, rel=1e-9) and abs(tok - seq) > 1e-3


@pytest.mark.parametrize("estimator", ["rloo", "reinforce++"])
def test_other_base_estimators_match_advantages_py(estimator):
    _, mask, _ = _batch()
    gid = group_ids(UID)
    order = np.argsort(gid, kind="stable")
    ref = np.empty(B)
    ref[order] = adv_mod.compute(estimator, SCORES.numpy()[order], 3, mask.sum(1).numpy()[order])
    np.testing.assert_allclose(base_advantages(SCORES.numpy(), gid, mask.sum(1).numpy(), estimator), ref)


def test_band_advances_with_verl_global_step():
    s = settings_from_config({"entrocraft": {"start": [0.6, 0.7], "end": [0.4, 0.5], "total_steps": 10}})
    assert band_at(s, 1) == pytest.approx((0.6, 0.7))        # verl's first update is global_steps = 1
    assert band_at(s, 6) == pytest.approx((0.5, 0.6))
    assert band_at(s, 11) == band_at(s, 50) == pytest.approx((0.4, 0.5))
    pw = settings_from_config({"entrocraft": {"schedule": "piecewise", "knots": "0:1:2,4:3:4"}})
    assert band_at(pw, 3) == pytest.approx((2.0, 3.0))


@pytest.mark.parametrize("config,match", [
    ({"entrocraft": {"bnad": 1}}, "unknown"),
    ({"entrocraft": {"filter_mode": "graded"}}, "filter_mode"),
    ({"entrocraft": {"base": "ppo"}}, "base"),
    ({"entrocraft": {"start": [0.6]}}, "pairs"),
    ({"norm_adv_by_std_in_grpo": False}, "Dr. GRPO"),
])
def test_bad_settings_raise(config, match):
    with pytest.raises(UserInputError, match=match):
        settings_from_config(config)


def test_unequal_groups_and_missing_step_raise():
    with pytest.raises(UserInputError, match="equal group sizes"):
        base_advantages([1, 0, 1], [0, 0, 1], [1, 1, 1])
    with pytest.raises(UserInputError, match="install"):
        band_at(VerlSettings(), None)


# ---------------------------------------------------------------- verl's own data structures and hooks

@pytest.fixture(scope="module")
def verl_mods():
    ray_trainer = pytest.importorskip("verl.trainer.ppo.ray_trainer",
                                      reason="verl is not importable (pip install 'toolbox[verl]')")
    from omegaconf import OmegaConf
    from tensordict import TensorDict
    from verl import DataProto
    from verl.trainer.ppo import core_algos

    from toolbox.entrocraft import verl_adapter as va

    va.install()
    yield {"rt": ray_trainer, "core": core_algos, "va": va, "DataProto": DataProto, "TensorDict": TensorDict,
           "cfg": lambda **e: OmegaConf.create({"adv_estimator": "entrocraft", "norm_adv_by_std_in_grpo": True,
                                                "entrocraft": e})}
    va.uninstall()


def _dataproto(m, entropy_value=0.5, *, keep_entropy=True, step=1):
    """A batch as the legacy trainer holds it before compute_advantage: response_mask a view of attention_mask."""
    rewards, mask, h = _batch(entropy_value)
    attention = torch.cat([torch.ones(B, 3, dtype=torch.long), mask], 1)
    fields = {"token_level_rewards": rewards, "attention_mask": attention, "response_mask": attention[:, -L:],
              "responses": torch.zeros(B, L, dtype=torch.long)}
    if keep_entropy:
        fields[m["va"].ENTROPY_KEY] = h
    return m["DataProto"](batch=m["TensorDict"](fields, batch_size=B), non_tensor_batch={"uid": UID.copy()},
                          meta_info={m["va"].STEP_KEY: step} if keep_entropy else {})


def test_install_is_idempotent_and_reversible(verl_mods):
    rt, va, core = verl_mods["rt"], verl_mods["va"], verl_mods["core"]
    targets = va._targets()
    assert va.installed()
    patched = [getattr(o, n) for o, n, _ in targets]
    va.install()
    assert [getattr(o, n) for o, n, _ in targets] == patched     # a second install wraps nothing twice
    va.uninstall()
    va.uninstall()
    assert not va.installed() and "entrocraft" not in core.ADV_ESTIMATOR_REGISTRY
    assert all(not hasattr(getattr(o, n), va._ORIGINAL) for o, n, _ in targets)
    assert rt.compute_advantage is getattr(patched[0], va._ORIGINAL)
    va.install()
    assert va.installed() and core.get_adv_estimator_fn("entrocraft") is va.compute_entrocraft_advantage


def test_other_estimators_pass_through(verl_mods):
    rt, core = verl_mods["rt"], verl_mods["core"]
    data = _dataproto(verl_mods, keep_entropy=False)
    out = rt.compute_advantage(data, adv_estimator=core.AdvantageEstimator.GRPO, config=verl_mods["cfg"]())
    np.testing.assert_allclose(out.batch["advantages"][:, 0].numpy(), _grpo_reference(), rtol=1e-5, atol=1e-6)
    assert out.batch["response_mask"].sum() == _batch()[1].sum()


def test_legacy_compute_advantage_inside_band_equals_reference_and_verl_grpo(verl_mods):
    rt, core = verl_mods["rt"], verl_mods["core"]
    data = _dataproto(verl_mods, 0.5)
    mask = data.batch["response_mask"].clone()
    verl_adv, _ = core.compute_grpo_outcome_advantage(data.batch["token_level_rewards"], mask, UID)
    out = rt.compute_advantage(data, adv_estimator="entrocraft",
                               config=verl_mods["cfg"](schedule="constant", start=[0.4, 0.6]))
    np.testing.assert_allclose(out.batch["advantages"][:, 0].numpy(), _grpo_reference(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.batch["advantages"], verl_adv, rtol=1e-5, atol=1e-6)
    assert torch.equal(out.batch["returns"], out.batch["advantages"])
    assert torch.equal(out.batch["response_mask"], mask)
    assert verl_mods["va"].ENTROPY_KEY not in out.batch.keys()  # noqa: SIM118  consumed, not sent on to the actor


@pytest.mark.parametrize("band,mode", [([0.1, 0.2], 1), ([0.8, 0.9], -1)])
def test_legacy_compute_advantage_rejects_by_response_mask(verl_mods, band, mode):
    data = _dataproto(verl_mods, 0.5)
    attention_before = data.batch["attention_mask"].clone()
    out = verl_mods["rt"].compute_advantage(data, adv_estimator="entrocraft",
                                            config=verl_mods["cfg"](schedule="constant", start=band))
    keep = mode * _grpo_reference() >= 0
    rows = out.batch["response_mask"].sum(1) > 0
    np.testing.assert_array_equal(rows.numpy(), keep)
    assert torch.all(out.batch["advantages"][~torch.as_tensor(keep)] == 0)
    # the mask verl passed is a view of the attention mask: it must not be zeroed in place
    assert torch.equal(out.batch["attention_mask"], attention_before)
    assert verl_mods["va"].history[-1]["mode"] == mode and verl_mods["va"].history[-1]["kept"] == keep.sum()


def test_legacy_entropy_survives_fit_and_band_follows_global_step(verl_mods):
    """The _compute_old_log_prob hook keeps the entropies that fit pops; the step it stamps picks the band."""
    va, DataProto, TensorDict = verl_mods["va"], verl_mods["DataProto"], verl_mods["TensorDict"]
    cfg = verl_mods["cfg"](start=[0.6, 0.7], end=[0.0, 0.1], total_steps=10)   # H = 0.5: below, then above
    _, _, h = _batch(0.5)

    def old_log_prob(self, batch):   # the shape of RayPPOTrainer._compute_old_log_prob's output
        td = TensorDict({"old_log_probs": torch.zeros(B, L), "entropys": h.clone()}, batch_size=B)
        return DataProto.from_tensordict(td), 0.0

    hook = va._wrap_legacy_old_log_prob(old_log_prob)
    trainer = type("T", (), {"config": type("C", (), {"algorithm": cfg})()})()
    modes = []
    for step in (1, 11):
        trainer.global_steps = step
        batch = _dataproto(verl_mods, keep_entropy=False)
        out, _ = hook(trainer, batch)
        out.batch.pop("entropys")                                # as RayPPOTrainer.fit does
        batch = batch.union(out)
        batch = verl_mods["rt"].compute_advantage(batch, adv_estimator="entrocraft", config=cfg)
        modes.append(va.history[-1]["mode"])
        assert va.history[-1]["step"] == step and va.history[-1]["entropy"] == pytest.approx(0.5)
    assert modes == [-1, 1]
    trainer.config.algorithm = verl_mods["cfg"]()
    trainer.config.algorithm.adv_estimator = "grpo"
    out, _ = hook(trainer, _dataproto(verl_mods, keep_entropy=False))
    assert va.ENTROPY_KEY not in out.batch.keys()  # noqa: SIM118  other estimators: nothing added


def test_registered_estimator(verl_mods):
    fn = verl_mods["core"].get_adv_estimator_fn("entrocraft")
    rewards, mask, h = _batch(0.5)
    with pytest.raises(UserInputError, match="install"):
        fn(token_level_rewards=rewards, response_mask=mask, index=UID, config=verl_mods["cfg"]())
    adv, _ = fn(token_level_rewards=rewards, response_mask=mask, index=UID, token_entropy=h, global_steps=1,
                  config=verl_mods["cfg"](schedule="constant", start=[0.1, 0.2]))
    keep = _grpo_reference() >= 0
    np.testing.assert_allclose(adv[:, 0].numpy(), np.where(keep, _grpo_reference(), 0.0), atol=1e-6)


def test_missing_entropy_is_a_clear_error(verl_mods):
    data = _dataproto(verl_mods, keep_entropy=False)
    with pytest.raises(UserInputError, match="bypass_mode"):
        verl_mods["rt"].compute_advantage(data, adv_estimator="entrocraft", config=verl_mods["cfg"]())


class _FakeTransferQueue:
    """An in-memory stand-in for verl's TransferQueue (kv_batch_get / kv_batch_put by row key): the v1 trainer's
    real `_compute_advantage` runs against it, without Ray."""

    def __init__(self, keys, fields):
        self.rows = {k: {name: value[i] for name, value in fields.items()} for i, k in enumerate(keys)}

    def kv_batch_get(self, keys, partition_id, select_fields):
        from tensordict import TensorDict
        from tensordict.tensorclass import NonTensorStack

        present = [f for f in select_fields if f in self.rows[keys[0]]]
        out = {f: (NonTensorStack(*[self.rows[k][f] for k in keys]) if f == "uid" else
                   torch.nested.as_nested_tensor([self.rows[k][f] for k in keys], layout=torch.jagged))
               for f in present}
        return TensorDict(out, batch_size=len(keys))

    def kv_batch_put(self, keys, partition_id, fields):
        for name in fields.keys():  # noqa: SIM118 (iterating a TensorDict walks its rows)
            for i, k in enumerate(keys):
                self.rows[k][name] = fields[name][i]
        return self.batch


@pytest.mark.parametrize("band,mode", [([0.1, 0.2], 1), ([0.4, 0.6], 0)])
def test_v1_trainer_compute_advantage_reads_tq_entropy_and_writes_mask(verl_mods, monkeypatch, band, mode):
    tq = pytest.importorskip("transfer_queue", reason="the v1 trainer needs the TransferQueue package")
    from transfer_queue import KVBatchMeta
    from verl.trainer.ppo.v1 import get_trainer_cls

    rewards, mask, h = _batch(0.5)
    lengths = mask.sum(1).tolist()
    keys = [f"{u}_0_{i}" for i, u in enumerate(UID)]
    store = _FakeTransferQueue(keys, {"uid": list(UID), "response_mask": [mask[i, :n] for i, n in enumerate(lengths)],
                                      "rm_scores": [rewards[i, :n] for i, n in enumerate(lengths)],
                                      "entropy": [h[i, :n] for i, n in enumerate(lengths)],
                                      "old_log_probs": [torch.zeros(n) for n in lengths]})
    store.batch = KVBatchMeta(partition_id="train", keys=keys, tags=[{} for _ in keys])
    monkeypatch.setattr(tq, "kv_batch_get", store.kv_batch_get)
    monkeypatch.setattr(tq, "kv_batch_put", store.kv_batch_put)
    from omegaconf import OmegaConf

    trainer = object.__new__(get_trainer_cls("sync"))
    trainer.config = OmegaConf.create({"algorithm": {**verl_mods["cfg"](schedule="constant", start=band),
                                                     "use_kl_in_reward": False, "gamma": 1.0, "lam": 1.0},
                                       "actor_rollout_ref": {"rollout": {"n": 3}}})
    trainer.global_steps = 4
    metrics = {}
    trainer._compute_advantage(store.batch, metrics=metrics)
    ref = _grpo_reference()
    keep = mode * ref >= 0
    assert metrics["entrocraft/mode"] == mode and metrics["entrocraft/entropy"] == pytest.approx(0.5)
    assert metrics["entrocraft/accepted_fraction"] == pytest.approx(keep.mean())
    for i, k in enumerate(keys):
        row = store.rows[k]
        assert torch.equal(row["response_mask"], mask[i, :lengths[i]] * int(keep[i]))
        np.testing.assert_allclose(row["advantages"].numpy(), np.full(lengths[i], ref[i] * keep[i]), atol=1e-6)
    assert verl_mods["va"].history[-1]["step"] == 4
