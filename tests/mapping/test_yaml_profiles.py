"""Profiles are read with a safe loader that refuses duplicate keys and Python tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.mapping.loader import load_profile


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def _raises(path: Path, code: str) -> ModelManagerError:
    with pytest.raises(ModelManagerError) as info:
        load_profile(path)
    assert info.value.code == code, str(info.value)
    assert str(path) in str(info.value)
    return info.value


def test_valid_profile_round_trips(tmp_path: Path, mapping: dict[str, Any]) -> None:
    loaded = load_profile(_write(tmp_path, yaml.safe_dump(mapping)))
    assert list(loaded.components) == ["core_clip", "core_optical_flow"]


def test_duplicate_key_in_an_entry(tmp_path: Path, mapping: dict[str, Any]) -> None:
    text = yaml.safe_dump(mapping).replace("weights_digest:", "weights_digest: sha256:" + "c" * 64 +
                                           "\n      weights_digest:", 1)
    err = _raises(_write(tmp_path, text), "invalid_model_spec")
    assert "duplicate key 'weights_digest'" in str(err)
    assert "line" in str(err)


def test_duplicate_component(tmp_path: Path) -> None:
    err = _raises(_write(tmp_path, "schema_version: 1\ncomponents:\n  a: {}\n  a: {}\n"), "invalid_model_spec")
    assert "duplicate key 'a' at line 4" in str(err)


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['true']", "!!python/name:os.system ''",
                                 "!custom 1"])
def test_python_tags_are_refused(tmp_path: Path, tag: str) -> None:
    err = _raises(_write(tmp_path, f"schema_version: 1\ncomponents: {tag}\n"), "invalid_model_spec")
    assert "tag" in str(err)


@pytest.mark.parametrize("text", ["components: [\n", "a: b: c\n", "\t- x\n", "key: 'unterminated\n"])
def test_malformed_yaml(tmp_path: Path, text: str) -> None:
    err = _raises(_write(tmp_path, text), "invalid_model_spec")
    assert "not valid YAML" in str(err)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_profile(tmp_path: Path, text: str) -> None:
    err = _raises(_write(tmp_path, text), "invalid_model_spec")
    assert "empty" in str(err)


def test_undecodable_profile(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(b"schema_version: 1\ncomponents: \xff\xfe\x00\n")
    _raises(path, "invalid_model_spec")


def test_unquoted_date_version_is_not_a_string(tmp_path: Path, mapping: dict[str, Any]) -> None:
    text = yaml.safe_dump(mapping).replace("model_version: 1.0.0", "model_version: 2024-05-01")
    err = _raises(_write(tmp_path, text), "invalid_model_spec")
    assert err.field == "model_version" and "quote" in (err.hint or "")


def test_missing_profile_file(tmp_path: Path) -> None:
    _raises(tmp_path / "nope.yaml", "model_mapping_missing")


def test_payload_wins_over_profile(tmp_path: Path, mapping: dict[str, Any], run_context: dict[str, str],
                                   models_root: Path) -> None:
    other = _write(tmp_path, "schema_version: 1\ncomponents: {broken: yes}\n")
    mm = ModelManager(run_context, mapping, profile_path=other)
    assert mm.mapping.source == "payload"


def test_profile_is_read_when_no_payload(tmp_path: Path, mapping: dict[str, Any], run_context: dict[str, str],
                                         models_root: Path) -> None:
    path = _write(tmp_path, yaml.safe_dump(mapping))
    mm = ModelManager(run_context, profile_path=path)
    assert mm.mapping.source == str(path)


def test_neither_payload_nor_profile(run_context: dict[str, str]) -> None:
    with pytest.raises(ModelManagerError) as info:
        ModelManager(run_context)
    assert info.value.code == "model_mapping_missing"
