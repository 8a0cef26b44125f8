"""Cluster profiles (``config/cluster.yaml``): load, validate, and hand a typed ``Profile`` out.

A profile is everything site-specific about an sbatch array job: where it runs (partition,
account, qos, constraint), what it asks for (CPUs, memory, GPUs, time), how it behaves near its
end (signal lead time, requeue), and how the agent starts (modules, container runtime, image,
binds, environment, log names). ``sweepkit submit`` renders ``jobs/slurm/sweep_array.sbatch``
from it.

- ``schema.py``: the keys and the ``Profile`` they make;
- ``values.py``: reading one value (type, range, what an ``#SBATCH`` line can hold);
- ``check.py``: one profile's keys together (time and signal lead, GPUs and packing, binds ...);
- ``units.py``: SLURM's time and memory formats;
- ``load.py``: the config file.

Validation is strict because a profile value ends up in a shell script; every problem is one
``UserError`` naming the file, the profile and the key.
"""

from __future__ import annotations

from sweepkit.jobs.slurm.profiles.load import load_all, load_profile
from sweepkit.jobs.slurm.profiles.schema import CONTROL_CHARS, DIRECTIVE_BAD, Profile
from sweepkit.jobs.slurm.profiles.units import parse_time_s

__all__ = [
    "CONTROL_CHARS",
    "DIRECTIVE_BAD",
    "Profile",
    "load_all",
    "load_profile",
    "parse_time_s",
]
