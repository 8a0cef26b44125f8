"""sweepkit's Python API: local, offline sweeps called as ``wandb.sweep`` and ``wandb.agent`` are.

    import sweepkit
    sweep_id = sweepkit.sweep(sweep={"method": "grid", "metric": {...}, "parameters": {...}},
                              project="my-project")
    sweepkit.agent(sweep_id, function=train, count=4)  # train() calls wandb.init() and logs

``sweep(sweep, entity=None, project=None, prior_runs=None, *, root="sweeps", lease_s=None,
max_retries=None)`` takes W&B's parameters, by position or keyword, as ``wandb.sweep`` does: the
definition (a dict, a function returning one, or the path of its YAML file), checked as
``sweepkit sweep create`` checks it. ``entity`` and ``project`` (else the definition's own keys)
are recorded in the sweep for ``sweepkit sync``. ``prior_runs`` adds W&B runs by id to a sweep on
W&B's server; a local sweep cannot, so a non-empty list is refused. It returns the new sweep
folder's path: the id every other verb takes. The keyword-only options are the kit's: where sweeps
are made, the lease and the retries (``sweepkit sweep create --lease --max-retries``).

``agent(sweep_id, function=None, entity=None, project=None, count=None)`` is ``wandb.agent``'s
signature: it runs the sweep's runs in this process; with ``function``, calls it once per claimed
run, where ``wandb.init()`` gets the run's parameters, offline, exactly as under ``wandb.agent``
(``sweepkit.jobs.sweeps.agent.function``); without, launches the sweep's program as ``sweepkit
agent`` does. An ``entity`` or ``project`` other than the one recorded with the sweep gets one
warning (``sweepkit sync`` uploads to the recorded one unless given another). It returns the CLI
agent's exit code (0; 1 for a sweep whose first runs all failed; 75 when a signal stopped it).

Bad input raises :class:`sweepkit.UserError` with the same one line as the CLI. The parameters
W&B's newer ``wandb.agent`` adds (``forward_signals``, ``term_timeout``,
``max_consecutive_failed_runs``) are not taken: the agent always passes signals on.

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

from sweepkit.train.errors import UserError

__all__ = ["UserError", "agent", "sweep"]

# sweep.yaml as sweep() wrote it, by folder: its warnings were shown then, not again by agent()
_SHOWN: dict[Path, str] = {}


def sweep(
    sweep: dict[str, Any] | Callable[[], dict[str, Any]] | str | Path,
    entity: str | None = None,
    project: str | None = None,
    prior_runs: list[str] | None = None,
    *,
    root: str | Path = "sweeps",
    lease_s: float | None = None,
    max_retries: int | None = None,
) -> str:
    """Create a local sweep from a definition (a dict, a function returning one, or a YAML file's
    path); returns its path, the sweep id ``agent`` takes."""
    # imported here, not at the top: `import sweepkit` stays cheap (no wandb, no engine)
    from sweepkit.jobs.sweeps import store

    if prior_runs:
        raise UserError(
            f"sweepkit.sweep(prior_runs={list(prior_runs)!r}): a local sweep cannot take W&B runs "
            "by id (W&B adds them from its server); leave prior_runs out"
        )
    definition, source = _checked_definition(sweep() if callable(sweep) else sweep)
    made = store.create_sweep(
        definition,
        Path(root),
        source=source,
        lease_s=store.DEFAULT_LEASE_S if lease_s is None else lease_s,
        max_retries=store.DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
        # as wandb.sweep: the argument, else the definition's own key
        extra={
            "project": project or definition.get("project"),
            "entity": entity or definition.get("entity"),
        },
    )
    _SHOWN[made.path.resolve()] = (made.path / "sweep.yaml").read_text()
    print(f"created local sweep {made.sweep_id} in {made.path}", file=sys.stderr)
    return str(made.path)


def _checked_definition(config: Any) -> tuple[dict[str, Any], str]:
    """The definition checked, its warnings printed; and the name its messages use for it."""
    from sweepkit.jobs.sweeps import program_check
    from sweepkit.jobs.sweeps.definition import load_definition, missing_goal_warning, validate

    # as wandb.sweep: a definition without program or command is for agent(function=...)
    if isinstance(config, dict):
        source = "sweepkit.sweep(sweep)"
        program = bool(config.get("program") or config.get("command"))
        definition = validate(config, source, program=program)
    elif isinstance(config, (str, Path)):
        source = str(config)
        definition = load_definition(config, program=False)
        program = bool(definition.get("program") or definition.get("command"))
        if program and not definition.get("program"):  # a command naming ${program}
            validate(definition, source)
    else:
        raise UserError(
            f"sweepkit.sweep(sweep=...): got {type(config).__name__}; pass the sweep definition "
            "as a dict, a function that returns one, or the path of its YAML file"
        )
    warnings: list[str | None] = []
    if program:
        warnings += program_check.check_definition(definition, source, Path.cwd())
    warnings.append(missing_goal_warning(definition, source))
    for warning in filter(None, warnings):
        print(warning, file=sys.stderr)
    return definition, source


def agent(
    sweep_id: str | Path,
    function: Callable[[], Any] | None = None,
    entity: str | None = None,
    project: str | None = None,
    count: int | None = None,
) -> int:
    """Run the sweep's next runs here: ``function`` once per run, or the sweep's program."""
    # imported here, not at the top: `import sweepkit` stays cheap (no wandb, no engine)
    from sweepkit.jobs.sweeps import store
    from sweepkit.jobs.sweeps.agent.function import FunctionRunner
    from sweepkit.jobs.sweeps.agent.local import LocalAgent
    from sweepkit.jobs.sweeps.ref import parse_local

    if count is not None and count < 1:
        raise UserError(f"count={count}: must be a positive number of runs")
    local = store.open_sweep(parse_local(sweep_id).text)
    for key, given in (("entity", entity), ("project", project)):
        recorded = local.meta.get(key)
        if given is not None and given != recorded:
            print(
                f"sweepkit: warning: sweepkit.agent({key}={given!r}): sweep {local.sweep_id} was "
                f"created with {key} {recorded!r}; its runs stay local, and `sweepkit sync` "
                f"uploads them to the recorded {key} unless given --{key} {given}",
                file=sys.stderr,
            )
    shown = _SHOWN.get(local.path.resolve()) == (local.path / "sweep.yaml").read_text()
    runner = LocalAgent(
        local, None if function is None else FunctionRunner(function), definition_warned=shown
    )
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
