"""What needs files on disk: relative imports and re-exports, the project's wrappers across files
(MM604) and their cached index, the torch floor, the root-anchored excludes, one finding per download."""

from __future__ import annotations

from pathlib import Path

import pytest

from mm_lint import config
from mm_lint.cli import lint_paths, main
from mm_lint.engine import check_bytes
from mm_lint.errors import ModelManagerError


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def lint(root: Path, *paths: str, use_cache: bool = False) -> list[tuple[str, int, str, str]]:
    found, _ = lint_paths(list(paths) or ["."], config.load(start=root), use_cache=use_cache, jobs=1)
    return [(Path(f.path).as_posix(), f.line, f.code, f.message) for f in found]


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_relative_imports_resolve_inside_the_library_itself(root: Path) -> None:
    write(root, {"peft/__init__.py": "", "peft/config.py": "class PeftConfig: ...\n",
                 "peft/tuners/__init__.py": "",
                 "peft/tuners/lora.py": "from ..config import PeftConfig\n"
                                        "def load(model_id):\n    return PeftConfig.from_pretrained(model_id)\n"})
    assert [(p, line, code) for p, line, code, _ in lint(root)] == [("peft/tuners/lora.py", 3, "MM108")]


def test_wrappers_across_files_are_found_named_and_cached(root: Path) -> None:
    write(root, {
        "pkg/__init__.py": "from .hub import fetch_weights\n",
        "pkg/hub.py": "import torch\n\n\ndef fetch_weights(url, dst='/tmp/w'):\n"
                      "    torch.hub.download_url_to_file(url, dst)  # noqa: MM202\n",
        "pkg/models.py": "from .hub import fetch_weights\n\n\ndef resnet(url=None):\n"
                         "    return fetch_weights(url) if url else None\n",
        "app/__init__.py": "",
        "app/train.py": "from pkg import fetch_weights\nfrom pkg.models import resnet\n"
                        "fetch_weights('https://x.org/w.pth')\nfetch_weights('/data/w.pth')\nresnet(REMOTE)\n",
        # no trigger word at all: the first pass does not parse it, the index does
        "app/plain.py": "from pkg.hub import fetch_weights as grab\ngrab(address)\n",
    })
    found = sorted(lint(root, "pkg", "app", use_cache=True))
    # pkg/models.py passes its own parameter on, whose default (None) is local: only a caller
    # filling it downloads (app/train.py:5)
    assert [(p, line, code) for p, line, code, _ in found] == [
        ("app/plain.py", 2, "MM604"), ("app/train.py", 3, "MM604"), ("app/train.py", 5, "MM604")]
    message = found[1][3]
    assert "`pkg.hub.fetch_weights`" in message and "pkg/hub.py:5" in message and "`url`" in message
    assert "`pkg.models.resnet`" in found[2][3]  # a caller passing its parameter on is a wrapper too
    # warm: the same findings, from the cache
    cfg = config.load(start=root)
    again, stats = lint_paths(["pkg", "app"], cfg, use_cache=True, jobs=1)
    assert sorted((Path(f.path).as_posix(), f.line, f.code) for f in again) == [(p, n, c) for p, n, c, _ in found]
    assert stats["cached"] == stats["files"] and not stats.get("second_pass")
    # the wrapper stops downloading: only the URL to weights in the call is left (MM603)
    (root / "pkg" / "hub.py").write_text("def fetch_weights(url, dst='/tmp/w'):\n    return dst\n")
    assert [(p, line, code) for p, line, code, _ in lint(root, "pkg", "app", use_cache=True)] == [
        ("app/train.py", 3, "MM603")]


def test_re_exported_catalogue_names_are_followed(root: Path) -> None:
    write(root, {"pkg/__init__.py": "from transformers import AutoModel as Model\n",
                 "use.py": "from pkg import Model\nModel.from_pretrained('org/model')\n"})
    assert [(p, line, code) for p, line, code, _ in lint(root)] == [("use.py", 2, "MM101")]


def test_same_file_wrappers_work_without_the_index() -> None:
    src = ("import requests\n\nclass Api:\n    def _get(self, url):\n        return requests.get(url, timeout=5)\n"
           "    def models(self):\n        return self._get('https://hub.example.com/models')\n"
           "    def health(self):\n        return self._get('http://127.0.0.1:8000/health')\n")
    assert [(f.line, f.code) for f in check_bytes(src.encode(), "api.py")] == [(5, "MM401"), (7, "MM604")]


def test_torch_floor_below_2_6_flags_a_missing_weights_only(root: Path) -> None:
    write(root, {"m.py": "import torch\nw = torch.load('w.pt')\n"})
    assert lint(root) == []
    (root / "pyproject.toml").write_text("[tool.mm-lint]\ntorch-min-version = \"2.4\"\n")
    [(_, line, code, _)] = lint(root)
    assert (line, code) == (2, "MM204")
    (root / "pyproject.toml").write_text("[tool.mm-lint]\ntorch-min-version = \"2.6.0\"\n")
    assert lint(root) == []
    (root / "pyproject.toml").write_text("[tool.mm-lint]\ntorch-min-version = 2.4\n")
    with pytest.raises(ModelManagerError) as exc:
        config.load(root / "pyproject.toml")
    assert exc.value.field == "torch-min-version"


def test_torch_floor_fix_adds_weights_only(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "pyproject.toml").write_text("[tool.mm-lint]\ntorch-min-version = \"2.1\"\n")
    write(root, {"m.py": "import torch\nw = torch.load('w.pt', map_location='cpu')\n"})
    assert main(["m.py", "--fix", "--no-cache"]) == 0
    assert (root / "m.py").read_text().endswith("torch.load('w.pt', map_location='cpu', weights_only=True)\n")


def test_build_and_dist_are_excluded_at_the_root_only(root: Path) -> None:
    bad = "import torch\ntorch.hub.load('org/repo', 'm')\n"
    write(root, {"dist/x.py": bad, "build/y.py": bad, "mmengine/__init__.py": "", "mmengine/dist/utils.py": bad,
                 "pkg/build/z.py": bad})
    assert sorted(p for p, *_ in lint(root)) == ["mmengine/dist/utils.py", "pkg/build/z.py"]


@pytest.mark.parametrize(("src", "expected"), [
    # Request built, then opened three lines later: one download, one finding
    ("import urllib.request as ur\nreq = ur.Request(URL)\nreq.add_header('A', 'b')\n\nur.urlopen(req)\n",
     [(5, "MM403")]),
    ("from urllib.request import Request, urlopen\nurlopen(Request('https://x.org/w.bin'))\n", [(2, "MM403")]),
    ("import requests\nfrom huggingface_hub import hf_hub_url\nrequests.get(hf_hub_url('org/m', 'w.bin'))\n",
     [(3, "MM401")]),
    ("from torchvision.models import resnet50\nm = resnet50(weights='DEFAULT', pretrained=True)\n", [(2, "MM302")]),
    ("import torch\nsd = torch.hub.load_state_dict_from_url('https://x.org/w.pth')\n", [(2, "MM201")]),
])
def test_one_finding_per_download(src: str, expected: list[tuple[int, str]]) -> None:
    assert [(f.line, f.code) for f in check_bytes(src.encode(), "x.py")] == expected


def test_ignoring_the_download_inside_ignores_the_calls_of_its_wrapper(root: Path) -> None:
    (root / "pyproject.toml").write_text("[tool.mm-lint.per-file-ignores]\n'tests/*' = ['MM406']\n")
    write(root, {"tests/__init__.py": "",
                 "tests/wire.py": "import http.client\n\ndef exchange(host):\n"
                                  "    return http.client.HTTPConnection(host, 8000)\n",
                 "tests/test_a.py": "from tests.wire import exchange\nexchange(server.host)\n",
                 "app.py": "from tests.wire import exchange\nexchange(remote_host)\n"})
    # a file allowed to reach the (loopback) test server may call its helpers; another may not
    assert [(p, line, code) for p, line, code, _ in lint(root)] == [("app.py", 2, "MM604")]
    write(root, {"app.py": "from tests.wire import exchange\nexchange(remote_host)  # noqa: MM406\n"})
    assert lint(root) == []


def test_a_namespace_package_is_followed_by_the_name_it_is_imported_as(root: Path) -> None:
    write(root, {"lib/acme/audio/__init__.py": "",  # acme/ has no __init__.py: PEP 420
                 "lib/acme/audio/hub.py": "from huggingface_hub import hf_hub_download\n\n"
                                         "def fetch(repo):\n    return hf_hub_download(repo, 'w.bin')\n",
                 "lib/acme/audio/pipeline.py": "from acme.audio.hub import fetch\n\nfetch('org/pipeline')\n"})
    found = [(p, line, code) for p, line, code, _ in lint(root, "lib")]
    assert ("lib/acme/audio/pipeline.py", 3, "MM604") in found


def test_a_second_look_at_part_of_a_file_finds_what_a_whole_look_finds(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    filler = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(60))
    write(root, {"pkg/__init__.py": "",
                 "pkg/net.py": "import requests\n\ndef get(url):\n    return requests.get(url, timeout=5)\n",
                 "pkg/big.py": "from pkg.net import get\nBASE = 'https://example.com'\n\n" + filler
                               + "def load(name):\n    return get(BASE + name)\n\n" + filler
                               + "class Model:\n    def weights(self):\n        return load('w.bin')\n"})
    narrowed = lint(root)
    from mm_lint import project

    monkeypatch.setattr(project, "narrowed", lambda *a, **k: None)
    text = (root / "pkg" / "big.py").read_text().splitlines()
    calls = [i + 1 for i, line in enumerate(text) if "get(BASE" in line or "load('w.bin')" in line]
    assert lint(root) == narrowed
    assert [x[:3] for x in narrowed if x[0] == "pkg/big.py"] == [("pkg/big.py", n, "MM604") for n in calls]
