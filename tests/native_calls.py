"""native_calls: counts calls of toolbox._core functions, so that a native-vs-reference test proves it ran the
kernel (and did not compare the reference with itself)."""
from __future__ import annotations

import collections
import contextlib

from toolbox.core import native


@contextlib.contextmanager
def native_calls(*names):
    core, calls = native.module(), collections.Counter()
    originals = {name: getattr(core, name) for name in names} if core is not None else {}
    for name, fn in originals.items():
        setattr(core, name, lambda *a, _fn=fn, _name=name, **k: calls.update([_name]) or _fn(*a, **k))
    try:
        yield calls
    finally:
        for name, fn in originals.items():
            setattr(core, name, fn)
