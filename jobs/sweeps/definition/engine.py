"""The ``sweeps`` package (W&B's sweep engine), imported without its pydantic warning."""

from __future__ import annotations

import warnings

# sweeps 0.3 declares a pydantic v1 config key; pydantic v2 warns about it on every import.
warnings.filterwarnings(
    "ignore", message="Valid config keys have changed in V2", category=UserWarning
)


def quiet_sweeps_import() -> None:
    """Import ``sweeps`` (kept as a function: callers import it lazily, after the filter above)."""
    import sweeps  # noqa: F401
