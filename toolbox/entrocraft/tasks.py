"""Tasks with verifiable rewards, generated offline, with disjoint train / held-out splits.

countdown  digits "a b c" and a target; answer "a op b op c" (a permutation of the digits, ops in + - *,
           evaluated left to right), 54 candidate expressions per instance [notes §6.3].
modarith   find digits x, y with (a*x + b*y) mod m = t; answer "xy".
subsetsum  five digits and a target; answer: a sub-multiset of the digits (as a digit string) summing to it.
letterset  the testbed (issue #14): an allowed set S of 3-5 letters out of a..j and a length L in 3..5; answer: any
           string of L letters from S with no letter twice in a row, so k(k-1)^(L-1) answers (12 to 1,280) per
           instance. The rule is learnable by a small GPT (copy from the prompt), so RL improves held-out accuracy
           and entropy collapse shows up as lost diversity.
jsonl      the user's prompts: {"prompt": ..., "answers": [...]} per line, checked by exact match or by the user's
           verifier "module:function" called as f(prompt, answer, record) -> bool.
Instances are unique keys; the split shuffles the key list with its own seed, so train and test share no instance.
"""
from __future__ import annotations

import functools
import importlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toolbox.core.errors import UserInputError
from toolbox.core.rng import numpy_generator

TASKS = ("countdown", "modarith", "subsetsum", "letterset", "jsonl")


@dataclass(frozen=True)
class Instance:
    prompt: str
    solutions: tuple[str, ...]   # every correct answer known to the generator (used for the warm start)
    record: Any = None


@dataclass
class Task:
    name: str
    train: list[Instance]
    test: list[Instance]
    verify: Callable[[Instance, str], bool]
    max_answer_len: int
    alphabet: str = field(default="")
    random_answer: Callable[[Instance, np.random.Generator], str] | None = None  # a legal, usually wrong answer
    # share of warm-start targets replaced by random_answer (TrainConfig.sft_wrong_fraction = None uses this one)
    sft_wrong_fraction: float = 0.5

    @property
    def prompt_len(self) -> int:
        return max(len(i.prompt) for i in self.train + self.test)


def _split(instances: list[Instance], test_fraction: float, split_seed: int) -> tuple[list, list]:
    if not 0.0 < test_fraction < 1.0:
        raise UserInputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = numpy_generator(split_seed, 7).permutation(len(instances))
    n_test = max(1, int(round(test_fraction * len(instances))))
    if n_test >= len(instances):
        raise UserInputError(f"too few instances ({len(instances)}) for a train/test split")
    return [instances[i] for i in order[n_test:]], [instances[i] for i in order[:n_test]]


def _eval_left_to_right(digits, ops) -> int:
    value = digits[0]
    for op, d in zip(ops, digits[1:]):
        value = value + d if op == "+" else value - d if op == "-" else value * d
    return value


@functools.lru_cache(maxsize=None)
def countdown_instances(max_target: int = 99) -> tuple[Instance, ...]:
    """All (sorted digit triple, target) pairs with a target in 1..max_target and at least one solution."""
    out = []
    for digits in itertools.combinations_with_replacement(range(1, 10), 3):
        by_target: dict[int, set[str]] = {}
        for perm in set(itertools.permutations(digits)):
            for ops in itertools.product("+-*", repeat=2):
                value = _eval_left_to_right(perm, ops)
                if 1 <= value <= max_target:
                    by_target.setdefault(value, set()).add(f"{perm[0]}{ops[0]}{perm[1]}{ops[1]}{perm[2]}")
        for target, sols in sorted(by_target.items()):
            out.append(Instance(f"{''.join(map(str, digits))}={target}:", tuple(sorted(sols)), (digits, target)))
    return tuple(out)


def random_countdown(inst: Instance, rng: np.random.Generator) -> str:
    d = [str(x) for x in rng.permutation(inst.record[0])]
    ops = rng.choice(list("+-*"), size=2)
    return f"{d[0]}{ops[0]}{d[1]}{ops[1]}{d[2]}"


def verify_countdown(inst: Instance, answer: str) -> bool:
    digits, target = inst.record
    if len(answer) != 5 or answer[1] not in "+-*" or answer[3] not in "+-*" or not answer[::2].isdigit():
        return False
    used = tuple(int(c) for c in answer[::2])
    return sorted(used) == list(digits) and _eval_left_to_right(used, answer[1::2]) == target


@functools.lru_cache(maxsize=None)
def modarith_instances() -> tuple[Instance, ...]:
    out = []
    for a, b, m in itertools.product(range(1, 10), range(1, 10), range(5, 14)):
        for t in range(m):
            sols = tuple(f"{x}{y}" for x in range(10) for y in range(10) if (a * x + b * y) % m == t)
            if sols:
                out.append(Instance(f"{a}{b}{m:02d}{t:02d}:", sols, (a, b, m, t)))
    return tuple(out)


def random_modarith(inst: Instance, rng: np.random.Generator) -> str:
    return "".join(str(v) for v in rng.integers(0, 10, size=2))


def verify_modarith(inst: Instance, answer: str) -> bool:
    a, b, m, t = inst.record
    return len(answer) == 2 and answer.isdigit() and (a * int(answer[0]) + b * int(answer[1])) % m == t


@functools.lru_cache(maxsize=None)
def subsetsum_instances() -> tuple[Instance, ...]:
    out = []
    for digits in itertools.combinations_with_replacement(range(1, 10), 5):
        by_target: dict[int, set[str]] = {}
        for r in range(1, 6):
            for sub in set(itertools.combinations(digits, r)):
                by_target.setdefault(sum(sub), set()).add("".join(map(str, sub)))
        for target, sols in sorted(by_target.items()):
            if len(sols) >= 2:  # instances with a choice of answers
                out.append(Instance(f"{''.join(map(str, digits))}={target:02d}:", tuple(sorted(sols)), (digits, target)))
    return tuple(out)


def random_subsetsum(inst: Instance, rng: np.random.Generator) -> str:
    digits = rng.permutation(inst.record[0])
    return "".join(str(v) for v in sorted(digits[: rng.integers(1, len(digits) + 1)]))


def verify_subsetsum(inst: Instance, answer: str) -> bool:
    digits, target = inst.record
    if not answer or not answer.isdigit() or len(answer) > 5:
        return False
    pool = list(digits)
    for c in answer:
        if int(c) not in pool:
            return False
        pool.remove(int(c))
    return sum(int(c) for c in answer) == target


LETTERS = "abcdefghij"


@functools.lru_cache(maxsize=None)
def letterset_instances(set_sizes: tuple[int, ...] = (3, 4, 5),
                        lengths: tuple[int, ...] = (3, 4, 5)) -> tuple[Instance, ...]:
    """Every (allowed set, length) pair; solutions are all L-strings over the set without an immediate repeat."""
    out = []
    for k in set_sizes:
        for allowed in itertools.combinations(LETTERS, k):
            for length in lengths:
                sols = tuple("".join(w) for w in itertools.product(allowed, repeat=length)
                             if all(a != b for a, b in itertools.pairwise(w)))
                out.append(Instance(f"{''.join(allowed)}/{length}:", sols, ("".join(allowed), length)))
    return tuple(out)


def random_letterset(inst: Instance, rng: np.random.Generator) -> str:
    """L letters drawn uniformly from all of a..j: legal in form, correct with probability k(k-1)^(L-1) / 10^L."""
    return "".join(rng.choice(list(LETTERS), size=inst.record[1]))


def verify_letterset(inst: Instance, answer: str) -> bool:
    allowed, length = inst.record
    return (len(answer) == length and all(c in allowed for c in answer)
            and all(a != b for a, b in itertools.pairwise(answer)))


# The testbed's settings (`--set` overrides of TrainConfig; docs/entrocraft.md, "Study: a testbed where RL learns"):
# 32 prompts per step is a run size, not a property of the task, so it stays here. The rest are TrainConfig's
# defaults (300 warm-start steps, lr 1e-3, G = 8) and the task's own sft_wrong_fraction (0.25, make_task).
TESTBED_SETTINGS = {"task": "letterset", "prompts_per_step": 32}


def _user_verifier(spec: str | None) -> Callable[[Instance, str], bool]:
    if not spec or spec == "exact":
        return lambda inst, answer: answer in inst.solutions
    module_name, _, func_name = spec.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError, ValueError):
        raise UserInputError(f"verifier {spec!r} not found; use 'exact' or 'module:function'") from None
    return lambda inst, answer: bool(func(inst.prompt, answer, inst.record))


def jsonl_instances(path: str | Path) -> list[Instance]:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"prompts file not found: {path}")
    out, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise UserInputError(f"{path}:{n}: not valid JSON") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("prompt"), str):
            raise UserInputError(f"{path}:{n}: each line needs a string 'prompt'")
        answers = rec.get("answers", [rec["answer"]] if "answer" in rec else [])
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise UserInputError(f"{path}:{n}: 'answers' must be a list of strings")
        if rec["prompt"] not in seen:  # one instance per prompt, so the split cannot leak
            seen.add(rec["prompt"])
            out.append(Instance(rec["prompt"], tuple(answers), rec))
    if len(out) < 2:
        raise UserInputError(f"{path}: need at least two distinct prompts")
    return out


def make_task(name: str, test_fraction: float = 0.2, split_seed: int = 0, prompts: str | Path | None = None,
              verifier: str | None = None) -> Task:
    if name not in TASKS:
        raise UserInputError(f"task must be one of {', '.join(TASKS)}, got {name!r}")
    if name == "jsonl":
        if prompts is None:
            raise UserInputError("task jsonl needs a prompts file (--set prompts=FILE.jsonl)")
        instances, verify, randomiser, wrong_fraction = jsonl_instances(prompts), _user_verifier(verifier), None, 0.0
        max_len = max([len(s) for i in instances for s in i.solutions] + [8])
    else:
        # letterset's warm start replaces a quarter of its targets by random letters: 0.5 leaves the 100K-parameter
        # GPT near uniform over a..j, held-out accuracy ~4%; 0.35 did the same; 0.25 learns the copy rule only
        # partly: ~40% held out, token entropy ~1.4 nats (docs/entrocraft.md, "Study: a testbed where RL learns")
        generate, verify, randomiser, max_len, wrong_fraction = {
            "countdown": (countdown_instances, verify_countdown, random_countdown, 5, 0.5),
            "modarith": (modarith_instances, verify_modarith, random_modarith, 2, 0.5),
            "subsetsum": (subsetsum_instances, verify_subsetsum, random_subsetsum, 5, 0.5),
            "letterset": (letterset_instances, verify_letterset, random_letterset, 5, 0.25)}[name]
        instances = list(generate())
    train, test = _split(instances, test_fraction, split_seed)
    alphabet = "".join(sorted({c for i in instances for c in i.prompt + "".join(i.solutions)} | set("0123456789+-*=:")))
    return Task(name, train, test, verify, max_len, alphabet, randomiser, wrong_fraction)


def sample_indices(n_items: int, count: int, seed: int, step: int) -> np.ndarray:
    """The prompts of one step: a pure function of (seed, step), so a resumed run draws the same batches."""
    return numpy_generator(seed, 11, step).choice(n_items, size=count, replace=count > n_items)
