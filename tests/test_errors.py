"""Errors are data: one code each, stable strings, documented, picklable, never OSError."""

from __future__ import annotations

import pickle

import pytest

from model_manager import errors
from model_manager.errors_doc import main as errors_doc_main


def test_docs_list_every_code() -> None:
    assert errors_doc_main(["--check"]) == 0


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
