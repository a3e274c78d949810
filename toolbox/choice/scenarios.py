"""Inputs for `toolbox infer-choice`: built-in scenarios (peanuts, gridworld demonstrations, corrections) and
choices files (JSON or CSV), all turned into one `Scenario`.

JSON:  {"feature_names": [...], "options": {"name": [features...], ...},
        "assumed_set": [names]            (default: every option),
        "true_set": [names]               (optional, enables the audit),
        "choices": ["name", {"choice": "name", "set": [names]}, ...],
        "thetas": [[...], ...], "prior": [...], "true_theta": [...] or index   (all optional)}
CSV:   one row per option: a `name` column, numeric feature columns, and optional columns `assumed` (0/1),
       `true` (0/1) and `chosen` (how many times the human picked it from the assumed set).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolbox.choice.gridworld import FEATURES, Gridworld, avoiding, corrections, move_names
from toolbox.choice.model import ChoiceProblem, Observation, choice_logprobs, unit_directions
from toolbox.core.errors import UserInputError

SCENARIOS = ("peanuts", "gridworld", "corrections")
_RESERVED_COLUMNS = ("name", "assumed", "true", "chosen")


@dataclass
class Scenario:
    """A choice problem with the robot's assumed set C_R, optionally the human's true set C_H and true reward."""

    name: str
    problem: ChoiceProblem
    assumed: np.ndarray
    observations: list[Observation]
    true: np.ndarray | None = None
    true_theta: int | None = None
    description: str = ""
    meta: dict = field(default_factory=dict)


def builtin(name: str, beta: float, directions: int = 16, demos: int = 3, seed: int = 0) -> Scenario:
    if name == "peanuts":
        return peanuts(beta)
    if name in ("gridworld", "corrections"):
        return gridworld(beta, directions, demos, seed, corrections_mode=name == "corrections")
    raise UserInputError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")


def peanuts(beta: float) -> Scenario:
    """Figure 1: the human saw only the flashy, expensive pack; the robot assumes both packs were on offer."""
    problem = ChoiceProblem(features=[[0.0, 1.0], [1.0, 0.0]], thetas=[[1.0, 0.0], [0.0, 1.0]], prior=[0.5, 0.5],
                            beta=beta, names=["expensive", "cheap"], feature_names=["savings", "flashiness"])
    assumed, true = problem.mask([0, 1]), problem.mask([0])
    return Scenario("peanuts", problem, assumed, [Observation(0, assumed)], true=true, true_theta=0,
                    description="human saw only the expensive pack (true set), robot assumes both packs")


# Two rows: the top row is the direct route through mud to the goal, the bottom row a mud-free detour that the
# human believes is closed (the robot knows it is open).
GRID_LAYOUT = ("SMMMG", ".....")
GRID_HORIZON = 6
TRUE_ANGLE = -np.pi / 4  # theta* = (goal, mud) = (0.71, -0.71): the goal is worth one unit of mud avoided


def gridworld(beta: float, directions: int, demos: int, seed: int, corrections_mode: bool = False) -> Scenario:
    """Demonstrations by a human who believes the detour is closed, or corrections of the robot's mud plan by a
    human who makes smaller corrections than the robot assumes."""
    from toolbox.core.rng import numpy_generator

    world = Gridworld(GRID_LAYOUT, GRID_HORIZON)
    paths = world.trajectories()
    thetas = unit_directions(2, directions)
    star = int(np.argmin(np.abs(np.angle(np.exp(1j * (np.arctan2(thetas[:, 1], thetas[:, 0]) - TRUE_ANGLE))))))
    problem = ChoiceProblem(world.feature_counts(paths), thetas, np.ones(len(thetas)), beta,
                            names=move_names(world, paths), feature_names=list(FEATURES))
    if corrections_mode:  # the robot's plan: straight through the mud, then wait at the goal
        plan = int(np.flatnonzero((paths[:, 1:] == [1, 2, 3, 4, 4, 4]).all(axis=1))[0])
        assumed, true = corrections(paths, plan, 3), corrections(paths, plan, 1)
        description = ("corrections of the robot's mud plan: the robot assumes the human can change up to 3 cells, "
                       "the human nudges only 1")
    else:
        assumed = np.ones(len(paths), dtype=bool)
        true = avoiding(paths, [world.cell(1, c) for c in range(world.width)])
        description = "demonstrations in a 2x5 gridworld; the human believes the mud-free detour is closed"
    rng = numpy_generator(seed, 7)
    p_human = np.exp(choice_logprobs(problem.utilities()[star], true))
    picks = rng.choice(len(paths), size=demos, p=p_human / p_human.sum())
    observations = [Observation(int(c), assumed) for c in picks]
    return Scenario("corrections" if corrections_mode else "gridworld", problem, assumed, observations, true=true,
                    true_theta=star, description=description, meta={"world": world, "paths": paths})


def load_choices(path: Path, beta: float, directions: int = 16) -> Scenario:
    """A Scenario from a JSON or CSV choices file (format in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"choices file not found: {path}")
    if path.suffix.lower() == ".json":
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(spec, dict):
            raise UserInputError(f"{path}: expected a JSON object")
    elif path.suffix.lower() == ".csv":
        spec = _csv_spec(path)
    else:
        raise UserInputError(f"{path}: choices files must be .json or .csv")
    return from_spec(spec, beta, directions, name=path.stem)


def _csv_spec(path: Path) -> dict:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise UserInputError(f"{path}: no options (empty CSV)")
    if "name" not in rows[0]:
        raise UserInputError(f"{path}: needs a 'name' column")
    feature_names = [c for c in rows[0] if c not in _RESERVED_COLUMNS]
    spec: dict = {"feature_names": feature_names, "options": {}, "choices": []}
    for line, r in enumerate(rows, start=2):
        try:
            spec["options"][r["name"]] = [float(r[c]) for c in feature_names]
            if "chosen" in r and r["chosen"].strip():
                spec["choices"] += [r["name"]] * int(r["chosen"])
        except (TypeError, ValueError) as exc:
            raise UserInputError(f"{path}:{line}: not a number ({exc})") from exc
    for col, key in (("assumed", "assumed_set"), ("true", "true_set")):
        if col in rows[0]:
            spec[key] = [r["name"] for r in rows if r[col].strip() in ("1", "true", "True", "yes")]
    return spec


def from_spec(spec: dict, beta: float, directions: int = 16, name: str = "choices") -> Scenario:
    options = spec.get("options")
    if isinstance(options, list):
        options = {o.get("name", f"option{i}"): o.get("features") for i, o in enumerate(options)}
    if not isinstance(options, dict) or not options:
        raise UserInputError("the choices file needs a non-empty 'options' table")
    names = list(options)
    rows = [options[n] for n in names]
    if not all(isinstance(r, list) for r in rows):
        raise UserInputError("every option needs a list of feature values")
    sizes = {len(r) for r in rows}
    if len(sizes) != 1:
        raise UserInputError(f"options have mismatched feature sizes {sorted(sizes)}")
    try:
        features = np.array(rows, dtype=float)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"option features must be numbers ({exc})") from exc
    d = features.shape[1]
    feature_names = list(spec.get("feature_names") or [f"f{i}" for i in range(d)])
    if len(feature_names) != d:
        raise UserInputError(f"{len(feature_names)} feature names for {d} features")
    try:
        thetas = np.array(spec["thetas"], dtype=float) if "thetas" in spec else unit_directions(d, directions)
        prior = np.array(spec.get("prior", np.ones(len(thetas))), dtype=float)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"thetas and prior must be numeric tables ({exc})") from exc
    if thetas.ndim != 2 or thetas.shape[1] != d:
        raise UserInputError(f"thetas must be a list of {d}-vectors (one per reward hypothesis)")
    problem = ChoiceProblem(features, thetas, prior, beta, names=names, feature_names=feature_names)

    def to_mask(members, what: str) -> np.ndarray:
        if not isinstance(members, list) or not members:
            raise UserInputError(f"{what} must be a non-empty list of option names")
        unknown = [m for m in members if not isinstance(m, str) or m not in options]
        if unknown:
            raise UserInputError(f"{what} names unknown option(s): {', '.join(map(str, unknown))}")
        return problem.mask([names.index(m) for m in members])

    assumed = to_mask(spec.get("assumed_set", names), "assumed_set")
    true = to_mask(spec["true_set"], "true_set") if "true_set" in spec else None
    observations = []
    raw_choices = spec.get("choices", [])
    if not isinstance(raw_choices, list):
        raise UserInputError("'choices' must be a list")
    for i, item in enumerate(raw_choices):
        choice, members = (item, None) if not isinstance(item, dict) else (item.get("choice"), item.get("set"))
        if not isinstance(choice, str) or choice not in options:
            raise UserInputError(f"choice {i + 1} ({choice!r}) is not one of the options")
        cset = assumed if members is None else to_mask(members, f"the set of choice {i + 1}")
        if not cset[names.index(choice)]:
            raise UserInputError(f"choice {i + 1} ({choice!r}) is not in its choice set")
        observations.append(Observation(names.index(choice), cset))
    true_theta = _true_theta(spec.get("true_theta"), thetas)
    return Scenario(name, problem, assumed, observations, true=true, true_theta=true_theta,
                    description=f"choices file with {len(names)} options and {len(observations)} choices")


def _true_theta(value, thetas: np.ndarray) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(thetas):
            raise UserInputError(f"true_theta index {value} is outside the {len(thetas)} hypotheses")
        return value
    try:
        vec = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"true_theta must be an index or a vector ({exc})") from exc
    if vec.shape != (thetas.shape[1],):
        raise UserInputError(f"true_theta must be an index or a {thetas.shape[1]}-vector")
    match = np.flatnonzero(np.isclose(thetas, vec).all(axis=1))
    if not match.size:
        raise UserInputError("true_theta is not one of the reward hypotheses (thetas)")
    return int(match[0])
