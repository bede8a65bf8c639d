"""Writing and auditing provenance: manifest.json per run, ``meta`` in every NPZ.

The NPZ ``meta`` is one 0-d unicode array holding canonical JSON, so it reads
back with ``allow_pickle=False``: provenance never needs pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_manager.errors import ModelManagerError, ModelSignatureMismatch, ProvenanceInvalid
from model_manager.mapping.loader import parse_mapping
from model_manager.mapping.resolve import unverified_specs
from model_manager.provenance.signature import canonical_json, model_signature, models_used

if TYPE_CHECKING:
    from model_manager.manager import ModelManager

META_KEY = "meta"
MANIFEST = "manifest.json"
_META_KEYS = {"models_used", "model_signature"}
_ENTRY_KEYS = {"component", "role", "model_name", "model_version", "weights_digest", "runtime", "engine",
               "precision", "device", "preprocess_preset"}


def manifest_for(mm: ModelManager) -> dict[str, Any]:
    return {
        "run": {
            "run_context": mm.run_context.model_dump(),
            "resolved_model_mapping": mm.manifest_section(),
            "model_signatures": {c: mm.model_signature_for(c) for c in mm.components},
            "idempotency_keys": {c: mm.idempotency_key_for(c) for c in mm.components},
        }
    }


def write_manifest(run_dir: str | os.PathLike[str], mm: ModelManager) -> Path:
    path = Path(run_dir) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest_for(mm), indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def save_npz(path: str | os.PathLike[str], meta: dict[str, Any], /, **arrays: Any) -> Path:
    """Write arrays plus ``meta`` (from ``mm.npz_meta_for(component)``) as a compressed NPZ."""
    import numpy as np

    check_meta(meta, str(path))
    if META_KEY in arrays:
        raise ProvenanceInvalid(f"an output array may not be called {META_KEY!r}", field=META_KEY,
                                hint="rename the array; 'meta' holds the provenance")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta_array = np.array(canonical_json(meta).decode("utf-8"))
    with open(out, "wb") as fh:
        np.savez_compressed(fh, **{**arrays, META_KEY: meta_array})
    return out


def read_npz_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta`` of an NPZ written by :func:`save_npz`, validated; never unpickles."""
    import numpy as np

    where = str(path)
    try:
        with np.load(where, allow_pickle=False) as npz:
            if META_KEY not in npz.files:
                raise ProvenanceInvalid(f"{where} has no {META_KEY!r} array", field=META_KEY,
                                        hint="write outputs with model_manager.provenance.save_npz")
            raw = npz[META_KEY]
    except ModelManagerError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise ProvenanceInvalid(f"{where} is not a readable NPZ without pickle: {exc}", field=META_KEY,
                                hint="outputs are written by save_npz; object arrays are refused") from None
    if raw.shape != () or raw.dtype.kind != "U":
        raise ProvenanceInvalid(f"{where}: {META_KEY!r} is not a JSON string array", field=META_KEY,
                                hint="write outputs with model_manager.provenance.save_npz")
    try:
        meta = json.loads(str(raw))
    except ValueError as exc:
        raise ProvenanceInvalid(f"{where}: {META_KEY!r} is not JSON: {exc}", field=META_KEY,
                                hint="write outputs with model_manager.provenance.save_npz") from None
    check_meta(meta, where)
    return meta


def check_meta(meta: object, where: str) -> None:
    hint = "use mm.npz_meta_for(component): exactly models_used and model_signature"
    if not isinstance(meta, dict) or set(meta) != _META_KEYS:
        raise ProvenanceInvalid(f"{where}: meta must hold exactly {sorted(_META_KEYS)}", field=META_KEY, hint=hint)
    used = meta["models_used"]
    if not isinstance(used, list) or not used or not all(isinstance(e, dict) and set(e) == _ENTRY_KEYS
                                                         for e in used):
        raise ProvenanceInvalid(f"{where}: meta.models_used is not a list of models_used entries",
                                field="meta.models_used", hint=hint)
    if len({e["component"] for e in used}) != 1:
        raise ProvenanceInvalid(f"{where}: meta.models_used mixes components", field="meta.models_used", hint=hint)
    if model_signature(used) != meta["model_signature"]:
        raise ModelSignatureMismatch(f"{where}: meta.model_signature is not the signature of meta.models_used",
                                     field="meta.model_signature",
                                     hint="the meta was edited by hand or written by other code; re-run")


def audit_run_dir(run_dir: str | os.PathLike[str]) -> tuple[int, list[ModelManagerError]]:
    """Check every NPZ under ``run_dir`` against manifest.json. Returns (files checked, problems)."""
    root = Path(run_dir)
    expected = _manifest_signatures(root / MANIFEST)
    problems: list[ModelManagerError] = []
    files = sorted(root.rglob("*.npz"))
    for npz in files:
        try:
            meta = read_npz_meta(npz)
        except ModelManagerError as exc:
            problems.append(exc)
            continue
        component = meta["models_used"][0]["component"]
        want = expected.get(component)
        if want is None:
            problems.append(ProvenanceInvalid(f"{npz}: component is not in {MANIFEST}", component=component,
                                              hint="the output belongs to another run"))
        elif meta["model_signature"] != want[0] or meta["models_used"] != want[1]:
            problems.append(ModelSignatureMismatch(
                f"{npz}: model_signature {meta['model_signature']} differs from the manifest's {want[0]}",
                component=component, field="meta.model_signature",
                hint="the output was made by other models than this run recorded; re-run the component"))
    return len(files), problems


def _manifest_signatures(path: Path) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Signatures recomputed from the manifest's resolved mapping (and checked against its record)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        mapping_data = manifest["run"]["resolved_model_mapping"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProvenanceInvalid(f"{path} has no readable run.resolved_model_mapping ({exc})",
                                field="run.resolved_model_mapping",
                                hint="write the manifest with model_manager.provenance.write_manifest") from None
    specs = unverified_specs(parse_mapping(mapping_data, source=str(path)))
    out: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    recorded = manifest["run"].get("model_signatures", {})
    for component, roles in specs.items():
        used = models_used(roles.values())
        signature = model_signature(used)
        if component in recorded and recorded[component] != signature:
            raise ModelSignatureMismatch(
                f"{path}: run.model_signatures[{component!r}] differs from its resolved mapping",
                component=component, field="run.model_signatures",
                hint="the manifest was edited after the run; restore it or re-run")
        out[component] = (signature, used)
    return out
