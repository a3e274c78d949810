"""fuse-gp demo: GP-prior data with known hyper-parameters, 8 experts on random and k-means partitions, every
fusion rule against the exact full GP, and the fusion kernel checked against its float64 reference."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolbox.demo import check
from toolbox.gpoe import fusion
from toolbox.gpoe.pipeline import FuseGpConfig, run


def run_demo(out: Path, seed: int = 0, device: str = "cpu", log=print) -> dict:
    cfg = FuseGpConfig(dataset="gp-prior", n_train=1000, n_test=300, dims=1, experts=8,
                       partitions=["random", "kmeans"], full_gp_max=1000)
    summary = run(cfg, out, seed, log=log, device=device)
    rows = {(r["partition"], r["rule"]): r for r in summary["rows"]}
    full = next(r for r in summary["rows"] if r["partition"] == "full-gp")
    gpoe, uniform = rows[("kmeans", "gpoe-normalized")], rows[("kmeans", "gpoe-uniform")]
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(16, 4096)).astype(np.float32)
    var = rng.uniform(0.05, 1.0, size=(16, 4096)).astype(np.float32)
    kernel = fusion.fuse(mean, var, np.float32(1.01), "rbcm")
    oracle = fusion.fuse_reference(mean, var, 1.01, "rbcm")
    kernel_err = float(np.max(np.abs(kernel.var - oracle.var) / oracle.var))
    return {
        "headline": f"k-means gPoE SMSE {gpoe['smse']:.4f} vs full GP {full['smse']:.4f} and uniform "
                    f"{uniform['smse']:.4f}; MSLL {gpoe['msll']:.2f}; kernel rel err {kernel_err:.1e}",
        "full_gp_smse": full["smse"], "gpoe_normalized_smse": gpoe["smse"], "gpoe_normalized_msll": gpoe["msll"],
        "gpoe_uniform_smse": uniform["smse"], "kernel_vs_reference_rel_err": kernel_err,
        # the exact GP with the generator's true hyper-parameters is calibrated: its 95% interval covers a share
        # 0.95 of the 300 test points up to binomial noise (SE sqrt(0.95 * 0.05 / 300) = 0.0126; 4 SE allowed);
        # the float32 kernel against its float64 reference: float32 rounding over 16 experts (measured ~1e-7)
        "checks": [check("full GP 95% coverage", full["coverage95"], 0.95, 0.05),
                   check("fusion kernel vs float64 (max rel err)", kernel_err, 0.0, 1e-5)],
    }
