"""Expert aspects (topics.md §1.2 step 2): keyword files, the seeded topic-word prior, cosine document alignment.

An aspects file maps aspect -> keyword -> weight (TOML tables or YAML mappings; an optional top-level `aspects`
key is allowed). Keywords are cleaned like the corpus (lower case, stemmed when the corpus is); a multi-word keyword
is its bigram phrase when that is in the vocabulary, else its words.
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import numpy as np

from toolbox.core.errors import UserInputError
from toolbox.landscape.corpus import tokenize


@dataclasses.dataclass
class Aspects:
    names: list[str]
    weights: np.ndarray            # [A, V] expert weights w_{a,v} >= 0 over the model vocabulary
    keywords: dict[str, dict[str, float]]  # the file as read
    matched: dict[str, dict[str, list[str]]]  # aspect -> keyword -> vocabulary terms it seeds
    missing: dict[str, list[str]]  # aspect -> keywords not in the vocabulary


def read_aspects_file(path: str | Path) -> dict[str, dict[str, float]]:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"aspects file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UserInputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UserInputError(f"{path}: not valid TOML ({exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("aspects"), dict):
        data = data["aspects"]
    if not isinstance(data, dict) or not data:
        raise UserInputError(f"{path}: expected aspect -> keyword -> weight tables, found nothing")
    out: dict[str, dict[str, float]] = {}
    for aspect, table in data.items():
        if isinstance(table, list):  # a plain keyword list: weight 1 each
            table = {str(k): 1.0 for k in table}
        if not isinstance(table, dict) or not table:
            raise UserInputError(f"{path}: aspect {aspect!r} must map keywords to weights")
        for kw, w in table.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w) or w < 0:
                raise UserInputError(f"{path}: aspect {aspect!r}, keyword {kw!r}: weight must be a number >= 0, "
                                     f"got {w!r}")
        out[str(aspect)] = {str(k): float(w) for k, w in table.items()}
    return out


def match_aspects(keywords: dict[str, dict[str, float]], vocabulary: dict[str, int], stem=None) -> Aspects:
    """Map keywords onto the vocabulary. Fails when no keyword of any aspect is known; drops aspects with none."""
    names, rows, matched, missing = [], [], {}, {}
    for aspect, table in keywords.items():
        w = np.zeros(len(vocabulary))
        matched[aspect], missing[aspect] = {}, []
        for kw, weight in table.items():
            parts = tokenize(kw)
            if stem:
                parts = [stem(p) for p in parts]
            phrase = "_".join(parts)
            terms = [phrase] if phrase in vocabulary else [p for p in parts if p in vocabulary]
            if not terms:
                missing[aspect].append(kw)
                continue
            matched[aspect][kw] = terms
            for t in terms:
                w[vocabulary[t]] = max(w[vocabulary[t]], weight)
        if w.any():
            names.append(aspect)
            rows.append(w)
    if not names:
        unknown = sorted({k for ks in missing.values() for k in ks})
        raise UserInputError(f"no aspect keyword is in the corpus vocabulary (unknown: {', '.join(unknown[:12])}"
                             f"{' ...' if len(unknown) > 12 else ''})")
    return Aspects(names=names, weights=np.array(rows), keywords=keywords, matched=matched, missing=missing)


def seed_matrix(weights: np.ndarray, k: int) -> np.ndarray:
    """[K, V]: row a < A holds aspect a's weights scaled so its top keyword is 1; unseeded rows are 0."""
    a, v = weights.shape
    if k < a:
        raise UserInputError(f"{a} aspects need at least {a} topics, got k={k}")
    top = weights.max(axis=1, keepdims=True)
    seeds = np.zeros((k, v))
    seeds[:a] = weights / np.where(top > 0, top, 1.0)
    return seeds


def seeded_prior(weights: np.ndarray, k: int, eta0: float, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(eta, init_boost) of the aspect model: eta_{k,v} = eta0 (1 + lambda w_{a,v}) on seeded topic k = a
    (topics.md §1.2 step 2a), and the same lambda w added to that topic's initial variational statistics, without
    which online VB ignores the prior (measured: 0 of 25 Mother Teresa stories moved on Reuters) [R]."""
    seeds = seed_matrix(weights, k)
    return eta0 * (1.0 + strength * seeds), strength * seeds


def tfidf_rows(bow, n_terms: int):
    """L2-normalised tf-idf document vectors as a scipy CSR matrix [D, V]."""
    import scipy.sparse as sp

    rows, cols, vals = [], [], []
    for d, doc in enumerate(bow):
        for t, c in doc:
            rows.append(d)
            cols.append(t)
            vals.append(c)
    X = sp.csr_matrix((vals, (rows, cols)), shape=(len(bow), n_terms), dtype=np.float64)
    df = np.bincount(X.indices, minlength=n_terms)
    idf = np.log((1 + X.shape[0]) / (1 + df)) + 1.0
    X = X.multiply(idf[None, :]).tocsr()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ X


def align(X, weights: np.ndarray, tau: float, mu: float = 1.0, max_iter: int = 20) -> dict:
    """Cosine alignment of documents to aspects, iterated until the assignments stop changing (2502.08496 v2).

    s_{d,a} = cos(x_d, c_a) with x_d the tf-idf vector; d goes to argmax_a s_{d,a} when that exceeds tau, else to
    none (-1). The aspect vector starts at the expert weights and is refined to c_a = w_a/|w_a| + mu * mean of the
    aligned documents' x_d (renormalised), an expert-anchored centroid [R].
    """
    W = weights / np.linalg.norm(weights, axis=1, keepdims=True)
    centroids = W.copy()
    assign = np.full(X.shape[0], -2)
    history = []
    for it in range(max_iter):
        scores = np.asarray((X @ centroids.T))
        best = scores.argmax(axis=1)
        new = np.where(scores[np.arange(len(best)), best] > tau, best, -1)
        changed = int((new != assign).sum()) if it else len(new)
        history.append({"iteration": it + 1, "changed": changed, "changed_share": changed / max(len(new), 1),
                        "unassigned": int((new == -1).sum())})
        assign = new
        if it and changed == 0:
            break
        for a in range(W.shape[0]):
            members = assign == a
            c = W[a] + (mu * np.asarray(X[members].mean(axis=0)).ravel() if members.any() else 0.0)
            centroids[a] = c / np.linalg.norm(c)
    return {"assignment": assign, "scores": scores, "history": history, "converged": history[-1]["changed"] == 0,
            "centroids": centroids}
