"""Shared test setup: the devices to parametrise over, the cuda marker's skip and the native marker's skip."""
from __future__ import annotations

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])


def _native_missing() -> str | None:
    """Why a native-vs-reference test cannot compare anything here (None when it can)."""
    from toolbox.core import native

    if os.environ.get("TOOLBOX_KERNELS", "native") == "reference":
        return "TOOLBOX_KERNELS=reference: the native kernels are switched off"
    if native.module() is None:
        return f"toolbox._core is not built ({native.import_error()})"
    return None


def pytest_collection_modifyitems(config, items):
    no_native = _native_missing()
    for item in items:
        if "cuda" in item.keywords and not HAS_CUDA:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if "native" in item.keywords and no_native:
            item.add_marker(pytest.mark.skip(reason=no_native))


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def pytest_configure(config):
    # The source-tree shadowing trap: `python -m pytest` from the repository root imports the source folder
    # toolbox/ (no _core, no cli) instead of the installed package. Fail loudly instead of testing the wrong code.
    try:
        import toolbox.cli  # noqa: F401
    except ImportError:
        pytest.exit("tests imported the source folder toolbox/ instead of the installed package: "
                    "run `.venv/bin/pytest` (not `python -m pytest`) or use an editable install", returncode=4)
