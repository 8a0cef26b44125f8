"""Finding and reading the cluster config file, and handing its profiles out validated."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sweepkit.jobs.slurm.profiles.check import check_profile
from sweepkit.jobs.slurm.profiles.schema import Profile
from sweepkit.train.config import DuplicateKeyError, load_yaml, yaml_error_position
from sweepkit.train.errors import UserError

DEFAULT_CLUSTER_CONFIG = Path("config") / "cluster.yaml"
CHECKOUT = Path(__file__).resolve().parents[3]  # the sweepkit checkout this file is part of


def read_profiles(path: str | Path | None = None) -> dict[str, Any]:
    """The raw ``profiles:`` mapping of a cluster config file (not yet validated)."""
    import yaml

    source = Path(path) if path is not None else default_cluster_config()
    try:
        text = source.read_text()
    except FileNotFoundError:
        raise UserError(
            f"cluster config {source} not found; pass --cluster-config PATH or copy "
            "config/cluster.yaml from the sweepkit checkout"
        ) from None
    try:
        data = load_yaml(text)
    except DuplicateKeyError as err:
        raise UserError(f"cluster config {source}: {err}") from None
    except yaml.YAMLError as err:
        where, problem = yaml_error_position(err, text)
        raise UserError(f"{source}{where}: not valid YAML ({problem}); fix the syntax") from None
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        raise UserError(f"{source}: needs a top-level `profiles:` mapping of named profiles")
    return data["profiles"]


def default_cluster_config() -> Path:
    """``$SWEEPKIT_CLUSTER_CONFIG``, else ``config/cluster.yaml`` here, else the checkout's."""
    env = os.environ.get("SWEEPKIT_CLUSTER_CONFIG")
    if env:
        return Path(env)
    if DEFAULT_CLUSTER_CONFIG.exists():
        return DEFAULT_CLUSTER_CONFIG
    return CHECKOUT / DEFAULT_CLUSTER_CONFIG


def load_profile(name: str, path: str | Path | None = None) -> Profile:
    """The validated profile ``name`` from the cluster config (``--profile`` / ``--cluster-config``)."""
    source = Path(path) if path is not None else default_cluster_config()
    profiles = read_profiles(source)
    if name not in profiles:
        known = ", ".join(sorted(str(p) for p in profiles)) or "none"
        raise UserError(
            f"{source}: no profile {name!r} (profiles: {known}); fix --profile or add it"
        )
    return check_profile(source, str(name), profiles[name])


def load_all(path: str | Path | None = None) -> dict[str, Profile]:
    """Every profile of a cluster config, validated (used by the tests and `--profile` help)."""
    source = Path(path) if path is not None else default_cluster_config()
    return {
        str(name): check_profile(source, str(name), raw)
        for name, raw in read_profiles(source).items()
    }
