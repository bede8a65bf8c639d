"""Profiles and payloads built to exhaust the reader: each is refused fast, with a short message."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.mappings import RUN_CONTEXT, make_mapping

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.mapping.loader import load_profile, parse_mapping
from model_manager.mapping.yaml_reader import MAX_PROFILE_BYTES, parse_yaml

# Nine levels of nine aliases: 9**9 (387 million) leaves once expanded, 500 bytes as written.
LAUGHS = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def _refused(call: Any) -> ModelManagerError:
    start = time.perf_counter()
    with pytest.raises(ModelManagerError) as info:
        call()
    assert time.perf_counter() - start < 2.0, "refusing a hostile input must be fast"
    assert len(str(info.value)) < 3000 and "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize("where", ["schema_version", "components", "entry"])
def test_alias_bomb_is_refused_while_loading(tmp_path: Path, where: str) -> None:
    body = yaml.safe_dump(make_mapping(), sort_keys=False)
    if where == "schema_version":
        text = LAUGHS + body.replace("schema_version: 1", "schema_version: *l8")
    elif where == "components":
        text = LAUGHS + "schema_version: 1\ncomponents: *l8\n"
    else:
        text = LAUGHS + body.replace("model_name: raft-small", "model_name: *l8")
    assert len(LAUGHS.encode()) < 600
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    err = _refused(lambda: load_profile(path))
    assert err.code == "invalid_model_spec" and "aliases expand" in err.message


def test_a_self_referencing_alias_is_refused() -> None:
    err = _refused(lambda: parse_yaml("schema_version: 1\ncomponents: &a {x: [*a]}\n", source="p.yaml"))
    assert err.code == "invalid_model_spec" and "refers to a node that contains it" in err.message


def test_a_few_aliases_and_merge_keys_still_load() -> None:
    text = """
schema_version: 1
components:
  core_optical_flow:
    flow: &flow
      runtime: inprocess
      engine: onnx
      precision: fp32
      device_policy: cpu
      model_name: raft-small
      model_version: "1.0.0"
      weights_digest: "sha256:%s"
      artifacts: {onnx_path: optical_flow/raft_small.onnx}
    flow_large:
      <<: *flow
      model_name: raft-large
""" % ("a" * 64)
    mapping = parse_mapping(parse_yaml(text, source="p.yaml"), source="p.yaml")
    roles = mapping.components["core_optical_flow"]
    assert roles["flow_large"].model_name == "raft-large" and roles["flow"].model_name == "raft-small"


def test_a_key_written_twice_is_still_a_duplicate_and_says_where() -> None:
    text = "schema_version: 1\ncomponents:\n  c:\n    r: {a: 1, a: 2}\n"
    err = _refused(lambda: parse_yaml(text, source="p.yaml"))
    assert err.code == "invalid_model_spec" and "duplicate key 'a' at line 4" in err.message


def test_a_written_key_that_repeats_after_a_merge_is_a_duplicate() -> None:
    text = "base: &b {x: 1}\nm:\n  <<: *b\n  y: 1\n  y: 2\n"
    err = _refused(lambda: parse_yaml(text, source="p.yaml"))
    assert "duplicate key 'y'" in err.message and "merge" in (err.hint or "")


def test_shared_references_in_a_payload_do_not_expand() -> None:
    nested: list[Any] = ["x"]
    for _ in range(40):
        nested = [nested, nested]  # 2**40 leaves if anything walks or prints it expanded
    for place in ("schema_version", "components", "model_name", "shape", "extra"):
        mapping = make_mapping()
        entry = mapping["components"]["core_clip"]["image_encoder"]
        if place in ("schema_version", "components"):
            mapping[place] = nested
        elif place == "shape":
            entry["triton"]["inputs"][0]["shape"] = nested
        elif place == "extra":
            entry["surprise"] = nested
        else:
            entry[place] = nested
        err = _refused(lambda m=mapping: parse_mapping(m))
        assert err.code == "invalid_model_spec"


@pytest.mark.parametrize("name", ["core_clip\n", "core clip", "", "-x", "c" * 129, "c" * 10_000_000])
def test_component_and_role_names_are_matched_whole_and_echoed_short(name: str) -> None:
    for kind in ("component", "role"):
        mapping = make_mapping()
        if kind == "component":
            mapping["components"][name] = mapping["components"].pop("core_clip")
        else:
            roles = mapping["components"]["core_clip"]
            roles[name] = roles.pop("image_encoder")
        err = _refused(lambda m=mapping: parse_mapping(m))
        assert err.code == "invalid_model_spec" and f"{kind} name" in err.message


def test_a_huge_unknown_key_is_echoed_short() -> None:
    mapping = make_mapping()
    mapping["components"]["core_clip"]["image_encoder"]["k" * 10_000_000] = 1
    err = _refused(lambda: parse_mapping(mapping))
    assert err.code == "invalid_model_spec"


def test_a_profile_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * MAX_PROFILE_BYTES + b"\n")
    err = _refused(lambda: load_profile(path))
    assert err.code == "invalid_model_spec" and "larger than" in err.message and err.field == "profile_path"


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder"])
def test_only_a_regular_file_is_read_as_a_profile(tmp_path: Path, kind: str) -> None:
    """A FIFO would block and /dev/zero would be read forever: neither is opened for reading."""
    if kind == "dev-zero":
        path = "/dev/zero"
    elif kind == "fifo":
        path = str(tmp_path / "profile.yaml")
        os.mkfifo(path)
    else:
        path = str(tmp_path)
    code = ("import sys\nfrom model_manager.mapping.loader import load_profile\n"
            "from model_manager.errors import ModelManagerError\n"
            "try:\n    load_profile(sys.argv[1])\nexcept ModelManagerError as e:\n    print(e.code, e.field)\n")
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=20)
    assert out.stdout.split() == ["model_mapping_missing", "profile_path"], out.stderr


def test_a_symlink_loop_as_profile_is_an_environment_failure(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    err = _refused(lambda: load_profile(loop))
    assert err.code == "environment_failure" and "ELOOP" in err.message


def test_the_manager_refuses_a_bomb_through_profile_path(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(LAUGHS + "schema_version: *l8\ncomponents: {}\n")
    err = _refused(lambda: ModelManager(copy.deepcopy(RUN_CONTEXT), profile_path=path))
    assert err.code == "invalid_model_spec"
