"""save_npz / read_npz_meta: the meta contract, no pickle either way, nothing written when refused."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.provenance import read_npz_meta, save_npz


def test_npz_meta_round_trips_without_pickle(tmp_path: Path, mm: ModelManager) -> None:
    path = save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), emb=np.zeros(4))
    assert read_npz_meta(path) == mm.npz_meta_for("core_clip")
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["emb", "meta"]
        assert npz["meta"].dtype.kind == "U" and npz["meta"].shape == ()
        assert json.loads(str(npz["meta"])) == mm.npz_meta_for("core_clip")


def test_npz_is_a_plain_zip_of_npy(tmp_path: Path, mm: ModelManager) -> None:
    path = save_npz(tmp_path / "out" / "o.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))
    assert sorted(zipfile.ZipFile(path).namelist()) == ["meta.npy", "x.npy"]
    assert os.listdir(tmp_path / "out") == ["o.npz"]  # no temporary file left


def test_saved_file_mode_follows_the_umask(tmp_path: Path, mm: ModelManager) -> None:
    old = os.umask(0o022)
    try:
        path = save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def _assert_nothing_written(folder: Path, before: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("meta", [
    {}, "str", {"models_used": [], "model_signature": "x"},
    {"models_used": [{"component": "c"}], "model_signature": "x"},
])
def test_save_refuses_bad_meta(tmp_path: Path, meta: Any) -> None:
    with pytest.raises(ModelManagerError) as info:
        save_npz(tmp_path / "o.npz", meta, x=np.zeros(1))
    assert info.value.code == "output_invalid"
    _assert_nothing_written(tmp_path, {})


def test_save_refuses_meta_with_a_list_where_a_string_belongs(tmp_path: Path, mm: ModelManager) -> None:
    meta = mm.npz_meta_for("core_clip")
    meta["models_used"][0]["component"] = ["core_clip"]
    with pytest.raises(ModelManagerError) as info:
        save_npz(tmp_path / "o.npz", meta, x=np.zeros(1))
    assert info.value.code == "output_invalid"
    meta = mm.npz_meta_for("core_clip")
    meta["model_signature"] = ["sha256:"]
    with pytest.raises(ModelManagerError) as info:
        save_npz(tmp_path / "o.npz", meta, x=np.zeros(1))
    assert info.value.code == "output_invalid" and info.value.field == "meta.model_signature"
    _assert_nothing_written(tmp_path, {})


def test_save_refuses_a_meta_whose_signature_is_not_its_own(tmp_path: Path, mm: ModelManager) -> None:
    meta = mm.npz_meta_for("core_clip")
    meta["models_used"][0]["device"] = "cpu"
    with pytest.raises(ModelManagerError) as info:
        save_npz(tmp_path / "o.npz", meta, x=np.zeros(1))
    assert info.value.code == "output_invalid"


def test_save_refuses_an_array_called_meta(tmp_path: Path, mm: ModelManager) -> None:
    with pytest.raises(ModelManagerError) as info:
        save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), meta=np.zeros(1))
    assert info.value.code == "output_invalid" and info.value.field == "meta"


@pytest.mark.parametrize("value", [
    np.array([{"a": 1}, None], dtype=object),
    [1, "two", None],
    np.zeros(2, dtype=[("a", "i4"), ("b", "O")]),
])
def test_save_refuses_object_arrays_before_writing_anything(tmp_path: Path, mm: ModelManager, value: Any) -> None:
    good = save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))
    before = {"o.npz": good.read_bytes()}
    with pytest.raises(ModelManagerError) as info:
        save_npz(good, mm.npz_meta_for("core_clip"), fine=np.zeros(3), bad=value)
    assert info.value.code == "output_invalid" and "pickle" in str(info.value)
    _assert_nothing_written(tmp_path, before)


def test_save_refuses_odd_array_names(tmp_path: Path, mm: ModelManager) -> None:
    with pytest.raises(ModelManagerError) as info:
        save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), **{"a/b": np.zeros(1)})
    assert info.value.code == "output_invalid"


def test_read_meta_of_a_missing_file_a_link_and_a_fifo(tmp_path: Path, mm: ModelManager) -> None:
    good = save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))
    (tmp_path / "link.npz").symlink_to(good)
    os.mkfifo(tmp_path / "fifo.npz")  # opening it for reading would wait for a writer forever
    for name, kind in [("nope.npz", "does not exist"), ("link.npz", "symbolic link"), ("fifo.npz", "FIFO")]:
        with pytest.raises(ModelManagerError) as info:
            read_npz_meta(tmp_path / name)
        assert info.value.code == "output_missing" and kind in str(info.value)


def test_read_meta_of_a_truncated_file(tmp_path: Path, mm: ModelManager) -> None:
    good = save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1000))
    data = good.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 10):
        good.write_bytes(data[:cut])
        with pytest.raises(ModelManagerError) as info:
            read_npz_meta(good)
        assert info.value.code == "provenance_invalid"


def test_read_meta_refuses_pickled_meta(tmp_path: Path) -> None:
    np.savez(tmp_path / "evil.npz", meta=np.array([{"models_used": []}], dtype=object))
    with pytest.raises(ModelManagerError) as info:
        read_npz_meta(tmp_path / "evil.npz")
    assert info.value.code == "provenance_invalid" and "pickle" in str(info.value)


def test_read_meta_finds_hand_edited_meta(tmp_path: Path, mm: ModelManager) -> None:
    meta = mm.npz_meta_for("core_clip")
    meta["models_used"][0]["device"] = "cpu"  # signature left as it was
    np.savez(tmp_path / "o.npz", meta=np.array(json.dumps(meta)), x=np.zeros(1))
    with pytest.raises(ModelManagerError) as info:
        read_npz_meta(tmp_path / "o.npz")
    assert info.value.code == "model_signature_mismatch" and info.value.component == "core_clip"
