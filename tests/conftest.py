"""Shared test setup: the devices to parametrise over, and the cuda marker's skip."""
from __future__ import annotations

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


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
