"""Journal records as agents append them (a claim of attempt k, its end), for the in-memory tests of
the fold and the claim policy (tests/jobs/sweeps/store/)."""

from __future__ import annotations

from typing import Any


def claim(run: str, k: int, params: dict[str, Any] | None = None, at: float = 0.0) -> dict:
    record: dict[str, Any] = {"t": "claim", "run": run, "k": k, "at": at, "agent": "a"}
    if params is not None:
        record["params"] = params
    return record


def end(run: str, k: int, state: str, at: float = 1.0, **extra: Any) -> dict:
    return {"t": "end", "run": run, "k": k, "state": state, "at": at, **extra}
