"""Reading a mapping: the run payload's dict, or a YAML profile read safely.

Every problem becomes an ``InvalidModelSpec`` (or ``ModelMappingMissing``)
naming the component, role and field path; nothing is defaulted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from model_manager.errors import InvalidModelSpec, InvalidRunContext, ModelMappingMissing, shown
from model_manager.mapping.schema import NAME_RE, ModelEntry, RunContext

SCHEMA_VERSION = 1
_TOP_KEYS = {"schema_version", "components"}


@dataclass(frozen=True, slots=True)
class ModelMapping:
    """A validated mapping: component -> role -> entry, in the order given."""

    schema_version: int
    components: dict[str, dict[str, ModelEntry]]
    source: str  # "payload" or the profile's path, for messages


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        text = str(part) if len(str(part)) <= 64 else shown(part)  # keys are user input
        out += f"[{part}]" if isinstance(part, int) else (f".{text}" if out else text)
    return out


def _error_field(err: Any) -> str:
    path = _field_path(tuple(err["loc"]))
    cause = (err.get("ctx") or {}).get("error")
    extra = getattr(cause, "field", None)
    return f"{path}.{extra}" if path and extra else (extra or path)


def _validation_error(
    exc: ValidationError, *, component: str | None = None, role: str | None = None, source: str = ""
) -> InvalidModelSpec:
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = _error_field(first) or None
    details = "; ".join(f"{_error_field(e) or '(entry)'}: {e['msg']}" for e in errors[:5])
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    hint = _hint_for(first)
    where = f" in {source}" if source else ""
    return InvalidModelSpec(f"{details}{more}{where}", component=component, role=role, field=field, hint=hint)


def _hint_for(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "remove the unknown key or fix its spelling; unknown keys are never ignored"
    if kind == "missing":
        return "every entry pins runtime, engine, precision, device_policy, model_name, " \
               "model_version and weights_digest (docs/mapping.md)"
    if kind == "string_type" and "version" in str(err["loc"][-1:]):
        return 'quote the version in YAML ("1.0", "2024-05-01") so it stays a string'
    if kind == "string_pattern_mismatch" and err["loc"][-1:] == ("weights_digest",):
        return "write it as sha256:<64 lowercase hex> (`model-manager digest PATH`), or 'unknown' " \
               "for a triton model"
    return "fix the named field as docs/mapping.md describes; nothing is defaulted"


def parse_run_context(run_context: RunContext | Mapping[str, Any]) -> RunContext:
    if isinstance(run_context, RunContext):
        return run_context
    if not isinstance(run_context, Mapping):
        raise InvalidRunContext(f"run_context must be a dict or RunContext, not {type(run_context).__name__}",
                                field="run_context")
    try:
        return RunContext.model_validate(dict(run_context))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = "run_context." + _field_path(tuple(first["loc"]))
        details = "; ".join(f"{_field_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise InvalidRunContext(
            details, field=field,
            hint="pass platform_id, video_id, run_id, config_hash, sampling_policy_version and "
                 "dataprocessor_version, all non-empty strings",
        ) from None


def parse_mapping(data: object, *, source: str = "payload") -> ModelMapping:
    """Validate a mapping given as plain data (parsed JSON or YAML)."""
    source = source if len(source) <= 200 else shown(source)
    if not isinstance(data, Mapping):
        raise InvalidModelSpec(f"the mapping in {source} must be a mapping with 'schema_version' and "
                               f"'components', not {type(data).__name__}", field="(top)")
    unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
    if unknown:
        raise InvalidModelSpec(f"unknown top-level keys {shown(unknown)} in {source}", field=unknown[0][:64],
                               hint="a mapping has only 'schema_version' and 'components'")
    version = data.get("schema_version")
    if version is None:
        raise InvalidModelSpec(f"'schema_version' is missing in {source}", field="schema_version",
                               hint=f"add schema_version: {SCHEMA_VERSION}")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise InvalidModelSpec(f"schema_version {shown(version)} is not supported in {source}",
                               field="schema_version", hint=f"this manager reads schema_version {SCHEMA_VERSION}")
    components = data.get("components")
    if not isinstance(components, Mapping) or not components:
        raise InvalidModelSpec(f"'components' must be a non-empty mapping in {source}", field="components",
                               hint="components: {<component>: {<role>: {runtime: ..., ...}}}")
    out: dict[str, dict[str, ModelEntry]] = {}
    for component, roles in components.items():
        _check_name(component, "component", source)
        if not isinstance(roles, Mapping) or not roles:
            raise InvalidModelSpec(f"component {shown(component)} must map role names to entries in {source}",
                                   component=component, field=f"components.{component}",
                                   hint="give at least one role, e.g. image_encoder: {runtime: ...}")
        entries: dict[str, ModelEntry] = {}
        for role, entry in roles.items():
            _check_name(role, "role", source, component=component)
            if not isinstance(entry, Mapping):
                raise InvalidModelSpec(f"the entry must be a mapping, not {type(entry).__name__}, in {source}",
                                       component=component, role=role, field="(entry)")
            try:
                entries[role] = ModelEntry.model_validate(dict(entry))
            except ValidationError as exc:
                raise _validation_error(exc, component=component, role=role, source=source) from None
        out[component] = entries
    return ModelMapping(schema_version=SCHEMA_VERSION, components=out, source=source)


def _check_name(name: object, kind: str, source: str, component: str | None = None) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidModelSpec(
            f"{kind} name {shown(name)} in {source} is not a name (letters, digits, _ . -; at most 128)",
            component=component if kind == "role" else None, field=f"{kind} name",
            hint=f"quote the {kind} name and use only letters, digits, '_', '.', '-'",
        )


def load_profile(path: str | os.PathLike[str]) -> ModelMapping:
    from model_manager.mapping.yaml_reader import read_yaml  # PyYAML is loaded only when a profile is read

    source = os.fspath(path)
    return parse_mapping(read_yaml(source), source=source)


def load_mapping(
    resolved_model_mapping: Mapping[str, Any] | None, profile_path: str | os.PathLike[str] | None
) -> ModelMapping:
    """The payload's mapping wins; else the profile; neither is an error."""
    if resolved_model_mapping is not None:
        return parse_mapping(resolved_model_mapping, source="payload")
    if profile_path is not None:
        return load_profile(profile_path)
    raise ModelMappingMissing(
        "no resolved_model_mapping in the run payload and no profile_path given",
        field="resolved_model_mapping",
        hint="pass the run payload's resolved mapping, or profile_path= (the YAML profile)",
    )
