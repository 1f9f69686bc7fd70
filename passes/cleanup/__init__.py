"""Clean-up passes (no-op removal, chain merging, CSE) and dead-code elimination; import order is run order."""
from __future__ import annotations

from onnxopt.passes.cleanup import (  # noqa: F401
    eliminate_nop,
    merge_transposes,
    merge_reshapes,
    squeeze_unsqueeze,
    merge_casts,
    merge_slices,
    cse,
    dce,
)
