"""Peak resident memory growth of this process around a block (session creation and first run)."""
from __future__ import annotations

import sys
from typing import Optional

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]


def _status_kb(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ≥ 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _maxrss_bytes() -> Optional[int]:
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class PeakRss:
    """Measures peak RSS growth: ``start()`` before the block, ``growth()`` after it, in bytes or None.

    On Linux the peak mark is reset at ``start`` so the figure is exact; elsewhere it is the growth of
    the process's lifetime peak, a lower bound.
    """

    def __init__(self) -> None:
        self.base: Optional[int] = None
        self.exact = False

    def start(self) -> None:
        """Note the current resident size (and reset the peak mark where possible)."""
        self.exact = _reset_peak()
        rss = _status_kb("VmRSS")
        self.base = rss * 1024 if self.exact and rss is not None else _maxrss_bytes()

    def growth(self) -> Optional[int]:
        """Bytes the peak grew by since ``start``."""
        if self.base is None:
            return None
        hwm = _status_kb("VmHWM")
        peak = hwm * 1024 if self.exact and hwm is not None else _maxrss_bytes()
        return None if peak is None else max(0, peak - self.base)
