"""W&B sweep definitions: load, validate before anything runs, and turn a run into a command line.

A definition is exactly what ``wandb sweep`` accepts (``program``, ``command`` with W&B's macros,
``method``, ``metric``, ``parameters`` with every distribution of the ``sweeps`` engine and nested
``parameters``, ``early_terminate`` (hyperband), ``run_cap``). The schema check is the ``sweeps``
package's own (``schema_violations_from_proposed_config``, what ``SweepConfig`` raises on); each
violation becomes one line that names the key and what is allowed. On top of the schema this
module checks what the engine would otherwise only discover mid-sweep: grid over continuous
distributions, bayes or hyperband without a metric, hyperband bands that cannot be built, unknown
command macros.

Command lines are built with W&B's own helpers (``create_sweep_command`` and
``create_sweep_command_args`` from ``wandb.sdk.launch.sweeps.utils``), so ``${args}`` and the other
macros expand exactly as under ``wandb agent``. One deliberate difference: ``${interpreter}`` is
the Python running the agent (``sys.executable``) rather than whatever ``python`` is first on
PATH, so a venv or container interpreter is used even when PATH says otherwise.
"""

from __future__ import annotations

import difflib
import math
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from train.errors import UserError

# Macros that wandb agent expands (wandb/wandb_agent.py and create_sweep_command_args).
COMMAND_MACROS = (
    "env",
    "interpreter",
    "program",
    "args",
    "args_no_equals",
    "args_no_hyphens",
    "args_no_boolean_flags",
    "args_json",
    "args_json_file",
    "args_append_hydra",
    "args_override_hydra",
)
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
LOCAL_METHODS = ("grid", "random", "bayes")
# Keys that only mean something to W&B's cloud (launch scheduler, jobs, images).
CLOUD_ONLY_KEYS = ("scheduler", "job", "image_uri")
_MACRO = re.compile(r"\$\{([^}]*)\}")


# sweeps 0.3 declares a pydantic v1 config key; pydantic v2 warns about it on every import.
warnings.filterwarnings(
    "ignore", message="Valid config keys have changed in V2", category=UserWarning
)


def quiet_sweeps_import() -> None:
    """Import ``sweeps`` (kept as a function: callers import it lazily, after the filter above)."""
    import sweeps  # noqa: F401


def load_definition(
    path: str | Path, backend: str = "local", program: bool = True
) -> dict[str, Any]:
    """Read a sweep YAML file and validate it; every problem is a one-line ``UserError``."""
    import yaml

    from train.config import read_yaml_text, yaml_error_position

    path = Path(path)
    if not path.exists():
        raise UserError(
            f"sweep definition {path} does not exist; pass the path of a sweep YAML such as config/sweep_config.yaml"
        )
    text = read_yaml_text(path, f"sweep definition {path}")
    try:
        definition = yaml.safe_load(text)
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
) -> dict[str, Any]:
    """Return ``definition`` unchanged if the engine can run it, else raise a one-line UserError.
    Unknown keys that W&B accepts with a warning (``TOLERATED_UNKNOWN_KEYS``) get that warning.
    ``program``: the sweep launches a program (False: a function runs each run, as under
    ``wandb.agent(function=...)``, and the definition needs no ``program``)."""
    tolerated = _check_keys(definition, source)
    try:
        _validate_known(definition, source, backend, tolerated, program)
    except UserError as err:
        # a hyperband that cannot be built beside an unknown early_terminate key: the key (a
        # misspelt min_iter, say) is the likelier cause, and its message names the fix
        hyperband = [e for e in tolerated if e.args[0].startswith(f"{source}: early_terminate.")]
        if hyperband and err.args[0].startswith(f"{source}: early_terminate"):
            raise hyperband[0] from None
        raise
    for error in tolerated:
        print(
            f"sweepkit: warning: {error}; W&B's sweep engine ignores it (W&B accepts it with "
            "this warning: remove it to silence this)",
            file=sys.stderr,
        )
    return definition


def _validate_known(
    definition: dict[str, Any],
    source: str,
    backend: str,
    tolerated: list[UserError],
    program: bool = True,
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
        raise UserError(f"{source}: {_describe_schema_error(errors[0], backend)}")
    try:
        violations = schema_violations_from_proposed_config(checked)
    except ValueError as err:
        raise UserError(f"{source}: {err}") from None
    deprecated = _deprecation_notes(definition.get("parameters") or {})
    for note in deprecated:
        print(
            f"sweepkit: warning: {source}: parameters.{note} (W&B accepts it with this warning)",
            file=sys.stderr,
        )
    violations = [v for v in violations if v not in deprecated]
    if violations:
        raise UserError(f"{source}: {_describe_violation(violations[0])}")
    if backend == "local":
        _check_local(definition, source)
    _check_command(definition, source, program)


def _deprecation_notes(params: dict[str, Any]) -> list[str]:
    """The sweeps check's messages for distributions W&B has deprecated but still runs."""
    from sweeps.params import PARAM_DEPRECATION_MAP, HyperParameter

    notes = []
    for name, spec in params.items():
        try:
            kind = HyperParameter(name, spec).type
        except Exception:  # malformed: the schema check reports it
            continue
        if kind in PARAM_DEPRECATION_MAP:
            notes.append(f"{name} {PARAM_DEPRECATION_MAP[kind]}")
    return notes


# The order keys are listed in when one is unknown (any other key of the schema follows).
_PARAMETER_KEY_ORDER = ("value", "values", "probabilities", "distribution", "min", "max")


def _allowed_keys() -> dict[str, list[str]]:
    """The keys each part of a definition may hold, read from W&B's own sweep schema."""
    from sweeps.config.schema import sweep_config_jsonschema as schema

    defs = schema["definitions"]
    parameter: list[str] = []
    for name, definition in defs.items():
        if name.startswith("param_"):
            for variant in definition.get("anyOf", [definition]):
                parameter += [k for k in variant.get("properties", {}) if k not in parameter]
    order = {k: i for i, k in enumerate(_PARAMETER_KEY_ORDER)}
    parameter.sort(key=lambda k: (order.get(k, len(order)), k == "parameters"))
    return {
        "sweep": list(schema["properties"]),
        "metric": list(defs["metric"]["properties"]),
        "early_terminate": list(defs["hyperband_stopping"]["properties"]),
        "parameter": parameter,
    }


def _unknown_key(source: str, where: str, key: Any, kind: str, allowed: list[str]) -> UserError:
    """``where``: not a ``kind`` key; did you mean ...? allowed ...: one line, like the trainer's
    unknown config keys."""
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    article = "an" if kind[0] in "aeiou" else "a"
    return UserError(
        f"{source}: {where}: not {article} {kind} key; {hint}allowed keys: {', '.join(allowed)}"
    )


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
    allowed = _allowed_keys()
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
    allowed = _allowed_keys()
    found = []
    for key in definition:
        if key not in allowed["sweep"]:
            found.append(_unknown_key(source, str(key), key, "sweep", allowed["sweep"]))
    for part in ("metric", "early_terminate"):
        section = definition.get(part)
        if isinstance(section, dict):
            for key in section:
                if key not in allowed[part]:
                    found.append(_unknown_key(source, f"{part}.{key}", key, part, allowed[part]))
    return found


def _check_parameter_shapes(params: dict[str, Any], source: str, prefix: str) -> None:
    allowed = _allowed_keys()["parameter"]
    for name, spec in params.items():
        key = f"{prefix}.{name}"
        if not isinstance(spec, dict):
            raise UserError(
                f"{source}: {key}: must be a mapping such as {{values: [...]}}, {{value: v}} or {{min: a, max: b}}; got {spec!r}"
            )
        for field in spec:
            if field not in allowed:
                raise _unknown_key(source, f"{key}.{field}", field, "parameter", allowed)
        if isinstance(spec.get("parameters"), dict):
            _check_parameter_shapes(spec["parameters"], source, f"{key}.parameters")


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _allowed_parameter_forms() -> str:
    return (
        "value: v | values: [...] (+ probabilities) | min/max (int_uniform for integers, uniform for floats) | "
        "distribution: one of "
        + ", ".join(_distributions())
        + " with its min/max, mu/sigma, q, a/b | parameters: {nested}"
    )


def _distributions() -> list[str]:
    from sweeps.config.schema import sweep_config_jsonschema

    found: list[str] = []
    for definition in sweep_config_jsonschema["definitions"].values():
        variants = definition.get("anyOf", [definition])
        for variant in variants:
            enum = variant.get("properties", {}).get("distribution", {}).get("enum", [])
            found += [d for d in enum if d not in found]
    return found


def _describe_schema_error(error: Any, backend: str) -> str:
    path = list(error.absolute_path)
    key = _key(path)
    kind = error.validator
    if kind == "enum" and path == ["method"] and backend == "local":
        return (
            f"method: {error.instance!r} is not allowed; choose one of: {', '.join(LOCAL_METHODS)}"
        )
    if kind in ("minimum", "exclusiveMinimum"):
        bound = "above" if kind == "exclusiveMinimum" else "at least"
        return f"{key}: {error.instance!r} is too small; it must be {bound} {error.validator_value}"
    if kind == "enum":
        return f"{key}: {error.instance!r} is not allowed; choose one of: {', '.join(map(str, error.validator_value))}"
    if kind == "required":
        missing = re.findall(r"'([^']+)'", error.message)
        return (
            f"{key}: missing required key {missing[0] if missing else ''}".rstrip()
            + "; see W&B's sweep configuration keys"
        )
    if len(path) >= 2 and path[0] == "parameters":
        specific = _parameter_mistake(error.instance)
        if specific:
            return f"{key}: {specific}"
        return f"{key}: {error.instance!r} is not a valid parameter; allowed: {_allowed_parameter_forms()}"
    if path and path[0] == "early_terminate":
        return (
            f"{key}: {error.instance!r} is not valid; allowed: type: hyperband with min_iter or max_iter "
            "(integers), optional eta (default 3), s, strict"
        )
    if kind == "type":
        return f"{key}: {error.instance!r} is not of type {error.validator_value}"
    return f"{key}: {error.message}"


_LOG_VALUES = ("log_uniform_values", "inv_log_uniform_values", "q_log_uniform_values")


def _parameter_mistake(spec: Any) -> str | None:
    """What is wrong with a parameter the schema refuses as a whole, for the mistakes that its
    generic message leaves unclear."""
    if not isinstance(spec, dict):
        return None
    if spec.get("values") == []:
        return "values is empty; list at least one value, or pin one with value: v"
    low, high = spec.get("min"), spec.get("max")
    if (
        spec.get("distribution") in _LOG_VALUES
        and isinstance(low, int | float)
        and isinstance(high, int | float)
        and not 0 < low < high
    ):
        return (
            f"{spec['distribution']} needs 0 < min < max (got min {low}, max {high}): it "
            "samples the values themselves on a log scale; use uniform to include 0"
        )
    return None


def _describe_violation(message: str) -> str:
    first = message.splitlines()[0]
    name = re.match(r"(\S+): min", first)
    if name:
        return f"parameters.{name.group(1)}: {first.split(': ', 1)[1]}; min must be below max"
    param = re.match(r"Parameter (\S+): (.*)", first)
    if param:
        return f"parameters.{param.group(1)}: {param.group(2)}"
    if first.startswith("`parameters` is required"):
        return "parameters: missing; a sweep needs parameters such as {learning_rate: {values: [0.1, 0.01]}}"
    return first


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
        raise UserError(f"{source}: {_describe_violation(str(err))}") from None
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


def _check_command(definition: dict[str, Any], source: str, program: bool = True) -> None:
    command = definition.get("command", DEFAULT_COMMAND)
    uses_program = False
    for item in command:
        for macro in _MACRO.findall(str(item)):
            if macro.startswith("envvar:"):
                continue
            if macro not in COMMAND_MACROS:
                allowed = ", ".join("${" + m + "}" for m in COMMAND_MACROS) + ", ${envvar:NAME}"
                raise UserError(
                    f"{source}: command: unknown macro ${{{macro}}}; allowed: {allowed}"
                )
            uses_program = uses_program or macro == "program"
    if program and uses_program and not definition.get("program"):
        raise UserError(
            f"{source}: program: missing; the command uses ${{program}} (set program: or write command: without it)"
        )


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


def planned_runs(definition: dict[str, Any]) -> int | None:
    """Runs a sweep will make: the grid size (capped by run_cap), else run_cap, else None (unbounded).

    Counted from the (validated) definition as the grid search expands it, without importing the
    engine (scipy), so that status and report start fast."""
    cap = definition.get("run_cap")
    if definition.get("method") != "grid":
        return int(cap) if cap else None
    size = _grid_size(definition["parameters"])
    return min(size, int(cap)) if cap else size


def _grid_size(params: dict[str, Any]) -> int:
    size = 1
    for spec in params.values():
        if isinstance(spec.get("parameters"), dict):
            size *= _grid_size(spec["parameters"])
        elif "values" in spec:
            size *= len(spec["values"])
        elif spec.get("distribution") == "q_uniform":  # the engine expands np.arange(min, max, q)
            size *= max(0, math.ceil((spec["max"] - spec["min"]) / spec.get("q", 1.0)))
        elif "min" in spec and "max" in spec:  # int_uniform, the only other range a grid allows
            size *= int(spec["max"]) - int(spec["min"]) + 1
    return size


def build_command(
    definition: dict[str, Any], params: dict[str, Any], args_json_file: Path
) -> list[str]:
    """The program's argv for one run, as wandb agent builds it (``params`` is ``{name: {value: v}}``)."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    command = sweep_utils.create_sweep_command(
        [str(c) for c in definition.get("command", DEFAULT_COMMAND)]
    )
    sweep_vars: dict[str, Any] = sweep_utils.create_sweep_command_args({"args": params})
    sweep_vars["interpreter"] = [sys.executable]
    sweep_vars["program"] = [str(definition["program"])] if definition.get("program") else []
    sweep_vars["args_json_file"] = [str(args_json_file)]
    sweep_vars["env"] = ["/usr/bin/env"]
    argv: list[str] = []
    for chunk in command:
        chunk = str(chunk)
        if chunk.startswith("${") and chunk.endswith("}"):
            argv += sweep_vars.get(chunk[2:-1]) or []
        else:
            argv.append(chunk)
    return argv


def args_json(params: dict[str, Any]) -> str:
    """What ``${args_json}`` and the ``${args_json_file}`` file hold: ``{name: value}`` as JSON."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    return str(sweep_utils.create_sweep_command_args({"args": params})["args_json"][0])
