"""Gridworld choice sets: demonstrations (trajectories as choices, grounded by feature counts) and corrections.

A trajectory is the sequence of cells s_0..s_T from the start under moves {stay, up, down, left, right} (walls and
the border block moves); its features are the counts sum_{t=1..T} phi(s_t) with phi(s) = [s is the goal,
s is mud]. A demonstration chooses among all trajectories a human thinks possible; a correction (Jeon et al. 2020)
chooses among the trajectories within k changed cells of the robot's plan, the plan itself included.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolbox.core.errors import UserInputError

FEATURES = ("goal", "mud")
_MOVES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


@dataclass(frozen=True)
class Gridworld:
    """Rows of cells: 'S' start, 'G' goal, 'M' mud, '#' wall, '.' floor."""

    layout: tuple[str, ...]
    horizon: int

    def __post_init__(self):
        if not self.layout or len({len(r) for r in self.layout}) != 1:
            raise UserInputError("gridworld layout must be non-empty rows of equal length")
        if set("".join(self.layout)) - set("SGM#."):
            raise UserInputError("gridworld cells must be one of S G M # .")
        if "".join(self.layout).count("S") != 1:
            raise UserInputError("gridworld layout needs exactly one start cell S")
        if not 1 <= self.horizon <= 12:
            raise UserInputError(f"gridworld horizon must be in 1..12, got {self.horizon}")

    @property
    def width(self) -> int:
        return len(self.layout[0])

    def cells(self) -> np.ndarray:
        return np.array(list("".join(self.layout)))

    def cell(self, row: int, col: int) -> int:
        return row * self.width + col

    def start(self) -> int:
        return int(np.flatnonzero(self.cells() == "S")[0])

    def neighbours(self) -> np.ndarray:
        """[cells, 5] next cell per move, -1 where the move is blocked."""
        cells, h, w = self.cells(), len(self.layout), self.width
        out = np.full((cells.size, len(_MOVES)), -1)
        for s in np.flatnonzero(cells != "#"):
            r, c = divmod(int(s), w)
            for a, (dr, dc) in enumerate(_MOVES):
                rr, cc = r + dr, c + dc
                if 0 <= rr < h and 0 <= cc < w and cells[rr * w + cc] != "#":
                    out[s, a] = rr * w + cc
        return out

    def trajectories(self) -> np.ndarray:
        """Every distinct cell sequence of length horizon + 1 from the start, [m, horizon + 1]."""
        nxt = self.neighbours()
        paths = np.array([[self.start()]])
        for _ in range(self.horizon):
            succ = nxt[paths[:, -1]]  # [m, 5]
            rows, moves = np.nonzero(succ >= 0)
            paths = np.concatenate([paths[rows], succ[rows, moves][:, None]], axis=1)
        return paths

    def feature_counts(self, paths: np.ndarray) -> np.ndarray:
        """Feature counts [m, 2] (goal, mud) over s_1..s_T."""
        cells = self.cells()
        phi = np.stack([cells == "G", cells == "M"], axis=1).astype(float)
        return phi[paths[:, 1:]].sum(axis=1)


def avoiding(paths: np.ndarray, cells) -> np.ndarray:
    """Mask of trajectories that never enter any of `cells` (e.g. a passage the human believes is closed)."""
    return ~np.isin(paths, list(cells)).any(axis=1)


def corrections(paths: np.ndarray, plan: int, max_changes: int) -> np.ndarray:
    """Mask of corrections of trajectory `plan`: trajectories differing from it in at most max_changes cells."""
    return (paths != paths[plan]).sum(axis=1) <= max_changes


def blocked_cell_sets(world: Gridworld, paths: np.ndarray, assumed: np.ndarray, keep: np.ndarray,
                      max_cells: int = 2) -> list[tuple[str, np.ndarray]]:
    """Plausible true sets of a human who believes up to max_cells cells are blocked: (label, mask) of the assumed
    trajectories avoiding them; beliefs that rule out an observed choice (`keep`) are not plausible."""
    from itertools import combinations

    cells = [c for c in range(world.cells().size) if world.cells()[c] not in "#S"]
    family = []
    for k in range(1, max_cells + 1):
        for combo in combinations(cells, k):
            mask = assumed & avoiding(paths, combo)
            if not (keep & ~mask).any():
                family.append(("blocked " + " ".join(f"{c // world.width},{c % world.width}" for c in combo), mask))
    return [(label, mask) for label, mask in family if mask.any()]


def move_names(world: Gridworld, paths: np.ndarray) -> list[str]:
    """Each trajectory as its moves, e.g. 'RRRRss' (U D L R, s = stay)."""
    delta = np.diff(paths, axis=1)
    letters = {0: "s", -world.width: "U", world.width: "D", -1: "L", 1: "R"}
    return ["".join(letters[int(x)] for x in row) for row in delta]
