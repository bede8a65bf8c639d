"""models_used, model_signature and the idempotency key: the contract of docs/mapping.md."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from model_manager.mapping.schema import ResolvedModelSpec


def canonical_json(value: object) -> bytes:
    """The one canonical serialisation every signature in this project hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encodable(value: object) -> bool:
    """Whether ``value`` has a canonical JSON form: JSON read from a file may hold lone surrogates
    (``"\\udc80"``), which UTF-8 cannot encode, or values too deeply nested to serialise."""
    try:
        canonical_json(value)
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError):
        return False
    return True


def sha256_tag(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def models_used(specs: Iterable[ResolvedModelSpec]) -> list[dict[str, Any]]:
    """One entry per role, sorted by role."""
    return [spec.models_used_entry() for spec in sorted(specs, key=lambda s: s.role)]


def model_signature(entries: list[dict[str, Any]]) -> str:
    return sha256_tag(canonical_json(entries))


def idempotency_key(run_context: Mapping[str, str], component: str, signature: str) -> str:
    """Same video, same config, same models -> same key; the run_id alone never changes it."""
    context = {k: v for k, v in run_context.items() if k != "run_id"}
    return sha256_tag(canonical_json({"component": component, "model_signature": signature,
                                      "run_context": context}))


def json_digest(value: object) -> str:
    """``sha256:`` + SHA-256 of the canonical JSON of ``value``: what manifest.json records next to
    run_context and the resolved mapping, so an edit to any of their fields shows."""
    return sha256_tag(canonical_json(value))


def run_context_digest(run_context: Mapping[str, Any]) -> str:
    return json_digest(dict(run_context))
