"""ModelManager: one run's pinned models, verified, with their provenance."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from model_manager.errors import InvalidModelSpec, ModelMappingMissing, shown
from model_manager.mapping.loader import ModelMapping, load_mapping, parse_run_context
from model_manager.mapping.resolve import Paths, Specs, open_cache, resolve_mapping, roles_of, spec_of, triton_endpoints
from model_manager.mapping.schema import ARTIFACT_FIELDS, WEIGHTS_FIELD, ResolvedModelSpec, RunContext
from model_manager.provenance.signature import (
    idempotency_key,
    json_digest,
    model_signature,
    models_used,
    run_context_digest,
)
from model_manager.runtimes import TritonTimeouts, inprocess_handle, triton_handle
from model_manager.runtimes import triton_timeouts as _triton_timeouts

if TYPE_CHECKING:
    from model_manager.runtimes.health import HealthRecord
    from model_manager.runtimes.onnx import OnnxHandle
    from model_manager.runtimes.torch import TorchHandle
    from model_manager.runtimes.triton import TritonHandle

#: what get_runtime hands out, by runtime and engine
Handle: TypeAlias = "TritonHandle | OnnxHandle | TorchHandle"


class _Slot:
    """One role's handle, built once under its own lock (roles build concurrently during preload)."""

    __slots__ = ("handle", "lock", "options")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.handle: Handle | None = None
        self.options: dict[str, Any] | None = None


class ModelManager:
    """Resolve each (component, role) to a pinned, verified spec; never download, never fall back.

    ``resolved_model_mapping`` (the run payload's dict) wins over ``profile_path``
    (a YAML profile); with neither, ``model_mapping_missing``. Every in-process
    artifact is checked against its pinned digest here, at construction.
    ``triton_timeouts`` (``{"connect": s, "network": s}``) bounds every Triton request (docs/triton.md).
    """

    def __init__(
        self,
        run_context: RunContext | Mapping[str, Any],
        resolved_model_mapping: Mapping[str, Any] | None = None,
        *,
        profile_path: str | os.PathLike[str] | None = None,
        triton_timeouts: TritonTimeouts | Mapping[str, float] | None = None,
    ) -> None:
        self.triton_timeouts: TritonTimeouts = _triton_timeouts(triton_timeouts)
        self.run_context: RunContext = parse_run_context(run_context)
        self.mapping: ModelMapping = load_mapping(resolved_model_mapping, profile_path)
        _activate_guard(triton_endpoints(self.mapping))
        resolution = resolve_mapping(self.mapping, open_cache())
        self._specs: Specs = resolution.specs
        self._paths: Paths = resolution.paths
        self._root = resolution.root
        self._signatures: dict[str, str] = {}
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._slots_lock = threading.Lock()

    # --- resolution -------------------------------------------------------
    @property
    def components(self) -> list[str]:
        return list(self._specs)

    def roles(self, component: str) -> list[str]:
        return list(self._roles_of(component))

    def _roles_of(self, component: str) -> dict[str, ResolvedModelSpec]:
        return roles_of(self._specs, component, self.mapping.source)

    def resolve(self, *, component: str, role: str) -> ResolvedModelSpec:
        return spec_of(self._specs, component, role, self.mapping.source)

    def specs(self) -> list[ResolvedModelSpec]:
        return [spec for roles in self._specs.values() for spec in roles.values()]

    # --- provenance -------------------------------------------------------
    def models_used_for(self, component: str) -> list[dict[str, Any]]:
        return models_used(self._roles_of(component).values())

    def model_signature_for(self, component: str) -> str:
        signature = self._signatures.get(component)
        if signature is None:
            signature = self._signatures[component] = model_signature(self.models_used_for(component))
        return signature

    def idempotency_key_for(self, component: str) -> str:
        return idempotency_key(self.run_context.model_dump(), component, self.model_signature_for(component))

    def npz_meta_for(self, component: str) -> dict[str, Any]:
        """What each NPZ output of ``component`` carries: models_used and model_signature only."""
        return {"models_used": self.models_used_for(component),
                "model_signature": self.model_signature_for(component)}

    def run_record(self) -> dict[str, Any]:
        """manifest.json's ``run``, as plain JSON data for ``provenance.write_manifest``: the run context,
        the mapping as resolved (devices filled in), a digest of each, and each component's
        model_signature and idempotency key. ``audit_run_dir`` recomputes every value from the
        run context and the mapping."""
        context = self.run_context.model_dump()
        mapping = {
            "schema_version": self.mapping.schema_version,
            "components": {
                component: {role: _entry_as_resolved(spec) for role, spec in roles.items()}
                for component, roles in self._specs.items()
            },
        }
        return {
            "run_context": context,
            "run_context_digest": run_context_digest(context),
            "resolved_model_mapping": mapping,
            "resolved_model_mapping_digest": json_digest(mapping),
            "model_signatures": {c: self.model_signature_for(c) for c in self.components},
            "idempotency_keys": {c: self.idempotency_key_for(c) for c in self.components},
        }

    def artifact_path(self, spec: ResolvedModelSpec, field: str) -> str:
        """The real path of one of ``spec``'s artifacts, exactly as checked (and hashed) at construction.

        ``field`` is the field's name as the mapping and every error message write it:
        ``"artifacts.onnx_path"``, ``"artifacts.weights_path"`` or ``"artifacts.tokenizer_path"``.
        """
        where = {"component": spec.component_name, "role": spec.role, "field": field}
        if field not in ARTIFACT_FIELDS:
            raise InvalidModelSpec(f"{shown(field)} is not an artifact field", **where,
                                   hint=f"name one of {', '.join(ARTIFACT_FIELDS)}")
        path = self._paths.get((spec.component_name, spec.role, field.removeprefix("artifacts.")))
        if path is None:
            raise ModelMappingMissing(f"the entry names no {field}", **where,
                                      hint=f"add {field} to the entry's artifacts in the mapping")
        return path

    def weights_path(self, spec: ResolvedModelSpec) -> str:
        """The verified weights of an in-process entry: ``artifacts.onnx_path`` (onnx) or
        ``artifacts.weights_path`` (torch), the file or folder its ``weights_digest`` pins."""
        field = WEIGHTS_FIELD.get(spec.engine) if spec.runtime == "inprocess" else None
        if field is None:
            raise ModelMappingMissing(f"a {spec.runtime}/{spec.engine} entry has no local weights",
                                      component=spec.component_name, role=spec.role, field="artifacts",
                                      hint="Triton models keep their weights in Triton's model repository")
        return self.artifact_path(spec, f"artifacts.{field}")

    # --- runtime handles --------------------------------------------------------
    def triton_client(self, spec: ResolvedModelSpec) -> TritonHandle:
        """The handle of a Triton role (one per component and role, shared by threads; docs/triton.md)."""
        own = self._own_spec(spec)
        if own.runtime != "triton":
            raise InvalidModelSpec(f"{own.component_name}/{own.role} runs {own.runtime}/{own.engine}, not on "
                                   "Triton", component=own.component_name, role=own.role, field="runtime",
                                   hint="triton_client is for runtime 'triton' entries; get_runtime serves every role")
        return cast("TritonHandle", self._handle(own, None))

    def get_runtime(self, spec: ResolvedModelSpec, *, session_options: Mapping[str, Any] | None = None) -> Handle:
        """The role's handle, built on first use and shared by threads: a TritonHandle (``runtime: triton``), an
        OnnxHandle (in-process ``engine: onnx``; ``session_options`` tune ONNX Runtime, docs/onnx-runtime.md)
        or a TorchHandle (``engine: torch``). Every later call returns the same handle."""
        return self._handle(self._own_spec(spec), session_options)

    def preload(self, tier: int = 0, *, session_options: Mapping[str, Any] | None = None,
                workers: int | None = None) -> dict[str, Handle]:
        """Build every in-process handle whose entry has ``tier: <tier>`` (DECISIONS 0.2), on ``workers``
        threads (default: one per CPU, at most 8), keyed ``"component/role"``. A failure raises one error
        naming every model that failed; the handles that did build stay built."""
        from model_manager.runtimes.preload import build_all, preload_failure

        keys = [(s.component_name, s.role) for s in self.specs() if s.runtime == "inprocess" and s.tier == tier]
        built, failed = build_all(keys, lambda key: self._handle(self.resolve(component=key[0], role=key[1]),
                                                                  session_options), workers)
        if failed:
            raise preload_failure(tier, len(keys), failed)
        return {f"{c}/{r}": handle for (c, r), handle in built.items()}

    def health(self, probes: Mapping[str, Mapping[str, Any]] | None = None) -> list[HealthRecord]:
        """One record per component and role (docs/health.md): ok, or the error's code and message. Never
        raises. ``probes`` maps ``"component/role"`` to the inputs of one tiny inference for that role."""
        from model_manager.artifacts.verified import read_verified
        from model_manager.runtimes.health import check_role, missing_role

        probes = dict(probes or {})
        records = [check_role(spec, lambda s: self._handle(s, None),
                              lambda s: read_verified(self.weights_path(s), self._root or "", s.weights_digest,
                                                      component=s.component_name, role=s.role,
                                                      field="artifacts.weights_path"),
                              probes.pop(f"{spec.component_name}/{spec.role}", None))
                   for spec in self.specs()]
        return records + [missing_role(str(key), self.mapping.source) for key in probes]

    def _handle(self, spec: ResolvedModelSpec, session_options: Mapping[str, Any] | None) -> Handle:
        key = (spec.component_name, spec.role)
        with self._slots_lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
        options = None if session_options is None else dict(session_options)
        if options is not None and (spec.runtime, spec.engine) != ("inprocess", "onnx"):
            raise InvalidModelSpec(f"session_options are ONNX Runtime's; {spec.component_name}/{spec.role} runs "
                                   f"{spec.runtime}/{spec.engine}", component=spec.component_name, role=spec.role,
                                   field="session_options", hint="pass session_options only for in-process onnx roles")
        with slot.lock:
            if slot.handle is None:
                if spec.runtime == "triton":
                    slot.handle = triton_handle(spec, self.triton_timeouts)
                else:
                    slot.handle = inprocess_handle(spec, self.weights_path(spec), self._root or "", options)
                slot.options = options
            elif options is not None and options != slot.options:
                raise InvalidModelSpec(
                    f"the handle was already built with session_options {shown(slot.options)}, not "
                    f"{shown(options)}", component=spec.component_name, role=spec.role, field="session_options",
                    hint="a role has one handle per manager: pass the same options everywhere, or none after "
                         "the first call")
            return slot.handle

    def _own_spec(self, spec: ResolvedModelSpec) -> ResolvedModelSpec:
        if not isinstance(spec, ResolvedModelSpec):
            raise InvalidModelSpec(f"expected the ResolvedModelSpec that mm.resolve returned, not "
                                   f"{type(spec).__name__}", field="spec",
                                   hint="spec = mm.resolve(component=..., role=...)")
        own = self.resolve(component=spec.component_name, role=spec.role)
        if spec is not own and spec != own:
            raise InvalidModelSpec("the spec differs from the one this manager resolved (and signed) for it",
                                   component=spec.component_name, role=spec.role, field="spec",
                                   hint="pass the spec mm.resolve returned; a resolved spec is never edited")
        return own


def _entry_as_resolved(spec: ResolvedModelSpec) -> dict[str, Any]:
    return spec.model_dump(exclude={"component_name", "role", "preprocess_preset"}, exclude_none=True)


def _activate_guard(endpoints: list[str]) -> None:
    """Every manager switches the process offline, allowing only the mapped Triton endpoints."""
    from model_manager import guard

    guard.activate(allow=endpoints)
