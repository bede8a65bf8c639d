"""Every rule's own VALID/INVALID examples (line, column and fixed source asserted), plus the
name resolution real code needs."""

from __future__ import annotations

import pytest

from mm_lint import candidates, fix, rules, signals
from mm_lint.config import Options
from mm_lint.engine import check_bytes
from mm_lint.examples import Invalid, all_examples
from model_manager import policy

EXAMPLES = all_examples()


def codes(src: str, hosts: frozenset[str] = frozenset()) -> list[str]:
    return [f.code for f in check_bytes(src.encode(), "example.py", Options(hosts))]


VALID = [(code, i, src) for code, (valid, _) in EXAMPLES.items() for i, src in enumerate(valid)]
INVALID = [(code, i, ex) for code, (_, invalid) in EXAMPLES.items() for i, ex in enumerate(invalid)]


@pytest.mark.parametrize(("code", "index", "src"), VALID, ids=[f"{c}-valid-{i}" for c, i, _ in VALID])
def test_valid_examples_raise_nothing(code: str, index: int, src: str) -> None:
    found = [(f.code, f.line, f.col) for f in check_bytes(src.encode(), "example.py")]
    assert found == [], f"{code} VALID example {index} raised {found}:\n{src}"


@pytest.mark.parametrize(("code", "index", "example"), INVALID, ids=[f"{c}-invalid-{i}" for c, i, _ in INVALID])
def test_invalid_examples_raise_their_code_where_stated(code: str, index: int, example: Invalid) -> None:
    findings = check_bytes(example.src.encode(), "example.py")
    assert [(f.code, f.line, f.col) for f in findings] == [(code, example.line, example.col)], example.src
    [finding] = findings
    assert finding.fixable == (example.fixed is not None), "fixable, yet no fixed source stated (or the reverse)"
    if example.fixed is not None:
        assert fix.fix_source(example.src.encode(), findings).decode() == example.fixed


def test_every_rule_has_examples() -> None:
    codes_ = {r.code for r in rules.all_rules()}
    missing = sorted(c for c in codes_ if c not in EXAMPLES or not all(EXAMPLES[c]))
    assert not missing, f"rules without VALID and INVALID examples: {missing}"
    assert not set(EXAMPLES) - codes_, "examples for codes no rule has"


def test_every_signal_word_is_found_by_a_needle() -> None:
    keywords = signals.PRETRAINED_KEYWORDS + signals.WEIGHTS_KEYWORDS
    assert all(any(n.decode() in w for n in candidates.NEEDLES) for w in keywords)
    # the rest are found where they are imported
    unseen = [w for w in signals.DOWNLOAD_FUNCTION_NAMES if not any(n.decode() in w for n in candidates.NEEDLES)]
    assert unseen and all("url" in w for w in unseen)
    assert codes("from mylib import load_url\n\nsd = load_url(u)\n") == ["MM602"]


def test_messages_come_from_the_catalogue() -> None:
    entry = policy.by_code()["MM101"]
    [finding] = check_bytes(b"from transformers import AutoModel\nAutoModel.from_pretrained('x/y')\n", "a.py")
    assert finding.message.startswith("MM101 ")
    assert entry.why in finding.message and entry.fix in finding.message
    assert (finding.line, finding.col) == (2, 1)


@pytest.mark.parametrize("src", [
    "import transformers as t\nt.AutoModel.from_pretrained('x/y')",
    "from transformers import AutoModel as AM\nAM.from_pretrained('x/y')",
    "import transformers.models.bert as b\nb.BertModel.from_pretrained('x/y')",
    "import transformers.models\ntransformers.models.bert.BertModel.from_pretrained('x/y')",
    "def f():\n    from transformers import AutoModel\n    return AutoModel.from_pretrained('x/y')",
    "try:\n    from transformers import AutoModel\nexcept ImportError:\n    AutoModel = None\n"
    "m = AutoModel.from_pretrained(\n    'x/y',\n)",
])
def test_import_aliases_resolve(src: str) -> None:
    assert codes(src) == ["MM101"]


@pytest.mark.parametrize(("src", "expected"), [
    ("from transformers import AutoModel\nP = '/srv/models'\nAutoModel.from_pretrained(P + '/bert')", []),
    ("from transformers import AutoModel\nAutoModel.from_pretrained(f'/srv/{name}')", []),
    ("from transformers import AutoModel\nAutoModel.from_pretrained(f'{name}/bert')", ["MM101"]),
    ("from transformers import AutoModel\nfrom pathlib import Path\nAutoModel.from_pretrained(Path('/m') / 'x')", []),
    ("from transformers import AutoModel\nfrom pathlib import Path\nAutoModel.from_pretrained(Path('m') / 'x')",
     ["MM101"]),
    ("from transformers import AutoModel\nimport os\nAutoModel.from_pretrained(os.path.join(os.getcwd(), 'm'))", []),
    ("from transformers import AutoModel\nAutoModel.from_pretrained('models/bert')", ["MM101"]),
    ("from transformers import AutoModel\nX = 'a'\nX = 'b'\nAutoModel.from_pretrained(X, local_files_only=True)", []),
    ("from transformers import AutoModel\nAutoModel.from_pretrained('/m', **kw)", []),
    ("from transformers import AutoModel\nAutoModel.from_pretrained('org/m', **kw)", ["MM101"]),
])
def test_local_paths_and_constants(src: str, expected: list[str]) -> None:
    assert codes(src) == expected


def test_own_from_pretrained_is_not_transformers() -> None:
    src = (
        "import transformers\n"
        "class Encoder:\n"
        "    @classmethod\n"
        "    def from_pretrained(cls, path):\n"
        "        return cls()\n"
        "    def reload(self):\n"
        "        return self.from_pretrained('org/x')\n"
        "Encoder.from_pretrained('org/x')\n"
        "class Sub(transformers.BertModel):\n"
        "    def again(self):\n"
        "        return self.from_pretrained('org/x')\n"
    )
    found = check_bytes(src.encode(), "a.py")
    assert [(f.line, f.code) for f in found] == [(11, "MM101")]


def test_project_from_pretrained_without_library_import_is_quiet() -> None:
    assert codes("def f(model_cls):\n    return model_cls.from_pretrained('x')\n") == []


def test_allowed_hosts_and_loopback() -> None:
    src = "import requests\nrequests.get('http://triton.internal:8000/v2')\n"
    assert codes(src) == ["MM401"]
    assert codes(src, frozenset({"triton.internal"})) == []
    assert codes("import requests\nrequests.get('http://127.0.0.5/x')") == []
    assert codes("import requests\nrequests.get('http://localhost.evil.com/x')") == ["MM401"]
    assert codes("import requests\nrequests.get('http://localhost')") == []


def test_noqa() -> None:
    base = "import torch\ntorch.load('w.pt', weights_only=False)"
    assert codes(base + "  # noqa\n") == ["MM204"]  # a download is allowed by name, not by a bare noqa
    assert codes(base + "  # noqa: MM204\n") == []
    assert codes(base + "  # noqa: MM2\n") == []
    assert codes(base + "  # noqa: E501\n") == ["MM204"]


def test_calling_an_instance_is_not_calling_the_constructor() -> None:
    assert codes("from ultralytics import YOLO\nm = YOLO('/w/y.pt')\nm('bus.jpg')\nm.predict('x')\n") == []


def test_syntax_and_decode_errors_are_one_finding_each() -> None:
    [f] = check_bytes(b"import torch\ndef f(:\n", "bad.py")
    assert f.code == "MM001" and f.line == 2
    [f] = check_bytes(b"import torch\nx = '\xff\xfe'\n", "bad.py")
    assert f.code == "MM002"
    [f] = check_bytes(b"# -*- coding: latin-9000 -*-\nimport torch\n", "bad.py")
    assert f.code in ("MM001", "MM002")
    [f] = check_bytes(b"import torch\x00\n", "bad.py")
    assert f.code in ("MM001", "MM002")
    deep = b"import torch\nx = " + b"(" * 300 + b")" * 300 + b"\n"
    assert all(x.code.startswith("MM0") for x in check_bytes(deep, "deep.py"))


def test_prefilter_skips_files_without_catalogue_words() -> None:
    from mm_lint.engine import might_match

    assert not might_match(b"def f(x):\n    return x + 1\n")
    assert might_match(b"import torch\n")
    assert check_bytes(b"def f(:\n", "x.py") == []  # never parsed: no trigger word


def test_importing_mm_lint_is_cheap() -> None:
    import subprocess
    import sys

    code = ("import sys, mm_lint.engine, mm_lint.cli, mm_lint.flake8_plugin; "
            "bad = [m for m in ('libcst', 'pydantic', 'yaml') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
