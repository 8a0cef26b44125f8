"""``python -m sweepkit.train`` / ``sweepkit train``: one run, as both W&B's and sweepkit's agents start it.

    python -m sweepkit.train [--config PRESET.yaml ...] [--run-dir DIR] [--key=value ...] [--set key=value ...]

``--key=value`` arguments are the agent's overrides (``${args}``); ``--set`` wins over everything.
Exit codes: 0 finished, 1 failed, 2 bad config or input, 75 preempted (rerun to resume).
Under torchrun every rank runs this; rank 0 chooses the run folder and reads the swept values, and
shares both, so all ranks train the same run; only rank 0 writes or prints for it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepkit.train.errors import EXIT_FAILED, EXIT_OK, EXIT_PREEMPTED, EXIT_USAGE, UserError
from sweepkit.train.write_errors import refusal_in, refusal_line

if TYPE_CHECKING:
    from sweepkit.train.config import Config
    from sweepkit.train.distributed import World

log = logging.getLogger("sweepkit")
# The same words as the verb's line in ``sweepkit --help`` (jobs/cli.py).
DESCRIPTION = "train one run (same as python -m sweepkit.train)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="preset YAML layered over config/config.yaml (repeatable)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any key; wins over every other source",
    )
    parser.add_argument(
        "--run-dir", help="run folder (default: $SWEEPKIT_RUN_DIR, else runs/<run id>)"
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the effective config and exit"
    )
    parser.epilog = (
        "Any other --key=value argument is an agent override, e.g. --learning_rate=0.01."
    )


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args, rest = parser.parse_known_args(argv)
    from sweepkit.train.config import parse_agent_args

    args.agent_overrides = parse_agent_args(rest)
    return args


def resolve_run_dir(arg: str | None) -> tuple[Path, str]:
    """(run folder, run id): the flag, then the agent's folder, then runs/<WANDB_RUN_ID or new id>."""
    run_id = os.environ.get("WANDB_RUN_ID")
    chosen = arg or os.environ.get("SWEEPKIT_RUN_DIR")
    if chosen:
        path = Path(chosen)
        return path, run_id or path.name
    run_id = run_id or uuid.uuid4().hex[:8]
    return Path("runs") / run_id, run_id


class _RunLog(logging.FileHandler):
    """train.log. On a full or read-only disk a line that cannot be written is dropped quietly
    (the console has it): logging's default prints a traceback to stderr for every line."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if refusal_in(sys.exc_info()[1] or Exception()) is None:
            super().handleError(record)


def _setup_logging(run_dir: Path, log_file: str, world: World) -> None:
    """Rank 0 logs to the console and ``train.log``; other ranks only their warnings, tagged."""
    log.setLevel(logging.INFO if world.is_main else logging.WARNING)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(
        logging.Formatter("%(message)s" if world.is_main else f"rank {world.rank}: %(message)s")
    )
    log.addHandler(console)
    if world.is_main:
        to_file = _RunLog(run_dir / log_file)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(to_file)


def _check_same_run(previous: dict[str, Any], cfg: Config, run_dir: Path, run_id: str) -> None:
    """A run folder that finished, or holds checkpoints to resume, is that run's: other settings
    would be ignored (finished) or mixed into it (resumed), so they are refused before anything in
    the folder changes. Operational keys (workers, paths, compile, W&B) may differ."""
    from sweepkit.train.config import config_changes

    changed = config_changes(previous.get("config") or {}, cfg.nested())
    if not changed:
        return
    if previous.get("state") == "finished":
        raise UserError(
            f"run {run_id} in {run_dir} already finished with other settings "
            f"({'; '.join(changed)}); pass a new --run-dir to train with these"
        )
    from sweepkit.train.checkpoint import has_checkpoint

    if has_checkpoint(run_dir):
        raise UserError(
            f"run folder {run_dir} holds checkpoints of run {run_id} trained with other settings "
            f"({'; '.join(changed)}); resume it with the same ones, or pass a new --run-dir"
        )


def _check_same_world(previous: dict[str, Any], world: World, run_dir: Path) -> None:
    """A checkpointed run resumes with the world size it was trained with (refused before the
    folder changes; the trainer checks the checkpoint itself again)."""
    from sweepkit.train.checkpoint import has_checkpoint

    saved = int(previous.get("world_size") or 1)
    if saved != world.size and previous.get("state") != "finished" and has_checkpoint(run_dir):
        from sweepkit.train.distributed import world_size_changed

        raise UserError(world_size_changed(run_dir, saved, world.size))


def run(args: argparse.Namespace) -> int:
    from sweepkit.train.config import build_config
    from sweepkit.train.distributed import join_world, leave_world, world_from_env

    cfg = build_config(args.config, args.agent_overrides, args.set)
    if args.print_config:
        from sweepkit.train.config import dump_yaml

        print(dump_yaml(cfg.nested(), sort_keys=False), end="")
        return EXIT_OK
    world = world_from_env()
    if not world.distributed:
        return _run(args, cfg, world)
    join_world(world, cfg.device)
    code = EXIT_FAILED
    try:
        code = _run(args, cfg, world)
        return code
    except UserError:
        if world.is_main:
            raise  # printed once, by rank 0; every rank exits 2
        return EXIT_USAGE
    finally:
        # Past this point the run's outcome is settled on every rank. torchrun sends SIGTERM to
        # the ranks still running once the first one exits non-zero (75 too): ignoring it lets each
        # rank leave with its own exit code rather than die of that signal.
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)
        # finished or preempted: the same on every rank, so every rank reaches the meeting
        leave_world(meet=code in (EXIT_OK, EXIT_PREEMPTED))


def _run(args: argparse.Namespace, cfg: Config, world: World) -> int:
    from sweepkit.train.config import build_config
    from sweepkit.train.runrecord import RunRecord, node_name, now_iso

    run_dir, run_id = world.share(resolve_run_dir(args.run_dir))
    previous, refusal = world.share(_previous(run_dir, run_id, cfg) if world.is_main else None)
    if refusal:
        raise UserError(refusal)
    if previous:
        _check_same_world(previous, world, run_dir)
    if previous and not os.environ.get("WANDB_SWEEP_ID"):
        # under an agent the swept values may arrive only later, through wandb.config; the agent
        # relaunches a run with its own values by construction
        _check_same_run(previous, cfg, run_dir, run_id)
    if previous and previous.get("state") == "finished":
        if world.is_main:
            print(f"run {run_id} in {run_dir} already finished; nothing to do")
        return EXIT_OK
    _make_run_dir(run_dir)
    _setup_logging(run_dir, cfg.log_file, world)

    from sweepkit.train.checkpoint import trim_after_finish
    from sweepkit.train.signals import StopSignal
    from sweepkit.train.tracking import Tracker
    from sweepkit.train.trainer import train

    stop = StopSignal().install()
    record = RunRecord(run_dir, run_id, cfg.nested(), previous, persist=world.is_main)
    record.data["world_size"] = world.size
    # where each rank of this attempt runs: on several nodes, the hosts the run really spanned
    record.data["ranks"] = world.gather(
        {"rank": world.rank, "host": node_name(), "pid": os.getpid()}
    )
    tracker = None
    code = EXIT_FAILED
    try:
        tracker = Tracker(cfg, run_dir, run_id, enabled=world.is_main)
        swept = world.share(tracker.swept_values())
        if swept:
            # wandb.config holds the sweep's choice: layer it (below --set) and record the result.
            cfg = build_config(args.config, args.agent_overrides, args.set, wandb_config=swept)
            tracker.record_config(cfg)
        record.update(config=cfg.nested())
        state = train(cfg, run_dir, record, tracker, stop, world)
        code = EXIT_PREEMPTED if state == "preempted" else EXIT_OK
        record.data["timings"]["ended_at"] = None if state == "preempted" else now_iso()
        record.update(state=state, exit_code=code)
        if state == "finished" and world.is_main:
            trim_after_finish(run_dir, cfg.checkpoint.keep_after_finish)
        return code
    except UserError as err:
        code = EXIT_USAGE
        record.update(state="failed", exit_code=code, error=str(err))
        raise
    except Exception as err:
        code = EXIT_USAGE if refusal_in(err) is not None else EXIT_FAILED
        return _failed(record, err)
    finally:
        if tracker is not None:
            tracker.finish(code, preempted=code == EXIT_PREEMPTED)


def _previous(run_dir: Path, run_id: str, cfg: Config) -> tuple[dict[str, Any] | None, str]:
    """(run.json as the last attempt left it, "") or (None, why it is refused): a torn one is
    recovered or refused (torn_record.py). Rank 0 reads it and tells the others, which raise the
    same refusal: a torn file is moved aside while they would read it."""
    from sweepkit.train.torn_record import previous_record

    try:
        return previous_record(run_dir, run_id, cfg.nested()), ""
    except UserError as err:
        return None, str(err)


def _make_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create run folder {run_dir}: {err.strerror}; pass --run-dir to a writable path"
        ) from None


def _failed(record: Any, err: BaseException) -> int:
    """How a run ends on an error it did not expect: a full or read-only disk under a checkpoint
    or run.json is one line (the last good checkpoint is intact: written atomically; run.json
    says it if it still can); anything else is an unexpected failure."""
    refusal = refusal_in(err)
    if refusal is None:
        return _unexpected(record, err)
    line = refusal_line(
        refusal,
        space_fix="free space in the run folder's filesystem",
        then="the last checkpoint is intact: rerun to resume",
    )
    log.error("%s", line)
    with contextlib.suppress(OSError):
        record.update(state="failed", exit_code=EXIT_USAGE, error=line)
    raise UserError(line) from None


def _unexpected(record: Any, err: BaseException) -> int:
    """An unexpected error: the traceback in train.log, the error in run.json; exit 1."""
    log.error("%s", traceback.format_exc().rstrip())
    record.update(state="failed", exit_code=EXIT_FAILED, error=f"{err.__class__.__name__}: {err}")
    return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """``python -m sweepkit.train``: the same command as ``sweepkit train``."""
    from sweepkit.train.entry import run_command

    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(sys.modules[__name__], "sweepkit train", DESCRIPTION, argv)
