"""Running one command module (``add_arguments(parser)`` and ``run(args) -> int``, optionally
``parse_args(parser, argv)``) with the kit's error conventions: a ``UserError`` is one line,
``sweepkit VERB: error: ...``, and exit code 2.

It lives in ``train`` so that ``python -m sweepkit.train`` (the program every sweep runs) stands alone,
and ``sweepkit.jobs.cli`` (the ``sweepkit`` console script) dispatches every verb through the same code.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from sweepkit.train.errors import EXIT_USAGE, UserError

# the extra 'train' (pip install 'sweepkit[train]'); a login-node install has neither, and the
# trainer imports them only when it runs, so a missing one surfaces here, not at import
TRAINER_PACKAGES = ("torch", "torchvision")


def trainer_missing(prog: str, err: ModuleNotFoundError) -> int:
    """One line for a verb that needs the trainer's packages on an install without them."""
    if err.name not in TRAINER_PACKAGES:
        raise err
    print(
        f"{prog}: error: needs {err.name}, which this install lacks; the trainer is the extra "
        "'train': pip install 'sweepkit[train]'",
        file=sys.stderr,
    )
    return EXIT_USAGE


def run_command(module: ModuleType, prog: str, description: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    module.add_arguments(parser)
    try:
        parse = getattr(module, "parse_args", None)
        args = parse(parser, argv) if parse else parser.parse_args(argv)
        return int(module.run(args) or 0)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:
        return trainer_missing(prog, err)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`sweepkit status ... | head`): not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:
        # a full, read-only or foreign filesystem under any write: one line naming the path
        from sweepkit.train.write_errors import is_write_refusal, refusal_line

        if not is_write_refusal(err):
            raise
        print(f"{prog}: error: {refusal_line(err)}", file=sys.stderr)
        return EXIT_USAGE
