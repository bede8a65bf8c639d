"""Each rule's own examples, the way Fixit and flake8-bugbear rules carry theirs: code -> (VALID, INVALID).

``tests/lint/test_lint_rules.py`` runs every one: a VALID snippet must raise nothing at all; an
INVALID one exactly one finding, its rule's, at the line and column it states (1-based, as
reported) and, when the rule is fixable, must become ``fixed`` under ``--fix`` (``fixed=None``
says the finding is not fixable). A rule without examples fails that test.
This file holds the catalogue's download rules (MM1xx-MM3xx); examples_more.py the rest.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Invalid:
    src: str
    line: int
    col: int
    fixed: str | None = None  # the source after --fix; None: the finding is not fixable


def bad(src: str, line: int, col: int, fixed: str | None = None) -> Invalid:
    return Invalid(src, line, col, fixed)


Examples = tuple[tuple[str, ...], tuple[Invalid, ...]]
_TF = "from transformers import AutoModel\n"

EXAMPLES: dict[str, Examples] = {
    "MM101": (
        (_TF + 'AutoModel.from_pretrained("bert-base-uncased", local_files_only=True)',
         _TF + 'AutoModel.from_pretrained("/models/bert")',
         'import os\nfrom transformers import AutoTokenizer as T\nROOT = "/models"\n'
         'T.from_pretrained(os.path.join(ROOT, "bert"))',
         'from pathlib import Path\nimport transformers\n'
         'transformers.AutoModel.from_pretrained(Path(__file__).parent / "weights")',
         _TF + 'ROOT = "./models"\nAutoModel.from_pretrained(f"{ROOT}/bert")',
         _TF + 'def load():\n    where = "/srv/models/bert"\n    return AutoModel.from_pretrained(where)',
         'class Encoder:\n    @classmethod\n    def from_pretrained(cls, path): ...\n'
         'Encoder.from_pretrained("bert-base-uncased")',
         'from mypkg.models import Net\nNet.from_pretrained("anything")',
         # temporary folders: a `with` target, pytest's fixtures, a test case's temp dir
         'import tempfile, os\nfrom transformers import AutoModel\ndef test_load():\n'
         '    with tempfile.TemporaryDirectory() as d:\n        AutoModel.from_pretrained(os.path.join(d, "m"))',
         _TF + 'def test_load(tmp_path):\n    AutoModel.from_pretrained(tmp_path / "m")',
         'import os\n' + _TF + 'class T:\n    def test_load(self):\n'
         '        AutoModel.from_pretrained(os.path.join(self.get_temp_dir(), "m"))'),
        (bad(_TF + 'AutoModel.from_pretrained("bert-base-uncased")', 2, 1,
             _TF + 'AutoModel.from_pretrained("bert-base-uncased", local_files_only=True)'),
         bad(_TF + 'm = AutoModel.from_pretrained(\n    "org/m",\n    revision="5f3e2c1",\n)', 2, 5,
             _TF + 'm = AutoModel.from_pretrained(\n    "org/m",\n    revision="5f3e2c1",\n'
             '    local_files_only=True,\n)'),
         bad('import transformers as tf\nMODEL_ID = "openai/clip-vit-base-patch32"\n'
             'tf.CLIPModel.from_pretrained(MODEL_ID)', 3, 1,
             'import transformers as tf\nMODEL_ID = "openai/clip-vit-base-patch32"\n'
             'tf.CLIPModel.from_pretrained(MODEL_ID, local_files_only=True)'),
         bad('from transformers import PreTrainedModel\nclass Mine(PreTrainedModel):\n    pass\n'
             'Mine.from_pretrained("org/model")', 4, 1,
             'from transformers import PreTrainedModel\nclass Mine(PreTrainedModel):\n    pass\n'
             'Mine.from_pretrained("org/model", local_files_only=True)'),
         bad('import transformers\ndef load(cls_, name, **kw):\n    return cls_.from_pretrained(name, **kw)', 3, 12),
         bad(_TF + 'AutoModel.from_pretrained("bert", local_files_only=False)', 2, 1)),
    ),
    "MM102": (
        ('from transformers import pipeline\npipeline("ner", model="/models/ner")',
         'from transformers import pipeline\npipeline("ner", "./models/ner")'),
        (bad('from transformers import pipeline\npipeline("sentiment-analysis")', 2, 1),
         bad('from transformers import pipeline\nclf = pipeline("ner", model="dslim/bert-base-NER")', 2, 7)),
    ),
    "MM103": (
        ('from huggingface_hub import hf_hub_download\nhf_hub_download("org/m", "w.bin", local_files_only=True)',),
        (bad('from huggingface_hub import hf_hub_download as dl\ndl("org/m", "w.bin")', 2, 1,
             'from huggingface_hub import hf_hub_download as dl\ndl("org/m", "w.bin", local_files_only=True)'),
         bad('import huggingface_hub\npath = huggingface_hub.hf_hub_download(repo_id="org/m", filename="w.bin", '
             'revision="0123456789abcdef0123456789abcdef01234567")', 2, 8,
             'import huggingface_hub\npath = huggingface_hub.hf_hub_download(repo_id="org/m", filename="w.bin", '
             'revision="0123456789abcdef0123456789abcdef01234567", local_files_only=True)'),
         bad('from huggingface_hub import cached_download\ncached_download(url)', 2, 1,
             'from huggingface_hub import cached_download\ncached_download(url, local_files_only=True)'),
         bad('from transformers.utils import cached_file\ncached_file("org/m", "config.json")', 2, 1,
             'from transformers.utils import cached_file\ncached_file("org/m", "config.json", local_files_only=True)')),
    ),
    "MM104": (
        ('from huggingface_hub import snapshot_download\nsnapshot_download("org/m", local_files_only=True)',),
        (bad('from huggingface_hub import snapshot_download\nsnapshot_download("org/m")', 2, 1,
             'from huggingface_hub import snapshot_download\nsnapshot_download("org/m", local_files_only=True)'),),
    ),
    "MM105": (
        ('from huggingface_hub import HfFolder\nHfFolder.get_token()',),
        (bad('from huggingface_hub import HfApi\napi = HfApi()', 2, 7),
         bad('import huggingface_hub as hh\nhh.InferenceClient()', 2, 1),
         bad('from huggingface_hub import list_repo_files\nlist_repo_files("org/m")', 2, 1),
         bad('import huggingface_hub\nhuggingface_hub.HfFileSystem().ls("org/m")', 2, 1)),
    ),
    "MM106": (
        ('from datasets import load_dataset\nload_dataset("/data/squad")',
         'from datasets import load_dataset\nload_dataset("./data/json_dir")',
         'import datasets\ndatasets.load_dataset("json", data_files="train.json")',
         'from datasets import load_dataset\nload_dataset("csv", data_files={"train": ["a.csv", "b.csv"]})',
         'from datasets import load_dataset\nload_dataset("imagefolder", data_dir="/data/images")'),
        (bad('from datasets import load_dataset\nload_dataset("squad")', 2, 1),
         bad('from datasets import load_dataset\nload_dataset("json", data_files="https://x.org/train.json")', 2, 1),
         bad('from datasets import load_dataset\nload_dataset("json", data_files=files_from_somewhere)', 2, 1),
         bad('from datasets import load_dataset\nload_dataset("parquet", data_files="hf://datasets/org/d/x.parquet")',
             2, 1),
         bad('import datasets\nmetric = datasets.load_metric("glue", "mrpc")', 2, 10)),
    ),
    "MM107": (
        ('from diffusers import DiffusionPipeline\nDiffusionPipeline.from_pretrained("/models/sd")',
         'import diffusers\ndiffusers.UNet2DModel.from_pretrained("org/unet", local_files_only=True)'),
        (bad('from diffusers import StableDiffusionPipeline as P\nP.from_pretrained("runwayml/stable-diffusion-v1-5")',
             2, 1, 'from diffusers import StableDiffusionPipeline as P\n'
             'P.from_pretrained("runwayml/stable-diffusion-v1-5", local_files_only=True)'),),
    ),
    "MM108": (
        ('from peft import PeftModel\nPeftModel.from_pretrained(base, "/models/adapter")',
         'from peft import PeftModel\nPeftModel.from_pretrained(base, "org/lora", local_files_only=True)'),
        (bad('from peft import PeftModel\nPeftModel.from_pretrained(base, "org/lora")', 2, 1,
             'from peft import PeftModel\nPeftModel.from_pretrained(base, "org/lora", local_files_only=True)'),
         bad('import peft\npeft.AutoPeftModelForCausalLM.from_pretrained("org/lora")', 2, 1,
             'import peft\npeft.AutoPeftModelForCausalLM.from_pretrained("org/lora", local_files_only=True)')),
    ),
    "MM201": (
        ('import torch\ntorch.hub.get_dir()',),
        (bad('import torch\nsd = torch.hub.load_state_dict_from_url("https://download.pytorch.org/x.pth")', 2, 6),
         bad('from torch.utils import model_zoo\nmodel_zoo.load_url("https://x/y.pth")', 2, 1),
         bad('import torch\nhub = torch.hub\nhub.load_state_dict_from_url(url, progress=False)', 3, 1),
         bad('from torchvision.models.utils import load_state_dict_from_url\nload_state_dict_from_url(u)', 2, 1)),
    ),
    "MM202": (
        ('from torch.hub import get_dir\nget_dir()',),
        (bad('from torch.hub import download_url_to_file\n'
             'download_url_to_file("https://x/y.pth", "/tmp/y.pth")', 2, 1),),
    ),
    "MM203": (
        ('import torch\ntorch.hub.load("/repos/yolov5", "custom", source="local")',),
        (bad('import torch\ntorch.hub.load("ultralytics/yolov5", "yolov5s")', 2, 1),
         bad('import torch.hub as th\nth.list("pytorch/vision")', 2, 1)),
    ),
    "MM204": (
        ('import torch\ntorch.load("/models/w.pt", weights_only=True)',
         'import torch\ntorch.load("/models/w.pt")',  # torch >= 2.6: weights_only=True by default
         'import torch\ntorch.load(path, map_location="cpu", **options)',
         'import torch\ntorch.save({}, "/tmp/w.pt")'),
        (bad('import torch\nstate = torch.load(path, map_location="cpu", weights_only=False)', 2, 9),
         bad('import torch\nKW = {"weights_only": False}\ntorch.load(path, **KW)', 3, 1)),
    ),
    "MM301": (
        ('import timm\ntimm.create_model("resnet50")',
         'import timm\ntimm.create_model("resnet50", pretrained=False)',
         'from timm import create_model\ncreate_model("vit_base_patch16_224", False)'),
        (bad('import timm\ntimm.create_model("resnet50", pretrained=True)', 2, 1),
         bad('import timm\ntimm.create_model("resnet50", True)', 2, 1),
         bad('import timm\ndef build(flag):\n    return timm.create_model("resnet50", pretrained=flag)', 3, 12)),
    ),
    "MM302": (
        ('import torchvision\ntorchvision.models.resnet50()',
         'from torchvision.models import resnet18\nresnet18(weights=None)'),
        (bad('import torchvision\ntorchvision.models.resnet50(weights="IMAGENET1K_V2")', 2, 1),
         bad('from torchvision import models\nmodels.vit_b_16(weights=models.ViT_B_16_Weights.DEFAULT)', 2, 1),
         bad('from torchvision.models import get_model\nget_model("resnet50", weights="DEFAULT")', 2, 1),
         bad('from torchvision.models.optical_flow import raft_small\nraft_small(weights="DEFAULT")', 2, 1),
         bad('import torchvision\ntorchvision.models.resnet.resnet50(weights=W)', 2, 1)),
    ),
    "MM310": (
        ('from torchvision.models.detection import fasterrcnn_resnet50_fpn\n'
         'fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)',
         # weights given: torchvision drops weights_backbone (that download is MM302's)
         'from torchvision.models.detection import fasterrcnn_resnet50_fpn as f\n'
         'f(weights=None, pretrained_backbone=False)'),
        (bad('from torchvision.models.detection import fasterrcnn_resnet50_fpn\nfasterrcnn_resnet50_fpn(weights=None)',
             2, 1),
         bad('import torchvision\ntorchvision.models.segmentation.deeplabv3_resnet50(weights=None, '
             'weights_backbone="IMAGENET1K_V1")', 2, 1)),
    ),
    "MM311": (
        ('from torchvision.models import ResNet50_Weights\nResNet50_Weights.DEFAULT.transforms()',),
        (bad('from torchvision.models import ResNet50_Weights\nResNet50_Weights.DEFAULT.get_state_dict(progress=True)',
             2, 1),
         bad('import torchvision\ntorchvision.models.ViT_B_16_Weights.IMAGENET1K_V1.get_state_dict()', 2, 1)),
    ),
    "MM303": (
        ('import open_clip\nopen_clip.create_model_and_transforms("ViT-B-32", pretrained="/models/clip.pt")',
         'import open_clip\nopen_clip.create_model("ViT-B-32")'),
        (bad('import open_clip\n'
             'open_clip.create_model_and_transforms("ViT-B-32", pretrained="laion2b_s34b_b79k")', 2, 1),
         bad('from open_clip import create_model\ncreate_model("ViT-B-32", pretrained="openai")', 2, 1),
         bad('import open_clip\nopen_clip.create_model_and_transforms("ViT-B-32", "openai")', 2, 1)),
    ),
    "MM304": (
        ('import clip\nclip.load("/models/clip/ViT-B-32.pt")',),
        (bad('import clip\nclip.load("ViT-B/32")', 2, 1),
         bad('import clip\nmodel, preprocess = clip.load(name, device="cpu")', 2, 21)),
    ),
    "MM305": (
        ('import whisper\nwhisper.load_model("/models/whisper/tiny.pt")',),
        (bad('import whisper\nwhisper.load_model("tiny")', 2, 1),),
    ),
    "MM306": (
        ('from sentence_transformers import SentenceTransformer\nSentenceTransformer("/models/minilm")',
         'from sentence_transformers import SentenceTransformer\n'
         'SentenceTransformer("all-MiniLM-L6-v2", local_files_only=True)'),
        (bad('from sentence_transformers import SentenceTransformer\nSentenceTransformer("all-MiniLM-L6-v2")', 2, 1),
         bad('from sentence_transformers import CrossEncoder\n'
             'CrossEncoder("cross-encoder/ms-marco-MiniLM-L-6-v2")', 2, 1)),
    ),
    "MM307": (
        ('from ultralytics import YOLO\nYOLO("/models/yolo/yolov8n.pt")',
         'from ultralytics import YOLO\nmodel = YOLO("./weights/best.pt")\nmodel("bus.jpg")'),
        (bad('from ultralytics import YOLO\nYOLO("yolov8n.pt")', 2, 1),
         bad('import ultralytics\nultralytics.RTDETR("rtdetr-l.pt")', 2, 1)),
    ),
    "MM308": (
        ('from tensorflow import keras\nkeras.applications.ResNet50(weights=None)',
         'import keras\nkeras.applications.MobileNetV2(weights="/models/mobilenet.h5")'),
        (bad('import tensorflow as tf\ntf.keras.applications.ResNet50(weights="imagenet")', 2, 1),
         bad('from keras.applications import EfficientNetB0\nEfficientNetB0()', 2, 1),
         bad('import keras\nkeras.applications.resnet50.ResNet50()', 2, 1)),
    ),
    "MM309": (
        ('import tensorflow_hub as hub\nhub.load("/models/use")',),
        (bad('import tensorflow_hub as hub\nhub.load("https://tfhub.dev/google/universal-sentence-encoder/4")', 2, 1),
         bad('import tensorflow_hub as hub\nhub.KerasLayer("https://www.kaggle.com/models/google/x")', 2, 1),
         bad('import tensorflow_hub as hub\nhub.resolve("https://tfhub.dev/google/x/1")', 2, 1)),
    ),
    "MM312": (
        ('import keras\nkeras.utils.load_img("/data/frame.png")',),
        (bad('import keras\nkeras.utils.get_file("w.h5", "https://example.com/w.h5")', 2, 1),
         bad('from tensorflow.keras.utils import get_file\nget_file(origin="https://example.com/x")', 2, 1),
         bad('from keras.src.utils.file_utils import get_file\nget_file("w.h5", origin=URL)', 2, 1)),
    ),
}


def all_examples() -> dict[str, Examples]:
    from mm_lint.examples_more import MORE

    return {**EXAMPLES, **MORE}
