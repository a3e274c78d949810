"""`toolbox sample-diffusion`: the report folder of the diffusion-thermodynamics pipeline.

Sections (each writes CSV / JSON / PNG into the run folder and returns its summary):
  simulate       trajectories of the configured data, direction and scheme (samples.npz, trajectory plot)
  entropy        trajectory entropies forward and reverse: IFT with SE and convergence (Figs. 2/7), histograms
                 (Figs. 3/8), discrete-kernel vs continuum Delta S_tot, check against int pi dt
  rates          pi, phi, dS/dt forward and reverse over t (Figs. 9/10), t* = argmin phi*
  speciation     t_S by curvature (formula and root), covariance and cloning; U(x, t) (Fig. 4)
  phase-diagram  the three phases in (mu, sigma) (Fig. 5) and a test of sampling in the unstable phase
  collapse       excess entropy and self-weight vs t, t_C (Monte Carlo and formula), memorisation under the
                 empirical score of scikit-learn's digits
  fp-potential   V(q, t), V', V'' (Fig. 11) in 1-D and for an empirical measure in d > 1
  learned        an MLP score trained by denoising score matching on a 2-D mixture (the paper's Fig. 1 data),
                 sampled with the same noise as the exact score: score error, sample log-likelihood, heat and
                 Delta S_tot measured against the exact marginals
"""
from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Literal

import numpy as np
from pydantic import Field

from toolbox.core import native
from toolbox.core.config import Count, NonNegFloat, PosFloat, PosInt, Real
from toolbox.core.errors import UserInputError
from toolbox.core.guards import check_memory
from toolbox.core.io import atomic_write_bytes, save_figure, write_csv, write_json
from toolbox.diffusion import thermo, transitions as tr
from toolbox.diffusion.densities import GaussianMixture, from_spec
from toolbox.diffusion.sampler import DIRECTIONS, SCHEMES, simulate, simulate_external

SECTIONS = ("simulate", "entropy", "rates", "speciation", "phase-diagram", "collapse", "fp-potential", "learned")


@dataclass
class DiffusionConfig:
    # data and dynamics (simulate, entropy)
    data: Literal["gauss", "paper", "gmm", "empirical", "digits"] = "paper"
    mu: Real = 1.0
    sigma2: PosFloat = 1.0
    dim: PosInt = 1
    points: str = ""  # npz (gmm) or npy [n, d] (empirical)
    n_train: Count = 0  # subsample of the training set (0: all)
    direction: Literal[tuple(DIRECTIONS)] = "forward"  # simulate: forward | reverse | flow
    scheme: Literal[tuple(SCHEMES)] = "euler"
    t_lo: NonNegFloat = 0.0
    t_hi: PosFloat = 10.0
    steps: PosInt = 1000
    particles: PosInt = 20000
    chunk: Count = 0
    snapshot_stride: PosInt = 10  # ensemble rates (Figs. 9-10)
    rates_sigma2: PosFloat = 0.4
    rates_t_max: PosFloat = 3.0
    rates_points: Annotated[int, Field(ge=3)] = 601  # speciation: cloning in d dimensions (Biroli et al.)
    clone_dim: PosInt = 256
    clone_pairs: PosInt = 1000
    clone_times: list[PosFloat] = field(default_factory=lambda: [1.5, 2.2, 2.7726, 3.3, 4.5])
    clone_h: PosFloat = 0.02  # phase diagram and the unstable-phase test
    unstable_sigma2: PosFloat = 3.0  # collapse
    collapse_dim: PosInt = 256
    collapse_n: PosInt = 20000
    collapse_sigma2: PosFloat = 1.0  # variance of the training set's two Gaussian clusters
    collapse_samples: PosInt = 256
    collapse_points: Annotated[int, Field(ge=3)] = 13  # derived grid: t_C +- 3 crossover widths
    collapse_times: list[PosFloat] = field(default_factory=list)  # explicit grid (empty: derived from d, n, sigma2)
    memo_n: PosInt = 200
    memo_samples: PosInt = 200
    memo_t_lo: PosFloat = 0.05  # Franz-Parisi potential (Fig. 11)
    fp_sigma2: PosFloat = 0.1
    fp_times: list[PosFloat] = field(default_factory=lambda: [0.42, 0.015, 0.01])
    fp_samples: PosInt = 10000
    fp_points: Annotated[int, Field(ge=3)] = 300
    fp_dim: Annotated[int, Field(ge=2)] = 8  # the d > 1 mixture potential (exact inner integral)
    fp_dim_samples: PosInt = 2000
    fp_references: PosInt = 1024  # empirical measure (d = 64, n = 400)
    fp_bandwidth: PosFloat = 0.1  # learned score (2-D mixture with means (+-a, +-a))
    learned_a: PosFloat = 2.0
    learned_sigma2: PosFloat = 0.3
    learned_train_steps: PosInt = 1500  # about a minute on one idle core
    learned_particles: PosInt = 2000


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _density(cfg: DiffusionConfig) -> GaussianMixture:
    return from_spec(cfg.data, cfg.mu, cfg.sigma2, cfg.dim, cfg.points or None, cfg.n_train)


# -- sections ------------------------------------------------------------------------------------------------
def section_simulate(cfg, out: Path, seed: int, device: str, log) -> dict:
    dens = _density(cfg)
    t0 = time.perf_counter()
    stride = cfg.snapshot_stride if cfg.steps % max(cfg.snapshot_stride, 1) == 0 else 0
    run = simulate(dens, cfg.particles, cfg.direction, cfg.scheme, cfg.t_lo, cfg.t_hi, cfg.steps, seed=seed,
                   chunk=cfg.chunk, snapshot_stride=stride, device=device)
    seconds = time.perf_counter() - t0
    buf = io.BytesIO()
    np.savez_compressed(buf, x_start=run.x_start, x_end=run.x_end, heat=run.heat, heat_discrete=run.heat_discrete,
                        logp_start=run.logp_start, logp_end=run.logp_end,
                        snapshots=run.snapshots[:, :200] if run.snapshots is not None else np.zeros(0))
    atomic_write_bytes(out / "samples.npz", buf.getvalue())
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if run.snapshots is not None and dens.dim == 1:
        times = run.snapshot_times(stride)
        ax.plot(times, run.snapshots[:, :50, 0], lw=0.6, alpha=0.6)
        ax.set_xlabel("physical time t")
        ax.set_ylabel("x")
    else:
        ax.scatter(run.x_start[:1000, 0], run.x_start[:1000, -1], s=3, c="tab:blue", label="start")
        ax.scatter(run.x_end[:1000, 0], run.x_end[:1000, -1], s=3, c="tab:green", label="end")
        ax.legend()
        ax.set_xlabel("x_1")
        ax.set_ylabel(f"x_{dens.dim}")
    ax.set_title(f"{cfg.direction} ({cfg.scheme}), data={cfg.data}")
    save_figure(fig, out / "trajectories.png")
    summary = {"direction": cfg.direction, "scheme": cfg.scheme, "backend": run.backend, "seconds": seconds,
               "particle_steps_per_s": cfg.particles * cfg.steps / seconds,
               "end_mean": run.x_end.mean(0), "end_var": run.x_end.var(0)}
    if cfg.direction != "flow":
        summary["ift"] = thermo.ift_stats(run.total)
    write_json(out / "simulate.json", summary)
    return summary


def _ift_row(name: str, run) -> dict:
    cont = thermo.ift_stats(run.total)
    row = {"process": name, "n": cont["n"], "mean_dS_tot": cont["mean_total"], "se_dS_tot": cont["se_total"],
           "mean_exp": cont["mean_exp_neg"], "se_exp": cont["se_exp_neg"], "z": cont["z"],
           "mean_dS_sys": float(run.system.mean()), "mean_dS_medium": float(run.heat.mean())}
    disc = thermo.ift_stats(run.total_discrete)
    row.update(mean_exp_discrete=disc["mean_exp_neg"], se_exp_discrete=disc["se_exp_neg"], z_discrete=disc["z"],
               mean_gap_discrete=float(np.mean(run.total_discrete - run.total)))
    return row


def section_entropy(cfg, out: Path, seed: int, device: str, log) -> dict:
    dens = _density(cfg)
    if cfg.scheme == "heun":
        raise UserInputError("the entropy section needs scheme euler or exact (Heun has no Gaussian kernel)")
    t_lo = cfg.t_lo if not dens.is_empirical else max(cfg.t_lo, 1e-3)
    runs = {"forward": simulate(dens, cfg.particles, "forward", cfg.scheme, t_lo, cfg.t_hi, cfg.steps, seed=seed,
                                stream=0, chunk=cfg.chunk, device=device),
            "reverse": simulate(dens, cfg.particles, "reverse", "euler", t_lo, cfg.t_hi, cfg.steps, seed=seed,
                                stream=1, chunk=cfg.chunk, device=device)}
    rows = [_ift_row(name, run) for name, run in runs.items()]
    times = np.linspace(t_lo, cfg.t_hi, 2 * (cfg.steps // 2) + 1)
    rate_kw = {} if dens.dim == 1 else {"samples": 20000, "seed": seed}
    production = thermo.integrate(times, thermo.ensemble_rates(dens, times, **rate_kw)["pi"])
    write_csv(out / "ift.csv", rows)
    for name, run in runs.items():
        write_csv(out / f"trajectory_entropies_{name}.csv",
                  [{"dS_sys": a, "dS_medium": b, "dS_tot": c, "dS_tot_discrete": e}
                   for a, b, c, e in zip(run.system[:5000], run.heat[:5000], run.total[:5000],
                                         run.total_discrete[:5000])])
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (name, run) in zip(axes, runs.items()):
        ns, mean, se = thermo.ift_convergence(run.total)
        ax.plot(ns, mean, "o-", ms=3, label="continuum (Stratonovich)")
        ax.fill_between(ns, mean - 3 * se, mean + 3 * se, alpha=0.2)
        ns, mean_d, _ = thermo.ift_convergence(run.total_discrete)
        ax.plot(ns, mean_d, "s-", ms=2, label="discrete kernels")
        ax.axhline(1.0, color="k", ls="--")
        ax.set_xlabel("number of trajectories")
        ax.set_ylabel(r"$\langle e^{-\Delta S_{tot}}\rangle$")
        ax.set_title(f"{name} (Figs. 2/7)")
        ax.legend(fontsize=8)
    save_figure(fig, out / "ift_convergence.png")
    for name, run in runs.items():
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
        for ax, values, label in zip(axes, (run.system, run.heat, run.total, np.exp(-run.total)),
                                     (r"$\Delta S$", r"$\Delta S_E$", r"$\Delta S_{tot}$", r"$e^{-\Delta S_{tot}}$")):
            ax.hist(values, bins=80, color="tab:blue", alpha=0.7)
            ax.set_xlabel(label)
        fig.suptitle(f"{name}: trajectory entropies (Figs. 3/8)")
        save_figure(fig, out / f"entropy_histograms_{name}.png")
    summary = {"ift": rows, "integral_pi": production, "t_lo": t_lo, "t_hi": cfg.t_hi, "steps": cfg.steps,
               "backend": runs["forward"].backend}
    if cfg.data == "gauss":
        summary["closed_form_production"] = thermo.gaussian_mean_production(cfg.sigma2, cfg.t_hi, cfg.dim)
    write_json(out / "entropy.json", summary)
    return summary


def optimal_time(dens, times: np.ndarray, phi_rev: np.ndarray) -> tuple[float | None, float, str | None]:
    """t* = argmin of the reverse rate phi*(t) over the whole time grid, refined by a bounded scalar search
    between the grid neighbours of the grid minimum. A minimum on the grid's edge is not an interior optimum:
    (None, phi* there, 'lower' | 'upper')."""
    from scipy.optimize import minimize_scalar

    i = int(np.argmin(phi_rev))
    if i in (0, len(times) - 1):
        return None, float(phi_rev[i]), "lower" if i == 0 else "upper"
    res = minimize_scalar(lambda t: float(thermo.ensemble_rates(dens, np.array([t]))["phi_rev"][0]),
                          bounds=(times[i - 1], times[i + 1]), method="bounded", options={"xatol": 1e-7})
    return float(res.x), float(res.fun), None


def section_rates(cfg, out: Path, seed: int, device: str, log) -> dict:
    dens = GaussianMixture.symmetric(cfg.mu, cfg.rates_sigma2)
    times = np.linspace(0.0, cfg.rates_t_max, cfg.rates_points)
    r = thermo.ensemble_rates(dens, times)
    # dS/dt = I - d checked against a finite difference of the exact entropy S(t)
    eps = 1e-4
    fd = np.array([(thermo.entropy(dens, t + eps) - thermo.entropy(dens, t - eps)) / (2 * eps)
                   for t in times[1:-1:max(1, len(times) // 30)]])
    fd_err = float(np.max(np.abs(fd - r["dS"][1:-1:max(1, len(times) // 30)])))
    t_star, phi_rev_min, t_star_edge = optimal_time(dens, times, r["phi_rev"])
    if t_star_edge:
        log(f"rates: the minimum of phi* lies at the {t_star_edge} edge of [0, {cfg.rates_t_max:g}]: t* is not "
            "inside the searched range (raise rates_t_max)")
    t_s = tr.speciation_formula(cfg.mu, cfg.rates_sigma2)
    write_csv(out / "rates.csv", [{k: r[k][i] for k in ("t", "fisher", "pi", "phi", "dS", "phi_rev", "dS_rev")}
                                  for i in range(len(times))])
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, suffix, title in ((axes[0], "", "forward (Fig. 9)"), (axes[1], "_rev", "reverse (Fig. 10)")):
        ax.plot(times, r["phi" + suffix], label=r"$\phi$" + ("*" if suffix else ""))
        ax.plot(times, r["pi" + suffix], label=r"$\pi$" + ("*" if suffix else ""))
        ax.plot(times, r["dS" + suffix], label=r"$\dot S$" + ("*" if suffix else ""))
        ax.axvline(t_s, color="tab:green", ls="--", label=f"$t_S$ = {t_s:.4f}")
        if suffix and t_star is not None:
            ax.axvline(t_star, color="purple", ls="--", label=f"$t^*$ = {t_star:.3f}")
        ax.axhline(0, color="tab:brown", ls="--")
        ax.set_xlabel("t")
        ax.set_title(f"{title}, mu={cfg.mu}, sigma^2={cfg.rates_sigma2}")
        ax.legend(fontsize=8)
    save_figure(fig, out / "rates.png")
    summary = {"mu": cfg.mu, "sigma2": cfg.rates_sigma2, "pi_0": float(r["pi"][0]), "phi_0": float(r["phi"][0]),
               "dS_0": float(r["dS"][0]), "integral_pi": thermo.integrate(times, r["pi"]), "t_star": t_star,
               "t_star_at_edge": t_star_edge, "phi_rev_min": phi_rev_min, "phi_rev_zero": tr.zero_crossing(times, r["phi_rev"]),
               "t_S_curvature": t_s, "dS_vs_entropy_fd_max_err": fd_err}
    write_json(out / "rates.json", summary)
    return summary


def section_speciation(cfg, out: Path, seed: int, device: str, log) -> dict:
    rows = []
    for mu, s2 in ((1.0, 1.0), (1.0, 0.1), (1.0, 0.4), (cfg.mu, cfg.sigma2)):
        dens = GaussianMixture.symmetric(mu, s2)
        lam, t_cov = tr.speciation_covariance(dens)
        rows.append({"mu": mu, "sigma2": s2, "t_S_curvature_formula": tr.speciation_formula(mu, s2),
                     "t_S_curvature_root": tr.speciation_root(dens), "Lambda": lam, "t_S_covariance": t_cov,
                     "phase": tr.PHASES[tr.phase(mu, s2)]})
    write_csv(out / "speciation.csv", rows)
    big = GaussianMixture.symmetric(1.0, 1.0, cfg.clone_dim)
    lam, t_cov = tr.speciation_covariance(big)
    clones = []
    for t in cfg.clone_times:
        res = tr.cloning_probe(big, t, cfg.clone_pairs, h=cfg.clone_h, seed=seed, device=device)
        res["phi_theory"] = tr.cloning_theory(big, t, seed=seed)
        clones.append(res)
        log(f"  cloning t={t:.3f}: phi={res['phi']:.3f} +- {res['se']:.3f} (theory {res['phi_theory']:.4f})")
    write_csv(out / "cloning.csv", clones)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.linspace(-3, 3, 401)
    dens = GaussianMixture.symmetric(1.0, 1.0)
    for t in (1.0, 0.35, 0.1):
        u = tr.potential(dens, x, t)
        axes[0].plot(x, u - u.min(), label=f"t = {t}")
    axes[0].set_title("U(x, t), mu = 1, sigma^2 = 1 (Fig. 4)")
    axes[0].set_xlabel("x")
    axes[0].legend()
    ts = [c["t"] for c in clones]
    axes[1].errorbar(ts, [c["phi"] for c in clones], yerr=[3 * c["se"] for c in clones], fmt="o", label="cloning MC")
    grid = np.linspace(min(ts), max(ts), 25)
    axes[1].plot(grid, [tr.cloning_theory(big, t, 5000, seed) for t in grid], label="E sum r_k^2")
    axes[1].axvline(0.5 * np.log(cfg.clone_dim), color="k", ls="--", label="1/2 ln d")
    axes[1].axhline(0.7752, color="grey", ls=":")
    axes[1].set_xlabel("branching time t")
    axes[1].set_ylabel("phi(t)")
    axes[1].set_title(f"cloning, d = {cfg.clone_dim}")
    axes[1].legend()
    save_figure(fig, out / "speciation.png")
    at = min(clones, key=lambda c: abs(c["t"] - 0.5 * np.log(cfg.clone_dim)))
    summary = {"table": rows, "clone_dim": cfg.clone_dim, "clone_Lambda": lam, "clone_t_S_covariance": t_cov,
               "clone_phi_at_half_ln_d": at, "cloning": clones}
    write_json(out / "speciation.json", summary)
    return summary


def section_phase_diagram(cfg, out: Path, seed: int, device: str, log) -> dict:
    mus, sigmas = np.linspace(0, 1, 201), np.linspace(0.01, 2, 200)
    codes = tr.phase_diagram(mus, sigmas)
    # the paper's claim: sampling fails in the unstable phase; run the exact reverse dynamics there
    from scipy import stats

    tests = []
    for s2 in (cfg.unstable_sigma2, 1.0):
        dens = GaussianMixture.symmetric(cfg.mu, s2)
        run = simulate(dens, cfg.particles, "reverse", "euler", 0.0, 5.0, 500, seed=seed, device=device)
        x = run.x_end[:, 0]
        cdf = lambda z, s2=s2: 0.5 * (stats.norm.cdf(z, cfg.mu, np.sqrt(s2)) + stats.norm.cdf(z, -cfg.mu, np.sqrt(s2)))  # noqa: E731
        ks = stats.kstest(x, cdf)
        tests.append({"mu": cfg.mu, "sigma2": s2, "phase": tr.PHASES[tr.phase(cfg.mu, s2)], "n": len(x),
                      "sample_var": float(x.var()), "target_var": cfg.mu**2 + s2, "ks_statistic": float(ks.statistic),
                      "ks_pvalue": float(ks.pvalue), "diverged": int(np.sum(~np.isfinite(x)))})
    write_csv(out / "unstable_phase_sampling.csv", tests)
    plt = _plt()
    from matplotlib.colors import ListedColormap

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.pcolormesh(mus, sigmas, codes, cmap=ListedColormap(["tab:red", "tab:green", "saddlebrown"]), alpha=0.5,
                  shading="auto")
    for code, (mx, sy) in zip(range(3), ((0.05, 0.9), (0.45, 0.3), (0.1, 1.7))):
        ax.text(mx, sy, tr.PHASES[code], fontsize=10)
    ax.set_xlabel(r"$\mu$")
    ax.set_ylabel(r"$\sigma$")
    ax.set_title("phase diagram (Fig. 5)")
    save_figure(fig, out / "phase_diagram.png")
    summary = {"fractions": {tr.PHASES[c]: float(np.mean(codes == c)) for c in range(3)}, "unstable_test": tests}
    write_json(out / "phase_diagram.json", summary)
    return summary


def section_collapse(cfg, out: Path, seed: int, device: str, log) -> dict:
    n, d, s2 = cfg.collapse_n, cfg.collapse_dim, cfg.collapse_sigma2
    points = tr.biroli_training_set(n, d, sigma=np.sqrt(s2), seed=seed)
    alpha = np.log(n) / d
    t_formula = tr.collapse_time_gaussian(alpha, s2)
    width = tr.collapse_width(n, d, s2)
    # the grid: explicit, or derived from d, n, sigma^2 (t_C +- 3 widths, below t_S = 1/2 ln(d + sigma^2))
    times = cfg.collapse_times or tr.collapse_grid(n, d, s2, cfg.collapse_points, 0.5 * np.log(d + s2)).tolist()
    probes = [tr.collapse_probe(points, t, cfg.collapse_samples, seed=seed) for t in times]
    for p in probes:
        delta, s = 1 - np.exp(-2 * p["t"]), s2 * np.exp(-2 * p["t"])
        p["f_theory"] = max(0.0, alpha + 0.5 * np.log(delta / (delta + s)))
    t_mc, t_mc_se, t_mc_edge = tr.collapse_crossing(probes)
    if t_mc_edge:
        log(f"collapse: E[w_self] does not cross 1/2 inside [{times[0]:.3f}, {times[-1]:.3f}]; the crossing lies "
            f"beyond the {t_mc_edge} edge, no Monte Carlo t_C is reported")
    write_csv(out / "collapse.csv", probes)
    # memorisation under the exact empirical score of the digits: one reverse run from T = 3 to t_lo with
    # snapshots; each snapshot is denoised (Tweedie) and tested against the training set
    dens = from_spec("digits", n_train=cfg.memo_n, seed=seed)
    d = dens.dim
    run_m = simulate(dens, cfg.memo_samples, "reverse", "euler", cfg.memo_t_lo, 3.0, 300, seed=seed,
                     snapshot_stride=10, device=device)
    memo = [{"t": float(t), "memorised_fraction": tr.memorisation_fraction(tr.denoise(dens, x, t), dens.means)}
            for t, x in zip(run_m.snapshot_times(10), run_m.snapshots)]
    memo_alpha = np.log(cfg.memo_n) / d
    memo_tc_formula = tr.collapse_time_gaussian(memo_alpha, float(np.mean(np.var(dens.means, 0))))
    memo_tc = tr.zero_crossing([m["t"] for m in memo][::-1], [m["memorised_fraction"] - 0.5 for m in memo][::-1])
    write_csv(out / "memorisation.csv", memo)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ts = [p["t"] for p in probes]
    axes[0].errorbar(ts, [p["f"] / alpha for p in probes], yerr=[3 * p["f_se"] / alpha for p in probes], fmt="o-",
                     label="Monte Carlo f/alpha")
    grid = np.linspace(min(ts), max(ts), 200)
    dg = 1 - np.exp(-2 * grid)
    axes[0].plot(grid, np.maximum(0, alpha + 0.5 * np.log(dg / (dg + s2 * np.exp(-2 * grid)))) / alpha, label="theory")
    axes[0].plot(ts, [p["w_self"] for p in probes], "s--", label="E[w_self]")
    axes[0].axvline(t_formula, color="k", ls="--", label=f"t_C formula {t_formula:.3f}")
    axes[0].set_xlabel("t")
    axes[0].set_title(f"collapse, d = {cfg.collapse_dim}, n = {cfg.collapse_n}")
    axes[0].legend(fontsize=8)
    axes[1].plot([m["t"] for m in memo], [m["memorised_fraction"] for m in memo], "o-", ms=3)
    axes[1].axvline(memo_tc_formula, color="k", ls="--", label=f"Gaussian-cluster t_C {memo_tc_formula:.2f}")
    axes[1].set_xlabel("t (reverse run, denoised snapshot)")
    axes[1].set_ylabel("memorised fraction (NN ratio < 1/3)")
    axes[1].set_title(f"exact empirical score of {cfg.memo_n} digits (d = {d})")
    axes[1].legend(fontsize=8)
    save_figure(fig, out / "collapse.png")
    summary = {"alpha": alpha, "t_C_formula": t_formula, "t_C_monte_carlo_self_weight_half": t_mc,
               "t_C_monte_carlo_se": t_mc_se, "t_C_monte_carlo_at_edge": t_mc_edge, "crossover_width": width,
               "grid": "explicit" if cfg.collapse_times else "derived", "probes": probes, "digits_n": cfg.memo_n,
               "digits_alpha": memo_alpha,
               "digits_t_C_gaussian_formula": memo_tc_formula, "digits_t_C_memorised_half": memo_tc,
               "memorisation": memo}
    write_json(out / "collapse.json", summary)
    return summary


def section_fp_potential(cfg, out: Path, seed: int, device: str, log) -> dict:
    dens = GaussianMixture.symmetric(cfg.mu, cfg.fp_sigma2)
    q = np.linspace(0.075, 8.065, cfg.fp_points)
    plt = _plt()
    fig, axes = plt.subplots(3, len(cfg.fp_times) + 2, figsize=(4 * (len(cfg.fp_times) + 2), 9))
    rows, inflections, reliability = [], {}, {}
    for col, t in enumerate(cfg.fp_times):
        v, dv, ddv = tr.franz_parisi_1d(dens, t, q, cfg.fp_samples, seed)
        inflections[f"{t}"] = tr.inflection_points(q, ddv)
        for ax, y, name in zip(axes[:, col], (v, dv, ddv), ("V", "dV/dq", "d2V/dq2")):
            ax.plot(q, y)
            ax.set_title(f"{name}, t = {t}")
        rows += [{"t": t, "q": qi, "V": a, "dV": b, "ddV": c} for qi, a, b, c in zip(q, v, dv, ddv)]

    def panel(column, qs, est, label, extra):
        for ax, y, se in zip(axes[:, column], est[:3], est[3:]):
            ax.plot(qs, y, label=label)
            ax.fill_between(qs, y - 2 * se, y + 2 * se, alpha=0.25)
        return [{"q": qi, "V": a, "dV": b, "ddV": c, "se_V": e, "se_dV": f, "se_ddV": g, **extra}
                for qi, a, b, c, e, f, g in zip(qs, *est)]

    # d > 1: the same mixture with means +-mu ones(d), exact inner integral, Monte Carlo quenched average +- SE
    big = GaussianMixture.symmetric(cfg.mu, cfg.fp_sigma2, cfg.fp_dim)
    for t in cfg.fp_times:
        est = tr.franz_parisi_mixture(big, t, q, cfg.fp_dim_samples, seed)
        ok, why = tr.fp_reliability(est)
        reliability[f"mixture d={cfg.fp_dim}, t={t}"] = {"reliable": ok, "reason": why}
        rows += panel(-2, q, est, f"t = {t}", {"t": t, "mixture_d": cfg.fp_dim})
    axes[0, -2].set_title(f"mixture, d = {cfg.fp_dim} (+- 2 SE)")
    # the empirical measure of n = 400 points in d = 64 (kernel-smoothed delta)
    points = tr.biroli_training_set(400, 64, seed=seed)
    qe = np.linspace(0.0, 6.0, 121)
    t_c = tr.collapse_time_gaussian(np.log(400) / 64)
    for t in (2 * t_c, t_c, 0.5 * t_c):
        est = tr.franz_parisi_empirical(points, t, qe, cfg.fp_references, cfg.fp_bandwidth, seed)
        ok, why = tr.fp_reliability(est)
        reliability[f"empirical d=64, t={t:.3f}"] = {
            "reliable": ok, "reason": why + f"; V'' is resolved only on scales above the bandwidth {cfg.fp_bandwidth:g}"}
        rows += panel(-1, qe, est, f"t = {t:.2f}", {"t": t, "empirical_d": 64})
    axes[0, -1].set_title(f"empirical, d = 64, n = 400 (t_C = {t_c:.2f})")
    for ax in axes[0, -2:]:
        ax.legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("q")
    save_figure(fig, out / "franz_parisi.png")
    write_csv(out / "franz_parisi.csv", rows)
    for key, r in reliability.items():
        if not r["reliable"]:
            log(f"fp-potential: {key}: V'' not reliable: {r['reason']}")
    summary = {"mu": cfg.mu, "sigma2": cfg.fp_sigma2, "times": cfg.fp_times, "inflection_points": inflections,
               "reliability": reliability}
    write_json(out / "fp_potential.json", summary)
    return summary


def section_learned(cfg, out: Path, seed: int, device: str, log) -> dict:
    import torch

    from toolbox.diffusion.score_net import score_error, train_score_mlp

    a = cfg.learned_a
    dens = GaussianMixture(np.array([[a, a], [a, -a], [-a, a], [-a, -a]]), [cfg.learned_sigma2] * 4, [1.0] * 4)
    start = time.perf_counter()
    learned, losses = train_score_mlp(dens, steps=cfg.learned_train_steps, seed=seed)
    train_seconds = time.perf_counter() - start
    times = np.array([0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0])
    err = score_error(learned, dens, times, seed=seed)
    n, t_hi, steps = cfg.learned_particles, 5.0, 500
    x_start = dens.sample(n, t_hi, seed, stream=502)
    exact = simulate(dens, n, "reverse", "euler", 0.0, t_hi, steps, seed=seed, x_start=x_start, device=device)
    with torch.no_grad():  # the network in torch, the step / noise / heat epilogue fused (same noise as `exact`)
        if native.available():
            net = simulate_external(learned, x_start, "reverse", 0.0, t_hi, steps, seed=seed, device=device)
        else:
            net = simulate(learned, n, "reverse", "euler", 0.0, t_hi, steps, seed=seed, x_start=x_start,
                           backend="reference")
    rows = []
    for name, run in (("exact score", exact), ("learned score", net)):
        logp_end = dens.log_prob(run.x_end, 0.0)
        total = dens.log_prob(run.x_start, t_hi) - logp_end + run.heat  # Delta S_tot against the exact marginals
        st = thermo.ift_stats(total)
        rows.append({"score": name, "mean_log_p0_of_samples": float(logp_end.mean()),
                     "mean_heat": float(run.heat.mean()), "mean_dS_tot": st["mean_total"],
                     "mean_exp_neg_dS_tot": st["mean_exp_neg"], "se_exp_neg_dS_tot": st["se_exp_neg"]})
    rows.append({"score": "data (reference)", "mean_log_p0_of_samples": float(
        dens.log_prob(dens.sample(20000, 0.0, seed, stream=503), 0.0).mean())})
    write_csv(out / "learned.csv", rows)
    write_csv(out / "score_error.csv", [{"t": t, "mse": e} for t, e in zip(times, err)])
    write_csv(out / "score_training.csv", [{"step": k + 1, "loss": v} for k, v in enumerate(losses)])
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    axes[0].scatter(exact.x_end[:, 0], exact.x_end[:, 1], s=2, label="exact score")
    axes[0].scatter(net.x_end[:, 0], net.x_end[:, 1], s=2, label="learned score")
    axes[0].legend()
    axes[0].set_title("reverse-SDE samples (same noise)")
    axes[1].loglog(times, err, "o-")
    axes[1].set_xlabel("t")
    axes[1].set_ylabel("E|s_theta - grad log p_t|^2")
    axes[1].set_title("score error")
    axes[2].plot(losses)
    axes[2].set_yscale("log")
    axes[2].set_title("DSM loss")
    save_figure(fig, out / "learned.png")
    summary = {"train_seconds": train_seconds, "final_loss": float(np.mean(losses[-50:])), "table": rows,
               "score_error": dict(zip(map(str, times), err))}
    write_json(out / "learned.json", summary)
    return summary


RUNNERS: dict[str, Callable] = {
    "simulate": section_simulate, "entropy": section_entropy, "rates": section_rates,
    "speciation": section_speciation, "phase-diagram": section_phase_diagram, "collapse": section_collapse,
    "fp-potential": section_fp_potential, "learned": section_learned,
}


def check(cfg: DiffusionConfig, sections) -> None:
    """Every check on sections and settings that needs no computation, including the memory guard."""
    unknown = [s for s in sections if s not in RUNNERS]
    if unknown:
        raise UserInputError(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    if cfg.t_hi <= cfg.t_lo:
        raise UserInputError(f"t_hi ({cfg.t_hi:g}) must be greater than t_lo ({cfg.t_lo:g})")
    if cfg.data in ("gmm", "empirical") and {"simulate", "entropy"} & set(sections):
        _density(cfg)  # reads and checks the data file
    # the largest arrays: the particles' state (a few copies) and the snapshots of `simulate`, in float64
    snapshots = cfg.steps // cfg.snapshot_stride + 1 if "simulate" in sections else 0
    check_memory(8.0 * cfg.particles * cfg.dim * (8 + snapshots), f"{cfg.particles} particles in {cfg.dim} dimensions",
                 "lower particles (or raise snapshot_stride)")
    check_memory(8.0 * max(cfg.collapse_n * cfg.collapse_dim * 3, cfg.clone_pairs * cfg.clone_dim * 8,
                           cfg.fp_samples * cfg.fp_points * 2, cfg.fp_references * 400 * 4,
                           cfg.fp_dim_samples * (cfg.fp_points * 2 * 4 + 2 * cfg.fp_dim)),
                 "the collapse / speciation / Franz-Parisi sections", "lower collapse_n, clone_pairs or fp_samples")


def run(cfg: DiffusionConfig, out: Path, sections, seed: int = 0, device: str = "cpu", log=print) -> dict:
    """Run the chosen sections into `out`; returns {section: summary} (also written to summary.json)."""
    check(cfg, sections)
    results = {"config": dataclasses.asdict(cfg), "seed": seed, "device": device}
    for name in sections:
        log(f"sample-diffusion: {name} ...")
        start = time.perf_counter()
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        results[name] = RUNNERS[name](cfg, folder, seed, device, log)
        results[name]["seconds"] = time.perf_counter() - start
    write_json(out / "summary.json", results)
    return results
