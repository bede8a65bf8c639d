"""The provenance package stands on plain data: it never imports the manager, numpy loads only when used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.imports import modules_after

import model_manager.provenance

PACKAGE = Path(model_manager.provenance.__file__).parent


def test_provenance_imports_neither_the_manager_nor_numpy() -> None:
    loaded = modules_after("from model_manager.provenance import audit_run_dir, save_output, write_manifest")
    assert "model_manager.manager" not in loaded and "numpy" not in loaded


def test_every_module_imports_alone_and_stays_small() -> None:
    names = []
    for module in sorted(PACKAGE.glob("*.py")):
        assert len(module.read_text().splitlines()) <= 400, module.name
        names.append("model_manager.provenance" + ("" if module.stem == "__init__" else "." + module.stem))
    # each one first, in a clean state: an import cycle fails for the module that closes it
    probe = ("import importlib, sys\n"
             f"for name in {names!r}:\n"
             "    for loaded in [m for m in sys.modules if m.startswith('model_manager.provenance')]:\n"
             "        del sys.modules[loaded]\n"
             "    importlib.import_module(name)\n")
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_the_public_names() -> None:
    assert sorted(model_manager.provenance.__all__) == ["AuditReport", "OutputRecord", "audit_run_dir",
                                                        "read_npz_meta", "save_npz", "save_output",
                                                        "write_manifest"]
