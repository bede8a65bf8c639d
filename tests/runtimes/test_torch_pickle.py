"""The static scanner of torch pickles: torch.save's state dicts pass, anything that needs more is refused
without a byte of it being unpickled."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from pathlib import Path

import pytest
import torch_files as tf

from model_manager.runtimes.torch_pickle import CALLABLES, VALUES, PickleRefused, check_torch_file, scan_pickle

PLAIN = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage", "torch.LongStorage"}


def scan(data: bytes) -> set[str]:
    return scan_pickle(io.BytesIO(data), "test.pkl")


def refused(data: bytes, *, whole_file: bool = False) -> str:
    with pytest.raises(PickleRefused) as info:
        check_torch_file(data) if whole_file else scan(data)
    return str(info.value)


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way into the unpickler trips: the scanner must never need one."""
    def tripwire(*args: object, **kwargs: object) -> None:
        raise AssertionError("the scanner unpickled something")

    for name in ("load", "loads", "Unpickler", "_load", "_loads", "_Unpickler"):
        monkeypatch.setattr(pickle, name, tripwire)


# --- what torch.save writes passes ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_torch_2_13s_own_files_pass(kind: str, no_unpickling: None) -> None:
    assert check_torch_file(tf.real_torch_save(kind)) == kind


def test_the_globals_of_a_real_state_dict() -> None:
    data = tf.real_torch_save("zip")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert scan(z.read("archive/data.pkl")) == {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                                     "torch.FloatStorage"}


def test_hand_made_state_dicts_pass_in_both_formats() -> None:
    assert scan(tf.state_dict_pickle(tf.TENSORS)) == PLAIN
    assert check_torch_file(tf.zip_state_dict(tf.TENSORS)) == "zip"
    assert check_torch_file(tf.legacy_state_dict(tf.TENSORS)) == "legacy"


def test_any_archive_folder_name_passes() -> None:
    data = tf.torch_zip(tf.state_dict_pickle(tf.TENSORS), [b""] * 2, archive="resnet50_weights")
    assert check_torch_file(data) == "zip"


def test_newer_dtypes_parameters_and_memo_indirection_pass() -> None:
    # _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype) with an UntypedStorage,
    # inside _rebuild_parameter, the callable fetched from the memo
    tensor = (tf.global_op("torch._utils", "_rebuild_tensor_v3") + b"q\x00" + tf.MARK
              + tf.MARK + tf.unicode("storage") + tf.global_op("torch.storage", "UntypedStorage")
              + tf.unicode("0") + tf.unicode("cpu") + tf.binint(4) + tf.TUPLE + tf.BINPERSID
              + tf.binint(0) + tf.ints((2,)) + tf.ints((1,)) + tf.NEWFALSE
              + tf.global_op("collections", "OrderedDict") + tf.EMPTY_TUPLE + tf.REDUCE
              + tf.global_op("torch", "uint16") + tf.TUPLE + tf.REDUCE)
    param = tf.global_op("torch._utils", "_rebuild_parameter") + tf.MARK + tensor + tf.NEWFALSE \
        + tf.global_op("collections", "OrderedDict") + tf.EMPTY_TUPLE + tf.REDUCE + tf.TUPLE + tf.REDUCE
    data = tf.PROTO2 + tf.EMPTY_DICT + tf.unicode("p") + param + tf.SETITEM + tf.STOP
    assert scan(data) == {"torch._utils._rebuild_tensor_v3", "torch.storage.UntypedStorage", "torch.uint16",
                          "collections.OrderedDict", "torch._utils._rebuild_parameter"}


def test_protocol_4_stack_global_with_memoized_names_passes() -> None:
    data = b"\x80\x04\x8c\x0bcollections\x940\x8c\x0bOrderedDict\x940h\x00h\x01\x93)R."  # stored, popped, fetched
    assert scan(data) == {"collections.OrderedDict"}


def test_the_allow_list_is_what_a_state_dict_needs() -> None:
    assert {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
            "torch._utils._rebuild_parameter"} == CALLABLES
    assert {"torch.FloatStorage", "torch.BFloat16Storage", "torch.storage.UntypedStorage", "torch.float8_e4m3fn",
            "torch.bfloat16"} <= VALUES
    assert not [v for v in VALUES if not v.startswith("torch.")]


# --- hostile pickles are refused, never run ---------------------------------------------------------------
@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_hostile_pickles_are_refused_unrun(tmp_path: Path, no_unpickling: None, payload: str,
                                           protocol: int) -> None:
    marker = tmp_path / "ran"
    data = tf.hostile_state_dict(tf.hostile_payloads(marker)[payload], protocol)
    message = refused(data, whole_file=True)
    assert "names the global" in message and payload.split(".")[1] in message
    assert not marker.exists()


def test_the_payloads_are_live(tmp_path: Path) -> None:
    """The control: unpickled, the eval payload does create its marker (the scanner never gets that far)."""
    marker = tmp_path / "ran"
    pickle.loads(tf.hostile_state_dict(tf.hostile_payloads(marker)["builtins.eval"]))
    assert marker.exists()


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_hostile_data_pkl_in_a_torch_zip_is_refused(tmp_path: Path, no_unpickling: None, payload: str) -> None:
    marker = tmp_path / "ran"
    data = tf.torch_zip(tf.hostile_state_dict(tf.hostile_payloads(marker)[payload]), [])
    assert "archive/data.pkl" in refused(data, whole_file=True)
    assert not marker.exists()


def test_a_hostile_second_pickle_in_the_archive_is_refused(tmp_path: Path) -> None:
    evil = tf.hostile_state_dict(tf.hostile_payloads(tmp_path / "ran")["os.system"])
    data = tf.torch_zip(tf.state_dict_pickle(tf.TENSORS), [b"\0" * 24, b"\0" * 16],
                        extra={"archive/constants.pkl": evil})
    assert "archive/constants.pkl" in refused(data, whole_file=True)


@pytest.mark.parametrize("index", [2, 3, 4])
def test_a_hostile_pickle_anywhere_in_the_legacy_format_is_refused(tmp_path: Path, index: int) -> None:
    evil = tf.hostile_state_dict(tf.hostile_payloads(tmp_path / "ran")["subprocess.Popen"])
    parts = [pickle.dumps(v, protocol=2) for v in (tf.LEGACY_MAGIC, 1001, {"little_endian": True})]
    parts += [tf.state_dict_pickle(tf.TENSORS, legacy=True), pickle.dumps(["0", "1"], protocol=2)]
    parts[index] = evil
    assert f"pickle {index + 1} of 5" in refused(b"".join(parts), whole_file=True)
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(("data", "words"), [
    (b"(S'touch x'\nios\nsystem\n.", "names the global 'os.system'"),                         # INST
    (b"\x80\x02ctorch\nFloatStorage\n)R.", "calls torch.FloatStorage, which a state dict only names"),
    (b"\x80\x02(ctorch\nFloatStorage\no.", "calls torch.FloatStorage"),                         # OBJ
    (b"\x80\x02ctorch\nFloatStorage\n)\x81.", "calls torch.FloatStorage"),                      # NEWOBJ
    (b"\x80\x04ctorch\nfloat32\n)}\x92.", "calls torch.float32"),                               # NEWOBJ_EX
    (b"\x80\x02})R.", "calls a value that is not a named global"),
    (b"\x80\x02(ccollections\nOrderedDict\n)RQ)R.", "calls a value that is not a named global"),  # a persistent id
    (b"\x80\x02\x82\x01.", "copyreg extension registry"),                                       # EXT1
    (b"\x80\x02\x83\x01\x00.", "copyreg extension registry"),                                   # EXT2
    (b"\x80\x04K\x01\x8c\x04eval\x93.", "not plain strings"),                                   # STACK_GLOBAL
    (b"\x80\x04\x8c\x02os\x940\x8c\x06system\x940h\x00h\x01\x93.", "names the global 'os.system'"),  # via the memo
    (b"\x80\x02ccollections\nOrderedDict\n}b.", "BUILD sets the state of the global collections.OrderedDict"),
    (b"\x80\x02h\x05.", "never stored"),
    (b"\x80\x02R.", "underflows"),
    (b"\x80\x02(R.", "underflows"),
    (b"\x80\x02K\x01K\x02.", "STOP with 2 values"),
    (b"\x80\x02t.", "no MARK"),
    (b"\x80\x02ccollections\nOrderedDict\n)R", "cannot be parsed"),                             # no STOP
    (b"\x80\x02\xff.", "cannot be parsed"),                                                     # no such opcode
    (b"\x80\x02X\xff\xff\x00\x00abc.", "cannot be parsed"),                                     # truncated argument
    (b"", "cannot be parsed"),
])
def test_what_the_scanner_refuses(data: bytes, words: str, no_unpickling: None) -> None:
    assert words in refused(data)


def test_an_allowed_callable_through_inst_passes() -> None:
    assert scan(b"(icollections\nOrderedDict\n.") == {"collections.OrderedDict"}


# --- files that are not torch.save's -----------------------------------------------------------------------
def _rezip(data: bytes, **changes: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, changes.get(info.filename, src.read(info)))
    return out.getvalue()


def test_zip_layouts_torch_does_not_write_are_refused() -> None:
    pkl = tf.state_dict_pickle(tf.TENSORS)
    assert "not in a folder" in refused(tf.torch_zip(pkl, [], archive="").replace(b"/data.pkl", b"_data.pkl"),
                                        whole_file=True)
    no_data = tf.torch_zip(pkl, []).replace(b"archive/data.pkl", b"archive/xata.pkl")
    assert "has no 'archive/data.pkl'" in refused(no_data, whole_file=True)
    assert "is compressed" in refused(tf.torch_zip(pkl, [], compress_pkl=True), whole_file=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it is asked to write
        twice = tf.torch_zip(pkl, [], extra={"archive/data.pkl": pkl})
    assert "twice" in refused(twice, whole_file=True)
    trailing = tf.torch_zip(pkl + b"junk", [])
    assert "goes on for 4 bytes after its STOP" in refused(trailing, whole_file=True)


@pytest.mark.parametrize("cut", [0.2, 0.5, 0.9, 0.99])
def test_truncated_zips_are_refused(cut: int) -> None:
    data = tf.zip_state_dict(tf.TENSORS)
    message = refused(data[:int(len(data) * cut)], whole_file=True)
    assert "cannot be read" in message or "cannot be parsed" in message


def test_a_corrupt_data_pkl_fails_its_crc() -> None:
    data = tf.zip_state_dict(tf.TENSORS)
    at = data.index(b"_rebuild_tensor_v2")
    corrupt = data[:at] + b"_rebuild_tensor_v3" + data[at + 18:]
    assert "cannot be read" in refused(corrupt, whole_file=True)


@pytest.mark.parametrize("data", [
    pickle.dumps(12345, protocol=2) + b"rest",                       # a pickle, not torch's magic number
    pickle.dumps({"weight": [1.0, 2.0]}, protocol=2),                # a plain pickle
    b"\x93NUMPY\x01\x00",                                            # another format
    b"definitely not a checkpoint",
    b"",
])
def test_files_in_neither_format_are_refused(data: bytes) -> None:
    message = refused(data, whole_file=True)
    assert "neither torch's zip format" in message or "cannot be parsed" in message


def test_a_truncated_legacy_file_is_refused() -> None:
    data = tf.legacy_state_dict(tf.TENSORS)
    magic_and_two = len(pickle.dumps(tf.LEGACY_MAGIC, protocol=2)) + 30
    assert "cannot be parsed" in refused(data[:magic_and_two], whole_file=True)
