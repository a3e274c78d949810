"""Cost guards: a run whose estimated memory cannot fit in this machine's available memory is refused before it
starts (exit 2 with the estimate), instead of ending in a MemoryError or swapping for minutes."""
from __future__ import annotations

import os

from toolbox.core.errors import UserInputError

USABLE_FRACTION = 0.8  # of the memory available now; the rest stays for the interpreter, libraries and the OS


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (Linux MemAvailable; else the physical total)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def human_bytes(n: float) -> str:
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} PiB"


def check_memory(estimate_bytes: float, what: str, hint: str = "") -> None:
    """Refuse `what` when its estimated peak memory exceeds the usable share of the available memory."""
    usable = USABLE_FRACTION * available_memory()
    if estimate_bytes > usable:
        raise UserInputError(f"{what} needs about {human_bytes(estimate_bytes)} of memory, more than the "
                             f"{human_bytes(usable)} this machine has available" + (f"; {hint}" if hint else ""))
