"""Examples of the catalogue's newer download rules (MM313-MM320), the network and child-process
rules (MM4xx, MM501) and the linter's own callee-agnostic and wrapper rules (MM6xx).
See examples.py for what a VALID and an INVALID example must do."""

from __future__ import annotations

from mm_lint.examples import Examples, bad

_ASYNC = "import aiohttp\nasync def f():\n    async with aiohttp.ClientSession() as s:\n"

MORE: dict[str, Examples] = {
    "MM313": (
        ('import pooch\npooch.os_cache("app")', 'import pooch\nREG = pooch.create(path="/data", base_url=BASE)'),
        (bad('import pooch\npooch.retrieve("https://x.org/w.h5", known_hash=None)', 2, 1),
         bad('import pooch\nGOOD = pooch.create(path=pooch.os_cache("p"), base_url=BASE)\n'
             'def load():\n    return GOOD.fetch("w.npz")', 4, 12),
         bad('from pooch.core import Pooch\ndef get(path):\n    pup = Pooch(path=path, base_url=BASE)\n'
             '    return pup.fetch("tiny-data.txt")', 4, 12)),
    ),
    "MM314": (
        ('import nltk\nnltk.word_tokenize(text)',),
        (bad('import nltk\nnltk.download("punkt", quiet=True)', 2, 1),),
    ),
    "MM315": (
        ('import spacy\nspacy.load("/models/en_core_web_sm")',),
        (bad('from spacy.cli import download\ndownload("en_core_web_sm")', 2, 1),
         bad('import spacy.cli\nspacy.cli.download("de_core_news_sm")', 2, 1)),
    ),
    "MM316": (
        ('from gensim.models import KeyedVectors\nKeyedVectors.load("/models/glove.kv")',),
        (bad('import gensim.downloader as api\nwv = api.load("glove-wiki-gigaword-100")', 2, 6),),
    ),
    "MM317": (
        ('from mmengine.runner import load_checkpoint\nload_checkpoint(model, args.checkpoint)',
         'from mmengine.runner import load_checkpoint\nload_checkpoint(model, "/ckpt/epoch_12.pth")'),
        (bad('from mmengine.runner import load_checkpoint\nload_checkpoint(model, "torchvision://resnet50")', 2, 1),
         bad('from mmcv.runner import load_checkpoint\n'
             'load_checkpoint(model, "https://download.openmmlab.com/x/y.pth", map_location="cpu")', 2, 1)),
    ),
    "MM318": (
        ('from mmengine.runner.checkpoint import load_from_local\nload_from_local("/ckpt/x.pth")',),
        (bad('from mmengine.runner.checkpoint import load_from_http\nload_from_http(url)', 2, 1),),
    ),
    "MM319": (
        ('import mirdata\nds = mirdata.initialize("orchset", data_home="/data/orchset")\nds.load_tracks()',),
        (bad('import mirdata\nds = mirdata.initialize("orchset")\nds.download()', 3, 1),),
    ),
    "MM320": (
        ('import evaluate\nevaluate.load("/metrics/accuracy")',),
        (bad('import evaluate\nacc = evaluate.load("accuracy")', 2, 7),),
    ),
    "MM401": (
        ('import requests\nrequests.get("http://localhost:8000/v2/health/ready")',
         'import requests\nrequests.post("http://127.0.0.1:8000/v2/models/m/infer", json={})',
         'import requests\ns = requests.Session()\ns.get("http://[::1]:8000/v2")',
         'import requests\nPORT = 8000\nrequests.get(f"http://localhost:{PORT}/v2")',
         # a loopback server reached through an attribute or a local name
         'import requests\nclass Probe:\n    def __init__(self, port):\n        self.base = f"http://localhost:{port}"\n'
         '    def ready(self):\n        return requests.get(f"{self.base}/v2/health/ready")',
         'import requests\ndef ready(port):\n    url = "http://127.0.0.1:%d/v2" % port\n    return requests.get(url)',
         # a test that patched the network function out (mocked.py)
         'import requests\nfrom unittest import mock\n@mock.patch("requests.get")\ndef test_fetch(get):\n'
         '    requests.get("https://example.com/w.bin")',
         'import requests\ndef test_fetch(monkeypatch):\n    monkeypatch.setattr(requests, "get", fake)\n'
         '    requests.get("https://example.com/w.bin")'),
        (bad('import requests\nrequests.get("https://huggingface.co/api/models")', 2, 1),
         bad('import requests\ndef fetch(url):\n    return requests.get(url)', 3, 12),
         bad('import requests\nwith requests.Session() as s:\n    s.get(f"https://{host}/x")', 3, 5),
         bad('from requests import request\nrequest("GET", "http://example.com/w.bin")', 2, 1),
         bad('import requests\nclass C:\n    def __init__(self):\n        self.base = "http://localhost:8000"\n'
             '        self.base = remote\n    def get(self):\n        return requests.get(self.base)', 7, 16),
         # a patch of something else, or of requests inside another module, leaves the request real
         bad('import requests\nfrom unittest.mock import patch\ndef test_fetch():\n'
             '    with patch("os.path.exists"):\n        requests.get("https://example.com/w.bin")', 5, 9),
         bad('import requests\nfrom unittest.mock import patch\ndef test_fetch():\n'
             '    with patch("mypkg.io.requests.get"):\n        requests.get("https://example.com/w.bin")', 5, 9)),
    ),
    "MM402": (
        ('import httpx\nhttpx.get("http://localhost:8000/v2")',
         'import httpx\nwith httpx.Client() as c:\n    c.get("http://127.0.0.1:8000/v2")'),
        (bad('import httpx\nhttpx.get("https://example.com")', 2, 1),
         bad('import httpx\nasync def f():\n    async with httpx.AsyncClient() as c:\n'
             '        await c.get("https://example.com/x")', 4, 15),
         bad('import httpx\nhttpx.Client(base_url="https://api.example.com")', 2, 1)),
    ),
    "MM403": (
        ('from urllib.request import urlopen\nurlopen("http://localhost:8000/v2")',
         'import urllib.request\nurllib.request.urlopen("file:///tmp/x.json")',
         'import urllib.request\nopener = urllib.request.build_opener(proxy_handler)',
         'import urllib.request\nreq = urllib.request.Request("http://127.0.0.1:8000/v2")\nurllib.request.urlopen(req)'),
        (bad('import urllib.request\nurllib.request.urlretrieve("https://x.org/w.bin", "w.bin")', 2, 1),
         # one download, one finding: the Request is judged where it is opened
         bad('from urllib import request\nrequest.urlopen(request.Request("https://x.org"))', 2, 1),
         bad('import urllib.request as ur\nreq = ur.Request(URL, headers={"User-Agent": "x"})\n'
             'with ur.urlopen(req) as r:\n    data = r.read()', 3, 6)),
    ),
    "MM404": (
        ('import urllib3\nhttp = urllib3.PoolManager()\nhttp.request("GET", "http://localhost:8000/v2")',),
        (bad('import urllib3\nurllib3.request("GET", "https://example.com")', 2, 1),
         bad('import urllib3\nhttp = urllib3.PoolManager()\nhttp.request("GET", "https://example.com")', 3, 1)),
    ),
    "MM405": (
        (_ASYNC + '        await s.get("http://localhost:8000/v2")',),
        (bad(_ASYNC + '        await s.get("https://example.com")', 4, 15),
         bad('import aiohttp\nasync def f(u):\n    async with aiohttp.request("GET", u) as r:\n        pass', 3, 16),
         bad('import aiohttp\nclass Client:\n    def __init__(self):\n        self._session = aiohttp.ClientSession()\n'
             '    async def send(self, url, body):\n        return await self._session.post(url, json=body)', 6, 22)),
    ),
    "MM406": (
        ('import http.client\nhttp.client.HTTPConnection("localhost", 8000)',
         'import http.client\nc = http.client.HTTPConnection("127.0.0.1", 8000)\nc.request("GET", "/v2")'),
        (bad('import http.client\nhttp.client.HTTPSConnection("example.com")', 2, 1),
         bad('from ftplib import FTP\nFTP("ftp.example.com")', 2, 1)),
    ),
    "MM407": (
        ('import gdown\ngdown.parse_url("x")',),
        (bad('import gdown\ngdown.download("https://drive.google.com/uc?id=1", "w.bin")', 2, 1),
         bad('import gdown\ngdown.download(id=FILE_ID, output="w.bin")', 2, 1),
         bad('import wget\nwget.download("https://x.org/w.bin")', 2, 1)),
    ),
    "MM501": (
        ('import subprocess\nsubprocess.run(["ls", "-l"])',
         'import subprocess\nsubprocess.run(["git", "status"])',
         'import subprocess\nsubprocess.run(cmd)',
         'import subprocess\nsubprocess.run(f"{tool} --version", shell=True)'),
        (bad('import subprocess\nsubprocess.run(["curl", "-LO", "https://x.org/w.bin"])', 2, 1),
         bad('import subprocess\nsubprocess.check_call(["git", "clone", "https://github.com/x/y"])', 2, 1),
         bad('import os\nos.system("cd /tmp && wget https://x.org/w.bin")', 2, 1),
         bad('import os\nos.system(f"git clone --depth 1 {repo} {dest}")', 2, 1),
         bad('import subprocess\nsubprocess.run("git lfs pull --include {}".format(pattern), shell=True)', 2, 1),
         bad('import shlex, subprocess\nsubprocess.Popen(shlex.split(f"wget -q {url}"))', 2, 1),
         bad('import subprocess\ndef get(url):\n    cmd = ["git", "clone", url]\n'
             '    subprocess.check_call(cmd)', 4, 5)),
    ),
    "MM601": (
        ('import torchvision\ntorchvision.models.resnet50(pretrained=False)',
         'from .nets import Net\nNet(pretrained=cfg.pretrained)',
         'import timm\nm = create(pretrained="/models/resnet50.pth")',
         'def build(pretrained=True):\n    return pretrained',
         'from torchvision import datasets\ndatasets.MNIST("/data", download=False)'),
        (bad('import torchvision\nm = torchvision.models.resnet50(pretrained=True)', 2, 5),
         bad('from torchvision.models import inception_v3\n'
             'net = inception_v3(pretrained=True, aux_logits=False)', 2, 7),
         bad('from torchvision import models\nbuild = getattr(models, arch)(pretrained=True)', 2, 9),
         bad('from torchvision import models\nnet = models.__dict__[arch](weights="IMAGENET1K_V1")', 2, 7),
         bad('from .nets import Net\nmodel = Net(num_classes=10, pretrained=True)', 2, 9),
         bad('from torchvision.models.detection import fasterrcnn_resnet50_fpn as frcnn\n'
             'frcnn(pretrained=True)', 2, 1),
         bad('backbone = dict(type="ResNet", depth=50, pretrained_backbone=True)', 1, 12),
         bad('from .zoo import make\nmake("resnet", weights=ResNet50_Weights.IMAGENET1K_V2)', 2, 1),
         bad('import pretrainedmodels\nm = pretrainedmodels.__dict__[name](num_classes=1000, pretrained="imagenet")',
             2, 5),
         bad('from torchvision import datasets\ntrain = datasets.CIFAR10(root, train=True, download=True)', 2, 9),
         bad('net.init_weights(pretrained="torchvision://resnet50")', 1, 1)),
    ),
    "MM602": (
        ('from .io import load_url_from_cache\nload_url_from_cache(u)',
         'def download(url):\n    return url\nprint(download)',
         # the request inside the called function's module is patched out
         'from unittest.mock import patch\nfrom pkg.resources import common\ndef test_download():\n'
         '    with patch("pkg.resources.common.requests.get"):\n        common.download_file(URL, "/tmp/w")'),
        (bad('from timm.models._hub import load_state_dict_from_url\nsd = load_state_dict_from_url(url)', 2, 6),
         bad('from basicsr.utils.download_util import load_file_from_url\n'
             'path = load_file_from_url(url=URL, model_dir="weights")', 2, 8),
         bad('from six.moves.urllib.request import urlretrieve\nurlretrieve(url, "w.bin")', 2, 1),
         bad('from .utils import attempt_download\nw = attempt_download("yolov5s.pt")', 2, 5),
         bad('from torchvision.datasets.utils import download_and_extract_archive\n'
             'download_and_extract_archive(URL, root)', 2, 1),
         bad('def prepare(ds):\n    ds.download()', 2, 5)),
    ),
    "MM603": (
        ('print("see https://x.org/w.pth for details")',
         'CHECKSUMS = {"https://x.org/a.zip": "0123abcd"}',  # keyed by URL: the fetch builds its URL elsewhere
         'SCHEMES = ("torchvision://", "hf-hub:")',
         'URLS = {"model": "https://x.org/docs/index.html"}',
         'load_weights("http://localhost:8000/w.pth")',
         '"""Weights come from https://download.pytorch.org/models/resnet50.pth."""'),
        (bad('model = dict(\n    backbone=dict(\n        init_cfg=dict(type="Pretrained", '
             'checkpoint="https://download.openmmlab.com/x/y.pth"),\n    ),\n)', 3, 53),
         bad('MODEL_URLS = {\n    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",\n}', 2, 17),
         bad('init_cfg = dict(type="Pretrained", checkpoint="torchvision://resnet50")', 1, 47),
         bad('state = fetch_weights(f"https://github.com/org/repo/releases/download/v1/{name}.safetensors")', 1, 23),
         bad('cfg = {"checkpoint": "https://huggingface.co/org/m/resolve/main/model.safetensors?download=true"}',
             1, 22),
         # kept in a name or a class attribute for a later download
         bad('WEIGHTS_URL = "https://github.com/org/models/releases/download/v1.0/age_weights.h5"', 1, 15),
         bad('class Dataset:\n    url = "https://zenodo.org/records/1/files/{}.tar.gz?download=1"', 2, 11)),
    ),
    "MM604": (
        ('import requests\ndef fetch(url):\n    return requests.get(url)  # noqa: MM401\n'
         'fetch("http://localhost:8000/v2")',
         'import torch\ndef weights(path=None):\n    return torch.hub.load_state_dict_from_url(path)  # noqa: MM201\n'
         'weights()',
         'import requests\ndef fetch(url):\n    return requests.get(url)  # noqa: MM401\n'
         'def test_fetch(tmp_path):\n    fetch(tmp_path / "w.bin")'),
        (bad('import requests\ndef fetch(url):\n    return requests.get(url)  # noqa: MM401\n'
             'data = fetch("https://x.org/w.bin")', 4, 8),
         bad('from torch.hub import download_url_to_file\nclass Store:\n'
             '    def get(self, url, dst):\n        download_url_to_file(url, dst)  # noqa: MM202\n'
             '    def warm(self):\n        self.get(REMOTE, "/tmp/w")', 6, 9),
         # a chain of helpers is followed to its end
         bad('import requests\ndef _get(url):\n    return requests.get(url)  # noqa: MM401\n'
             'def fetch(name):\n    return _get(BASE + name)  # noqa: MM604\nfetch("w.bin")', 6, 1),
         # a function that downloads whatever its arguments: every call is a download
         bad('import torch\nclass Weights:\n    def _download(self):\n'
             '        torch.hub.download_url_to_file(self.url, self.path)  # noqa: MM202\n'
             '    def load(self):\n        self._download()', 6, 9)),
    ),
}
