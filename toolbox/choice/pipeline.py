"""The three runs behind `toolbox infer-choice`: infer (posterior, detector, robustness, sampler check), audit (a pair
of choice sets: class and exact effects) and sweep (randomised per-class experiment). Each writes its run folder and
returns the summary document."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable

import numpy as np
from pydantic import Field

from toolbox.choice import detect, misspec, plots, sampler
from toolbox.choice.gridworld import blocked_cell_sets
from toolbox.choice.model import Observation, entropy, posterior, regret, robot_choice
from toolbox.choice.scenarios import Scenario, builtin, load_choices
from toolbox.core.config import Backend, Count, PosFloat, PosInt
from toolbox.core.errors import UserInputError
from toolbox.core.io import atomic_write_text, write_csv, write_json
from toolbox.core.rng import numpy_generator


@dataclass
class InferConfig:
    scenario: str = "peanuts"  # built-in scenario, used when no choices file is given
    choices: str = ""  # JSON / CSV choices file
    beta: PosFloat = 1.0  # Boltzmann rationality
    directions: Annotated[int, Field(ge=2)] = 16  # reward hypotheses on the unit circle/sphere when none are given
    demos: PosInt = 3  # human choices simulated in the gridworld scenarios
    ppc_draws: PosInt = 2000  # posterior-predictive replicas
    family_changes: Count = 2  # robustness family: options removed from / added to the set (gridworld: blocked cells)
    family_max: PosInt = 200  # at most this many plausible sets (a seeded sample beyond)
    sampler_check: bool = True  # MCMC over continuous theta vs exact quadrature (d = 2 or 3)
    chains: PosInt = 64
    steps: PosInt = 2000
    burn_in: Count = 500
    step_size: PosFloat = 1.0  # proposal noise before renormalising (about 50% acceptance on the built-ins)
    bins: Annotated[int, Field(ge=2)] = 36


@dataclass
class SweepConfig:
    betas: Annotated[list[PosFloat], Field(min_length=1)] = field(default_factory=lambda: [0.5, 2.0, 5.0])
    trials: Annotated[int, Field(ge=2)] = 500  # random instances per class and beta
    options: Annotated[int, Field(ge=2)] = 8  # universe size
    d: PosInt = 2  # features
    directions: Annotated[int, Field(ge=2)] = 16  # reward hypotheses on the unit sphere
    backend: Backend = "serial"  # serial | process | ray
    workers: Count = 0  # 0 = all cores


def load_scenario(cfg: InferConfig, seed: int) -> Scenario:
    if cfg.choices:
        return load_choices(Path(cfg.choices), cfg.beta, cfg.directions)
    return builtin(cfg.scenario, cfg.beta, cfg.directions, cfg.demos, seed)


def _theta_rows(scn: Scenario, beliefs: dict[str, np.ndarray]) -> list[dict]:
    p = scn.problem
    names = p.feature_names or [f"f{i}" for i in range(p.thetas.shape[1])]
    return [{"theta": k, **{f"theta_{n}": v for n, v in zip(names, p.thetas[k])},
             **{label: b[k] for label, b in beliefs.items()}, "is_true": k == scn.true_theta}
            for k in range(len(p.thetas))]


def run_infer(cfg: InferConfig, out: Path, seed: int, log: Callable[[str], None] = print) -> dict:
    scn = load_scenario(cfg, seed)
    p = scn.problem
    if not scn.observations:
        raise UserInputError("no choices to infer from (the choices list is empty)")
    rng = numpy_generator(seed, 1)
    belief = posterior(p, scn.observations)
    beliefs = {"prior": p.prior, "posterior_assumed_set": belief}
    chosen = int(robot_choice(p.features, p.thetas, belief))
    doc = {
        "scenario": scn.name, "description": scn.description, "beta": p.beta, "options": p.n_options,
        "hypotheses": len(p.thetas), "choices": [p.names[o.choice] for o in scn.observations],
        "prior_entropy": float(entropy(p.prior)), "posterior_entropy": float(entropy(belief)),
        "map_theta": p.thetas[int(np.argmax(belief))].tolist(), "map_probability": float(belief.max()),
        "robot_choice": p.names[chosen],
        "ppc_pvalue": detect.posterior_predictive_pvalue(p, scn.observations, belief, rng, cfg.ppc_draws),
    }
    if scn.true_theta is not None:
        doc["true_theta"] = p.thetas[scn.true_theta].tolist()
        doc["p_true_theta"] = float(belief[scn.true_theta])
        doc["robot_regret"] = float(regret(p.features, p.thetas[scn.true_theta], chosen))
    if scn.true is not None:  # the correctly specified robot on the same choices, and the exact audit
        correct = posterior(p, [Observation(o.choice, scn.true) if np.array_equal(o.choice_set, scn.assumed) else o
                                for o in scn.observations])
        beliefs["posterior_true_set"] = correct
        doc["posterior_entropy_true_set"] = float(entropy(correct))
        if scn.true_theta is not None:
            doc["p_true_theta_true_set"] = float(correct[scn.true_theta])
            eff = misspec.misspecification_effects(p, scn.assumed, scn.true, scn.true_theta)
            doc["audit"] = eff.as_dict()
    keep = detect.chosen_mask(p.n_options, scn.observations)
    if "world" in scn.meta:
        family = blocked_cell_sets(scn.meta["world"], scn.meta["paths"], scn.assumed, keep, cfg.family_changes)
    else:
        family = detect.plausible_sets(scn.assumed, keep, cfg.family_changes, rng, cfg.family_max, p.names)
    doc["robustness"] = detect.robustness_report(p, scn.observations, scn.assumed, family)
    if scn.true_theta is not None:
        doc["robustness"]["robust_choice_regret"] = float(regret(
            p.features, p.thetas[scn.true_theta], p.names.index(doc["robustness"]["robust_choice"])))
    write_csv(out / "robustness.csv", doc["robustness"].pop("members"))
    write_csv(out / "posterior.csv", _theta_rows(scn, beliefs))
    plots.plot_posteriors(p.thetas, beliefs, scn.true_theta, out / "posterior.png",
                          f"{scn.name}: posterior over reward hypotheses (β={p.beta:g})")
    if cfg.sampler_check and p.thetas.shape[1] in (2, 3):
        doc["sampler_check"] = sampler_check(scn, cfg, seed, out)
    write_json(out / "summary.json", doc)
    return doc


def sampler_check(scn: Scenario, cfg: InferConfig, seed: int, out: Path | None = None) -> dict:
    """Continuous theta on the unit circle / sphere (d = 2, 3): MCMC vs exact quadrature, by the distance between
    posterior means and (d = 2) the total variation over angle bins."""
    p = scn.problem
    d = p.thetas.shape[1]
    loglik = sampler.observation_loglik(p.features, p.beta, scn.observations)
    plain = sampler.observation_loglik(p.features, p.beta, scn.observations, compress=False)
    samples, acceptance = sampler.sample_sphere_posterior(loglik, d, numpy_generator(seed, 2), cfg.chains,
                                                          cfg.steps, cfg.burn_in, cfg.step_size)
    result = {"acceptance": acceptance, "samples": len(samples),
              "mean_error": float(np.linalg.norm(samples.mean(axis=0) - sampler.exact_sphere_mean(plain, d)))}
    if d == 2:
        exact = sampler.exact_angle_posterior(plain, cfg.bins)
        hist = sampler.angle_histogram(samples, cfg.bins)
        result |= {"total_variation": sampler.total_variation(exact, hist), "bins": cfg.bins}
        if out is not None:
            plots.plot_sampler_check(exact, hist, result["total_variation"], out / "sampler_check.png")
    return result


def run_audit(cfg: InferConfig, out: Path, seed: int, log: Callable[[str], None] = print) -> dict:
    """Class and exact expected effects of the scenario's (assumed, true) pair, for its true reward or, when none
    is given, for every reward hypothesis as the truth."""
    scn = load_scenario(cfg, seed)
    if scn.true is None:
        raise UserInputError("an audit needs the human's true choice set (true_set in the choices file)")
    p = scn.problem
    stars = [scn.true_theta] if scn.true_theta is not None else range(len(p.thetas))
    labels = plots.theta_labels(p.thetas)
    rows = [{"theta": k, "theta_label": labels[k],
             **misspec.misspecification_effects(p, scn.assumed, scn.true, k).as_dict()} for k in stars]
    write_csv(out / "audit.csv", rows)
    doc = {"scenario": scn.name, "description": scn.description, "beta": p.beta,
           "assumed_size": int(scn.assumed.sum()), "true_size": int(scn.true.sum()), "rows": rows,
           "confidently_wrong_any": any(r["confidently_wrong"] for r in rows)}
    if len(rows) > 1:
        plots.plot_class_effects([{**r, "class": f"{r['theta_label']} {r['cls']}", "beta": p.beta} for r in rows],
                                 out / "audit.png", f"{scn.name}: effects per true reward")
    write_json(out / "summary.json", doc)
    return doc


def check_sweep(cfg: SweepConfig) -> None:
    """Refuse a sweep whose per-trial rows (every class and beta are kept for the tables) cannot fit in memory."""
    from toolbox.core.guards import check_memory

    cells = len(cfg.betas) * len(misspec.CLASSES)
    check_memory(cells * cfg.trials * (400.0 + 8 * cfg.options * (cfg.d + cfg.directions)),
                 f"a sweep of {cfg.trials} trials x {cells} class-beta cells", "lower trials")


def run_sweep(cfg: SweepConfig, out: Path, seed: int, device: str = "cpu", progress=None,
              log: Callable[[str], None] = print) -> dict:
    """The per-class sweep; exact effects by the native kernel (C++ threads, or CUDA with device='cuda')."""
    from toolbox.core.executor import map_tasks

    check_sweep(cfg)
    tasks = [misspec.SweepTask(cls, float(b), cfg.trials, cfg.options, cfg.d, cfg.directions, seed, device)
             for b in cfg.betas for cls in misspec.CLASSES]
    cells = map_tasks(misspec.run_sweep_task, tasks, backend=cfg.backend, workers=cfg.workers or None,
                      progress=progress)
    trials = [row for cell in cells for row in cell]
    table = misspec.summarise_sweep(trials)
    write_csv(out / "trials.csv", trials)
    write_csv(out / "sweep.csv", table)
    atomic_write_text(out / "sweep_table.md", markdown_table(table))
    plots.plot_class_effects(table, out / "class_effects.png",
                             f"exact expected effects vs correct set, {cfg.trials} trials per cell, "
                             f"n={cfg.options}, d={cfg.d}, K={cfg.directions}")
    doc = {"classes": list(misspec.CLASSES), "betas": cfg.betas, "trials_per_cell": cfg.trials,
           "kernels": misspec.effects_backend(device, cfg.d), "table": table}
    write_json(out / "summary.json", doc)
    return doc


def markdown_table(table: list[dict]) -> str:
    head = "| class | β | ΔP(θ*) ± SE | Δentropy ± SE | Δregret ± SE | confidently wrong | verdict |\n"
    head += "|---|---|---|---|---|---|---|\n"
    return head + "".join(
        f"| {r['class']} | {r['beta']:g} | {r['d_p_true']:+.4f} ± {r['d_p_true_se']:.4f} | "
        f"{r['d_entropy']:+.4f} ± {r['d_entropy_se']:.4f} | {r['d_regret']:+.4f} ± {r['d_regret_se']:.4f} | "
        f"{r['confidently_wrong_rate']:.0%} | {r['verdict']} |\n" for r in table)
