"""Building a ModelManager always switches the process offline, allowing only the mapped Triton endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from model_manager import ModelManager, guard

REPO = Path(__file__).resolve().parents[2]


def test_manager_allows_its_triton_endpoints(models_root: object, mapping: dict[str, Any],
                                             run_context: dict[str, str]) -> None:
    mapping["components"]["core_clip"]["text_encoder"]["triton"]["http_url"] = "triton:8001"
    ModelManager(run_context, mapping)
    assert guard.is_active()
    assert {"localhost:8000", "triton:8001"} <= set(guard.allowed())


def test_a_plain_process_is_guarded_once_a_manager_exists(tmp_path: Path, mapping: dict[str, Any],
                                                         run_context: dict[str, str]) -> None:
    del mapping["components"]["core_optical_flow"]  # Triton only: no models root needed
    code = (
        "import json, sys\n"
        "from model_manager import ModelManager, guard\n"
        "assert not guard.is_active()\n"
        "ModelManager(json.loads(sys.argv[1]), json.loads(sys.argv[2]))\n"
        "print(json.dumps([guard.is_active(), list(guard.allowed()),\n"
        "                  __import__('os').environ.get('HF_HUB_OFFLINE')]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_NETWORK", "HF_"))}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(run_context), json.dumps(mapping)],
                         capture_output=True, text=True, env=env, cwd=REPO, check=True).stdout
    assert json.loads(out) == [True, ["localhost:8000"], "1"]


def test_a_malformed_endpoint_never_reaches_the_guard(mapping: dict[str, Any], run_context: dict[str, str]) -> None:
    import pytest

    from model_manager.errors import ModelManagerError

    mapping["components"]["core_clip"]["image_encoder"]["triton"]["http_url"] = "localhost:99999"
    with pytest.raises(ModelManagerError) as info:
        ModelManager(run_context, mapping)
    assert info.value.code == "invalid_model_spec" and info.value.field == "triton.http_url"
