"""Topic models with gensim: the base model (CTP1), the seeded aspect model (ATM), inference, coherence, perplexity.

Online variational Bayes. The default engine is LdaModel: the same seed gives the same model. LdaMulticore (the
paper's reference setup, engine="multicore") merges worker results as they arrive, so two runs with one seed
differ (measured on quant-ph, K = 39: mean matched JSD 0.31 between two identical runs). K is fixed or chosen
by coherence (c_v, c_npmi, u_mass) over a range.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np

from toolbox.core.config import Count, PosInt
from toolbox.core.errors import UserInputError

COHERENCES = ("c_v", "c_npmi", "u_mass", "c_uci")
ALPHAS = ("symmetric", "asymmetric", "auto")


@dataclasses.dataclass
class LdaSettings:
    passes: PosInt = 10
    iterations: PosInt = 100
    chunksize: PosInt = 256  # online VB updates every chunk: small chunks converge in fewer passes
    alpha: str = "symmetric"
    engine: Literal["single", "multicore"] = "single"  # single (LdaModel, reproducible) | multicore (LdaMulticore, not reproducible)
    workers: Count = 0  # LdaMulticore workers; 0 = cores - 1 (at least 1)


@dataclasses.dataclass
class FittedModel:
    """A fitted LDA with what the metrics need: phi [K, V], theta [D, K], expected counts per slice [S, K, V]."""
    lda: object
    phi: np.ndarray
    theta: np.ndarray
    slice_counts: np.ndarray
    perplexity: float

    @property
    def k(self) -> int:
        return self.phi.shape[0]


def build_dictionary(tokens: list[list[str]], min_df: int, max_df: float, keep_n: int = 100000):
    """gensim Dictionary with rare (< min_df docs) and common (> max_df share of docs) words removed, and BoW."""
    from gensim.corpora import Dictionary

    dictionary = Dictionary(tokens)
    before = len(dictionary)
    dictionary.filter_extremes(no_below=min_df, no_above=max_df, keep_n=keep_n)
    if len(dictionary) == 0:
        raise UserInputError(f"the vocabulary is empty after filtering (min_df={min_df}, max_df={max_df}); "
                             "lower min_df or raise max_df")
    bow = [dictionary.doc2bow(t) for t in tokens]
    return dictionary, bow, {"vocabulary_before_filter": before, "vocabulary": len(dictionary)}


def _workers(requested: int) -> int:
    from toolbox.core.executor import default_workers

    return requested if requested > 0 else max(1, default_workers() - 1)


def fit_lda(bow, dictionary, k: int, seed: int, settings: LdaSettings, eta=None, init_boost=None):
    """gensim LdaMulticore / LdaModel with K topics; eta is None (symmetric 1/K) or a [K, V] prior matrix.

    init_boost [K, V] is added to the initial variational topic-word statistics before training (the seeded
    initialisation of the aspect model: with online VB a prior alone is swamped by the counts [R]).
    """
    from gensim.models import LdaModel, LdaMulticore

    if k < 2:
        raise UserInputError(f"the number of topics must be at least 2, got {k}")
    common = dict(corpus=None, id2word=dictionary, num_topics=k, passes=settings.passes,
                  iterations=settings.iterations, chunksize=settings.chunksize, random_state=seed, eta=eta,
                  eval_every=None)
    check_settings(settings)
    alpha = settings.alpha if settings.alpha in ALPHAS else float(settings.alpha)
    if settings.engine == "multicore":
        lda = LdaMulticore(workers=_workers(settings.workers), alpha=alpha, **common)
    elif settings.engine == "single":
        lda = LdaModel(alpha=alpha, update_every=1, **common)
    else:
        raise UserInputError(f"engine must be multicore or single, got {settings.engine!r}")
    if init_boost is not None:
        lda.state.sstats += init_boost
        lda.sync_state()
    lda.update(bow)
    return lda


def infer(lda, bow, slices: np.ndarray, n_slices: int, chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(theta [D, K], expected topic-word counts per slice [S, K, V]) by the model's variational E-step."""
    k, v = lda.num_topics, lda.num_terms
    theta = np.zeros((len(bow), k))
    counts = np.zeros((n_slices, k, v))
    for s in range(n_slices):
        idx = np.flatnonzero(slices == s)
        for start in range(0, len(idx), chunk):
            part = idx[start:start + chunk]
            # sstats[k, w] = sum_d n_dw phi_dwk: the expected count of word w assigned to topic k in this chunk
            gamma, sstats = lda.inference([bow[i] for i in part], collect_sstats=True)
            theta[part] = gamma / gamma.sum(axis=1, keepdims=True)
            counts[s] += sstats
    return theta, counts


def perplexity(phi: np.ndarray, theta: np.ndarray, bow) -> float:
    """Per-word perplexity exp(-sum_d sum_v n_dv ln(sum_k theta_dk phi_kv) / N) of the point estimates.

    Computed here rather than from gensim's bound, whose Dirichlet terms are wrong for a matrix eta (it sums eta
    over all topics), so seeded and unseeded models are compared on equal terms.
    """
    loglik, n = 0.0, 0
    for d, doc in enumerate(bow):
        if doc:
            ids, cts = np.array(doc).T
            loglik += float(cts @ np.log(theta[d] @ phi[:, ids] + 1e-300))
            n += int(cts.sum())
    return float(math.exp(-loglik / n)) if n else float("nan")


def fit(bow, dictionary, k: int, seed: int, settings: LdaSettings, slices: np.ndarray, n_slices: int,
        eta=None, init_boost=None) -> FittedModel:
    lda = fit_lda(bow, dictionary, k, seed, settings, eta, init_boost)
    theta, counts = infer(lda, bow, slices, n_slices)
    phi = lda.get_topics().astype(np.float64)
    return FittedModel(lda=lda, phi=phi, theta=theta, slice_counts=counts, perplexity=perplexity(phi, theta, bow))


def check_settings(settings: LdaSettings) -> None:
    """The LDA options gensim would only reject (or silently misread) once fitting starts."""
    if settings.alpha not in ALPHAS:
        try:
            ok = 0 < float(settings.alpha) < math.inf
        except ValueError:
            ok = False
        if not ok:
            raise UserInputError(f"lda.alpha must be one of {', '.join(ALPHAS)} or a number > 0, "
                                 f"got {settings.alpha!r}")
    if settings.engine == "multicore" and settings.alpha == "auto":
        raise UserInputError("alpha='auto' needs engine='single' (LdaMulticore cannot learn alpha)")


def coherence(lda, texts, dictionary, bow, measure: str, window: int | None = None) -> float:
    """Topic coherence of the model's top 10 words. texts are the documents' tokens in their original order (the
    sliding windows of c_v, c_npmi, c_uci slide over them); window = None keeps gensim's window sizes (c_v 110,
    c_npmi / c_uci 10), an int sets it (the longest document: one window per document, for bags of words whose
    order is unknown)."""
    from gensim.models import CoherenceModel

    if measure not in COHERENCES:
        raise UserInputError(f"coherence must be one of {', '.join(COHERENCES)}, got {measure!r}")
    cm = CoherenceModel(model=lda, texts=texts, corpus=bow, dictionary=dictionary, coherence=measure,
                        topn=10, processes=1, window_size=None if measure == "u_mass" else window)
    return float(cm.get_coherence())


def parse_k_range(spec: str) -> list[int]:
    """'10:60:5' -> [10, 15, ..., 60] (inclusive), '5,8,12' -> [5, 8, 12]."""
    try:
        if ":" in spec:
            parts = [int(p) for p in spec.split(":")]
            lo, hi, step = (parts + [1])[:3] if len(parts) == 2 else parts
            ks = list(range(lo, hi + 1, step))
        else:
            ks = [int(p) for p in spec.split(",")]
    except ValueError as exc:
        raise UserInputError(f"k_range must look like 10:60:5 or 5,8,12, got {spec!r}") from exc
    if not ks or min(ks) < 2:
        raise UserInputError(f"k_range {spec!r} must give topic counts >= 2")
    return ks


def _sweep_task(task) -> dict:
    """One K of the coherence sweep (a top-level function of its task, so every executor backend agrees)."""
    k, seed, bow, dictionary, texts, settings, measures, window = task
    lda = fit_lda(bow, dictionary, k, seed, settings)
    row = {"k": k}
    for m in measures:
        row[m] = coherence(lda, texts, dictionary, bow, m, window)
    return row


def select_k(bow, dictionary, texts, ks: list[int], seed: int, settings: LdaSettings, measure: str,
             backend: str = "serial", progress=None, window: int | None = None) -> tuple[int, list[dict]]:
    """K maximising the coherence `measure` over ks; returns (best K, the table with c_v, c_npmi and u_mass).
    texts and window as in `coherence`."""
    from toolbox.core.executor import map_tasks

    measures = tuple(dict.fromkeys([measure, "c_v", "c_npmi", "u_mass"]))
    tasks = [(k, seed, bow, dictionary, texts, settings, measures, window) for k in ks]
    rows = map_tasks(_sweep_task, tasks, backend=backend, progress=progress)
    best = max(rows, key=lambda r: r[measure])["k"]
    return best, rows
