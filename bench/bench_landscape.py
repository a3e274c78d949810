"""Throughput of `map-landscape` against plain gensim LdaMulticore on the same corpus and settings.

    python bench/bench_landscape.py --corpus synthetic|reuters|PATH [--k 39] [--passes 10] [--json out.json]

Prints documents per second of (a) plain gensim: its own preprocessing (simple_preprocess, STOPWORDS, Dictionary,
filter_extremes, doc2bow) then LdaMulticore, on the same documents and LDA settings, and (b) the whole pipeline
(cleaning with phrases, base model, theta / per-slice inference, metrics, bootstrap, RL selection, plots, report).
Overhead = (T_pipeline - T_gensim) / T_gensim; the pipeline's own stage times are printed too.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from toolbox.landscape import corpus as cp
from toolbox.landscape import model as md
from toolbox.landscape.pipeline import LandscapeConfig, run
from toolbox.landscape.synthetic import generate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="synthetic")
    ap.add_argument("--k", type=int, default=39)
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--bin", default="year")
    ap.add_argument("--date-field", default="")
    ap.add_argument("--date-from", default="")
    ap.add_argument("--engine", default="multicore")
    ap.add_argument("--max-df", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
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

    start = time.perf_counter()
    tokens = [[t for t in (texts[i].tokens or simple_preprocess(texts[i].text)) if t not in STOPWORDS] for i in kept]
    dictionary = Dictionary(tokens)
    dictionary.filter_extremes(no_below=cfg.min_df, no_above=cfg.max_df)
    bow = [dictionary.doc2bow(t) for t in tokens]
    t_prep = time.perf_counter() - start
    kwargs = dict(corpus=bow, id2word=dictionary, num_topics=a.k, passes=a.passes, iterations=cfg.lda.iterations,
                  chunksize=cfg.lda.chunksize, random_state=a.seed, eval_every=None)
    if a.engine == "multicore":
        LdaMulticore(workers=md._workers(0), **kwargs)
    else:
        LdaModel(**kwargs)
    t_lda = time.perf_counter() - start
    t_fit = t_lda - t_prep

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run(cfg, Path(tmp), a.seed)
        t_pipe = time.perf_counter() - start
    n = summary["documents"]
    result = {"corpus": a.corpus, "documents": n, "vocabulary": summary["vocabulary"], "k": a.k,
              "passes": a.passes, "engine": a.engine, "gensim_s": t_lda, "gensim_fit_s": t_fit, "pipeline_s": t_pipe,
              "gensim_docs_per_s": n / t_lda, "pipeline_docs_per_s": n / t_pipe,
              "overhead": (t_pipe - t_lda) / t_lda, "pipeline_stages_s": summary["timings_s"],
              "lda": dataclasses.asdict(cfg.lda)}
    print(f"{'what':<32}{'seconds':>10}{'docs/s':>10}")
    name = "LdaMulticore" if a.engine == "multicore" else "LdaModel"
    print(f"{'gensim ' + name + ' (fit only)':<32}{t_fit:>10.2f}{n / t_fit:>10.1f}")
    print(f"{'gensim prep + ' + name:<32}{t_lda:>10.2f}{n / t_lda:>10.1f}")
    print(f"{'map-landscape (whole)':<32}{t_pipe:>10.2f}{n / t_pipe:>10.1f}")
    print(f"overhead beyond the LDA fit: {100 * result['overhead']:.1f}%   stages: "
          + ", ".join(f"{k} {v:.2f}s" for k, v in summary["timings_s"].items()))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
