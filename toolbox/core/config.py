"""Typed settings: dataclass defaults < --config FILE.toml < --set key=value < explicit options.

Every pipeline declares its settings as a dataclass whose fields carry their type, range and choices
(`Annotated[int, Field(ge=1)]`, `Literal[...]`); pydantic validates every merged layer against that schema, so a
bad value is one clear line before anything runs. `dumps_toml` (tomli-w) writes the resolved settings, and they
read back to the same settings (infinities and NaN included). Agent and game specs (`ucbvi:delta=0.05`) are
validated by the same means against the keyword signature of the class they build (`parse_spec`, `build_spec`).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Mapping

from pydantic import Field, TypeAdapter, ValidationError, create_model

from toolbox.core.errors import UserInputError

# Field types shared by the pipelines' settings (pydantic constraints on plain dataclass fields).
PosInt = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]  # where 0 means "all", "none" or "the default", as each field says
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Real = Annotated[float, Field(allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]
Backend = Literal["serial", "process", "ray"]


PROVENANCE_TABLE = "provenance"  # written into every run's config.toml; not a setting, so ignored on reading


def load_toml(path: str | Path) -> dict:
    """The settings in a TOML file (a run's config.toml included: its provenance table is left out)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: not valid TOML ({exc})") from exc
    data.pop(PROVENANCE_TABLE, None)
    return data


def parse_value(raw: str) -> Any:
    """A TOML literal (number, boolean, inf, nan, string, array) or, failing that, the bare word as a string."""
    try:
        return tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return raw.strip()


def parse_set(items: list[str] | None) -> dict:
    """--set key=value pairs (dotted keys reach nested settings); values are read by `parse_value`."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise UserInputError(f"--set expects key=value, got {item!r}")
        tree = out
        *parents, leaf = key.strip().split(".")
        for k in parents:
            tree = tree.setdefault(k, {})
        tree[leaf] = parse_value(raw)
    return out


@functools.lru_cache(maxsize=None)
def _adapter(cls) -> TypeAdapter:
    return TypeAdapter(cls)


def _errors_line(exc: ValidationError, lead: str = "setting") -> str:
    """pydantic's errors as one line: '<lead> a.b: <reason> (got <value>); ...'."""
    parts = []
    for err in exc.errors(include_url=False):
        got = err.get("input")
        shown = "" if isinstance(got, Mapping) else f" (got {got!r})"
        parts.append(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].lower()}{shown}")
    return f"{lead} " + "; ".join(parts)


def _validated(cls, data: dict):
    """An instance of settings dataclass `cls` from plain data, checked against its schema."""
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as exc:
        raise UserInputError(_errors_line(exc)) from None


def _is_list(hint: Any) -> bool:
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return typing.get_origin(hint) in (list, tuple)


def _normalise(base, overrides: Mapping[str, Any], prefix: str) -> dict:
    """Check the keys against the dataclass (unknown keys are user errors), spell them as fields, and read a bare
    string given to a list setting as a comma-separated list (`--set partitions=kmeans,random`)."""
    hints = typing.get_type_hints(type(base), include_extras=True)
    fields = {f.name for f in dataclasses.fields(base)}
    out = {}
    for key, value in overrides.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise UserInputError(f"unknown setting {prefix}{key} (known: {', '.join(sorted(fields))})")
        current = getattr(base, name)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            value = _normalise(current, value, f"{prefix}{key}.")
        elif _is_list(hints[name]) and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif _is_list(hints[name]) and not isinstance(value, (list, tuple)):
            value = [value]
        out[name] = value
    return out


def _deep_update(tree: dict, changes: Mapping[str, Any]) -> dict:
    for k, v in changes.items():
        tree[k] = _deep_update(dict(tree[k]), v) if isinstance(v, Mapping) and isinstance(tree.get(k), dict) else v
    return tree


def validate(cfg):
    """Re-check a settings dataclass against its declared schema (types, ranges, choices); returns a new one."""
    return _validated(type(cfg), dataclasses.asdict(cfg))


def merge(base, overrides: Mapping[str, Any] | None):
    """A validated copy of dataclass `base` with `overrides` applied; unknown keys and bad values are user errors."""
    if not overrides:
        return base
    return _validated(type(base), _deep_update(dataclasses.asdict(base), _normalise(base, overrides, "")))


def resolve(defaults, config_file: str | Path | None = None, sets: list[str] | None = None,
            explicit: Mapping[str, Any] | None = None):
    """Defaults < config file < --set < explicit (options the user typed; None values are ignored); the result
    is validated even when nothing was overridden."""
    cfg = validate(defaults)
    if config_file:
        cfg = merge(cfg, load_toml(config_file))
    cfg = merge(cfg, parse_set(sets))
    return merge(cfg, {k: v for k, v in (explicit or {}).items() if v is not None})


def to_toml_data(obj: Any) -> Any:
    """Plain TOML data: dataclasses as tables, tuples as arrays, paths as strings, None left out."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_toml_data(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [to_toml_data(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalars
        return obj.item()
    return obj


def dumps_toml(obj: Any) -> str:
    """TOML text of a settings dataclass or mapping (tomli-w), read back by `load_toml` to the same values."""
    import tomli_w

    return tomli_w.dumps(to_toml_data(obj))


# ------------------------------------------------------------------------------------- name:key=value,... specs
def parse_spec(spec: str, what: str = "agent") -> tuple[str, dict[str, Any]]:
    """'name' or 'name:key=value,key=value' -> (name, {key: TOML-read value}); keys spelled with '_'."""
    name, _, rest = spec.strip().partition(":")
    if not name:
        raise UserInputError(f"{what} {spec!r}: missing name")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise UserInputError(f"{what} {spec!r}: expected key=value, got {item!r}")
        params[key.strip().replace("-", "_")] = parse_value(raw)
    return name, params


def _keyword_params(target: Callable) -> dict[str, tuple[Any, Any]]:
    """name -> (annotation, default) of the keyword parameters with defaults that `target` accepts; for a class,
    its __init__'s, and its bases' too while each __init__ passes **kwargs on."""
    fns = [c.__init__ for c in target.__mro__ if "__init__" in vars(c)] if isinstance(target, type) else [target]
    out: dict[str, tuple[Any, Any]] = {}
    for fn in fns:
        if fn is object.__init__:
            break
        hints = typing.get_type_hints(fn, include_extras=True)
        params = inspect.signature(fn).parameters.values()
        for p in params:
            if p.default is not p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                out.setdefault(p.name, (hints.get(p.name, Any), p.default))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return out


def check_params(target: Callable, params: Mapping[str, Any], label: str) -> dict[str, Any]:
    """Validate keyword parameters against the annotated keyword signature of `target` (a function or a class:
    Annotated ranges, Literal choices); unknown names and bad values are one-line user errors. Returns the
    converted values."""
    accepted = _keyword_params(target)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UserInputError(f"{label}: unknown parameter(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(accepted)) or 'none'})")
    model = create_model("params", **{n: accepted[n] for n in params})
    try:
        checked = model(**params)
    except ValidationError as exc:
        raise UserInputError(_errors_line(exc, f"{label}:")) from None
    return {n: getattr(checked, n) for n in params}
