"""A valid mapping, a run context and digests of tiny files: the data most tests start from."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

RUN_CONTEXT = {
    "platform_id": "p1", "video_id": "v1", "run_id": "r1", "config_hash": "c1",
    "sampling_policy_version": "s1", "dataprocessor_version": "d1",
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


FLOW_BYTES = b"onnx-bytes-of-a-tiny-flow-model"
TRITON_ENTRY: dict[str, Any] = {
    "runtime": "triton", "engine": "onnx", "precision": "fp16", "device_policy": "any-gpu", "device": "cuda:0",
    "model_name": "clip-vit-b32-image", "model_version": "2024-05-01", "weights_digest": "sha256:" + "a" * 64,
    "triton": {
        "http_url": "localhost:8000", "model_name": "clip_image", "model_version": "1",
        "inputs": [{"name": "pixel_values", "dtype": "FP16", "shape": [-1, 3, 224, 224]}],
        "outputs": [{"name": "image_embeds", "dtype": "FP16", "shape": [-1, 512]}],
        "preprocess_preset": "clip_224",
    },
}
INPROCESS_ENTRY: dict[str, Any] = {
    "runtime": "inprocess", "engine": "onnx", "precision": "fp32", "device_policy": "cpu",
    "model_name": "raft-small", "model_version": "1.0.0", "weights_digest": sha(FLOW_BYTES),
    "artifacts": {"onnx_path": "optical_flow/raft_small.onnx"},
}


def make_mapping() -> dict[str, Any]:
    text = copy.deepcopy(TRITON_ENTRY)
    text.update(model_name="clip-vit-b32-text", weights_digest="sha256:" + "b" * 64)
    text["triton"] = dict(text["triton"], model_name="clip_text", preprocess_preset=None)
    return {
        "schema_version": 1,
        "components": {
            "core_clip": {"image_encoder": copy.deepcopy(TRITON_ENTRY), "text_encoder": text},
            "core_optical_flow": {"flow": copy.deepcopy(INPROCESS_ENTRY)},
        },
    }
