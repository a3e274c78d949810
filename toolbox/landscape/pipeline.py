"""`map-landscape`: ingest -> base model (CTP1) -> aspect model (ATM) -> metrics -> RL selection -> report.

One run is one iteration of the paper's expert loop: it writes an editable expert-feedback file
(aspects_feedback.toml) to pass as the next run's aspects, and with `previous` it reports the model change,
entropy shift and trend-label diff against the previous iteration's run folder.
"""
from __future__ import annotations

import dataclasses
import io
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
    k: Annotated[int, Field(ge=2)] = 39  # CTP1 of the paper has 39 topics
    k_range: str = ""  # e.g. "10:60:5": choose K by coherence
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
    trends: list[dict]
    overall_magnitude: np.ndarray


def describe(name: str, fm: md.FittedModel, lengths: np.ndarray, slices: np.ndarray, n_slices: int) -> ModelView:
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
                     word_entropy=word_h, drift=drift, trends=[mt.trend(mag[:, j]) for j in range(k)],
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


def _slice_rows(view: ModelView, labels: list[str], counts: list[int], shifts: list[dict]) -> list[dict]:
    rows = []
    for s, label in enumerate(labels):
        prev = view.mix_entropy[s - 1] if s else np.nan
        ci = shifts[s - 1] if s else {}
        rows.append({"model": view.name, "slice": s, "label": label, "documents": counts[s],
                     "mix_entropy": view.mix_entropy[s], "entropy_shift": view.mix_entropy[s] - prev,
                     "shift_ci_low": ci.get("ci_low"), "shift_ci_high": ci.get("ci_high"),
                     "shift_significant": ci.get("significant"),
                     "mean_doc_entropy": view.doc_entropy[s],
                     "mean_word_entropy": np.nanmean(view.word_entropy[s]) if counts[s] else np.nan})
    return rows


def _topic_rows(view: ModelView, words: list[list[str]], rank: dict[int, int] | None, extra=None) -> list[dict]:
    rows = []
    h = mt.entropy(view.fitted.phi)
    for k, t in enumerate(view.trends):
        rows.append({"model": view.name, "topic": k, "rank": rank.get(k) if rank else None,
                     "label": t["label"], "magnitude": view.overall_magnitude[k], "slope": t["slope"],
                     "slope_ci_low": t["ci_low"], "slope_ci_high": t["ci_high"], "p_value": t["p_value"],
                     "relative_change": t["relative_change"], "word_entropy": h[k],
                     "mean_drift_jsd": np.nanmean(view.drift[:, k]) if np.isfinite(view.drift[:, k]).any()
                     else np.nan, "top_words": " ".join(words[k]), **(extra[k] if extra else {})})
    return rows


def run(cfg: LandscapeConfig, out: Path, seed: int, log: Callable[[str], None] = lambda m: None) -> dict:
    """The whole pipeline into run folder `out`; returns the summary (also written as summary.json)."""
    timings = {}
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    # 1. ingest (the aspects file is read first: a bad file fails before any work)
    keywords = asp.read_aspects_file(cfg.aspects) if cfg.aspects else None
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
    slices = np.array(corpus.slices)
    n_slices = len(corpus.slice_labels)
    counts = [int((slices == s).sum()) for s in range(n_slices)]
    ingest = {**corpus.report, **vocab_report}
    log(f"ingest: {ingest['documents_kept']} of {ingest['documents_read']} documents, "
        f"{len(vocab)} words, {n_slices} slices ({cfg.bin})")
    aspects = asp.match_aspects(keywords, dictionary.token2id, cp.stemmer() if cfg.stem else None) \
        if keywords else None
    prev = load_previous(cfg.previous) if cfg.previous else None
    lap("ingest")

    # 2. base model, K fixed or by coherence
    k, sweep = cfg.k, []
    if cfg.k_range:
        k, sweep = md.select_k(bow, dictionary, corpus.tokens, md.parse_k_range(cfg.k_range), seed, cfg.lda,
                               cfg.coherence, cfg.backend)
        log(f"coherence ({cfg.coherence}) chose K = {k}")
    base = describe("base", md.fit(bow, dictionary, k, seed, cfg.lda, slices, n_slices), lengths, slices, n_slices)
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
                         lengths, slices, n_slices)
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
    shifts = {v.name: mt.entropy_shift_ci(v.fitted.theta, lengths, slices, n_slices, numpy_generator(seed, 43))
              for v in views}
    write_csv(out / "slices.csv", [r for v in views
                                   for r in _slice_rows(v, corpus.slice_labels, counts, shifts[v.name])])
    extra = [{"aspect_similarity": selection["aspect_similarity"][j], "trend_score": selection["trend_score"][j]}
             for j in range(k)]
    topic_rows = _topic_rows(base, words, rank, extra)
    if aview:
        topic_rows += _topic_rows(aview, _top_words(aview.fitted.phi, vocab, cfg.top_words), None)
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
        "slice_labels": corpus.slice_labels, "k": k, "coherence_sweep": sweep,
        "base": {**_model_summary(base), "entropy_shifts": shifts["base"]},
        "aspect": ({**_aspect_summary(aspects, aview, alignment, counts, slices), "seed_strength": strength,
                    "calibration": calibration} if aview else None),
        "base_vs_aspect": ({kk: v for kk, v in base_vs_aspect.items() if kk != "matched_jsd"}
                           if base_vs_aspect else None),
        "iteration": iteration,
        "selection": {kk: v for kk, v in selection.items() if kk != "learning_curve"},
        "topics": [{"topic": j, "rank": rank[j], "label": base.trends[j]["label"], "top_words": words[j],
                    "magnitude": base.overall_magnitude[j], "slope": base.trends[j]["slope"],
                    "representative": [{"doc_id": corpus.doc_ids[d], "title": corpus.titles[d],
                                        "date": corpus.dates[d].isoformat(), "share": base.fitted.theta[d, j]}
                                       for d in representative[j]]} for j in range(k)],
        "ingest": ingest,
    }
    if truth is not None:
        summary["planted"] = planted_check(truth, base, vocab, selection["ranking"])
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


def _model_summary(v: ModelView) -> dict:
    return {"perplexity": v.fitted.perplexity, "mix_entropy": v.mix_entropy.tolist(),
            "mean_doc_entropy": v.doc_entropy.tolist(),
            "entropy_shift_first_last": _first_last_shift(v.mix_entropy),
            "overall_mix_entropy": float(mt.entropy(v.overall_magnitude)),
            "labels": {lab: sum(t["label"] == lab for t in v.trends) for lab in ("emerging", "fading", "stable")}}


def _first_last_shift(h: np.ndarray) -> float | None:
    ok = np.flatnonzero(np.isfinite(h))
    return float(h[ok[-1]] - h[ok[0]]) if len(ok) > 1 else None


def _aspect_summary(aspects: asp.Aspects, view: ModelView, alignment: dict, counts, slices) -> dict:
    assign = alignment["assignment"]
    per_slice = [[int(((slices == s) & (assign == a)).sum()) for s in range(len(counts))]
                 for a in range(len(aspects.names))]
    return {"names": aspects.names, "missing_keywords": aspects.missing, "matched_keywords": aspects.matched,
            "perplexity": view.fitted.perplexity, "alignment_history": alignment["history"],
            "converged": alignment["converged"],
            "documents": {n: int((assign == a).sum()) for a, n in enumerate(aspects.names)},
            "unassigned": int((assign == -1).sum()), "documents_per_slice": dict(zip(aspects.names, per_slice)),
            "seeded_topic_trends": {n: view.trends[a] for a, n in enumerate(aspects.names)},
            "mix_entropy": view.mix_entropy.tolist()}


def planted_check(truth, view: ModelView, vocab: list[str], ranking: list[int]) -> dict:
    """Recovery of the planted truth: Hungarian-matched topics, magnitude correlation, H(M) at both ends."""
    index = {w: i for i, w in enumerate(truth.vocabulary)}
    cols = np.array([index[w] for w in vocab])
    pi, d = mt.hungarian_match(mt.normalise(truth.phi[:, cols]), view.fitted.phi)
    recovered = view.magnitude[:, pi[truth.rising_topic]]
    return {"matched_jsd": d.tolist(), "rising_topic_model_index": int(pi[truth.rising_topic]),
            "magnitude_pearson_r": float(np.corrcoef(recovered, truth.mix[:, truth.rising_topic])[0, 1]),
            "mix_entropy_first": float(view.mix_entropy[0]), "mix_entropy_last": float(view.mix_entropy[-1]),
            "mix_entropy_first_truth": float(mt.entropy(truth.mix[0])),
            "mix_entropy_last_truth": float(mt.entropy(truth.mix[-1])),
            "rising_topic_rank": ranking.index(int(pi[truth.rising_topic])) + 1}
