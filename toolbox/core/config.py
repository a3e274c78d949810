"""Configuration: dataclass defaults < --config FILE.toml < --set key=value < explicit options.

Every pipeline describes its settings as a dataclass; `resolve` merges the layers with type checks, and
`dumps_toml` writes the resolved configuration into the run folder.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from pathlib import Path
from typing import Any, Mapping

from toolbox.core.errors import UserInputError


def load_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: not valid TOML ({exc})") from exc


def parse_set(items: list[str] | None) -> dict:
    """--set key=value pairs; values are read as TOML literals (numbers, booleans, strings, arrays)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise UserInputError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string
        _assign(out, key.split("."), value)
    return out


def _assign(tree: dict, keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        tree = tree.setdefault(k, {})
    tree[keys[-1]] = value


def _coerce(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise UserInputError(f"config {name}: expected {hint.__name__}, got {value!r}")
        return value
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        if args and args[0] is float:
            value = [float(v) for v in value]
        return origin(value)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return merge(hint(), value, prefix=f"{name}.")
    return value


def merge(base, overrides: Mapping[str, Any], prefix: str = ""):
    """A copy of dataclass `base` with `overrides` applied; unknown keys are user errors."""
    if not overrides:
        return base
    hints = typing.get_type_hints(type(base))
    fields = {f.name for f in dataclasses.fields(base)}
    changes = {}
    for key, value in overrides.items():
        key_py = key.replace("-", "_")
        if key_py not in fields:
            raise UserInputError(f"unknown setting {prefix}{key} (known: {', '.join(sorted(fields))})")
        current = getattr(base, key_py)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key_py] = merge(current, value, prefix=f"{prefix}{key}.")
        else:
            changes[key_py] = _coerce(prefix + key, value, hints[key_py])
    return dataclasses.replace(base, **changes)


def resolve(defaults, config_file: str | Path | None = None, sets: list[str] | None = None,
            explicit: Mapping[str, Any] | None = None):
    """Defaults < config file < --set < explicit (options the user typed; None values are ignored)."""
    cfg = defaults
    if config_file:
        cfg = merge(cfg, load_toml(config_file))
    cfg = merge(cfg, parse_set(sets))
    return merge(cfg, {k: v for k, v in (explicit or {}).items() if v is not None})


def dumps_toml(obj: Any) -> str:
    """TOML for a dataclass or nested dict of scalars / lists (the subset our configurations use)."""
    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(obj)
    lines: list[str] = []
    _toml_table(data, [], lines)
    return "\n".join(lines).strip() + "\n"


def _toml_table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if path and scalars:
        lines.append(f"\n[{'.'.join(path)}]")
    for k, v in scalars.items():
        if v is not None:
            lines.append(f"{k} = {_toml_value(v)}")
    for k, v in tables.items():
        _toml_table(v, [*path, k], lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else ('"nan"' if v != v else '"inf"')
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))
