"""Synthesis (topics.md §1.2 step 5): PNG plots and a Markdown report for expert review (its HTML page: toolbox.report)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolbox.core.io import atomic_write_text, save_figure

PLOTS = ("topic_words.png", "magnitude.png", "entropy.png", "similarity.png", "rl_curve.png")


def _figure(w=7.0, h=4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def plot_topic_words(path: Path, phi: np.ndarray, vocab: list[str], per_topic: int = 3, max_words: int = 40):
    words = list(dict.fromkeys(i for row in phi for i in np.argsort(-row)[:per_topic]))[:max_words]
    fig, ax = _figure(max(6.0, 0.25 * phi.shape[0] + 3), max(4.0, 0.2 * len(words) + 1))
    im = ax.imshow(phi[:, words].T, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(words)), [vocab[i] for i in words], fontsize=7)
    ax.set_xticks(range(phi.shape[0]), range(phi.shape[0]), fontsize=7)
    ax.set_xlabel("topic")
    ax.set_title("Word-topic distribution: top words per topic")
    fig.colorbar(im, ax=ax, label="p(word | topic)")
    save_figure(fig, path)


def plot_magnitude(path: Path, magnitude: np.ndarray, labels: list[str], ranking: list[int], flagged: list[int],
                   highlight: int = 5):
    fig, ax = _figure()
    x = np.arange(len(labels))
    for i, s in enumerate(flagged):  # too few documents: out of peaks and trends
        ax.axvspan(s - 0.5, s + 0.5, color="grey", alpha=0.2, lw=0, label="too few documents" if i == 0 else None)
    for k in range(magnitude.shape[1]):
        top = k in ranking[:highlight]
        ax.plot(x, magnitude[:, k], lw=2 if top else 0.6, alpha=1 if top else 0.35, marker="o" if top else None,
                ms=3, label=f"topic {k} (rank {ranking.index(k) + 1})" if top else None)
    ax.set_xticks(x, labels, rotation=60, fontsize=7)
    ax.set_ylabel("magnitude (token share)")
    ax.set_title("Topic magnitude over time (top-ranked topics bold)")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_entropy(path: Path, views, labels: list[str]):
    fig, ax = _figure()
    x = np.arange(len(labels))
    for v in views:
        ax.plot(x, v.mix_entropy, marker="o", label=f"{v.name}: topic-mix H(M)")
        ax.plot(x, v.doc_entropy, ls="--", label=f"{v.name}: mean document H(theta)")
    ax.set_xticks(x, labels, rotation=60, fontsize=7)
    ax.set_ylabel("entropy (nats)")
    ax.set_title("Entropy timeline")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_similarity(path: Path, jsd: np.ndarray):
    fig, ax = _figure(5.5, 4.5)
    im = ax.imshow(1.0 - jsd / np.log(2), vmin=0, vmax=1, cmap="magma")
    ax.set_xlabel("topic")
    ax.set_ylabel("topic")
    ax.set_title("Topic similarity 1 - JSD / ln 2")
    fig.colorbar(im, ax=ax)
    save_figure(fig, path)


def plot_rl(path: Path, selection: dict):
    fig, ax = _figure()
    curve = np.asarray(selection["learning_curve"])
    window = max(1, len(curve) // 20)
    ax.plot(curve, lw=0.5, alpha=0.4, label="episode return")
    ax.plot(np.arange(window - 1, len(curve)), np.convolve(curve, np.ones(window) / window, "valid"),
            label=f"moving mean ({window})")
    comp = selection["comparison"]
    ax.axhline(comp["greedy"]["value"], color="green", ls=":", label="greedy set value")
    ax.axhline(comp["random_mean"], color="red", ls=":", label="random set value (mean)")
    ax.set_xlabel("episode")
    ax.set_ylabel("R(T)")
    ax.set_title(f"RL topic selection ({selection['agent']})")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def markdown(summary: dict, plots: list[str]) -> str:
    s = summary
    lines = [f"# Technology landscape: {s['source']}", "",
             f"{s['documents']} documents, {s['vocabulary']} words, {s['slices']} time slices "
             f"({s['slice_labels'][0]} .. {s['slice_labels'][-1]}), K = {s['k']} topics.", ""]
    ing = s["ingest"]
    dropped = ", ".join(f"{n} {r}" for r, n in ing["dropped"].items()) or "none"
    lines += [f"Ingest: {ing['documents_kept']} of {ing['documents_read']} kept; dropped: {dropped}.", ""]
    sup = s["slice_support"]
    flagged = ", ".join(f"{f['label']} ({f['documents']} documents)" for f in sup["flagged"])
    lines += [f"Slice support: slices with fewer than {sup['min_slice_docs']} documents ({sup['rule']}) are kept "
              f"out of peaks and trends, which weight each slice by its documents; flagged: {flagged or 'none'}"
              + (f"; empty: {', '.join(sup['empty'])}" if sup["empty"] else "") + ".", ""]
    if s["coherence_sweep"]:
        lines += [f"K = {s['k']} chosen by coherence over {s['k_candidates']} (coherence.csv; window: "
                  f"{s['coherence_window']}).", ""]
    b = s["base"]
    lines += ["## Base model (CTP1)", "",
              f"Perplexity {b['perplexity']:.1f}; topic-mix entropy over the whole corpus "
              f"{b['overall_mix_entropy']:.4f} nats; first-to-last slice entropy shift "
              f"{_num(b['entropy_shift_first_last'])}; trends: {b['labels']}.", "",
              "Entropy shifts between slices (bootstrap 95 % interval; * = interval excludes 0): " + ", ".join(
                  f"{s['slice_labels'][e['slice']]} {_num(e['shift'])}{'*' if e['significant'] else ''}"
                  f"{' (low support)' if e['low_support'] else ''}"
                  for e in b["entropy_shifts"]) + ".", "",
              "## Ranked trends (RL selection)", "",
              "| rank | topic | label | magnitude | slope / slice | peak | top words |",
              "|---|---|---|---|---|---|---|"]
    for t in sorted(s["topics"], key=lambda t: t["rank"]):
        lines.append(f"| {t['rank']} | {t['topic']} | {t['label']} | {t['magnitude']:.4f} | {t['slope']:+.5f} | "
                     f"{t['peak'] or 'n/a'} | {' '.join(t['top_words'][:8])} |")
    comp = s["selection"]["comparison"]
    lines += ["", f"Selected set value R(T): agent {comp['agent']['value']:.4f}, greedy "
                  f"{comp['greedy']['value']:.4f}, random mean {comp['random_mean']:.4f} "
                  f"(best random {comp['random_best']:.4f}).", ""]
    if s.get("aspect"):
        a = s["aspect"]
        lines += ["## Aspect model (ATM)", "", f"Perplexity {a['perplexity']:.1f} (base {b['perplexity']:.1f}); "
                  f"alignment {'converged' if a['converged'] else 'stopped'} after "
                  f"{len(a['alignment_history'])} iterations; unassigned documents {a['unassigned']}.", "",
                  "| aspect | documents | seeded-topic trend | slope |", "|---|---|---|---|"]
        for n in a["names"]:
            tr = a["seeded_topic_trends"][n]
            lines.append(f"| {n} | {a['documents'][n]} | {tr['label']} | {tr['slope']:+.5f} |")
        if a.get("calibration"):
            lines += ["", f"Seed strength lambda = {a['seed_strength']:g}, calibrated: " + ", ".join(
                f"{r['seed_strength']:g} ({r['seeded_aspects']} aspects held, u_mass "
                f"{r['aspect_coherence_u_mass']:.3f}, perplexity x"
                f"{r['perplexity_ratio']:.3f}{'' if r['admissible'] else ', over the limit'})"
                for r in a["calibration"]) + "."]
        missing = {k: v for k, v in a["missing_keywords"].items() if v}
        if missing:
            lines += ["", "Keywords not in the vocabulary: " + "; ".join(f"{k}: {', '.join(v)}"
                                                                        for k, v in missing.items())]
        lines.append("")
    if s.get("base_vs_aspect"):
        c = s["base_vs_aspect"]
        lines += [f"Model change base -> aspect: mean matched JSD {c['model_change_jsd']:.4f}, matched similarity "
                  f"{c['matched_similarity']:.4f}, topic-mix KL {c.get('mix_shift_kl', float('nan')):.4f}.", ""]
    if s.get("iteration"):
        it = s["iteration"]
        lines += ["## Diff against the previous iteration", "",
                  f"Model change {it['model_change_jsd']:.4f} (matched similarity {it['matched_similarity']:.4f}); "
                  f"entropy shift {it['entropy_shift']:+.4f} nats; new topics {it['new_topics']}; "
                  f"trend-label changes {it['label_changes']}; merges {it['merges'] or 'none'}; splits "
                  f"{it['splits'] or 'none'}.", ""]
        if it.get("aspect_model"):
            am = it["aspect_model"]
            lines += [f"Aspect model against the previous aspect model: change {am['model_change_jsd']:.4f} (matched "
                      f"similarity {am['matched_similarity']:.4f}), entropy shift {am['entropy_shift']:+.4f} nats.", ""]
    if s.get("planted"):
        p = s["planted"]
        lines += ["## Planted truth (synthetic)", "",
                  "Model topics mapped to their nearest planted topic, magnitudes summed: rising topic "
                  f"{p['rising_topic_label']} (model topics {p['rising_topic_model_topics']}, best rank "
                  f"{p['rising_topic_rank']}); magnitude Pearson r {p['magnitude_pearson_r']:.4f}; H(M) first "
                  f"{p['mix_entropy_first']:.4f} (truth {p['mix_entropy_first_truth']:.4f}), last "
                  f"{p['mix_entropy_last']:.4f} (truth {p['mix_entropy_last_truth']:.4f}); checks "
                  + ", ".join(f"{k} {'passed' if v else 'FAILED'}" for k, v in p["checks"].items()) + ".", ""]
    lines += ["## Representative documents", ""]
    for t in sorted(s["topics"], key=lambda t: t["rank"])[:10]:
        lines.append(f"- topic {t['topic']} ({t['label']}): " + "; ".join(
            f"{r['title'][:80]} ({r['date']}, {r['share']:.2f})" for r in t["representative"]))
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "Expert feedback for the next iteration: edit `aspects_feedback.toml` and run again with "
                  "`--aspects aspects_feedback.toml --previous <this folder>`.", ""]
    return "\n".join(lines)


def _num(v) -> str:
    return "n/a" if v is None else f"{v:+.4f}"


def write_report(out: Path, summary: dict, base, aspect_view, vocab, corpus, selection, sim_jsd) -> list[str]:
    """All plots and report.md (report.html is made from the finished run folder); returns the file names."""
    plot_topic_words(out / PLOTS[0], base.fitted.phi, vocab)
    plot_magnitude(out / PLOTS[1], base.magnitude, corpus.slice_labels, selection["ranking"],
                   [f["slice"] for f in summary["slice_support"]["flagged"]])
    plot_entropy(out / PLOTS[2], [v for v in (base, aspect_view) if v is not None], corpus.slice_labels)
    plot_similarity(out / PLOTS[3], sim_jsd)
    plot_rl(out / PLOTS[4], selection)
    text = markdown(summary, list(PLOTS))
    atomic_write_text(out / "report.md", text)
    return [*PLOTS, "report.md", "report.html"]
