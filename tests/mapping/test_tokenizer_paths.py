"""A tokenizer is not digested, but it must still be a file or a non-empty folder under the models root."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from model_manager import ModelManager
from model_manager.errors import ModelManagerError


def _with_tokenizer(mapping: dict[str, Any], rel: str) -> dict[str, Any]:
    mapping["components"]["core_clip"]["text_encoder"]["artifacts"] = {"tokenizer_path": rel}
    return mapping


def test_a_tokenizer_file_or_folder_is_accepted(models_root: Path, mapping: dict[str, Any],
                                                run_context: dict[str, str]) -> None:
    (models_root / "tok").mkdir()
    (models_root / "tok" / "vocab.txt").write_text("a\nb\n")
    mm = ModelManager(run_context, _with_tokenizer(mapping, "tok"))
    spec = mm.resolve(component="core_clip", role="text_encoder")
    assert mm.artifact_path(spec, "artifacts.tokenizer_path") == os.path.realpath(models_root / "tok")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dev-zero-link", "empty-folder", "only-git"])
def test_a_tokenizer_that_is_not_a_file_or_folder_is_refused(models_root: Path, mapping: dict[str, Any],
                                                             run_context: dict[str, str], kind: str) -> None:
    target = models_root / "tok"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev-zero":  # a character device inside the root, as /dev/zero is (CI runs as root)
        os.mknod(target, 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    elif kind == "dev-zero-link":  # a link that leaves the root is refused before its kind is even looked at
        target.symlink_to("/dev/zero")
    else:
        target.mkdir()
        if kind == "only-git":
            (target / ".git").mkdir()
    with pytest.raises(ModelManagerError) as info:
        ModelManager(run_context, _with_tokenizer(mapping, "tok"))
    err = info.value
    assert err.code == "invalid_model_spec" and err.field == "artifacts.tokenizer_path"
    assert (err.component, err.role) == ("core_clip", "text_encoder")
