"""Each rule's own examples (the way Fixit rules carry theirs): code -> (VALID, INVALID).

``tests/test_lint_rules.py`` runs every one: an INVALID snippet must raise exactly
its rule's code, a VALID one nothing at all. A catalogue entry without examples
fails that test, so a new entry cannot ship untested.
"""

from __future__ import annotations

Examples = tuple[tuple[str, ...], tuple[str, ...]]

EXAMPLES: dict[str, Examples] = {
    "MM101": (
        ('from transformers import AutoModel\nAutoModel.from_pretrained("bert-base-uncased", local_files_only=True)',
         'from transformers import AutoModel\nAutoModel.from_pretrained("/models/bert")',
         'import os\nfrom transformers import AutoTokenizer as T\nROOT = "/models"\n'
         'T.from_pretrained(os.path.join(ROOT, "bert"))',
         'from pathlib import Path\nimport transformers\n'
         'transformers.AutoModel.from_pretrained(Path(__file__).parent / "weights")',
         'from transformers import AutoModel\nROOT = "./models"\nAutoModel.from_pretrained(f"{ROOT}/bert")',
         'class Encoder:\n    @classmethod\n    def from_pretrained(cls, path): ...\n'
         'Encoder.from_pretrained("bert-base-uncased")',
         'from mypkg.models import Net\nNet.from_pretrained("anything")'),
        ('from transformers import AutoModel\nAutoModel.from_pretrained("bert-base-uncased")',
         'from transformers import AutoModel\nAutoModel.from_pretrained("bert-base-uncased", revision="5f3e2c1")',
         'import transformers as tf\nMODEL_ID = "openai/clip-vit-base-patch32"\n'
         'tf.CLIPModel.from_pretrained(MODEL_ID)',
         'from transformers.models.bert import BertModel\ndef load(name):\n'
         '    return BertModel.from_pretrained(name)',
         'from transformers import PreTrainedModel\nclass Mine(PreTrainedModel):\n    pass\n'
         'Mine.from_pretrained("org/model")',
         'import transformers\ndef load(cls_, name):\n    return cls_.from_pretrained(name)',
         'from transformers import AutoModel\nAutoModel.from_pretrained("bert", local_files_only=False)'),
    ),
    "MM102": (
        ('from transformers import pipeline\npipeline("ner", model="/models/ner")',
         'from transformers import pipeline\npipeline("ner", "./models/ner")'),
        ('from transformers import pipeline\npipeline("sentiment-analysis")',
         'from transformers import pipeline\npipeline("ner", model="dslim/bert-base-NER")'),
    ),
    "MM103": (
        ('from huggingface_hub import hf_hub_download\nhf_hub_download("org/m", "w.bin", local_files_only=True)',),
        ('from huggingface_hub import hf_hub_download as dl\ndl("org/m", "w.bin")',
         'import huggingface_hub\nhuggingface_hub.hf_hub_download(repo_id="org/m", filename="w.bin", '
         'revision="0123456789abcdef0123456789abcdef01234567")',
         'from transformers.utils import cached_file\ncached_file("org/m", "config.json")'),
    ),
    "MM104": (
        ('from huggingface_hub import snapshot_download\nsnapshot_download("org/m", local_files_only=True)',),
        ('from huggingface_hub import snapshot_download\nsnapshot_download("org/m")',),
    ),
    "MM105": (
        ('from huggingface_hub import HfFolder\nHfFolder.get_token()',),
        ('from huggingface_hub import HfApi\napi = HfApi()', 'import huggingface_hub as hh\nhh.InferenceClient()',
         'from huggingface_hub import list_repo_files\nlist_repo_files("org/m")',
         'import huggingface_hub\nhuggingface_hub.HfFileSystem().ls("org/m")'),
    ),
    "MM106": (
        ('from datasets import load_dataset\nload_dataset("/data/squad")',
         'from datasets import load_dataset\nload_dataset("./data/json_dir")',
         'import datasets\ndatasets.load_dataset("json", data_files="train.json")',
         'from datasets import load_dataset\nload_dataset("csv", data_files={"train": ["a.csv", "b.csv"]})',
         'from datasets import load_dataset\nload_dataset("imagefolder", data_dir="/data/images")'),
        ('from datasets import load_dataset\nload_dataset("squad")',
         'from datasets import load_dataset\nload_dataset("json", data_files="https://x.org/train.json")',
         'from datasets import load_dataset\nload_dataset("json", data_files=files_from_somewhere)',
         'from datasets import load_dataset\nload_dataset("parquet", data_files="hf://datasets/org/d/x.parquet")'),
    ),
    "MM107": (
        ('from diffusers import DiffusionPipeline\nDiffusionPipeline.from_pretrained("/models/sd")',
         'import diffusers\ndiffusers.UNet2DModel.from_pretrained("org/unet", local_files_only=True)'),
        ('from diffusers import StableDiffusionPipeline as P\nP.from_pretrained("runwayml/stable-diffusion-v1-5")',),
    ),
    "MM108": (
        ('from peft import PeftModel\nPeftModel.from_pretrained(base, "/models/adapter")',
         'from peft import PeftModel\nPeftModel.from_pretrained(base, "org/lora", local_files_only=True)'),
        ('from peft import PeftModel\nPeftModel.from_pretrained(base, "org/lora")',
         'import peft\npeft.AutoPeftModelForCausalLM.from_pretrained("org/lora")'),
    ),
    "MM201": (
        ('import torch\ntorch.hub.get_dir()',),
        ('import torch\ntorch.hub.load_state_dict_from_url("https://download.pytorch.org/x.pth")',
         'from torch.utils import model_zoo\nmodel_zoo.load_url("https://x/y.pth")'),
    ),
    "MM202": (
        ('from torch.hub import get_dir\nget_dir()',),
        ('from torch.hub import download_url_to_file\ndownload_url_to_file("https://x/y.pth", "/tmp/y.pth")',),
    ),
    "MM203": (
        ('import torch\ntorch.hub.load("/repos/yolov5", "custom", source="local")',),
        ('import torch\ntorch.hub.load("ultralytics/yolov5", "yolov5s")',
         'import torch.hub as th\nth.list("pytorch/vision")'),
    ),
    "MM204": (
        ('import torch\ntorch.load("/models/w.pt", weights_only=True)',
         'import torch\ntorch.save({}, "/tmp/w.pt")'),
        ('import torch\ntorch.load("/models/w.pt")',
         'import torch\nstate = torch.load(path, map_location="cpu", weights_only=False)'),
    ),
    "MM301": (
        ('import timm\ntimm.create_model("resnet50")',
         'import timm\ntimm.create_model("resnet50", pretrained=False)',
         'from timm import create_model\ncreate_model("vit_base_patch16_224", False)'),
        ('import timm\ntimm.create_model("resnet50", pretrained=True)',
         'import timm\ntimm.create_model("resnet50", True)',
         'import timm\ndef build(flag):\n    return timm.create_model("resnet50", pretrained=flag)'),
    ),
    "MM302": (
        ('import torchvision\ntorchvision.models.resnet50()',
         'from torchvision.models import resnet18\nresnet18(weights=None)'),
        ('import torchvision\ntorchvision.models.resnet50(weights="IMAGENET1K_V2")',
         'from torchvision import models\nmodels.vit_b_16(weights=models.ViT_B_16_Weights.DEFAULT)',
         'from torchvision.models import get_model\nget_model("resnet50", weights="DEFAULT")',
         'from torchvision.models.optical_flow import raft_small\nraft_small(weights="DEFAULT")',
         'import torchvision\ntorchvision.models.resnet.resnet50(weights="DEFAULT")'),
    ),
    "MM310": (
        ('from torchvision.models.detection import fasterrcnn_resnet50_fpn\n'
         'fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)',),
        ('from torchvision.models.detection import fasterrcnn_resnet50_fpn\nfasterrcnn_resnet50_fpn(weights=None)',
         'import torchvision\ntorchvision.models.segmentation.deeplabv3_resnet50(weights=None, '
         'weights_backbone="IMAGENET1K_V1")'),
    ),
    "MM311": (
        ('from torchvision.models import ResNet50_Weights\nResNet50_Weights.DEFAULT.transforms()',),
        ('from torchvision.models import ResNet50_Weights\nResNet50_Weights.DEFAULT.get_state_dict(progress=True)',
         'import torchvision\ntorchvision.models.ViT_B_16_Weights.IMAGENET1K_V1.get_state_dict()'),
    ),
    "MM303": (
        ('import open_clip\nopen_clip.create_model_and_transforms("ViT-B-32", pretrained="/models/clip.pt")',
         'import open_clip\nopen_clip.create_model("ViT-B-32")'),
        ('import open_clip\nopen_clip.create_model_and_transforms("ViT-B-32", pretrained="laion2b_s34b_b79k")',
         'from open_clip import create_model\ncreate_model("ViT-B-32", pretrained="openai")',
         'import open_clip\nopen_clip.create_model_and_transforms("ViT-B-32", "openai")'),
    ),
    "MM304": (
        ('import clip\nclip.load("/models/clip/ViT-B-32.pt")',),
        ('import clip\nclip.load("ViT-B/32")', 'import clip\nmodel, preprocess = clip.load(name, device="cpu")'),
    ),
    "MM305": (
        ('import whisper\nwhisper.load_model("/models/whisper/tiny.pt")',),
        ('import whisper\nwhisper.load_model("tiny")',),
    ),
    "MM306": (
        ('from sentence_transformers import SentenceTransformer\nSentenceTransformer("/models/minilm")',
         'from sentence_transformers import SentenceTransformer\n'
         'SentenceTransformer("all-MiniLM-L6-v2", local_files_only=True)'),
        ('from sentence_transformers import SentenceTransformer\nSentenceTransformer("all-MiniLM-L6-v2")',
         'from sentence_transformers import CrossEncoder\nCrossEncoder("cross-encoder/ms-marco-MiniLM-L-6-v2")'),
    ),
    "MM307": (
        ('from ultralytics import YOLO\nYOLO("/models/yolo/yolov8n.pt")',
         'from ultralytics import YOLO\nmodel = YOLO("./weights/best.pt")\nmodel("bus.jpg")'),
        ('from ultralytics import YOLO\nYOLO("yolov8n.pt")', 'import ultralytics\nultralytics.RTDETR("rtdetr-l.pt")'),
    ),
    "MM308": (
        ('from tensorflow import keras\nkeras.applications.ResNet50(weights=None)',
         'import keras\nkeras.applications.MobileNetV2(weights="/models/mobilenet.h5")'),
        ('import tensorflow as tf\ntf.keras.applications.ResNet50(weights="imagenet")',
         'from keras.applications import EfficientNetB0\nEfficientNetB0()',
         'import keras\nkeras.applications.resnet50.ResNet50()'),
    ),
    "MM309": (
        ('import tensorflow_hub as hub\nhub.load("/models/use")',),
        ('import tensorflow_hub as hub\nhub.load("https://tfhub.dev/google/universal-sentence-encoder/4")',
         'import tensorflow_hub as hub\nhub.KerasLayer("https://www.kaggle.com/models/google/x")',
         'import tensorflow_hub as hub\nhub.resolve("https://tfhub.dev/google/x/1")'),
    ),
    "MM312": (
        ('import keras\nkeras.utils.load_img("/data/frame.png")',),
        ('import keras\nkeras.utils.get_file("w.h5", "https://example.com/w.h5")',
         'from tensorflow.keras.utils import get_file\nget_file(origin="https://example.com/x")'),
    ),
    "MM401": (
        ('import requests\nrequests.get("http://localhost:8000/v2/health/ready")',
         'import requests\nrequests.post("http://127.0.0.1:8000/v2/models/m/infer", json={})',
         'import requests\ns = requests.Session()\ns.get("http://[::1]:8000/v2")',
         'import requests\nPORT = 8000\nrequests.get(f"http://localhost:{PORT}/v2")'),
        ('import requests\nrequests.get("https://huggingface.co/api/models")',
         'import requests\ndef fetch(url):\n    return requests.get(url)',
         'import requests\nwith requests.Session() as s:\n    s.get(f"https://{host}/x")',
         'from requests import request\nrequest("GET", "http://example.com/w.bin")'),
    ),
    "MM402": (
        ('import httpx\nhttpx.get("http://localhost:8000/v2")',
         'import httpx\nwith httpx.Client() as c:\n    c.get("http://127.0.0.1:8000/v2")'),
        ('import httpx\nhttpx.get("https://example.com")',
         'import httpx\nasync def f():\n    async with httpx.AsyncClient() as c:\n'
         '        await c.get("https://example.com/x")',
         'import httpx\nhttpx.Client(base_url="https://api.example.com")'),
    ),
    "MM403": (
        ('from urllib.request import urlopen\nurlopen("http://localhost:8000/v2")',
         'import urllib.request\nurllib.request.urlopen("file:///tmp/x.json")'),
        ('import urllib.request\nurllib.request.urlretrieve("https://x.org/w.bin", "w.bin")',
         'from urllib import request\nrequest.urlopen(request.Request("https://x.org"))'),
    ),
    "MM404": (
        ('import urllib3\nhttp = urllib3.PoolManager()\nhttp.request("GET", "http://localhost:8000/v2")',),
        ('import urllib3\nurllib3.request("GET", "https://example.com")',
         'import urllib3\nhttp = urllib3.PoolManager()\nhttp.request("GET", "https://example.com")'),
    ),
    "MM405": (
        ('import aiohttp\nasync def f():\n    async with aiohttp.ClientSession() as s:\n'
         '        await s.get("http://localhost:8000/v2")',),
        ('import aiohttp\nasync def f():\n    async with aiohttp.ClientSession() as s:\n'
         '        await s.get("https://example.com")',
         'import aiohttp\nasync def f(u):\n    async with aiohttp.request("GET", u) as r:\n        pass'),
    ),
    "MM406": (
        ('import http.client\nhttp.client.HTTPConnection("localhost", 8000)',
         'import http.client\nc = http.client.HTTPConnection("127.0.0.1", 8000)\nc.request("GET", "/v2")'),
        ('import http.client\nhttp.client.HTTPSConnection("example.com")',
         'from ftplib import FTP\nFTP("ftp.example.com")'),
    ),
    "MM407": (
        ('import gdown\ngdown.parse_url("x")',),
        ('import gdown\ngdown.download("https://drive.google.com/uc?id=1", "w.bin")',
         'import wget\nwget.download("https://x.org/w.bin")'),
    ),
    "MM501": (
        ('import subprocess\nsubprocess.run(["ls", "-l"])',
         'import subprocess\nsubprocess.run(["git", "status"])',
         'import subprocess\nsubprocess.run(cmd)'),
        ('import subprocess\nsubprocess.run(["curl", "-LO", "https://x.org/w.bin"])',
         'import subprocess\nsubprocess.check_call(["git", "clone", "https://github.com/x/y"])',
         'import os\nos.system("cd /tmp && wget https://x.org/w.bin")'),
    ),
}
