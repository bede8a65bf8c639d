"""Errors are data: one code each, stable strings, documented, picklable, never OSError."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from model_manager import errors

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_are_current() -> None:
    """docs/errors.md and docs/forbidden-calls.md are what docs/generate.py makes of the code."""
    out = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_docs_list_every_code_with_its_exit_status() -> None:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for code, cls in errors.BY_CODE.items():
        assert f"| `{code}` | `{cls.__name__}` | {cls.exit_status} |" in text


def test_error_classes_are_written_out_for_type_checkers() -> None:
    """Each subclass is a class statement in errors.py (a checker sees it), not built at run time."""
    source = (ROOT / "model_manager" / "errors.py").read_text(encoding="utf-8")
    for cls in errors.BY_CODE.values():
        assert f"class {cls.__name__}(ModelManagerError):" in source


def test_messages_stay_bounded_whatever_the_input() -> None:
    nested: list[object] = []
    for _ in range(30):
        nested = [nested, nested]  # 2**30 leaves if expanded
    err = errors.InvalidModelSpec(f"value {errors.shown(nested)}", component="c" * 10_000_000 + "\n")
    assert len(str(err)) < 3000 and "\n" not in str(err)
    assert len(str(errors.InvalidModelSpec("x" * 10_000_000))) < 2200


@pytest.mark.parametrize("code", sorted(errors.BY_CODE))
def test_each_code_has_its_subclass(code: str) -> None:
    err = errors.error_for(code, "boom", component="c", role="r", field="f", hint="do x")
    assert isinstance(err, errors.ModelManagerError) and not isinstance(err, OSError)
    assert err.code == code
    assert str(err) == f"{code}: c/r field 'f': boom (hint: do x)"
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and back.to_dict() == err.to_dict()


def test_required_codes_of_decisions_9_1() -> None:
    for code in ["model_mapping_missing", "model_artifact_missing", "weights_digest_mismatch", "triton_unavailable",
                 "triton_model_not_found", "triton_infer_failed", "onnxruntime_missing", "invalid_model_spec"]:
        assert code in errors.BY_CODE


def test_default_hint_comes_from_the_code_table() -> None:
    err = errors.InvalidModelSpec("x")
    assert err.hint == errors.CODES["invalid_model_spec"][1]
    assert str(err).startswith("invalid_model_spec: x")
