"""The data of the linter's callee-agnostic rules (MM601-MM603): keywords, function names, URL
suffixes and schemes that mean a download whatever the function is. The catalogue of named entry
points is ``model_manager.policy``'s; these are signals only a reader of the code can use (the
runtime guard sees the connection instead)."""

from __future__ import annotations

from typing import Final

#: A keyword given a truthy constant (``True``, a tag like ``"imagenet"``) downloads pretrained
#: weights whatever the callee: torchvision's legacy builders, ``getattr(models, name)(...)``,
#: a project's own ``Net(pretrained=True)``, a dataset's ``download=True``.
PRETRAINED_KEYWORDS: Final[tuple[str, ...]] = (
    "pretrained", "pretrained_backbone", "backbone_pretrained", "use_pretrained", "load_pretrained",
    "pretrained_base", "weights_backbone", "download",
)
#: A keyword given a weights enum (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ``ResNet50_Weights.DEFAULT``)
#: or a tag (``"imagenet"``) downloads that enum's checkpoint, whatever the callee.
WEIGHTS_KEYWORDS: Final[tuple[str, ...]] = ("weights", "weights_backbone", "backbone_weights")
WEIGHTS_ENUM_PATTERN: Final = r"DEFAULT|IMAGENET1K_\w+|imagenet\w*|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_V\d+"
#: Functions that download whatever module they come from: libraries re-export or wrap torch's
#: and the hub's helpers under the same names (the module, when it is not the catalogued one,
#: lowers the confidence of the message, not the finding).
DOWNLOAD_FUNCTION_NAMES: Final[tuple[str, ...]] = (
    "load_state_dict_from_url", "download_url_to_file", "load_url", "hf_hub_download", "snapshot_download",
    "cached_download", "load_file_from_url", "attempt_download", "attempt_download_asset", "urlretrieve",
    "download_url", "download_and_extract_archive", "download_file_from_google_drive", "download",
    "maybe_download", "download_file", "download_model", "download_weights", "download_checkpoint",
)
#: A string to weights: a remote URL ending in one of these (before ``?`` or ``#``) ...
REMOTE_URL_SCHEMES: Final[tuple[str, ...]] = ("http://", "https://", "ftp://", "s3://", "gs://")
WEIGHT_FILE_SUFFIXES: Final[tuple[str, ...]] = (
    ".pth", ".pt", ".bin", ".onnx", ".safetensors", ".ckpt", ".h5", ".hdf5", ".keras", ".tflite", ".pb",
    ".zip", ".tar", ".tar.gz", ".tgz", ".pkl", ".npz", ".gguf", ".caffemodel", ".pdparams", ".msgpack",
    ".model", ".pth.tar", ".gz", ".bz2", ".xz",
)
#: ... or any string in a scheme that a loader resolves to a download (mmcv/mmengine, timm, the hub).
MODEL_URL_SCHEMES: Final[tuple[str, ...]] = (
    "torchvision://", "open-mmlab://", "openmmlab://", "mmcls://", "mmpretrain://", "modelzoo://", "hf://",
    "hf-hub:", "hf_hub:",
)
