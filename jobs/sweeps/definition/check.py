"""W&B sweep definitions: load one and check it before anything runs.

A definition is exactly what ``wandb sweep`` accepts (``program``, ``command`` with W&B's macros,
``method``, ``metric``, ``parameters`` with every distribution of the ``sweeps`` engine and nested
``parameters``, ``early_terminate`` (hyperband), ``run_cap``). The schema check is the ``sweeps``
package's own (``schema_violations_from_proposed_config``, what ``SweepConfig`` raises on); each
violation becomes one line that names the key and what is allowed. On top of the schema this
module checks what the engine would otherwise only discover mid-sweep: grid over continuous
distributions, bayes or hyperband without a metric, hyperband bands that cannot be built, unknown
command macros.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.definition.command import check_command
from sweepkit.jobs.sweeps.definition.engine import quiet_sweeps_import
from sweepkit.jobs.sweeps.definition.messages import (
    LOCAL_METHODS,
    allowed_keys,
    deprecation_notes,
    describe_schema_error,
    describe_violation,
    unknown_key,
)
from sweepkit.train.errors import UserError

# Keys that only mean something to W&B's cloud (launch scheduler, jobs, images).
CLOUD_ONLY_KEYS = ("scheduler", "job", "image_uri")


def load_definition(
    path: str | Path, backend: str = "local", program: bool = True
) -> dict[str, Any]:
    """Read a sweep YAML file and validate it; every problem is a one-line ``UserError``."""
    import yaml

    from sweepkit.train.config import (
        DuplicateKeyError,
        load_yaml,
        read_yaml_text,
        yaml_error_position,
    )
    from sweepkit.train.config.shipped import SWEEPS, names, sweep_path

    path = sweep_path(str(path))
    if not path.exists():
        raise UserError(
            f"sweep definition {path} does not exist; pass the path of a sweep YAML such as "
            f"config/sweep_config.yaml, or the name of one of the kit's ({', '.join(names(SWEEPS))})"
        )
    text = read_yaml_text(path, f"sweep definition {path}")
    try:
        definition = load_yaml(text)
    except DuplicateKeyError as err:
        raise UserError(f"sweep definition {path}: {err}") from None
    except yaml.YAMLError as err:
        where, problem = yaml_error_position(err, text)
        raise UserError(f"{path}{where}: {problem}; fix the YAML syntax") from None
    if not isinstance(definition, dict) or not definition:
        raise UserError(
            f"{path}: a sweep definition is a mapping with method, metric and parameters; the file is empty or not a mapping"
        )
    return validate(definition, str(path), backend=backend, program=program)


def validate(
    definition: dict[str, Any],
    source: str = "sweep definition",
    backend: str = "local",
    program: bool = True,
    warn: bool = True,
) -> dict[str, Any]:
    """Return ``definition`` unchanged if the engine can run it, else raise a one-line UserError.
    Unknown keys that W&B accepts with a warning (``TOLERATED_UNKNOWN_KEYS``) get that warning
    (``warn=False``: not again, for a definition whose warnings this process showed already).
    ``program``: the sweep launches a program (False: a function runs each run, as under
    ``wandb.agent(function=...)``, and the definition needs no ``program``)."""
    tolerated = _check_keys(definition, source)
    try:
        _validate_known(definition, source, backend, tolerated, program, warn)
    except UserError as err:
        # a hyperband that cannot be built beside an unknown early_terminate key: the key (a
        # misspelt min_iter, say) is the likelier cause, and its message names the fix
        hyperband = [e for e in tolerated if e.args[0].startswith(f"{source}: early_terminate.")]
        if hyperband and err.args[0].startswith(f"{source}: early_terminate"):
            raise UserError(one_line(hyperband[0].args[0])) from None
        raise UserError(one_line(err.args[0])) from None
    for error in tolerated if warn else []:
        print(
            f"sweepkit: warning: {error}; W&B's sweep engine ignores it (W&B accepts it with "
            "this warning: remove it to silence this)",
            file=sys.stderr,
        )
    return definition


def one_line(message: str) -> str:
    """``message`` with control characters escaped (a parameter named ``"a\\rb"``): one line."""
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in message)


def _validate_known(
    definition: dict[str, Any],
    source: str,
    backend: str,
    tolerated: list[UserError],
    program: bool = True,
    warn: bool = True,
) -> None:
    quiet_sweeps_import()
    from sweeps.config import schema_violations_from_proposed_config
    from sweeps.config.schema import validator

    # Parameters that are not mappings make the sweeps check raise; report them first, by name.
    params = definition.get("parameters")
    if isinstance(params, dict):
        _check_parameter_shapes(params, source, "parameters")
    # the rest is checked as the engine sees it: without the keys it never reads
    checked = _without_unknown_keys(definition) if tolerated else definition
    errors = sorted(
        validator.iter_errors(checked),
        key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))),
    )
    if errors:
        raise UserError(f"{source}: {describe_schema_error(errors[0], backend)}")
    try:
        violations = schema_violations_from_proposed_config(checked)
    except ValueError as err:
        raise UserError(f"{source}: {err}") from None
    deprecated = deprecation_notes(definition.get("parameters") or {})
    for note in deprecated if warn else []:
        print(
            f"sweepkit: warning: {source}: parameters.{note} (W&B accepts it with this warning)",
            file=sys.stderr,
        )
    violations = [v for v in violations if v not in deprecated]
    if violations:
        raise UserError(f"{source}: {describe_violation(violations[0])}")
    if backend == "local":
        _check_local(definition, source)
    check_command(definition, source, program)


def definition_warnings(definition: dict[str, Any], source: str) -> list[str]:
    """What ``validate`` warns about in ``definition`` (unknown keys W&B tolerates, deprecated
    distributions), without its wording; empty for a quiet definition."""
    params = definition.get("parameters")
    notes = deprecation_notes(params) if isinstance(params, dict) else []
    return [str(e) for e in _check_keys(definition, source)] + notes


# Where an unknown key is W&B's warning rather than an error. W&B's server checks a definition
# with the ``sweeps`` package's schema and creates the sweep whatever it finds, handing the
# violations back as warnings (``configValidationWarnings``, printed by
# ``wandb.sdk.launch.sweeps.utils.handle_sweep_config_violations``). Whether the sweep then runs
# is up to the engine: it reads the keys it knows at the top level, in ``metric`` and in
# ``early_terminate`` (``hyperband_stop_runs`` takes its own keys from the section) and never
# looks at others, so an unknown key there changes nothing and the sweep is created with the
# warning. An unknown key inside a parameter makes ``fill_parameter`` match no distribution
# (``Parameter ... is malformed``): the engine cannot draw it, so that is refused, as is any other
# violation (a wrong type or value, a missing key), and a hyperband that cannot be built.
TOLERATED_UNKNOWN_KEYS = ((), ("metric",), ("early_terminate",))


def _without_unknown_keys(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition without the unknown keys of ``TOLERATED_UNKNOWN_KEYS``' sections."""
    allowed = allowed_keys()
    cleaned = {k: v for k, v in definition.items() if k in allowed["sweep"]}
    for part in ("metric", "early_terminate"):
        if isinstance(cleaned.get(part), dict):
            cleaned[part] = {k: v for k, v in cleaned[part].items() if k in allowed[part]}
    return cleaned


def _check_keys(definition: dict[str, Any], source: str) -> list[UserError]:
    """Unknown keys at the top level, in ``metric`` and in ``early_terminate``, each with the
    closest valid key (the schema's own message names neither; parameters:
    ``_check_parameter_shapes``): W&B warns about them and creates the sweep
    (``TOLERATED_UNKNOWN_KEYS``), so they are returned as warnings, not raised."""
    allowed = allowed_keys()
    found = []
    for key in definition:
        if key not in allowed["sweep"]:
            found.append(unknown_key(source, str(key), key, "sweep", allowed["sweep"]))
    for part in ("metric", "early_terminate"):
        section = definition.get(part)
        if isinstance(section, dict):
            for key in section:
                if key not in allowed[part]:
                    found.append(unknown_key(source, f"{part}.{key}", key, part, allowed[part]))
    return found


def _check_parameter_shapes(params: dict[str, Any], source: str, prefix: str) -> None:
    allowed = allowed_keys()["parameter"]
    for name, spec in params.items():
        key = f"{prefix}.{name}"
        if not isinstance(spec, dict):
            raise UserError(
                f"{source}: {key}: must be a mapping such as {{values: [...]}}, {{value: v}} or {{min: a, max: b}}; got {spec!r}"
            )
        for field in spec:
            if field not in allowed:
                raise unknown_key(source, f"{key}.{field}", field, "parameter", allowed)
        if isinstance(spec.get("parameters"), dict):
            _check_parameter_shapes(spec["parameters"], source, f"{key}.parameters")


def _check_local(definition: dict[str, Any], source: str) -> None:
    method = definition.get("method")
    if method not in LOCAL_METHODS:
        raise UserError(
            f"{source}: method: {method!r} needs a W&B launch scheduler; local sweeps run {', '.join(LOCAL_METHODS)} "
            "(or create it with --backend wandb)"
        )
    for key in CLOUD_ONLY_KEYS:
        if key in definition:
            raise UserError(
                f"{source}: {key}: only W&B's cloud uses this key; remove it for a local sweep or create it with --backend wandb"
            )
    metric = definition.get("metric")
    if method == "bayes" and not metric:
        raise UserError(
            f"{source}: metric: method bayes needs a metric: {{name: ..., goal: minimize|maximize}}"
        )
    from sweeps.params import HyperParameter, HyperParameterSet

    try:
        params = HyperParameterSet.from_config(definition["parameters"])
    except (ValueError, KeyError) as err:
        raise UserError(f"{source}: {describe_violation(str(err))}") from None
    if method == "grid":
        for param in params:
            if param.type not in (
                HyperParameter.CATEGORICAL,
                HyperParameter.CONSTANT,
                HyperParameter.INT_UNIFORM,
                HyperParameter.Q_UNIFORM,
            ):
                raise UserError(
                    f"{source}: parameters.{param.name}: distribution {param.type.removeprefix('param_')} cannot be used with method grid; "
                    "grid allows value, values (without probabilities), int_uniform or q_uniform; use method random or bayes"
                )
            if param.type == HyperParameter.CATEGORICAL and "probabilities" in param.config:
                raise UserError(
                    f"{source}: parameters.{param.name}: probabilities cannot be used with method grid; remove them or use method random"
                )
    if method == "bayes" and not params.searchable_params:
        raise UserError(
            f"{source}: parameters: method bayes needs at least one searchable parameter (values or a distribution), not only constants"
        )
    if "early_terminate" in definition:
        if not metric:
            raise UserError(
                f"{source}: metric: early_terminate needs a metric: {{name: ..., goal: minimize|maximize}}"
            )
        from sweeps.hyperband_stopping import hyperband_stop_runs

        try:
            hyperband_stop_runs([], definition)
        except ValueError as err:
            raise UserError(f"{source}: early_terminate: {err}") from None
        except KeyError as err:  # the engine's rule reads a key it needs without a default
            raise UserError(
                f"{source}: early_terminate: W&B's hyperband needs {err.args[0]!r} here as well; "
                f"add early_terminate.{err.args[0]} (with max_iter, s is the number of brackets), "
                "or give min_iter without max_iter"
            ) from None


def missing_goal_warning(definition: dict[str, Any], source: str) -> str | None:
    """The warning for a metric without ``goal``: W&B minimizes then (``sweeps`` takes goal
    ``minimize`` by default), which ranks a run of accuracy upside down, without a word."""
    metric = definition.get("metric")
    if not isinstance(metric, dict) or not metric.get("name") or "goal" in metric:
        return None
    return (
        f"sweepkit: warning: {source}: metric.goal is not set, so W&B's default minimize applies "
        f"and the lowest {metric['name']!r} ranks best; set metric.goal: maximize (or minimize) "
        "to say which"
    )
