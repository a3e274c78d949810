"""`map-landscape`: ingest -> base model (CTP1) -> aspect model (ATM) -> metrics -> RL selection -> report.

One run is one iteration of the paper's expert loop: it writes an editable expert-feedback file
(aspects_feedback.toml) to pass as the next run's aspects, and with `previous` it reports the model change,
entropy shift and trend-label diff against the previous iteration's run folder.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import io
import math
import time
from pathlib import Path
from typing import Annotated, Callable, Literal

import numpy as np
from pydantic import Field

from toolbox.core.config import Backend, Count, NonNegFloat, PosInt
from toolbox.core.errors import UserInputError
from toolbox.core.io import atomic_write_bytes, atomic_write_text, read_json, write_csv, write_json
from toolbox.core.rng import numpy_generator
from toolbox.landscape import aspects as asp, corpus as cp, metrics as mt, model as md
from toolbox.landscape.corpus import FORMATS
from toolbox.landscape.model import COHERENCES
from toolbox.landscape.select import SelectConfig, select_topics
from toolbox.landscape.synthetic import SyntheticConfig, generate


@dataclasses.dataclass
class LandscapeConfig:
    source: str = ""  # a file, a folder, 'reuters' or 'synthetic'
    format: Literal[FORMATS] = "auto"
    text_field: str = ""
    date_field: str = ""
    title_field: str = ""
    bin: str = "year"  # year | quarter | month | week | N equal-width bins
    date_from: str = ""  # keep documents dated in [date_from, date_to] (ISO, inclusive)
    date_to: str = ""
    stem: bool = False
    phrases: bool = True
    stopwords: list[str] = dataclasses.field(default_factory=list)
    min_tokens: Count = 3
    min_df: PosInt = 2
    max_df: Annotated[float, Field(gt=0, le=1)] = 0.5
    k: Count = 0  # > 1: fixed K (the paper's CTP1 has 39); 0: chosen by coherence over k_range
    k_range: str = "auto"  # with k = 0: "auto" (derived from the corpus size), "10:60:5" or "5,8,12"
    min_slice_docs: Count = 0  # slices with fewer documents stay out of peaks and trends; 0: derived
    coherence: Literal[COHERENCES] = "c_v"
    lda: md.LdaSettings = dataclasses.field(default_factory=md.LdaSettings)
    aspects: str = ""  # TOML / YAML aspect -> keyword -> weight
    seed_strength: NonNegFloat = 10.0  # lambda in eta = eta0 (1 + lambda w)
    seed_strength_grid: list[NonNegFloat] = dataclasses.field(default_factory=list)  # calibrate lambda over these
    max_perplexity_increase: NonNegFloat = 0.1  # calibration constraint against the base model
    tau: Annotated[float, Field(ge=-1, le=1)] = 0.1  # alignment threshold on the cosine
    align_mu: NonNegFloat = 1.0
    align_max_iter: PosInt = 20
    select: SelectConfig = dataclasses.field(default_factory=SelectConfig)
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)
    previous: str = ""  # the previous iteration's run folder
    backend: Backend = "serial"  # executor for the coherence sweep
    top_words: PosInt = 10
    representative_docs: Count = 3
    plots: bool = True


@dataclasses.dataclass
class ModelView:
    """A fitted model with the metrics of §1.2 step 3."""
    name: str
    fitted: md.FittedModel
    magnitude: np.ndarray  # [S, K] token share per slice
    doc_share: np.ndarray  # [S, K] (1/D_s) sum_d theta_dk
    mix_entropy: np.ndarray  # [S] H(M(s))
    doc_entropy: np.ndarray  # [S] mean_d H(theta_d)
    word_entropy: np.ndarray  # [S, K] H(phi_k^(s))
    drift: np.ndarray  # [S, K] JSD(phi_k^(s) || phi_k^(s-1)), NaN at s = 0
    trends: list[dict]  # weighted by slice support; with the topic's peak slice among the supported slices
    overall_magnitude: np.ndarray


def describe(name: str, fm: md.FittedModel, lengths: np.ndarray, slices: np.ndarray, n_slices: int,
             support: np.ndarray) -> ModelView:
    """Metrics per slice; trends and peaks use `support` (documents per slice, 0 for a slice kept out)."""
    k = fm.k
    mag = mt.magnitude_by_slice(fm.theta, lengths, slices, n_slices)
    share = np.full((n_slices, k), np.nan)
    doc_h = np.full(n_slices, np.nan)
    word_h = np.full((n_slices, k), np.nan)
    drift = np.full((n_slices, k), np.nan)
    h_theta = mt.entropy(fm.theta)
    prev_phi = None
    for s in range(n_slices):
        mask = slices == s
        if not mask.any():
            continue
        share[s] = fm.theta[mask].mean(axis=0)
        doc_h[s] = h_theta[mask].mean()
        phi_s = mt.slice_phi(fm.slice_counts[s], fm.phi)
        word_h[s] = mt.entropy(phi_s)
        if prev_phi is not None:
            drift[s] = [mt.jsd(phi_s[j], prev_phi[j]) for j in range(k)]
        prev_phi = phi_s
    mix_h = np.array([mt.entropy(m) if np.isfinite(m).all() else np.nan for m in mag])
    return ModelView(name=name, fitted=fm, magnitude=mag, doc_share=share, mix_entropy=mix_h, doc_entropy=doc_h,
                     word_entropy=word_h, drift=drift,
                     trends=[{**mt.trend(mag[:, j], support), "peak_slice": mt.peak(mag[:, j], support > 0)}
                             for j in range(k)],
                     overall_magnitude=mt.magnitude(fm.theta, lengths))


def _top_words(phi: np.ndarray, vocab: list[str], n: int) -> list[list[str]]:
    return [[vocab[i] for i in np.argsort(-row)[:n]] for row in phi]


def _project(phi: np.ndarray, vocab: list[str], target: dict[str, int]) -> np.ndarray:
    """Topic-word rows re-indexed onto another vocabulary (words it lacks are dropped, rows renormalised)."""
    out = np.zeros((phi.shape[0], len(target)))
    for i, w in enumerate(vocab):
        j = target.get(w)
        if j is not None:
            out[:, j] = phi[:, i]
    return mt.normalise(out + 1e-12)


def load_previous(folder: str) -> dict:
    path = Path(folder)
    if not (path / "model.npz").is_file() or not (path / "summary.json").is_file():
        raise UserInputError(f"previous run folder {path} has no model.npz / summary.json (run map-landscape first)")
    with np.load(path / "model.npz", allow_pickle=False) as z:
        prev = {k: z[k] for k in z.files}
    prev["summary"] = read_json(path / "summary.json")
    return prev


def compare_iterations(view: ModelView, vocab: list[str], prev: dict, jsd_new: float = 0.5,
                       lineage: float = 0.3) -> dict:
    """Model change, entropy shift, trend-label diff and topic splits / merges against the previous iteration."""
    index = {w: i for i, w in enumerate(vocab)}
    old_phi = _project(prev["phi"], [str(w) for w in prev["vocabulary"]], index)
    change = mt.model_change(view.fitted.phi, old_phi, view.overall_magnitude, prev["magnitude"])
    old_labels = prev["summary"]["topics"]
    pi, d = np.array(change["matching"]), np.array(change["matched_jsd"])
    rows = []
    for k in range(view.fitted.k):
        matched = pi[k] >= 0 and d[k] / mt.LN2 < jsd_new
        rows.append({"topic": k, "previous_topic": int(pi[k]) if matched else None,
                     "jsd": float(d[k]), "status": "matched" if matched else "new",
                     "label": view.trends[k]["label"],
                     "previous_label": old_labels[pi[k]]["label"] if matched else None})
    h_now = float(mt.entropy(view.overall_magnitude))
    return {**{k: v for k, v in change.items() if k not in ("matching", "matched_jsd")},
            "entropy_shift": h_now - float(mt.entropy(prev["magnitude"])),
            "new_topics": sum(r["status"] == "new" for r in rows),
            "label_changes": sum(r["status"] == "matched" and r["label"] != r["previous_label"] for r in rows),
            **mt.split_merge(mt.jsd_matrix(view.fitted.phi, old_phi), lineage),
            "topics": rows}


def feedback_file(aspects: asp.Aspects | None, aspect_view: ModelView | None, base: ModelView, ranking: list[int],
                  vocab: list[str], n_suggest: int = 5) -> str:
    """An editable TOML of aspect -> keyword -> weight for the next iteration: the experts' keywords kept, words
    the seeded topic put high but nobody listed suggested (weight = their probability relative to the top word),
    and, without aspects, the top-ranked topics proposed as candidate aspects."""
    lines = ["# Expert feedback for the next map-landscape iteration: edit weights (>= 0), delete lines, add aspects.",
             "# Pass it back with --aspects this-file.toml (and --previous this-run-folder).", ""]
    if aspects is not None:
        phi = aspect_view.fitted.phi
        for a, name in enumerate(aspects.names):
            lines.append(f"[{_toml_key(name)}]")
            known = set()
            for kw, w in aspects.keywords[name].items():
                lines.append(f"{_toml_key(kw)} = {w:g}")
                known.update(aspects.matched[name].get(kw, []))
            order = [i for i in np.argsort(-phi[a]) if vocab[i] not in known][:n_suggest]
            top = phi[a].max()
            lines += [f"{_toml_key(vocab[i])} = {phi[a, i] / top:.2f}  # suggested" for i in order]
            if aspects.missing.get(name):
                lines.append(f"# not in the vocabulary: {', '.join(aspects.missing[name])}")
            lines.append("")
    else:
        for k in ranking[:5]:
            row = base.fitted.phi[k]
            lines.append(f"[{_toml_key('topic_' + str(k))}]  # {base.trends[k]['label']}; rename to an aspect")
            top = row.max()
            lines += [f"{_toml_key(vocab[i])} = {row[i] / top:.2f}" for i in np.argsort(-row)[:n_suggest]]
            lines.append("")
    return "\n".join(lines)


def _toml_key(s: str) -> str:
    import json
    import re

    return s if re.fullmatch(r"[A-Za-z0-9_-]+", s) else json.dumps(s)


def _slice_rows(view: ModelView, labels: list[str], counts, support, shifts: list[dict]) -> list[dict]:
    rows = []
    for s, label in enumerate(labels):
        prev = view.mix_entropy[s - 1] if s else np.nan
        ci = shifts[s - 1] if s else {}
        rows.append({"model": view.name, "slice": s, "label": label, "documents": counts[s],
                     "supported": bool(support[s] > 0),
                     "mix_entropy": view.mix_entropy[s], "entropy_shift": view.mix_entropy[s] - prev,
                     "shift_ci_low": ci.get("ci_low"), "shift_ci_high": ci.get("ci_high"),
                     "shift_significant": ci.get("significant"),
                     "mean_doc_entropy": view.doc_entropy[s],
                     "mean_word_entropy": np.nanmean(view.word_entropy[s]) if counts[s] else np.nan})
    return rows


def _topic_rows(view: ModelView, words: list[list[str]], rank: dict[int, int] | None, labels: list[str],
                extra=None) -> list[dict]:
    rows = []
    h = mt.entropy(view.fitted.phi)
    for k, t in enumerate(view.trends):
        rows.append({"model": view.name, "topic": k, "rank": rank.get(k) if rank else None,
                     "label": t["label"], "magnitude": view.overall_magnitude[k], "slope": t["slope"],
                     "slope_ci_low": t["ci_low"], "slope_ci_high": t["ci_high"], "p_value": t["p_value"],
                     "relative_change": t["relative_change"], "peak_slice": t["peak_slice"],
                     "peak_label": labels[t["peak_slice"]] if t["peak_slice"] is not None else None,
                     "word_entropy": h[k],
                     "mean_drift_jsd": np.nanmean(view.drift[:, k]) if np.isfinite(view.drift[:, k]).any()
                     else np.nan, "top_words": " ".join(words[k]), **(extra[k] if extra else {})})
    return rows


@dataclasses.dataclass
class Inputs:
    """The corpus, vocabulary, aspects and previous run, read and checked before any result is written."""
    corpus: cp.Corpus
    dictionary: object
    bow: list
    vocab: list[str]
    lengths: np.ndarray  # tokens per document in the model vocabulary
    ingest: dict
    aspects: asp.Aspects | None
    previous: dict | None
    truth: object | None  # PlantedTruth of a synthetic corpus
    ks: list[int]  # the K to fit, or the candidates of the coherence sweep
    min_slice_docs: int
    coherence_window: int | None  # None: gensim's sliding windows; else one window per document


def derived_k_range(n_docs: int, points: int = 8) -> list[int]:
    """K candidates for k_range = 'auto': geometric from 2 to round(sqrt(D / 2)) (at least 3, at most 60) [R]."""
    top = min(60, max(3, round(math.sqrt(n_docs / 2))))
    return sorted({int(round(x)) for x in np.geomspace(2, top, points)})


def check_settings(cfg: LandscapeConfig) -> None:
    """Checks that need no file: time bins, date window, K / K range, LDA options, backend, synthetic corpus."""
    cp.check_bin(cfg.bin)
    for name in ("date_from", "date_to"):
        value = getattr(cfg, name)
        if value and cp.parse_date(value) is None:
            raise UserInputError(f"{name} must be an ISO date like 2026-01-12, got {value!r}")
    if cfg.date_from and cfg.date_to and cp.parse_date(cfg.date_from) > cp.parse_date(cfg.date_to):
        raise UserInputError(f"date_from {cfg.date_from} is after date_to {cfg.date_to}")
    if cfg.k == 1:
        raise UserInputError("k must be at least 2 (or 0: chosen by coherence over k_range)")
    if not cfg.k and cfg.k_range != "auto":
        md.parse_k_range(cfg.k_range)
    md.check_settings(cfg.lda)
    if cfg.backend == "ray" and importlib.util.find_spec("ray") is None:
        raise UserInputError("the ray backend needs Ray: pip install 'toolbox[ray]'")
    if cfg.seed_strength_grid and not cfg.aspects:
        raise UserInputError("seed_strength_grid calibrates the aspect model: pass --aspects too")
    syn = cfg.synthetic
    if (cfg.source == "synthetic" or cfg.format == "synthetic") and syn.vocabulary < syn.topics:
        raise UserInputError(f"synthetic.vocabulary ({syn.vocabulary}) must be at least synthetic.topics "
                             f"({syn.topics})")


def prepare(cfg: LandscapeConfig, seed: int, log: Callable[[str], None] = lambda m: None) -> Inputs:
    """Every check on settings and input files, and the ingest: what fails here fails before the run folder."""
    check_settings(cfg)
    keywords = asp.read_aspects_file(cfg.aspects) if cfg.aspects else None
    prev = load_previous(cfg.previous) if cfg.previous else None
    truth = None
    if cfg.source == "synthetic" or cfg.format == "synthetic":
        docs, truth = generate(cfg.synthetic, seed)
    else:
        docs = cp.load_documents(cfg.source, cfg.format, cfg.text_field, cfg.date_field, cfg.title_field)
    corpus = cp.clean(docs, cfg.bin, cfg.stem, cfg.phrases, cfg.stopwords, cfg.min_tokens, cfg.date_from,
                      cfg.date_to)
    dictionary, bow, vocab_report = md.build_dictionary(corpus.tokens, cfg.min_df, cfg.max_df)
    vocab = [dictionary[i] for i in range(len(dictionary))]
    lengths = np.array([sum(c for _, c in b) for b in bow], dtype=np.float64)
    if not (lengths > 0).any():
        raise UserInputError("no document has a word left after vocabulary filtering")
    ks = [cfg.k] if cfg.k else derived_k_range(len(corpus)) if cfg.k_range == "auto" else \
        md.parse_k_range(cfg.k_range)
    aspects = asp.match_aspects(keywords, dictionary.token2id, cp.stemmer() if cfg.stem else None) \
        if keywords else None
    if aspects and len(aspects.names) > min(ks):
        raise UserInputError(f"{len(aspects.names)} aspects need at least {len(aspects.names)} topics, "
                             f"got K = {min(ks)}")
    counts = corpus.report["documents_per_slice"]
    min_docs = cfg.min_slice_docs or mt.min_slice_docs(counts)
    low = [s for s, c in enumerate(counts) if 0 < c < min_docs]
    ingest = {**corpus.report, **vocab_report, "token_order": "original" if corpus.ordered else "bag of words",
              "slice_support": {"min_slice_docs": min_docs,
                                "rule": "set" if cfg.min_slice_docs else
                                "derived: max(5, ceil(0.1 x mean documents per non-empty slice))",
                                "flagged": [{"slice": s, "label": corpus.slice_labels[s], "documents": counts[s]}
                                            for s in low],
                                "empty": [corpus.slice_labels[s] for s, c in enumerate(counts) if c == 0]}}
    log(f"ingest: {ingest['documents_kept']} of {ingest['documents_read']} documents, "
        f"{len(vocab)} words, {len(counts)} slices ({cfg.bin})")
    if low:
        log(f"{len(low)} slice(s) with fewer than {min_docs} documents kept out of peaks and trends: "
            + ", ".join(f"{corpus.slice_labels[s]} ({counts[s]})" for s in low))
    return Inputs(corpus=corpus, dictionary=dictionary, bow=bow, vocab=vocab, lengths=lengths, ingest=ingest,
                  aspects=aspects, previous=prev, truth=truth, ks=ks, min_slice_docs=min_docs,
                  coherence_window=None if corpus.ordered else max(len(t) for t in corpus.tokens))


def run(cfg: LandscapeConfig, out: Path, seed: int, log: Callable[[str], None] = lambda m: None,
        inputs: Inputs | None = None) -> dict:
    """The whole pipeline into run folder `out` (from `inputs` = prepare(cfg, seed) when given); returns the
    summary (also written as summary.json)."""
    timings = {}
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    # 1. ingest: done before the run folder exists when the CLI calls prepare() first
    inp = inputs or prepare(cfg, seed, log)
    corpus, dictionary, bow, vocab, lengths = inp.corpus, inp.dictionary, inp.bow, inp.vocab, inp.lengths
    aspects, prev, truth, ingest = inp.aspects, inp.previous, inp.truth, inp.ingest
    slices = np.array(corpus.slices)
    n_slices = len(corpus.slice_labels)
    counts = ingest["documents_per_slice"]
    support = np.array([c if c >= inp.min_slice_docs else 0 for c in counts])
    lap("ingest")

    # 2. base model, K fixed or by coherence
    k, sweep = inp.ks[0], []
    if len(inp.ks) > 1:
        k, sweep = md.select_k(bow, dictionary, corpus.tokens, inp.ks, seed, cfg.lda, cfg.coherence, cfg.backend,
                               window=inp.coherence_window)
        log(f"coherence ({cfg.coherence}) chose K = {k} of {inp.ks}")
    base = describe("base", md.fit(bow, dictionary, k, seed, cfg.lda, slices, n_slices), lengths, slices, n_slices,
                    support)
    lap("base_model")

    # 3. aspect model: seeded prior (lambda fixed or calibrated) + cosine alignment
    aview, alignment, calibration, strength = None, None, [], cfg.seed_strength
    if aspects:
        if cfg.seed_strength_grid:
            strength, calibration = calibrate_strength(bow, dictionary, k, seed, cfg, aspects.weights,
                                                       base.fitted.perplexity)
            log(f"calibrated seed strength lambda = {strength:g}")
        eta, boost = asp.seeded_prior(aspects.weights, k, 1.0 / k, strength)
        aview = describe("aspect", md.fit(bow, dictionary, k, seed, cfg.lda, slices, n_slices, eta, boost),
                         lengths, slices, n_slices, support)
        alignment = asp.align(asp.tfidf_rows(bow, len(vocab)), aspects.weights, cfg.tau, cfg.align_mu,
                              cfg.align_max_iter)
        missing = {a: m for a, m in aspects.missing.items() if m}
        if missing:
            log("aspect keywords not in the vocabulary: " + "; ".join(f"{a}: {', '.join(m)}"
                                                                     for a, m in missing.items()))
        lap("aspect_model")

    # 4. RL topic selection on the base topics
    selection = select_topics(base.fitted.phi, base.trends, aspects.weights if aspects else None, cfg.select, seed)
    rank = {t: i + 1 for i, t in enumerate(selection["ranking"])}
    lap("selection")

    # 5. comparisons: base vs aspect model, previous iteration
    words = _top_words(base.fitted.phi, vocab, cfg.top_words)
    base_vs_aspect = (mt.model_change(aview.fitted.phi, base.fitted.phi, aview.overall_magnitude,
                                      base.overall_magnitude) if aview else None)
    iteration = compare_iterations(base, vocab, prev) if prev else None
    if iteration and aview and "aspect_phi" in prev:  # the aspect model against the previous aspect model
        old = _project(prev["aspect_phi"], [str(w) for w in prev["vocabulary"]], {w: i for i, w in enumerate(vocab)})
        change = mt.model_change(aview.fitted.phi, old, aview.overall_magnitude, prev["aspect_magnitude"])
        iteration["aspect_model"] = {"model_change_jsd": change["model_change_jsd"],
                                     "matched_similarity": change["matched_similarity"],
                                     "mix_shift_kl": change["mix_shift_kl"],
                                     "entropy_shift": float(mt.entropy(aview.overall_magnitude)
                                                            - mt.entropy(prev["aspect_magnitude"]))}

    # 6. write metrics
    views = [base] + ([aview] if aview else [])
    write_json(out / "ingest_report.json", ingest)
    if sweep:
        write_csv(out / "coherence.csv", sweep)
    if calibration:
        write_csv(out / "calibration.csv", calibration)
    shifts = {v.name: _supported_shifts(mt.entropy_shift_ci(v.fitted.theta, lengths, slices, n_slices,
                                                            numpy_generator(seed, 43)), support) for v in views}
    write_csv(out / "slices.csv", [r for v in views
                                   for r in _slice_rows(v, corpus.slice_labels, counts, support, shifts[v.name])])
    extra = [{"aspect_similarity": selection["aspect_similarity"][j], "trend_score": selection["trend_score"][j]}
             for j in range(k)]
    topic_rows = _topic_rows(base, words, rank, corpus.slice_labels, extra)
    if aview:
        topic_rows += _topic_rows(aview, _top_words(aview.fitted.phi, vocab, cfg.top_words), None,
                                  corpus.slice_labels)
    write_csv(out / "topics.csv", topic_rows)
    write_csv(out / "magnitude.csv", [{"model": v.name, "slice": s, "label": corpus.slice_labels[s], "topic": j,
                                       "magnitude": v.magnitude[s, j], "doc_share": v.doc_share[s, j],
                                       "word_entropy": v.word_entropy[s, j], "drift_jsd": v.drift[s, j]}
                                      for v in views for s in range(n_slices) for j in range(k)])
    write_csv(out / "rl_curve.csv", [{"episode": i + 1, "return": r}
                                     for i, r in enumerate(selection["learning_curve"])])
    sim_jsd = mt.jsd_matrix(base.fitted.phi, base.fitted.phi)
    np.savetxt(out / "similarity_jsd.csv", sim_jsd, delimiter=",", fmt="%.6f")
    np.savetxt(out / "similarity_cosine.csv", mt.cosine_matrix(base.fitted.phi, base.fitted.phi), delimiter=",",
               fmt="%.6f")
    representative = {j: [int(d) for d in np.argsort(-base.fitted.theta[:, j])[:cfg.representative_docs]]
                      for j in range(k)}
    if alignment is not None:
        write_csv(out / "alignment.csv", [{"doc_id": corpus.doc_ids[d], "title": corpus.titles[d],
                                           "date": corpus.dates[d].isoformat(),
                                           "aspect": aspects.names[a] if a >= 0 else "",
                                           "score": alignment["scores"][d].max(),
                                           "seeded_topic_share": aview.fitted.theta[d, a] if a >= 0 else 0.0}
                                          for d, a in enumerate(alignment["assignment"])])
    buf = io.BytesIO()
    aspect_arrays = {"aspect_phi": aview.fitted.phi, "aspect_magnitude": aview.overall_magnitude} if aview else {}
    np.savez_compressed(buf, phi=base.fitted.phi, vocabulary=np.array(vocab), magnitude=base.overall_magnitude,
                        magnitude_by_slice=base.magnitude, **aspect_arrays)
    atomic_write_bytes(out / "model.npz", buf.getvalue())
    atomic_write_text(out / "aspects_feedback.toml",
                      feedback_file(aspects, aview, base, selection["ranking"], vocab))
    lap("write_metrics")

    summary = {
        "source": cfg.source, "documents": len(corpus), "vocabulary": len(vocab), "slices": n_slices,
        "slice_labels": corpus.slice_labels, "k": k, "k_candidates": inp.ks, "coherence_sweep": sweep,
        "coherence_window": inp.coherence_window or "gensim default (c_v 110, c_npmi 10 tokens)",
        "slice_support": ingest["slice_support"],
        "base": {**_model_summary(base, support), "entropy_shifts": shifts["base"]},
        "aspect": ({**_aspect_summary(aspects, aview, alignment, counts, slices, support),
                    "seed_strength": strength,
                    "calibration": calibration} if aview else None),
        "base_vs_aspect": ({kk: v for kk, v in base_vs_aspect.items() if kk != "matched_jsd"}
                           if base_vs_aspect else None),
        "iteration": iteration,
        "selection": {kk: v for kk, v in selection.items() if kk != "learning_curve"},
        "topics": [{"topic": j, "rank": rank[j], "label": base.trends[j]["label"], "top_words": words[j],
                    "magnitude": base.overall_magnitude[j], "slope": base.trends[j]["slope"],
                    "peak": (corpus.slice_labels[base.trends[j]["peak_slice"]]
                             if base.trends[j]["peak_slice"] is not None else None),
                    "representative": [{"doc_id": corpus.doc_ids[d], "title": corpus.titles[d],
                                        "date": corpus.dates[d].isoformat(), "share": base.fitted.theta[d, j]}
                                       for d in representative[j]]} for j in range(k)],
        "ingest": ingest,
    }
    if truth is not None:
        summary["planted"] = planted_check(truth, base, vocab, selection["ranking"], support)
    if cfg.plots:
        from toolbox.landscape import report

        summary["files"] = report.write_report(out, summary, base, aview, vocab, corpus, selection, sim_jsd)
        lap("report")
    summary["timings_s"] = timings
    write_json(out / "summary.json", summary)
    if cfg.plots:
        from toolbox.report import write_report

        write_report(out)  # one self-contained page: report.md rendered, figures inlined, tables
    return summary


def _strength_task(task) -> dict:
    """One lambda of the calibration: how many seeded topics hold a keyword of their aspect among their top words,
    those topics' u_mass coherence, and the model's perplexity."""
    bow, dictionary, k, seed, settings, weights, strength, top_n = task
    lda = md.fit_lda(bow, dictionary, k, seed, settings, *asp.seeded_prior(weights, k, 1.0 / k, strength))
    phi = lda.get_topics().astype(np.float64)
    gamma = lda.inference(bow)[0]
    theta = gamma / gamma.sum(axis=1, keepdims=True)
    tops = [np.argsort(-phi[a])[:top_n] for a in range(weights.shape[0])]
    from gensim.models import CoherenceModel

    umass = CoherenceModel(topics=[[dictionary[i] for i in t] for t in tops], corpus=bow, dictionary=dictionary,
                           coherence="u_mass").get_coherence()
    held = int(sum((weights[a, t] > 0).any() for a, t in enumerate(tops)))
    return {"seed_strength": strength, "seeded_aspects": held, "aspect_coherence_u_mass": float(umass),
            "perplexity": md.perplexity(phi, theta, bow)}


def calibrate_strength(bow, dictionary, k, seed, cfg: LandscapeConfig, weights, base_perplexity: float):
    """Choose lambda (topics.md §6 "beyond the anchors" 3) [R]: among the grid values whose perplexity stays within
    (1 + max_perplexity_increase) of the base model's, the one whose seeded topics hold their aspects (a keyword in
    the top words) for the most aspects, then the most coherent (u_mass), then the smallest lambda."""
    from toolbox.core.executor import map_tasks

    grid = sorted(set(cfg.seed_strength_grid))
    if min(grid) < 0:
        raise UserInputError("seed_strength_grid values must be >= 0")
    rows = map_tasks(_strength_task, [(bow, dictionary, k, seed, cfg.lda, weights, g, cfg.top_words) for g in grid],
                     backend=cfg.backend)
    limit = (1.0 + cfg.max_perplexity_increase) * base_perplexity
    for r in rows:
        r["perplexity_ratio"] = r["perplexity"] / base_perplexity
        r["admissible"] = r["perplexity"] <= limit
    best = max(rows, key=lambda r: (r["admissible"], r["seeded_aspects"], round(r["aspect_coherence_u_mass"], 9),
                                    -r["seed_strength"]))
    for r in rows:
        r["chosen"] = r is best
    return best["seed_strength"], rows


def _supported_shifts(shifts: list[dict], support: np.ndarray) -> list[dict]:
    """A shift from or to a slice with too few documents is marked low_support and is no change point."""
    out = []
    for e in shifts:
        low = not (support[e["slice"]] > 0 and support[e["slice"] - 1] > 0)
        out.append({**e, "low_support": low, "significant": e["significant"] and not low})
    return out


def _model_summary(v: ModelView, support) -> dict:
    return {"perplexity": v.fitted.perplexity, "mix_entropy": v.mix_entropy.tolist(),
            "mean_doc_entropy": v.doc_entropy.tolist(),
            "entropy_shift_first_last": _first_last_shift(np.where(support > 0, v.mix_entropy, np.nan)),
            "overall_mix_entropy": float(mt.entropy(v.overall_magnitude)),
            "labels": {lab: sum(t["label"] == lab for t in v.trends) for lab in ("emerging", "fading", "stable")}}


def _first_last_shift(h: np.ndarray) -> float | None:
    ok = np.flatnonzero(np.isfinite(h))
    return float(h[ok[-1]] - h[ok[0]]) if len(ok) > 1 else None


def _aspect_summary(aspects: asp.Aspects, view: ModelView, alignment: dict, counts, slices, support) -> dict:
    assign = alignment["assignment"]
    per_slice = [[int(((slices == s) & (assign == a)).sum()) for s in range(len(counts))]
                 for a in range(len(aspects.names))]
    return {"names": aspects.names, "missing_keywords": aspects.missing, "matched_keywords": aspects.matched,
            "perplexity": view.fitted.perplexity, "alignment_history": alignment["history"],
            "converged": alignment["converged"],
            "documents": {n: int((assign == a).sum()) for a, n in enumerate(aspects.names)},
            "unassigned": int((assign == -1).sum()), "documents_per_slice": dict(zip(aspects.names, per_slice)),
            "seeded_topic_trends": {n: view.trends[a] for a, n in enumerate(aspects.names)},
            "mix_entropy": view.mix_entropy.tolist(),
            "entropy_shift_first_last": _first_last_shift(np.where(support > 0, view.mix_entropy, np.nan))}


def planted_check(truth, view: ModelView, vocab: list[str], ranking: list[int], support: np.ndarray) -> dict:
    """Recovery of the planted truth for any K: every model topic is mapped to its nearest planted topic (least
    JSD) and the magnitudes of the topics mapped to one planted topic are summed, so a planted topic split over
    several model topics (K above the planted count) is recovered whole. Checks: the rising topic is recovered
    (some model topic within JSD / ln 2 < 0.5 of it, and its summed magnitude labelled emerging), the summed
    magnitude follows the planted share (Pearson r >= 0.9), and H(M) of the summed mix moves the planted way (the
    sign of its support-weighted slope over the slices, which uses every slice rather than two noisy ends)."""
    index = {w: i for i, w in enumerate(truth.vocabulary)}
    planted_phi = mt.normalise(truth.phi[:, np.array([index[w] for w in vocab])])
    dist = mt.jsd_matrix(view.fitted.phi, planted_phi)  # [K, K_true]
    nearest = dist.argmin(axis=1)
    mix = np.stack([view.magnitude[:, nearest == t].sum(axis=1) for t in range(planted_phi.shape[0])], axis=1)
    r = truth.rising_topic
    mine = np.flatnonzero(nearest == r)
    ok = np.flatnonzero(support > 0)
    h_model, h_truth = mt.entropy(np.where(support[:, None] > 0, mix, np.nan)), mt.entropy(truth.mix)
    h_slope, h_slope_truth = mt.trend(h_model, support)["slope"], mt.trend(h_truth, support)["slope"]
    rising = mt.trend(mix[:, r], support)
    corr = float(np.corrcoef(mix[ok, r], truth.mix[ok, r])[0, 1])
    checks = {"rising_topic_recovered": bool(len(mine) and dist[mine, r].min() / mt.LN2 < 0.5
                                             and rising["label"] == "emerging"),
              "magnitude_correlation": corr >= 0.9,
              "entropy_direction": bool(np.sign(h_slope) == np.sign(h_slope_truth))}
    return {"model_topics_per_planted_topic": [np.flatnonzero(nearest == t).tolist()
                                               for t in range(planted_phi.shape[0])],
            "nearest_jsd": dist.min(axis=0).tolist(), "rising_topic_model_topics": mine.tolist(),
            "rising_topic_label": rising["label"], "magnitude_pearson_r": corr,
            "mix_entropy_first": float(h_model[ok[0]]), "mix_entropy_last": float(h_model[ok[-1]]),
            "mix_entropy_first_truth": float(h_truth[ok[0]]), "mix_entropy_last_truth": float(h_truth[ok[-1]]),
            "mix_entropy_slope": h_slope, "mix_entropy_slope_truth": h_slope_truth,
            "rising_topic_rank": min(ranking.index(int(j)) for j in mine) + 1 if len(mine) else None,
            "checks": checks, "passed": all(checks.values())}
