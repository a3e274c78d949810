"""`toolbox demo` entry: the planted-trend check (synthetic, K = 5) and one expert iteration on the Reuters sample."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolbox.core.io import atomic_write_text
from toolbox.demo import check
from toolbox.landscape.model import LdaSettings
from toolbox.landscape.pipeline import LandscapeConfig, run
from toolbox.landscape.select import SelectConfig

TERESA_ASPECT = '[mother_teresa]\nteresa = 1.0\ncalcutta = 1.0\nnuns = 1.0\n'


def planted_config() -> LandscapeConfig:
    """The issue's planted trend: K = 5, 10 yearly slices, 300 docs of 80 tokens per slice, V = 500."""
    return LandscapeConfig(source="synthetic", bin="year", k=5, max_df=1.0, plots=False,
                           lda=LdaSettings(passes=5), select=SelectConfig(select=3))


def reuters_config(aspects: Path) -> LandscapeConfig:
    return LandscapeConfig(source="reuters", bin="quarter", k=20, aspects=str(aspects),
                           lda=LdaSettings())


def teresa_coverage(summary_dir: Path) -> tuple[int, int]:
    """(Mother Teresa stories aligned to the seeded aspect, all such stories) from alignment.csv."""
    import csv

    with open(summary_dir / "alignment.csv", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if "Mother Teresa" in r["title"]]
    return sum(r["aspect"] == "mother_teresa" for r in rows), len(rows)


def run_demo(out: Path, seed: int = 0, device: str = "cpu", log=print) -> dict:
    planted = run(planted_config(), out / "planted", seed, log)["planted"]
    aspects = out / "reuters_aspects.toml"
    atomic_write_text(aspects, TERESA_ASPECT)
    reuters = run(reuters_config(aspects), out / "reuters", seed, log)
    hit, total = teresa_coverage(out / "reuters")
    ratio = reuters["aspect"]["perplexity"] / reuters["base"]["perplexity"]
    return {
        "headline": f"planted rising topic ranked {planted['rising_topic_rank']}, magnitude r = "
                    f"{planted['magnitude_pearson_r']:.3f}; Reuters: {hit}/{total} Mother Teresa stories in the "
                    f"seeded aspect, perplexity ratio {ratio:.3f}",
        "planted": planted,
        "reuters_documents": reuters["documents"],
        "teresa_aligned": hit, "teresa_stories": total, "perplexity_ratio": float(np.round(ratio, 4)),
        "report": str(out / "reuters" / "report.html"),
        # the planted truth (issue's trend: one rising topic among 5): ranked first, magnitudes recovered (r = 1 for
        # a perfect recovery; 0.998 measured, 0.1 allowed for LDA's finite-sample noise), the mix-entropy slope of
        # the truth (-0.0217 per slice) within 0.01; the seeded aspect keeps every Mother Teresa story
        "checks": [check("planted rising topic rank", planted["rising_topic_rank"], 1, 0),
                   check("planted magnitude Pearson r", planted["magnitude_pearson_r"], 1.0, 0.1),
                   check("planted H(M) slope", planted["mix_entropy_slope"], planted["mix_entropy_slope_truth"], 0.01),
                   check("Mother Teresa stories in the seeded aspect", hit / max(total, 1), 1.0, 0.0)],
    }

