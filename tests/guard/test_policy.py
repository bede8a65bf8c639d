"""The forbidden-call catalogue: complete, consistent, stdlib-only, and the docs match it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model_manager import policy
from model_manager.policy import CATALOGUE, by_code

ROOT = Path(__file__).resolve().parents[2]

REQUIRED = [
    "transformers.*.from_pretrained", "transformers.pipeline", "huggingface_hub.hf_hub_download",
    "huggingface_hub.snapshot_download", "datasets.load_dataset", "torch.hub.load_state_dict_from_url",
    "torch.hub.download_url_to_file", "torch.hub.load", "timm.create_model", "torchvision.models.*",
    "open_clip.create_model_and_transforms", "clip.load", "whisper.load_model",
    "sentence_transformers.SentenceTransformer", "ultralytics.YOLO", "keras.applications.*",
    "tensorflow_hub.load", "requests.get", "httpx.get", "urllib.request.urlopen", "urllib3.PoolManager",
    "aiohttp.ClientSession", "torch.load", "subprocess.run",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_every_required_entry_point_is_catalogued(name: str) -> None:
    assert any(name in entry.names for entry in CATALOGUE), name


def test_codes_are_stable_unique_and_well_formed() -> None:
    codes = [entry.code for entry in CATALOGUE]
    assert len(codes) == len(set(codes)) == len(by_code())
    assert all(re.fullmatch(r"MM[1-9]\d\d", code) for code in codes)
    names = [name for entry in CATALOGUE for name in entry.names]
    assert len(names) == len(set(names)), "a name belongs to two rules"


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.code)
def test_entries_are_complete(entry: policy.ForbiddenCall) -> None:
    assert entry.library and entry.why.endswith(".") and entry.fix.endswith(".")
    assert entry.category in (policy.DOWNLOAD, policy.HTTP, policy.SUBPROCESS, policy.UNSAFE_LOAD)
    assert entry.modules and entry.guard
    assert all("." in name and " " not in name for name in entry.names)
    assert all(name.partition(".")[0] in entry.modules for name in entry.names)
    if entry.autofix:
        assert entry.local_when and entry.local_when[0].value in (True, "local")
    for rule in entry.local_when:
        assert rule.kwarg.isidentifier() and (rule.positional is None or rule.positional >= 0)
    assert bool(entry.command_names) == (entry.category == policy.SUBPROCESS)


def test_local_forms_named_in_the_issue() -> None:
    def local(code: str) -> set[tuple[str, object]]:
        return {(r.kwarg, r.value) for r in by_code()[code].local_when}
    assert ("local_files_only", True) in local("MM101")
    assert ("weights_only", True) in local("MM204")
    assert ("pretrained", False) in local("MM301")
    assert ("weights", None) in local("MM302")
    assert ("pretrained_model_name_or_path", policy.PATH) in local("MM101")


def _module_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.partition(".")[0])
    return found


GUARD_MODULES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "model_manager" / "guard").glob("*.py"))


@pytest.mark.parametrize("module", ["model_manager/policy.py", *GUARD_MODULES, "docs/generate.py"])
def test_guard_modules_import_only_the_standard_library(module: str) -> None:
    imports = _module_level_imports(ROOT / module) - {"__future__", "model_manager"}
    assert imports <= set(sys.stdlib_module_names), imports - set(sys.stdlib_module_names)


def test_importing_the_guard_pulls_in_no_third_party_package() -> None:
    code = ("import sys; import model_manager.guard, model_manager.policy; "
            "bad = {'numpy','onnxruntime','tritonclient','gevent','grpc','requests','httpx','huggingface_hub'}"
            " & {m.partition('.')[0] for m in sys.modules}; print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_network_stacks_are_catalogued() -> None:
    modules = {m for stack in policy.NETWORK_STACKS for m in stack.modules}
    assert {"uvloop", "aiodns", "pycares", "pycurl"} <= modules
    assert all(s.why.endswith(".") and s.instead.endswith(".") for s in policy.NETWORK_STACKS)
    assert not modules & {"grpc", "zmq", "cv2", "av", "ctypes"}  # guarded otherwise, or needed locally


def test_docs_page_is_generated_from_the_catalogue() -> None:
    out = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = (ROOT / "docs" / "forbidden-calls.md").read_text()
    for entry in CATALOGUE:
        assert f"### {entry.code}: {entry.library}" in text
        assert all(f"`{name}`" in text for name in entry.names)
    assert all(f"`{m}`" in text for stack in policy.NETWORK_STACKS for m in stack.modules)
