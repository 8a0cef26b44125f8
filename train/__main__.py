"""``python -m sweepkit.train``: the program a sweep runs (same as ``sweepkit train``)."""

import sys

from sweepkit.train.cli import main

sys.exit(main())
