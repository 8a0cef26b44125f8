"""``python -m train``: the program a sweep runs (same as ``sweepkit train``)."""

import sys

from train.cli import main

sys.exit(main())
