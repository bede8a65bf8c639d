"""`import model_manager` stays cheap: heavy libraries load only when first needed."""

from __future__ import annotations

from helpers.imports import modules_after

HEAVY = ["numpy", "onnxruntime", "tritonclient", "gevent", "geventhttpclient", "yaml", "pydantic"]


def test_import_model_manager_loads_nothing_heavy() -> None:
    loaded = modules_after("import model_manager")
    assert not [m for m in HEAVY if m in loaded]


def test_building_a_manager_does_not_load_numpy_or_runtimes() -> None:
    loaded = modules_after("from model_manager import ModelManager; from model_manager import provenance")
    assert not [m for m in ["numpy", "onnxruntime", "tritonclient", "gevent"] if m in loaded]
