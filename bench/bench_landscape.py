"""Throughput of `map-landscape` against plain gensim (LdaModel or LdaMulticore) on the same corpus and settings.

    python bench/bench_landscape.py --corpus synthetic|reuters|PATH [--k 39] [--passes 10] [--json out.json]

Prints documents per second of (a) plain gensim: its own preprocessing (simple_preprocess, STOPWORDS, Dictionary,
filter_extremes, doc2bow) then LdaMulticore, on the same documents and LDA settings, and (b) the whole pipeline
(cleaning with phrases, base model, theta / per-slice inference, metrics, bootstrap, RL selection, plots, report).
Overhead = (T_pipeline - T_gensim) / T_gensim, on CPU seconds (this process plus finished worker processes), which
a shared, loaded machine disturbs far less than wall time; wall seconds and the pipeline's stage times are printed
too. Each side runs --repeat times, alternating, and the fastest run counts.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from toolbox.landscape import corpus as cp
from toolbox.landscape import model as md
from toolbox.landscape.pipeline import LandscapeConfig, run
from toolbox.landscape.synthetic import generate


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn):
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = fn()
    return value, time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="synthetic")
    ap.add_argument("--k", type=int, default=39)
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--bin", default="year")
    ap.add_argument("--date-field", default="")
    ap.add_argument("--date-from", default="")
    ap.add_argument("--engine", default="single")
    ap.add_argument("--max-df", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    cfg = LandscapeConfig(source=a.corpus, k=a.k, bin=a.bin, date_field=a.date_field, date_from=a.date_from,
                          max_df=a.max_df, lda=md.LdaSettings(passes=a.passes, engine=a.engine))
    docs = generate(cfg.synthetic, a.seed)[0] if a.corpus == "synthetic" else cp.load_documents(
        a.corpus, date_field=a.date_field)
    kept = cp.clean(docs, cfg.bin, date_from=cfg.date_from).doc_ids
    texts = {d.doc_id: d for d in docs}

    from gensim.corpora import Dictionary
    from gensim.models import LdaModel, LdaMulticore
    from gensim.parsing.preprocessing import STOPWORDS
    from gensim.utils import simple_preprocess

    def plain_gensim():
        tokens = [[t for t in (texts[i].tokens or simple_preprocess(texts[i].text)) if t not in STOPWORDS]
                  for i in kept]
        dictionary = Dictionary(tokens)
        dictionary.filter_extremes(no_below=cfg.min_df, no_above=cfg.max_df)
        bow = [dictionary.doc2bow(t) for t in tokens]
        kwargs = dict(corpus=bow, id2word=dictionary, num_topics=a.k, passes=a.passes,
                      iterations=cfg.lda.iterations, chunksize=cfg.lda.chunksize, random_state=a.seed,
                      eval_every=None)
        if a.engine == "multicore":
            return LdaMulticore(workers=md._workers(0), **kwargs)
        return LdaModel(**kwargs)

    def pipeline():
        with tempfile.TemporaryDirectory() as tmp:
            return run(cfg, Path(tmp), a.seed)

    gensim_runs, pipe_runs = [], []
    for _ in range(a.repeat):
        gensim_runs.append(timed(plain_gensim)[1:])
        summary, *costs = timed(pipeline)
        pipe_runs.append((*costs, summary["timings_s"]))
    g_wall, g_cpu = min(gensim_runs, key=lambda r: r[1])
    p_wall, p_cpu, stages = min(pipe_runs, key=lambda r: r[1])
    n = summary["documents"]
    result = {"corpus": a.corpus, "documents": n, "vocabulary": summary["vocabulary"], "k": a.k,
              "passes": a.passes, "engine": a.engine, "repeat": a.repeat,
              "gensim_wall_s": g_wall, "gensim_cpu_s": g_cpu, "pipeline_wall_s": p_wall, "pipeline_cpu_s": p_cpu,
              "gensim_docs_per_cpu_s": n / g_cpu, "pipeline_docs_per_cpu_s": n / p_cpu,
              "overhead_cpu": (p_cpu - g_cpu) / g_cpu, "pipeline_stages_wall_s": stages,
              "load_average": list(os.getloadavg()), "lda": dataclasses.asdict(cfg.lda)}
    name = "gensim " + ("LdaMulticore" if a.engine == "multicore" else "LdaModel") + " (+ its prep)"
    print(f"{'what':<34}{'cpu s':>9}{'docs/cpu s':>12}{'wall s':>9}")
    print(f"{name:<34}{g_cpu:>9.2f}{n / g_cpu:>12.1f}{g_wall:>9.2f}")
    print(f"{'map-landscape (whole pipeline)':<34}{p_cpu:>9.2f}{n / p_cpu:>12.1f}{p_wall:>9.2f}")
    print(f"overhead beyond the LDA (cpu): {100 * result['overhead_cpu']:.1f}%   pipeline stages (wall): "
          + ", ".join(f"{k} {v:.2f}s" for k, v in stages.items()))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
