"""sweepkit's Python API: local, offline sweeps with W&B's ``wandb.sweep`` / ``wandb.agent`` shape.

    import sweepkit
    sweep = sweepkit.sweep({"method": "grid", "metric": {...}, "parameters": {...}})
    sweepkit.agent(sweep, function=train, count=4)  # train() calls wandb.init() and logs

``sweep(config, root="sweeps")`` checks a sweep definition (a dict, or the path of its YAML file)
as ``sweepkit sweep create`` does and returns the new sweep folder's path, the reference every
other verb takes. ``agent(sweep, function=None, count=None)`` runs the sweep's runs in this
process: with ``function``, calls it once per claimed run, where ``wandb.init()`` gets the run's
parameters, offline, exactly as under ``wandb.agent`` (``sweepkit.jobs.sweeps.agent.function``); without,
launches the sweep's program as ``sweepkit agent`` does. It returns the CLI agent's exit code (0;
1 for a sweep whose first runs all failed; 75 when a signal stopped it). Bad input raises
``UserError`` with the same one line as the CLI.

The kit's parts install under this one name (``sweepkit.train``, ``sweepkit.jobs``), so a user's
own ``train.py`` or ``jobs/`` beside a notebook neither shadows the kit nor is shadowed by it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["agent", "sweep"]


def sweep(
    config: dict[str, Any] | str | Path,
    root: str | Path = "sweeps",
    lease_s: float | None = None,
    max_retries: int | None = None,
) -> str:
    """Create a local sweep from a definition (a dict, or a YAML file's path); returns its path."""
    # imported here, not at the top: `import sweepkit` stays cheap (no wandb, no engine)
    from sweepkit.jobs.sweeps import program_check, store
    from sweepkit.jobs.sweeps.definition import load_definition, missing_goal_warning, validate

    # as wandb.sweep: a definition without program or command is for agent(function=...)
    if isinstance(config, dict):
        source = "sweepkit.sweep(config)"
        program = bool(config.get("program") or config.get("command"))
        definition = validate(config, source, program=program)
    else:
        source = str(config)
        definition = load_definition(config, program=False)
        program = bool(definition.get("program") or definition.get("command"))
        if program and not definition.get("program"):  # a command naming ${program}
            validate(definition, source)
    warnings: list[str | None] = []
    if program:
        warnings += program_check.check_definition(definition, source, Path.cwd())
    warnings.append(missing_goal_warning(definition, source))
    for warning in filter(None, warnings):
        print(warning, file=sys.stderr)
    made = store.create_sweep(
        definition,
        Path(root),
        source=source,
        lease_s=store.DEFAULT_LEASE_S if lease_s is None else lease_s,
        max_retries=store.DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
        extra={"project": definition.get("project"), "entity": definition.get("entity")},
    )
    print(f"created local sweep {made.sweep_id} in {made.path}", file=sys.stderr)
    return str(made.path)


def agent(
    sweep: str | Path, function: Callable[[], Any] | None = None, count: int | None = None
) -> int:
    """Run the sweep's next runs here: ``function`` once per run, or the sweep's program."""
    # imported here, not at the top: `import sweepkit` stays cheap (no wandb, no engine)
    from sweepkit.jobs.sweeps import store
    from sweepkit.jobs.sweeps.agent.function import FunctionRunner
    from sweepkit.jobs.sweeps.agent.local import LocalAgent
    from sweepkit.jobs.sweeps.ref import parse_local
    from sweepkit.train.errors import UserError

    if count is not None and count < 1:
        raise UserError(f"count={count}: must be a positive number of runs")
    local = store.open_sweep(parse_local(sweep).text)
    runner = LocalAgent(local, None if function is None else FunctionRunner(function))
    saved = _handlers()
    try:
        return runner.run(count)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _handlers() -> dict[int, Any]:
    """The caller's signal handlers, which the agent replaces while it runs."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
