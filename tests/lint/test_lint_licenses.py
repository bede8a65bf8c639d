"""``mm-lint licenses``: every profile model has a licensed, sourced inventory row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mm_lint import licenses
from mm_lint.cli import main
from model_manager.errors import ModelManagerError

INVENTORY = """# Model licences

Some prose, and a table that is not the inventory:

| a | b |
|---|---|
| 1 | 2 |

| model_name | model_version | licence | source |
|---|---|---|---|
| enc-a | 1.0, 1.1 | MIT | https://example.org/a |
| `enc-b` | 2024-05-01 | Apache-2.0 | https://example.org/b |
| enc-c | 3 |  | https://example.org/c |
| enc-d | 4 | BSD-3-Clause | - |
| unused | 9 | | https://example.org/u |
"""

PROFILE = """schema_version: 1
components:
  comp_one:
    image:
      model_name: enc-a
      model_version: "1.1"
    text:
      model_name: enc-b
      model_version: "2024-05-01"
  comp_two:
    x:
      model_name: enc-c
      model_version: "3"
    y:
      model_name: enc-d
      model_version: "4"
    z:
      model_name: enc-e
      model_version: "5"
    w:
      model_name: enc-a
      model_version: "2.0"
"""


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    inv = tmp_path / "MODEL_LICENSES.md"
    inv.write_text(INVENTORY)
    prof = tmp_path / "profile.yaml"
    prof.write_text(PROFILE)
    return inv, prof


def test_findings(files: tuple[Path, Path]) -> None:
    inv, prof = files
    found = [(Path(f.path).name, f.line, f.code) for f in licenses.check(inv, [prof])]
    assert sorted(found) == sorted([
        ("MODEL_LICENSES.md", 13, "MM902"),   # enc-c: empty licence
        ("MODEL_LICENSES.md", 14, "MM903"),   # enc-d: no source
        ("profile.yaml", 18, "MM901"),        # enc-e: no row
        ("profile.yaml", 21, "MM901"),        # enc-a 2.0: version not in the row (its own line)
        ("MODEL_LICENSES.md", 15, "MM902"),   # unused row with an empty licence
    ])


def test_cli_exit_codes_and_json(files: tuple[Path, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    inv, prof = files
    assert main(["licenses", "--inventory", str(inv), str(prof), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {d["code"] for d in data} == {"MM901", "MM902", "MM903"}
    good_inv = tmp_path / "good.md"
    good_inv.write_text("| model_name | model_version | license | source |\n|-|-|-|-|\n"
                        "| enc-a | 1.1 | MIT | https://x |\n")
    good_prof = tmp_path / "good.json"
    good_prof.write_text(json.dumps({"components": {"c": {"r": {"model_name": "enc-a", "model_version": "1.1"}}}}))
    assert main(["licenses", "--inventory", str(good_inv), str(good_prof)]) == 0


def test_repository_inventory_covers_the_example_profile(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    rc = main(["licenses", "--inventory", str(root / "docs" / "MODEL_LICENSES.md"),
               str(root / "examples" / "profile.yaml")])
    assert rc == 0, capsys.readouterr().out


def test_unreadable_inventory_and_profile_are_coded_errors(files: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    inv, prof = files
    with pytest.raises(ModelManagerError) as exc:
        licenses.check(tmp_path / "missing.md", [prof])
    assert exc.value.code == "license_inventory_invalid"
    notable = tmp_path / "notable.md"
    notable.write_text("# nothing here\n")
    with pytest.raises(ModelManagerError) as exc:
        licenses.check(notable, [prof])
    assert exc.value.code == "license_inventory_invalid" and "notable.md" in str(exc.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("components:\n  c:\n    r:\n      model_version: '1'\n")
    with pytest.raises(ModelManagerError) as exc:
        licenses.check(inv, [bad])
    assert exc.value.code == "invalid_model_spec" and exc.value.component == "c"
    assert main(["licenses", "--inventory", str(notable), str(prof)]) == 2
    assert "license_inventory_invalid" in capsys.readouterr().err


def test_profiles_are_read_strictly(files: tuple[Path, Path], tmp_path: Path) -> None:
    inv, _ = files
    dup = tmp_path / "dup.yaml"
    dup.write_text("components:\n  c:\n    r:\n      model_name: enc-a\n      model_name: enc-z\n"
                   "      model_version: '1.0'\n")
    with pytest.raises(ModelManagerError) as exc:
        licenses.check(inv, [dup])
    assert exc.value.code == "invalid_model_spec" and "duplicate key 'model_name'" in str(exc.value)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("components: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ModelManagerError) as exc:
        licenses.check(inv, [tagged])
    assert exc.value.code == "invalid_model_spec"
