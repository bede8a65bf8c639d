"""From a validated mapping to resolved specs, with every local artifact checked.

Fail fast: an artifact that is missing, escapes the models root or differs
from its pinned digest stops the run here, before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_manager.artifacts.cache import DigestCache, open_cache
from model_manager.artifacts.digest import weights_digest
from model_manager.artifacts.paths import check_plain_artifact, models_root, resolve_artifact
from model_manager.errors import (
    ModelManagerError,
    ModelMappingMissing,
    WeightsDigestMismatch,
    shown,
)
from model_manager.mapping.loader import ModelMapping
from model_manager.mapping.schema import WEIGHTS_FIELD, ModelEntry, ResolvedModelSpec, spec_from_entry

Specs = dict[str, dict[str, ResolvedModelSpec]]
#: problems that no later entry can avoid: a report stops at the first
_STOPS_EVERY_ENTRY = frozenset({"models_root_missing", "digest_cache_insecure"})
#: (component, role, artifact field) -> the real path that was checked (and hashed, for weights)
Paths = dict[tuple[str, str, str], str]


@dataclass(frozen=True, slots=True)
class Resolution:
    specs: Specs
    paths: Paths
    #: the real models root the paths were checked under (None: no entry names an artifact)
    root: str | None = None


class _Root:
    """The models root, looked up once and only if some entry names an artifact."""

    def __init__(self) -> None:
        self._value: str | None = None

    def get(self, component: str, role: str) -> str:
        if self._value is None:
            self._value = models_root(component, role)
        return self._value

    @property
    def value(self) -> str | None:
        return self._value


def check_entry(component: str, role: str, entry: ModelEntry, root: _Root, cache: DigestCache,
                paths: Paths) -> ResolvedModelSpec:
    """The entry's spec, after every artifact is found (its real path recorded in ``paths``) and
    the weights match their pinned digest."""
    spec = spec_from_entry(component, role, entry)
    if entry.artifacts is None:
        return spec
    weights_field = WEIGHTS_FIELD.get(entry.engine) if entry.runtime == "inprocess" else None
    for field, rel in entry.artifacts.paths().items():
        where = {"component": component, "role": role, "field": f"artifacts.{field}"}
        real = resolve_artifact(root.get(component, role), rel, **where)
        paths[(component, role, field)] = real
        if field != weights_field:
            check_plain_artifact(real, rel, **where)  # e.g. a tokenizer: must exist, is not digested
            continue
        actual = weights_digest(real, root.get(component, role), cache, **where)
        if actual != entry.weights_digest:
            raise WeightsDigestMismatch(
                f"{shown(rel)} hashes to {actual}, but the mapping pins {entry.weights_digest}",
                component=component, role=role, field="weights_digest",
                hint="restore the pinned weights, or pin the new digest after review",
            )
    return spec


def resolve_mapping(mapping: ModelMapping, cache: DigestCache | None = None) -> Resolution:
    """Every entry resolved and verified; the first problem raises."""
    cache = open_cache() if cache is None else cache
    root, paths = _Root(), Paths()
    with cache.batch():  # one store transaction for the whole mapping
        specs = {
            component: {role: check_entry(component, role, entry, root, cache, paths)
                        for role, entry in roles.items()}
            for component, roles in mapping.components.items()
        }
    return Resolution(specs, paths, root.value)


def verify_mapping(mapping: ModelMapping, cache: DigestCache | None = None) -> list[ModelManagerError]:
    """Every problem of every entry, for a report (``model-manager verify``)."""
    cache = open_cache() if cache is None else cache
    root = _Root()
    problems: list[ModelManagerError] = []
    with cache.batch():
        for component, roles in mapping.components.items():
            for role, entry in roles.items():
                try:
                    check_entry(component, role, entry, root, cache, {})
                except ModelManagerError as exc:
                    problems.append(exc)
                    if exc.code in _STOPS_EVERY_ENTRY:
                        return problems  # every later artifact would repeat it
    return problems


def unverified_specs(mapping: ModelMapping) -> Specs:
    """Specs straight from a mapping, no files touched: for recomputing a recorded run's signatures."""
    return {
        component: {role: spec_from_entry(component, role, entry) for role, entry in roles.items()}
        for component, roles in mapping.components.items()
    }


def roles_of(specs: Specs, component: str, source: str) -> dict[str, ResolvedModelSpec]:
    """A component's specs by role; ``model_mapping_missing`` naming the known ones otherwise."""
    try:
        return specs[component]
    except KeyError:
        raise ModelMappingMissing(f"component {shown(component)} is not in the mapping ({source})",
                                  component=component, hint=f"known components: {sorted(specs)}") from None


def spec_of(specs: Specs, component: str, role: str, source: str) -> ResolvedModelSpec:
    roles = roles_of(specs, component, source)
    try:
        return roles[role]
    except KeyError:
        raise ModelMappingMissing(f"role {shown(role)} is not in the mapping ({source})", component=component,
                                  role=role, hint=f"roles of {shown(component)}: {sorted(roles)}") from None


def triton_endpoints(mapping: ModelMapping) -> list[str]:
    return sorted({e.triton.http_url for roles in mapping.components.values()
                   for e in roles.values() if e.triton is not None})
