"""ISES information-set engine: native kernels against their numpy references, closed-form values, and the
binding's input validation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from toolbox.core import native
from toolbox.ises import engine
from native_calls import native_calls

needs_native = pytest.mark.skipif(not native.available(), reason="native extension not built")


def _codes(pegs=4, colors=6):
    return np.array(list(itertools.product(range(colors), repeat=pegs)), np.uint8)


def _word(w: str) -> np.ndarray:
    return (np.frombuffer(w.encode(), np.uint8) - ord("A")).astype(np.uint8)[None, :]


@pytest.mark.native
def test_mastermind_table_parity_and_outcomes():
    codes = _codes()
    with native_calls("ises_mastermind_table") as calls:
        table = engine.mastermind_table(codes, codes, 6)
    assert calls["ises_mastermind_table"] == 1
    ref = engine.mastermind_table_reference(codes, codes, 6)
    np.testing.assert_array_equal(table, ref)
    assert len(np.unique(table)) == 14  # (3, 1) is impossible with 4 pegs
    # secret 1122 (0011) against guess 1212 (0101): 2 black, 2 white
    g, s = np.array([[0, 1, 0, 1]], np.uint8), np.array([[0, 0, 1, 1]], np.uint8)
    assert engine.mastermind_table(g, s, 6)[0, 0] == 2 * 5 + 2
    assert (np.diag(table) == 4 * 5).all()


@pytest.mark.parametrize("guess,answer,pattern", [
    ("SPEED", "ABIDE", "00101"),   # the second E finds no E left
    ("ALLEE", "APPLE", "21002"),   # green E consumes the answer's E before yellows
    ("CRANE", "CRANE", "22222"),
    ("LLAMA", "HELLO", "11000"),
    ("EERIE", "THERE", "10102"),   # one E green, one yellow, the third grey
])
def test_wordle_patterns(guess, answer, pattern):
    want = int(pattern, 3)
    assert engine.wordle_table(_word(guess), _word(answer))[0, 0] == want
    assert engine.wordle_table_reference(_word(guess), _word(answer))[0, 0] == want


@pytest.mark.native
def test_wordle_table_parity_random():
    gen = np.random.default_rng(1)
    guesses = gen.integers(0, 6, (200, 5)).astype(np.uint8)  # few letters: many repeats
    secrets = gen.integers(0, 6, (150, 5)).astype(np.uint8)
    with native_calls("ises_wordle_table") as calls:
        got = engine.wordle_table(guesses, secrets)
    assert calls["ises_wordle_table"] == 1
    np.testing.assert_array_equal(got, engine.wordle_table_reference(guesses, secrets))


@pytest.mark.native
def test_partition_scores_parity_and_first_guess_entropies():
    codes = _codes()
    table = engine.mastermind_table(codes, codes, 6)
    cand = np.arange(1296, dtype=np.int32)
    actions = np.arange(1296, dtype=np.int32)
    with native_calls("ises_partition_scores") as calls:
        gain, biggest, classes = engine.partition_scores(table, cand, actions, 25)
    assert calls["ises_partition_scores"] == 1
    g2, b2, c2 = engine.partition_scores_reference(table, cand, actions, 25)
    np.testing.assert_allclose(gain, g2, atol=1e-12)
    np.testing.assert_array_equal(biggest, b2)
    np.testing.assert_array_equal(classes, c2)
    # note section 4: first-guess entropies 1111: 1.498, 1112: 2.693, 1123: 3.044 bits
    index = {tuple(c): i for i, c in enumerate(codes.tolist())}
    assert gain[index[(0, 0, 0, 0)]] == pytest.approx(1.498, abs=5e-4)
    assert gain[index[(0, 0, 0, 1)]] == pytest.approx(2.693, abs=5e-4)
    assert gain[index[(0, 0, 1, 2)]] == pytest.approx(3.044, abs=5e-4)
    assert biggest[index[(0, 0, 1, 1)]] == 256  # Knuth's 1122 leaves at most 256
    # E[dH] = H(I) - sum_o P(o) H(I_o) computed by filtering
    a = index[(0, 1, 2, 3)]
    post = sum(len(s) / 1296 * np.log2(len(s)) for o in range(25)
               if len(s := engine.filter_set(table, cand, a, o)))
    assert gain[a] == pytest.approx(np.log2(1296) - post, abs=1e-12)


@pytest.mark.native
def test_weighted_scores_match_reference_and_uniform():
    codes = _codes(3, 4)
    table = engine.mastermind_table(codes, codes, 4)
    cand = np.arange(0, 64, 2, dtype=np.int32)
    actions = np.arange(64, dtype=np.int32)
    w = np.random.default_rng(0).random(64)
    with native_calls("ises_partition_scores") as calls:
        got = engine.partition_scores(table, cand, actions, 16, w)[0]
    assert calls["ises_partition_scores"] == 1
    np.testing.assert_allclose(got, engine.partition_scores_reference(table, cand, actions, 16, w)[0], atol=1e-12)
    np.testing.assert_allclose(engine.partition_scores(table, cand, actions, 16, np.ones(64))[0],
                               engine.partition_scores(table, cand, actions, 16)[0], atol=1e-12)


@pytest.mark.native
def test_filter_and_sampling_parity():
    codes = _codes()
    table = engine.mastermind_table(codes, codes, 6)
    cand = np.arange(0, 1296, 3, dtype=np.int32)
    with native_calls("ises_filter", "ises_sample_states") as calls:
        for a, o in [(0, 0), (7, 5), (100, 20), (500, 1)]:
            np.testing.assert_array_equal(engine.filter_set(table, cand, a, o),
                                          engine.filter_set_reference(table, cand, a, o))
        s = engine.sample_states(cand, 101, seed=9, stream=1, counter=4)
    assert calls == {"ises_filter": 4, "ises_sample_states": 1}
    np.testing.assert_array_equal(s, engine.sample_states_reference(cand, 101, 9, 1, 4))
    assert set(s.tolist()) <= set(cand.tolist())
    big = engine.sample_states(cand, 20000, seed=1, stream=1, counter=0)
    counts = np.bincount(np.searchsorted(cand, big), minlength=len(cand))
    assert counts.min() > 20 and counts.max() < 90  # roughly uniform (mean 46)


@needs_native
def test_bindings_reject_bad_inputs():
    core = native.module()
    table = np.zeros((4, 5), np.uint8)
    good = np.arange(3, dtype=np.int32)
    with pytest.raises(ValueError, match="dtype"):
        core.ises_partition_scores(table, good.astype(np.int64), good, 3, None)
    with pytest.raises(ValueError, match="dimensions"):
        core.ises_partition_scores(table.ravel(), good, good, 3, None)
    with pytest.raises(ValueError, match="contiguous"):
        core.ises_partition_scores(np.zeros((5, 4), np.uint8).T, good, good, 3, None)
    with pytest.raises(ValueError, match="out of range"):
        core.ises_partition_scores(table, np.array([7], np.int32), good, 3, None)
    with pytest.raises(ValueError, match="n_outcomes"):
        core.ises_partition_scores(table, good, good, 300, None)
    with pytest.raises(ValueError, match="weights"):
        core.ises_partition_scores(table, good, good, 3, np.ones(2))
    with pytest.raises(ValueError, match="empty"):
        core.ises_sample_states(np.zeros(0, np.int32), 4, 0, 0, 0)
    with pytest.raises(ValueError, match="symbol"):
        core.ises_mastermind_table(np.full((2, 4), 9, np.uint8), np.zeros((2, 4), np.uint8), 6)
    with pytest.raises(ValueError, match="length"):
        core.ises_wordle_table(np.zeros((2, 5), np.uint8), np.zeros((2, 4), np.uint8))
    with pytest.raises(ValueError, match="secret_action"):
        core.IsesOptimalSolver(table, 3, 2, np.zeros(4, np.int32), 0)
    square = np.eye(4, dtype=np.uint8) * 2  # action s wins (outcome 2) against secret s only
    with pytest.raises(ValueError, match="one code per action"):
        core.IsesOptimalSolver(square, 3, 2, np.arange(4, dtype=np.int32), 0, np.zeros((3, 2), np.uint8), 2)
    with pytest.raises(ValueError, match="distinct"):
        core.IsesOptimalSolver(square, 3, 2, np.arange(4, dtype=np.int32), 0, np.zeros((4, 2), np.uint8), 2)
    with pytest.raises(ValueError, match="identity"):
        core.IsesOptimalSolver(square, 3, 2, np.zeros(4, np.int32), 0, np.eye(4, 2, dtype=np.uint8), 2)
    with pytest.raises(ValueError, match="history"):
        core.IsesOptimalSolver(square, 3, 2, np.arange(4, dtype=np.int32)).solve(good, history=np.array([9], np.int32))
    # empty information sets and empty action lists are fine
    g, b, c = core.ises_partition_scores(table, np.zeros(0, np.int32), good, 3, None)
    assert (g == 0).all() and (b == 0).all()
    assert len(core.ises_partition_scores(table, good, np.zeros(0, np.int32), 3, None)[0]) == 0


def test_entropy_bits():
    assert engine.entropy_bits(np.arange(8)) == 3.0
    w = np.array([1.0, 1.0, 2.0, 0.0])
    assert engine.entropy_bits(np.arange(4), w) == pytest.approx(1.5)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.mark.native
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 30), st.integers(1, 9), st.integers(0, 2**31 - 1), st.booleans())
def test_partition_scores_parity_property(n_actions, n_secrets, n_outcomes, seed, weighted):
    gen = np.random.default_rng(seed)
    table = gen.integers(0, n_outcomes, (n_actions, n_secrets)).astype(np.uint8)
    cand = gen.choice(n_secrets, gen.integers(1, n_secrets + 1), replace=False).astype(np.int32)
    actions = gen.integers(0, n_actions, gen.integers(1, 2 * n_actions)).astype(np.int32)
    w = gen.random(n_secrets) + 0.01 if weighted else None
    with native_calls("ises_partition_scores") as calls:
        got = engine.partition_scores(table, cand, actions, n_outcomes, w)
    assert calls["ises_partition_scores"] == 1
    want = engine.partition_scores_reference(table, cand, actions, n_outcomes, w)
    np.testing.assert_allclose(got[0], want[0], atol=1e-9)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])
    assert (got[0] >= -1e-12).all() and (got[0] <= np.log2(len(cand)) + 1e-9).all()  # 0 <= E[dH] <= H(I)
