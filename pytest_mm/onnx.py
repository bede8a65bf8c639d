"""The fake ONNX models' pytest fixtures (the pytest_mm plugin registers this module; docs/pytest-mm.md).

Both put ``$MM_MODELS_ROOT`` on the test's own folder ``tmp_path / "mm-models"`` (monkeypatched for
the test) and write there; numpy and onnx are imported when a fixture is first called.

``fake_onnx_model``
    ``fake_onnx_model(inputs, outputs, *, path=None, model_name="fake-onnx", model_version="1", tier=None,
    precision=None)`` builds a real ONNX file computing the documented function (``pytest_mm.fake_onnx``) and
    returns a ``FakeOnnxModel`` (``path``, ``file``, ``digest``, ``entry``, ``mapping()``, ``expected(feeds)``,
    ``example_inputs()``). A single argument is a whole signature (``{"inputs": ..., "outputs": ...}``)::

        def test_embed(fake_onnx_model):
            model = fake_onnx_model([("ids", "int64", ["batch", "T"])], [("emb", "float32", ["batch", 8])])
            mm = ModelManager(RUN_CONTEXT, model.mapping("core_text", "embedder"))
``fake_onnx_manager``
    ``fake_onnx_manager(mapping_or_profile, signatures, *, run_context=None, extra_files=None, drop=(),
    triton_timeouts=None) -> ModelManager`` writes a fake for every in-process ONNX role at its
    ``artifacts.onnx_path``, pins the digests into a copy of the mapping (``fake_onnx_manager.mapping``; the
    fakes are in ``fake_onnx_manager.models``) and builds the manager on it. Every in-process ONNX role needs a
    signature whose float tensors fit the entry's precision; Triton roles pass through; the files other roles
    need (torch weights, tokenizers) come from ``extra_files`` (torch digests pinned from them) or the roles
    are ``drop``-ped. Nothing is guessed: what is missing is an error naming the roles.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from model_manager.manager import ModelManager
    from model_manager.mapping.schema import RunContext
    from model_manager.runtimes import TritonTimeouts
    from pytest_mm.fake_onnx import FakeOnnxModel

__all__ = ["DEFAULT_RUN_CONTEXT", "FakeOnnxManagers", "FakeOnnxModels", "fake_onnx_manager", "fake_onnx_model"]

#: the run context fake_onnx_manager builds its manager with when the test gives none
DEFAULT_RUN_CONTEXT: Mapping[str, str] = MappingProxyType({
    "platform_id": "pytest", "video_id": "pytest-video", "run_id": "pytest-run", "config_hash": "pytest-config",
    "sampling_policy_version": "pytest", "dataprocessor_version": "pytest"})
_MODELS = "mm-models"
_NO_SIGNATURE = object()
Extra = bytes | str | os.PathLike[str]


def _models_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / _MODELS
    root.mkdir(exist_ok=True)
    monkeypatch.setenv("MM_MODELS_ROOT", str(root))
    return root


class FakeOnnxModels:
    """``fake_onnx_model(inputs, outputs, ...) -> FakeOnnxModel``, written below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.models: list[FakeOnnxModel] = []

    def __call__(self, inputs: Any, outputs: Any = _NO_SIGNATURE, *, path: str | None = None,
                 model_name: str = "fake-onnx", model_version: str = "1", tier: int | None = None,
                 precision: str | None = None) -> FakeOnnxModel:
        from pytest_mm.fake_onnx import make_fake_onnx

        signature = inputs if outputs is _NO_SIGNATURE else (inputs, outputs)
        path = f"fake_onnx/model_{len(self.models)}.onnx" if path is None else path
        model = make_fake_onnx(signature, self.root, path, model_name=model_name, model_version=model_version,
                               tier=tier, precision=precision)
        self.models.append(model)
        return model


@pytest.fixture
def fake_onnx_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOnnxModels:
    """Build real ONNX files for declared signatures below the test's MM_MODELS_ROOT (docs/pytest-mm.md)."""
    return FakeOnnxModels(_models_root(tmp_path, monkeypatch))


class FakeOnnxManagers:
    """``fake_onnx_manager(mapping, signatures, ...) -> ModelManager`` over fakes written below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mapping: dict[str, Any] = {}
        self.models: dict[str, FakeOnnxModel] = {}

    def __call__(self, mapping: Mapping[str, Any] | str | os.PathLike[str],
                 signatures: Mapping[Any, Any] | None = None, *,
                 run_context: RunContext | Mapping[str, Any] | None = None,
                 extra_files: Mapping[str, Extra] | None = None,
                 drop: Iterable[str | tuple[str, str]] = (),
                 triton_timeouts: TritonTimeouts | Mapping[str, float] | None = None) -> ModelManager:
        from model_manager.manager import ModelManager

        self.mapping, self.models = pin_fakes(mapping, signatures or {}, self.root, extra_files or {}, drop)
        context = dict(DEFAULT_RUN_CONTEXT) if run_context is None else run_context
        return ModelManager(context, self.mapping, triton_timeouts=triton_timeouts)


@pytest.fixture
def fake_onnx_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOnnxManagers:
    """A ModelManager over a mapping or profile whose in-process ONNX roles are fakes (docs/pytest-mm.md)."""
    # the fakes' digests belong to this test, not to the user's digest cache
    monkeypatch.setenv("MM_CACHE_DIR", str(tmp_path / "mm-digest-cache"))
    return FakeOnnxManagers(_models_root(tmp_path, monkeypatch))


# ---------------------------------------------------------------- the mapping's roles
def _role_key(key: object, field: str) -> str:
    if isinstance(key, tuple) and len(key) == 2 and all(isinstance(p, str) for p in key):
        return f"{key[0]}/{key[1]}"
    if isinstance(key, str) and key.count("/") == 1:
        return key
    from model_manager.errors import InvalidModelSpec, shown

    raise InvalidModelSpec(f"{shown(key)} does not name a role", field=field,
                           hint="name a role as 'component/role' or ('component', 'role')")


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists, which the fixture may edit."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _load(mapping: Mapping[str, Any] | str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    from model_manager.mapping.loader import parse_mapping

    if isinstance(mapping, (str, os.PathLike)):
        from model_manager.mapping.yaml_reader import read_yaml  # the project's safe YAML reader

        source = os.fspath(mapping)
        data = read_yaml(source)
    else:
        source, data = "payload", mapping
    parse_mapping(data, source=source)  # the mapping's own errors first, as the manager would raise them
    return _plain(data), source


def pin_fakes(mapping: Mapping[str, Any] | str | os.PathLike[str], signatures: Mapping[Any, Any], root: Path,
              extra_files: Mapping[str, Extra], drop: Iterable[str | tuple[str, str]]
              ) -> tuple[dict[str, Any], dict[str, FakeOnnxModel]]:
    """A copy of ``mapping`` with a fake at every in-process ONNX role's onnx_path, its digest pinned."""
    from model_manager.artifacts.paths import check_relative
    from model_manager.errors import InvalidModelSpec, ModelArtifactMissing

    data, source = _load(mapping)
    components: dict[str, dict[str, Any]] = data["components"]
    roles = {f"{c}/{r}": entry for c, entries in components.items() for r, entry in entries.items()}
    dropped = [_role_key(key, "drop") for key in drop]
    unknown = sorted(set(dropped) - set(roles))
    if unknown:
        raise InvalidModelSpec(f"drop names roles that are not in {source}: {unknown}", field="drop",
                               hint=f"the roles are {sorted(roles)}")
    for key in dropped:
        component, role = key.split("/")
        del components[component][role], roles[key]
        if not components[component]:
            del components[component]
    onnx_roles = {k for k, e in roles.items() if e["runtime"] == "inprocess" and e["engine"] == "onnx"}
    sigs = {_role_key(key, "signatures"): sig for key, sig in signatures.items()}
    if set(sigs) - onnx_roles:
        others = {k: f"{roles[k]['runtime']}/{roles[k]['engine']}" for k in set(sigs) - onnx_roles if k in roles}
        raise InvalidModelSpec(
            f"signatures name roles that are not in-process ONNX roles of {source}: "
            f"{sorted(set(sigs) - onnx_roles)}" + (f" (they run {others})" if others else ""),
            field="signatures", hint=f"the in-process ONNX roles are {sorted(onnx_roles) or 'none'}")
    if onnx_roles - set(sigs):
        raise InvalidModelSpec(
            f"in-process ONNX roles without a signature: {sorted(onnx_roles - set(sigs))}", field="signatures",
            hint="give each one signatures={'component/role': {'inputs': [...], 'outputs': [...]}}, or drop=[...] it")
    for rel, content in extra_files.items():
        _place_extra(root, rel, content)
    models = {key: _fake(root, key, roles[key], sigs[key]) for key in sorted(onnx_roles)}
    missing = []
    for key, entry in roles.items():
        component, role = key.split("/")
        absent = [f"{key} artifacts.{field} {rel!r}" for field, rel in (entry.get("artifacts") or {}).items()
                  if field not in ("onnx_path", "preprocess_id")
                  and not (root / check_relative(rel, component=component, role=role,
                                                 field=f"artifacts.{field}")).exists()]
        missing += absent
        if entry["runtime"] == "inprocess" and entry["engine"] != "onnx" and not absent:
            entry["weights_digest"] = _digest(root, key, entry)
    if missing:
        raise ModelArtifactMissing(
            f"the fixture makes only ONNX models, and these artifacts are not below the models root: {missing}",
            field="extra_files", hint="supply them with extra_files={'<path>': bytes, text or a local file/folder}, "
                                      "or drop=['component/role'] the roles that need them")
    return data, models


def _fake(root: Path, key: str, entry: dict[str, Any], sig: Any) -> FakeOnnxModel:
    from model_manager.errors import InvalidModelSpec
    from pytest_mm.fake_onnx import make_fake_onnx, model_sig

    component, role = key.split("/")
    try:
        signature = model_sig(sig)
        wrong = signature.precision_problems(entry["precision"])
        if wrong:  # the manager's ONNX handle would refuse the model: say so now, naming the signature's tensor
            want = "float16" if entry["precision"] == "fp16" else "float32"
            raise InvalidModelSpec(
                f"the entry pins precision {entry['precision']!r}: float inputs and outputs are {want}, but "
                + "; ".join(wrong), field=wrong[0].split(" ")[0] + ".dtype",
                hint=f"declare the float tensors {want} (integer and bool tensors are free)")
        model = make_fake_onnx(signature, root, entry["artifacts"]["onnx_path"], model_name=entry["model_name"],
                               model_version=entry["model_version"], precision=entry["precision"])
    except InvalidModelSpec as exc:
        field = "artifacts.onnx_path" if exc.field == "path" else f"signatures.{exc.field}"
        raise InvalidModelSpec(exc.message, component=component, role=role, field=field, hint=exc.hint) from None
    entry["weights_digest"] = model.digest
    return model


def _digest(root: Path, key: str, entry: dict[str, Any]) -> str:
    """The digest of a non-ONNX in-process role's weights, as the manager will compute it."""
    from model_manager.artifacts.cache import DigestCache
    from model_manager.artifacts.digest import weights_digest
    from model_manager.mapping.schema import WEIGHTS_FIELD

    component, role = key.split("/")
    field = WEIGHTS_FIELD[entry["engine"]]
    path = os.path.realpath(root / entry["artifacts"][field])
    return weights_digest(path, os.path.realpath(root), DigestCache(None), component=component, role=role,
                          field=f"artifacts.{field}")


def _place_extra(root: Path, rel: str, content: Extra) -> None:
    from model_manager.errors import InvalidModelSpec, shown
    from pytest_mm.fake_onnx import place

    field = f"extra_files[{rel!r}]"
    if isinstance(content, bytes):
        place(root, rel, content, field)
    elif isinstance(content, str):
        place(root, rel, content.encode("utf-8"), field)
    elif isinstance(content, os.PathLike):
        source = Path(content)
        if source.is_file():
            place(root, rel, source.read_bytes(), field)
        elif source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.is_file() and ".git" not in p.relative_to(source).parts)
            if not files:
                raise InvalidModelSpec(f"the folder {shown(str(source))} holds no files", field=field,
                                       hint="copy a folder of files, or give the file's bytes")
            for file in files:
                place(root, f"{rel.rstrip('/')}/{file.relative_to(source).as_posix()}", file.read_bytes(), field)
        else:
            raise InvalidModelSpec(f"{shown(str(source))} is not a file or a folder", field=field,
                                   hint="give bytes, text, or the path of a local file or folder to copy")
    else:
        raise InvalidModelSpec(f"{shown(content)} is not bytes, text or a path", field=field,
                               hint="give bytes, text, or a pathlib.Path of a local file or folder to copy")
