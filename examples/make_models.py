"""Build the bundled example's tiny, real model files and pin them in profile.yaml.

Run once by a maintainer (``python examples/make_models.py``); the outputs are
committed, so the demo never builds models. ONNX graphs come from onnx.helper;
the torch-style model is a real safetensors folder written by hand.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
ROOT = HERE / "models"
sys.path.insert(0, str(HERE.parent))

from model_manager.artifacts.cache import DigestCache  # noqa: E402
from model_manager.artifacts.digest import weights_digest  # noqa: E402


def _save(model: onnx.ModelProto, path: Path) -> None:
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString(deterministic=True))


def optical_flow(path: Path) -> None:
    """frame0, frame1 -> flow: the per-pixel difference of the two frames' luma (a toy flow)."""
    f0 = helper.make_tensor_value_info("frame0", TensorProto.FLOAT, [1, 3, "H", "W"])
    f1 = helper.make_tensor_value_info("frame1", TensorProto.FLOAT, [1, 3, "H", "W"])
    flow = helper.make_tensor_value_info("flow", TensorProto.FLOAT, [1, 1, "H", "W"])
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("Sub", ["frame1", "frame0"], ["diff"]),
         helper.make_node("ReduceMean", ["diff", "axes"], ["flow"], keepdims=1)],
        "toy_flow", [f0, f1], [flow], [axes])
    _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="mm-example"), path)


def vad(path: Path) -> None:
    """audio [1, N] -> speech probability [1, 1]."""
    x = helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, "N"])
    y = helper.make_tensor_value_info("speech_prob", TensorProto.FLOAT, [1, 1])
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("Abs", ["audio"], ["mag"]),
         helper.make_node("ReduceMean", ["mag", "axes"], ["energy"], keepdims=1),
         helper.make_node("Sigmoid", ["energy"], ["speech_prob"])],
        "toy_vad", [x], [y], [axes])
    _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="mm-example"), path)


def text_embedder(folder: Path) -> None:
    """token ids [1, T] -> embedding [1, 8]: a mean of rows of a fixed table, plus its tokenizer files."""
    rng = np.random.default_rng(7)
    table = numpy_helper.from_array(rng.standard_normal((32, 8)).astype(np.float32), "table")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "T"])
    emb = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 8])
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["rows"]),
         helper.make_node("ReduceMean", ["rows", "axes"], ["embedding"], keepdims=0)],
        "toy_text", [ids], [emb], [table, axes])
    _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="mm-example"),
          folder / "model.onnx")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [chr(c) for c in range(ord("a"), ord("a") + 28)]
    (folder / "tokenizer").mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer" / "vocab.txt").write_text("\n".join(vocab[:32]) + "\n")
    (folder / "tokenizer" / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}) + "\n")


def asr_folder(folder: Path) -> None:
    """A whole-repository torch model: config plus a real (tiny) safetensors file."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = np.arange(16, dtype=np.float32)
    header = json.dumps({"encoder.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}},
                        separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + weights.tobytes())
    (folder / "config.json").write_text(json.dumps({"model_type": "toy-asr", "d_model": 4}, indent=2) + "\n")


PROFILE_TEMPLATE = """\
# The bundled example: four components, six roles, on Triton and in-process.
# Digests of local files were computed by examples/make_models.py; Triton digests
# are pinned from the Triton model repository's deployment record.
schema_version: 1
components:
  core_clip:
    image_encoder:
      runtime: triton
      engine: onnx
      precision: fp16
      device_policy: any-gpu
      device: cuda:0
      model_name: clip-vit-b32-image
      model_version: "2024-05-01"
      weights_digest: "sha256:9f2c1b6a0d4e4f3c8a7b5e6d2c1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f"
      triton:
        http_url: localhost:8000
        model_name: clip_image
        model_version: "1"
        inputs: [{name: pixel_values, dtype: FP16, shape: [-1, 3, 224, 224]}]
        outputs: [{name: image_embeds, dtype: FP16, shape: [-1, 512]}]
        preprocess_preset: clip_224
    text_encoder:
      runtime: triton
      engine: onnx
      precision: fp16
      device_policy: any-gpu
      device: cuda:0
      model_name: clip-vit-b32-text
      model_version: "2024-05-01"
      weights_digest: "sha256:1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
      artifacts:
        tokenizer_path: text/minilm-l6/tokenizer
      triton:
        http_url: localhost:8000
        model_name: clip_text
        model_version: "1"
        inputs:
          - {name: input_ids, dtype: INT64, shape: [-1, 77]}
          - {name: attention_mask, dtype: INT64, shape: [-1, 77]}
        outputs: [{name: text_embeds, dtype: FP16, shape: [-1, 512]}]
  core_optical_flow:
    flow:
      runtime: inprocess
      engine: onnx
      precision: fp32
      device_policy: cpu
      model_name: raft-small
      model_version: "1.0.0"
      weights_digest: "{flow}"
      tier: 0
      artifacts:
        onnx_path: optical_flow/raft_small.onnx
  core_audio:
    vad:
      runtime: inprocess
      engine: onnx
      precision: fp32
      device_policy: cpu
      model_name: silero-vad-tiny
      model_version: "4.0"
      weights_digest: "{vad}"
      artifacts:
        onnx_path: audio/vad_tiny.onnx
    asr:
      runtime: inprocess
      engine: torch
      precision: fp32
      device_policy: cpu
      model_name: whisper-tiny
      model_version: "20231117"
      weights_digest: "{asr}"
      artifacts:
        weights_path: audio/whisper-tiny
  core_text:
    embedder:
      runtime: inprocess
      engine: onnx
      precision: fp32
      device_policy: cpu
      model_name: minilm-l6-text
      model_version: "2.0"
      weights_digest: "{text}"
      artifacts:
        onnx_path: text/minilm-l6/model.onnx
        tokenizer_path: text/minilm-l6/tokenizer
"""


def main() -> None:
    optical_flow(ROOT / "optical_flow" / "raft_small.onnx")
    vad(ROOT / "audio" / "vad_tiny.onnx")
    asr_folder(ROOT / "audio" / "whisper-tiny")
    text_embedder(ROOT / "text" / "minilm-l6")
    root, cache = str(ROOT), DigestCache(None)
    digests = {
        "flow": weights_digest(str(ROOT / "optical_flow" / "raft_small.onnx"), root, cache),
        "vad": weights_digest(str(ROOT / "audio" / "vad_tiny.onnx"), root, cache),
        "asr": weights_digest(str(ROOT / "audio" / "whisper-tiny"), root, cache),
        "text": weights_digest(str(ROOT / "text" / "minilm-l6" / "model.onnx"), root, cache),
    }
    profile = PROFILE_TEMPLATE
    for key, value in digests.items():
        profile = profile.replace("{" + key + "}", value)
    (HERE / "profile.yaml").write_text(profile)
    print(json.dumps(digests, indent=2))


if __name__ == "__main__":
    main()
