"""A dated corpus drawn from the LDA generative process with planted topic-share trajectories (exact ground truth).

Slice s in 0..S-1 has a topic mix M(s): topic 0 (the planted rising topic) goes linearly from `rise_from` to
`rise_to`, the other K-1 topics share the rest equally. Each document draws theta_d ~ Dirichlet(c * M(s)), so
E[theta_d] = M(s), then N tokens z ~ theta_d, w ~ phi_z, with topics phi_k ~ Dirichlet(beta) over V words.
Slice s is dated 1 July of year 2000 + s, so `--bin year` recovers the slices.
"""
from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated

import numpy as np
from pydantic import Field

from toolbox.core.config import Fraction, PosFloat, PosInt
from toolbox.core.rng import numpy_generator
from toolbox.landscape.corpus import Document


@dataclasses.dataclass
class SyntheticConfig:
    topics: Annotated[int, Field(ge=2)] = 5
    slices: Annotated[int, Field(ge=2)] = 10
    docs_per_slice: PosInt = 300
    doc_length: PosInt = 80
    vocabulary: Annotated[int, Field(ge=2)] = 500
    rise_from: Fraction = 0.1
    rise_to: Fraction = 0.5
    concentration: PosFloat = 5.0  # c in theta_d ~ Dirichlet(c * M(s))
    topic_word_prior: PosFloat = 0.05  # beta in phi_k ~ Dirichlet(beta)


@dataclasses.dataclass
class PlantedTruth:
    phi: np.ndarray  # [K, V] topic-word distributions
    mix: np.ndarray  # [S, K] planted topic mix M(s)
    vocabulary: list[str]
    rising_topic: int = 0


def planted_mix(cfg: SyntheticConfig) -> np.ndarray:
    """[S, K]: topic 0 linear from rise_from to rise_to, the others equal shares of the rest."""
    k = cfg.topics
    share0 = np.linspace(cfg.rise_from, cfg.rise_to, cfg.slices)
    mix = np.repeat(((1.0 - share0) / (k - 1))[:, None], k, axis=1)
    mix[:, 0] = share0
    return mix


def generate(cfg: SyntheticConfig, seed: int) -> tuple[list[Document], PlantedTruth]:
    if cfg.topics < 2 or cfg.slices < 2 or cfg.vocabulary < cfg.topics or cfg.doc_length < 1:
        raise ValueError("synthetic corpus needs topics >= 2, slices >= 2, vocabulary >= topics, doc_length >= 1")
    rng = numpy_generator(seed, 7)
    vocab = [f"w{v:04d}" for v in range(cfg.vocabulary)]
    phi = rng.dirichlet(np.full(cfg.vocabulary, cfg.topic_word_prior), size=cfg.topics)
    mix = planted_mix(cfg)
    docs = []
    for s in range(cfg.slices):
        thetas = rng.dirichlet(cfg.concentration * mix[s], size=cfg.docs_per_slice)
        for j, theta in enumerate(thetas):
            z_counts = rng.multinomial(cfg.doc_length, theta)
            words = np.concatenate([rng.choice(cfg.vocabulary, size=n, p=phi[k]) for k, n in enumerate(z_counts)])
            rng.shuffle(words)
            docs.append(Document(doc_id=f"syn-{s}-{j}", tokens=[vocab[w] for w in words],
                                 date=date(2000 + s, 7, 1), title=f"synthetic slice {s} doc {j}"))
    return docs, PlantedTruth(phi=phi, mix=mix, vocabulary=vocab)
