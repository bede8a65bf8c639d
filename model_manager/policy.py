"""The one catalogue of what is forbidden: every known download entry point.

Pure data, standard library only. The runtime guard (``guard.py``), the linter
(``mm_lint``) and ``docs/forbidden-calls.md`` are all derived from this table,
so the three never drift apart.

Name patterns in ``ForbiddenCall.names`` are dotted, fully qualified import
paths. A ``*`` at the end stands for exactly one dotted part
(``torchvision.models.*`` is any builder of that module); a ``*`` anywhere else
stands for one or more parts (``transformers.*.from_pretrained`` is
``from_pretrained`` on any class importable from ``transformers`` or from any
of its submodules, ``torchvision.models.*.*`` any builder of a submodule).
"""

from __future__ import annotations

from typing import Final, NamedTuple

# NamedTuples, not dataclasses: every guarded process imports this catalogue, and a frozen dataclass
# costs about a millisecond to define, a NamedTuple a fifth of that.


class LocalWhen(NamedTuple):
    """One way a call is made local (safe). Any one of a rule's LocalWhen suffices.

    kwarg/value: the call passes ``kwarg=value`` (value compared with ``==``;
        ``PATH`` means "a value the checker can prove is a local path",
        ``LOOPBACK_URL`` "a URL whose host is loopback or a mapped Triton endpoint",
        ``NOT_URL`` "anything the checker cannot prove is a remote or model-zoo URL").
    positional: index of the positional argument that may carry the same value
        when not given by keyword (None: keyword only).
    absent_is_local: the library's default for this argument is already local, so
        a call that does not pass it at all is local too (torchvision ``weights``).
    """

    kwarg: str
    value: object
    positional: int | None = None
    text: str = ""
    absent_is_local: bool = False


PATH: Final = "<local path>"  # sentinel value for LocalWhen.value
LOOPBACK_URL: Final = "<loopback or mapped Triton URL>"  # sentinel value for LocalWhen.value
NOT_URL: Final = "<anything but a remote URL>"  # sentinel value for LocalWhen.value

#: ForbiddenCall.category values
DOWNLOAD: Final = "download"          # fetches model weights or data from a hub
HTTP: Final = "http"                  # raw HTTP client: anything may be fetched
SUBPROCESS: Final = "subprocess"      # a download program started as a child process
UNSAFE_LOAD: Final = "unsafe_load"    # not network: executes code hidden in a weights file


class ForbiddenCall(NamedTuple):
    code: str                    # stable rule code, "MM101" ...
    library: str                 # distribution that owns it, "transformers"
    names: tuple[str, ...]       # qualified names; "lib.*.from_pretrained" = method on any class of lib
    why: str                     # one line: why it is forbidden
    fix: str                     # one line: how to make it local
    local_when: tuple[LocalWhen, ...] = ()
    autofix: bool = False        # the linter may add the first LocalWhen as a keyword
    category: str = DOWNLOAD     # DOWNLOAD | HTTP | SUBPROCESS | UNSAFE_LOAD
    modules: tuple[str, ...] = ()        # top-level import names (guard's attribution, linter)
    guard: str = "socket + DNS layer"    # which runtime layer stops it when it still runs
    command_names: tuple[str, ...] = ()  # SUBPROCESS only: forbidden argv[0] basenames


_LOCAL_FILES_ONLY = LocalWhen("local_files_only", True, text="`local_files_only=True`")
_SOCKET = "socket + DNS layer (no host but loopback and mapped Triton endpoints resolves or connects)"
_HF = "offline switches (HF_HUB_OFFLINE, set before and after import) + " + _SOCKET


def _http_methods(prefix: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    verbs = ("get", "post", "put", "patch", "delete", "head", "options", "request", "stream")
    return tuple(f"{prefix}.{v}" for v in verbs) + extra


DOWNLOAD_PROGRAMS: Final[tuple[str, ...]] = (
    "curl", "wget", "wget2", "aria2c", "axel", "lftp", "ftp", "tftp", "sftp", "scp", "rsync",
    "ssh", "nc", "ncat", "netcat", "socat", "telnet", "http", "https", "xh", "gsutil", "gcloud",
    "aws", "az", "s5cmd", "rclone", "azcopy", "huggingface-cli", "hf", "git-lfs", "gdown",
    "pip", "pip3", "uv", "uvx", "pipx", "poetry", "pdm", "conda", "mamba", "micromamba", "pixi",
    "apt", "apt-get", "dnf", "yum", "apk", "npm", "npx", "yarn", "pnpm", "cargo", "gem",
    "ollama", "kaggle", "dvc", "modelscope", "svn", "hg", "yt-dlp", "youtube-dl", "lynx", "w3m",
    "websocat", "grpcurl", "dig", "nslookup", "ping", "traceroute", "torsocks", "proxychains",
)
#: git is local most of the time; only these subcommands reach a remote.
GIT_NETWORK_SUBCOMMANDS: Final[tuple[str, ...]] = (
    "clone", "fetch", "pull", "push", "ls-remote", "lfs", "submodule", "remote", "archive",
    "send-email", "request-pull", "svn", "p4", "http-fetch", "http-push", "fetch-pack", "send-pack",
    "imap-send", "maintenance",
)
#: Their subcommands that stay local (``git remote -v``, ``git lfs version``; none at all lists); any
#: other, and ``remote add -f``/``--fetch``, reaches the remote.
GIT_LOCAL_ACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "remote": ("-v", "--verbose", "get-url", "add", "rename", "remove", "rm", "set-url", "set-branches"),
    "lfs": ("version", "--version", "env", "install", "uninstall", "track", "untrack", "ls-files", "status",
            "logs", "pointer", "checkout", "fsck", "clean", "ext"),
    "submodule": ("status", "summary", "init", "deinit", "absorbgitdirs", "set-branch", "set-url", "sync"),
}
GIT_FETCH_OPTIONS: Final[tuple[str, ...]] = ("-f", "--fetch")
#: ``python -m MODULE`` runs a download program when MODULE (its first dotted part) is one of these.
DOWNLOAD_MODULES: Final[tuple[str, ...]] = (
    "pip", "uv", "pipx", "poetry", "conda", "huggingface_hub", "gdown", "wget", "yt_dlp", "youtube_dl",
    "twine", "kaggle", "dvc", "modelscope", "ftplib", "telnetlib",
)

class NetworkStack(NamedTuple):
    """A library that resolves names or opens sockets in C, where no Python-level layer sees it.

    Once the guard is on, importing any of ``modules`` (or a submodule) is refused with an
    ``ImportError`` subclass, so a library probing for it as an optional speed-up falls back to
    the guarded path; one imported before the guard is reported by ``guard.unguarded_stacks()``.
    """

    library: str                 # distribution
    modules: tuple[str, ...]     # import names refused
    why: str                     # what it does in C
    instead: str                 # what the guarded process uses instead


NETWORK_STACKS: Final[tuple[NetworkStack, ...]] = (
    NetworkStack("uvloop", ("uvloop",),
                 "libuv's event loop connects, sends and resolves names in C.",
                 "asyncio's own event loop (the default)."),
    NetworkStack("aiodns", ("aiodns",),
                 "DNS through c-ares: a query for any name leaves from C.",
                 "aiohttp falls back to its threaded resolver (socket.getaddrinfo, guarded)."),
    NetworkStack("pycares", ("pycares",),
                 "c-ares bindings: DNS queries are sent from C.",
                 "socket.getaddrinfo (guarded)."),
    NetworkStack("pycurl", ("pycurl", "curl"),
                 "libcurl resolves and connects in C, for every protocol it knows.",
                 "requests, httpx or urllib (guarded); better, files prepared before the run."),
    NetworkStack("curl_cffi", ("curl_cffi",),
                 "libcurl(-impersonate) resolves and connects in C.",
                 "requests, httpx or urllib (guarded)."),
    NetworkStack("gevent (c-ares resolver)", ("gevent.resolver.cares", "gevent.resolver.ares"),
                 "gevent's optional c-ares resolver sends DNS queries from C.",
                 "gevent's default thread resolver (socket.getaddrinfo, guarded)."),
    NetworkStack("awscrt", ("awscrt", "_awscrt"),
                 "The AWS Common Runtime: HTTP, S3 and DNS clients in C.",
                 "nothing: prepare files before the run."),
)

#: Set in os.environ before anything imports the libraries (they read them at import).
OFFLINE_ENV: Final[dict[str, str]] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_XET": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
}
#: (module, attribute, value) set on libraries imported before the guard (they cached the env).
OFFLINE_MODULE_FLAGS: Final[tuple[tuple[str, str, object], ...]] = (
    ("huggingface_hub.constants", "HF_HUB_OFFLINE", True),
    ("huggingface_hub.constants", "HF_HUB_DISABLE_TELEMETRY", True),
    ("huggingface_hub.constants", "HF_HUB_DISABLE_XET", True),
    ("huggingface_hub.constants", "HF_HUB_DISABLE_IMPLICIT_TOKEN", True),
    ("transformers.utils.hub", "_is_offline_mode", True),
    ("transformers.utils.import_utils", "_is_offline_mode", True),
    ("datasets.config", "HF_HUB_OFFLINE", True),
    ("datasets.config", "HF_DATASETS_OFFLINE", True),
)


CATALOGUE: tuple[ForbiddenCall, ...] = (
    # --- Hugging Face ---------------------------------------------------------------------
    ForbiddenCall(
        "MM101", "transformers", ("transformers.*.from_pretrained",),
        "With a hub id and no local files it downloads weights, config and code from huggingface.co.",
        "Load from the prepared folder by path under MM_MODELS_ROOT, or pass local_files_only=True.",
        (_LOCAL_FILES_ONLY, LocalWhen("pretrained_model_name_or_path", PATH, 0, "a local folder")),
        autofix=True, modules=("transformers",), guard=_HF),
    ForbiddenCall(
        "MM102", "transformers", ("transformers.pipeline",),
        "Without a local model it picks a default hub model for the task and downloads it.",
        "Pass model= a local folder (and tokenizer= a local folder).",
        (LocalWhen("model", PATH, 1, "`model=` a local folder"),), modules=("transformers",), guard=_HF),
    ForbiddenCall(
        "MM103", "huggingface_hub",
        ("huggingface_hub.hf_hub_download", "huggingface_hub.file_download.hf_hub_download",
         "transformers.utils.cached_file", "transformers.utils.hub.cached_file", "huggingface_hub.cached_download",
         "huggingface_hub.file_download.cached_download"),
        "Fetches one file from the hub (and retries with backoff on connection errors).",
        "Prepare the file before the run and open it by path, or pass local_files_only=True.",
        (_LOCAL_FILES_ONLY,), autofix=True, modules=("huggingface_hub", "transformers"), guard=_HF),
    ForbiddenCall(
        "MM104", "huggingface_hub",
        ("huggingface_hub.snapshot_download", "huggingface_hub._snapshot_download.snapshot_download"),
        "Fetches a whole repository from the hub.",
        "Prepare the repository before the run and load it by path, or pass local_files_only=True.",
        (_LOCAL_FILES_ONLY,), autofix=True, modules=("huggingface_hub",), guard=_HF),
    ForbiddenCall(
        "MM105", "huggingface_hub",
        ("huggingface_hub.HfApi", "huggingface_hub.InferenceClient", "huggingface_hub.hf_hub_url",
         "huggingface_hub.HfFileSystem", "huggingface_hub.list_repo_files", "huggingface_hub.model_info",
         "huggingface_hub.dataset_info", "huggingface_hub.get_hf_file_metadata",
         "huggingface_hub.file_exists", "huggingface_hub.repo_exists"),
        "Hub API clients exist only to talk to huggingface.co or a remote inference endpoint.",
        "Do not call the hub at run time; read prepared files by path.", modules=("huggingface_hub",), guard=_HF),
    ForbiddenCall(
        "MM106", "datasets", ("datasets.load_dataset", "datasets.load_dataset_builder", "datasets.load_metric"),
        "A hub dataset name downloads the dataset (and may run its remote loading script).",
        "Pass a local folder or local data_files; set HF_DATASETS_OFFLINE=1 (the guard does).",
        (LocalWhen("path", PATH, 0, "`path=` a local folder"),), modules=("datasets",), guard=_HF),
    ForbiddenCall(
        "MM107", "diffusers", ("diffusers.*.from_pretrained",),
        "With a hub id and no local files it downloads pipelines and weights from huggingface.co.",
        "Load from the prepared folder by path, or pass local_files_only=True.",
        (_LOCAL_FILES_ONLY, LocalWhen("pretrained_model_name_or_path", PATH, 0, "a local folder")),
        autofix=True, modules=("diffusers",), guard=_HF),
    ForbiddenCall(
        "MM108", "peft", ("peft.*.from_pretrained",),
        "An adapter hub id downloads the adapter weights (and the base model's config) from the hub.",
        "Load the prepared adapter folder by path, or pass local_files_only=True.",
        (_LOCAL_FILES_ONLY, LocalWhen("model_id", PATH, 1, "a local adapter folder")),
        autofix=True, modules=("peft",), guard=_HF),
    # --- torch ------------------------------------------------------------------------------
    ForbiddenCall(
        "MM201", "torch",
        ("torch.hub.load_state_dict_from_url", "torch.utils.model_zoo.load_url",
         "torchvision.models.utils.load_state_dict_from_url",
         "torchvision._internally_replaced_utils.load_state_dict_from_url"),
        "Downloads a checkpoint from a URL into the torch hub cache.",
        "Prepare the checkpoint before the run; torch.load(path, weights_only=True).",
        modules=("torch", "torchvision"), guard=_SOCKET),
    ForbiddenCall(
        "MM202", "torch", ("torch.hub.download_url_to_file",),
        "Downloads any URL to a file.",
        "Prepare the file before the run and open it by path.", modules=("torch",), guard=_SOCKET),
    ForbiddenCall(
        "MM203", "torch", ("torch.hub.load", "torch.hub.list", "torch.hub.help"),
        "Clones a GitHub repository, runs its hubconf.py and usually downloads weights.",
        "Use source='local' with a prepared repository folder whose weights are local.",
        (LocalWhen("source", "local", None, "`source='local'`"),), modules=("torch",), guard=_SOCKET),
    ForbiddenCall(
        "MM204", "torch", ("torch.load",),
        "weights_only=False unpickles the checkpoint, which can run arbitrary code (torch >= 2.6 "
        "defaults to weights_only=True; below 2.6 leaving it out is the same as False).",
        "Pass weights_only=True (store plain state dicts).",
        (LocalWhen("weights_only", True, None, "`weights_only=True`", absent_is_local=True),),
        autofix=True, category=UNSAFE_LOAD, modules=("torch",),
        guard="none (not network): the linter only"),
    # --- vision / audio / text model zoos ---------------------------------------------------
    ForbiddenCall(
        "MM301", "timm", ("timm.create_model",),
        "pretrained=True downloads weights from the hub or a URL.",
        "pretrained=False, then load the prepared state dict, or "
        "pretrained_cfg_overlay=dict(file=<local path>).",
        (LocalWhen("pretrained", False, 1, "`pretrained=False` (the default)", absent_is_local=True),),
        modules=("timm",), guard=_HF),
    ForbiddenCall(
        "MM302", "torchvision", ("torchvision.models.*", "torchvision.models.*.*", "torchvision.models.get_model"),
        "weights= anything but None downloads the weights enum's URL.",
        "weights=None (the default), then load the prepared state dict.",
        (LocalWhen("weights", None, None, "`weights=None` (the default)", absent_is_local=True),),
        modules=("torchvision",), guard=_SOCKET),
    ForbiddenCall(
        "MM303", "open_clip_torch",
        ("open_clip.create_model_and_transforms", "open_clip.create_model",
         "open_clip.create_model_from_pretrained"),
        "pretrained= a tag (e.g. 'openai', 'laion2b_s34b_b79k') downloads from the hub.",
        "pretrained= a local checkpoint path, or leave it None and load the state dict.",
        (LocalWhen("pretrained", PATH, 1, "`pretrained=` a local file"),
         LocalWhen("pretrained", None, 1, "`pretrained=None` (the default)", absent_is_local=True)),
        modules=("open_clip",), guard=_HF),
    ForbiddenCall(
        "MM304", "clip", ("clip.load",),
        "A model name ('ViT-B/32') downloads the checkpoint from openaipublic.azureedge.net.",
        "Pass the path of the prepared .pt file.",
        (LocalWhen("name", PATH, 0, "the first argument a local .pt file"),), modules=("clip",), guard=_SOCKET),
    ForbiddenCall(
        "MM305", "openai-whisper", ("whisper.load_model",),
        "A model name ('base', 'large-v3') downloads the checkpoint.",
        "Pass the path of the prepared .pt file.",
        (LocalWhen("name", PATH, 0, "the first argument a local .pt file"),), modules=("whisper",), guard=_SOCKET),
    ForbiddenCall(
        "MM306", "sentence-transformers",
        ("sentence_transformers.SentenceTransformer", "sentence_transformers.CrossEncoder"),
        "A hub id downloads the model; the library swallows errors and may retry quietly.",
        "Pass the prepared folder by path, or local_files_only=True.",
        (LocalWhen("model_name_or_path", PATH, 0, "a local folder"), _LOCAL_FILES_ONLY),
        modules=("sentence_transformers",), guard=_HF),
    ForbiddenCall(
        "MM307", "ultralytics", ("ultralytics.YOLO", "ultralytics.RTDETR", "ultralytics.SAM"),
        "A weights name that is not an existing file ('yolov8n.pt') is downloaded from GitHub.",
        "Pass the path of the prepared weights file.",
        (LocalWhen("model", PATH, 0, "an existing local weights file"),), modules=("ultralytics",), guard=_SOCKET),
    ForbiddenCall(
        "MM308", "keras",
        ("keras.applications.*", "tensorflow.keras.applications.*", "keras.applications.*.*"),
        "weights='imagenet' (the default) downloads weights.",
        "weights=None, or weights= the path of a prepared weights file.",
        (LocalWhen("weights", None, None, "`weights=None`"),
         LocalWhen("weights", PATH, None, "`weights=` a local file")), modules=("keras", "tensorflow"), guard=_SOCKET),
    ForbiddenCall(
        "MM309", "tensorflow-hub", ("tensorflow_hub.load", "tensorflow_hub.KerasLayer", "tensorflow_hub.resolve"),
        "A tfhub.dev / Kaggle handle downloads the model.",
        "Pass the path of the prepared SavedModel folder.",
        (LocalWhen("handle", PATH, 0, "a local SavedModel folder"),), modules=("tensorflow_hub",), guard=_SOCKET),
    ForbiddenCall(
        "MM310", "torchvision",
        ("torchvision.models.detection.*", "torchvision.models.segmentation.*",
         "torchvision.models.video.*", "torchvision.models.quantization.*"),
        "weights_backbone= defaults to ImageNet weights for detection and segmentation builders, "
        "so even weights=None downloads the backbone.",
        "Pass weights_backbone=None as well as weights=None, then load the prepared state dict.",
        (LocalWhen("weights_backbone", None, None, "`weights_backbone=None`"),),
        modules=("torchvision",), guard=_SOCKET),
    ForbiddenCall(
        "MM311", "torchvision", ("torchvision.models.*.get_state_dict",),
        "A weights enum's get_state_dict() downloads its checkpoint URL.",
        "Prepare the state dict before the run; torch.load(path, weights_only=True).",
        modules=("torchvision",), guard=_SOCKET),
    ForbiddenCall(
        "MM312", "keras", ("keras.*.get_file", "tensorflow.keras.utils.get_file"),
        "Downloads any URL into the Keras cache.",
        "Prepare the file before the run and open it by path.", modules=("keras", "tensorflow"), guard=_SOCKET),
    ForbiddenCall("MM313", "pooch", ("pooch.retrieve", "pooch.core.retrieve", "pooch.*.fetch"),
                  "Downloads the file into pooch's cache when it is not there (or its hash changed).",
                  "Prepare the file before the run and open it by path.", modules=("pooch",), guard=_SOCKET),
    ForbiddenCall("MM314", "nltk", ("nltk.download", "nltk.downloader.download"),
                  "Downloads corpora and models from the NLTK data index.",
                  "Install the data at build time and point NLTK_DATA at it.", modules=("nltk",), guard=_SOCKET),
    ForbiddenCall("MM315", "spacy", ("spacy.cli.download", "spacy.cli.download.download"),
                  "pip-installs a pipeline package from GitHub at run time.",
                  "Install the pipeline package at build time; spacy.load() it by name or path.",
                  modules=("spacy",), guard="audit hook on subprocess events (it runs pip) + " + _SOCKET),
    ForbiddenCall("MM316", "gensim", ("gensim.downloader.load", "gensim.downloader.info"),
                  "Downloads models and corpora (and their index) from the gensim-data releases.",
                  "Prepare the model before the run; load it with KeyedVectors.load(path).",
                  modules=("gensim",), guard=_SOCKET),
    ForbiddenCall("MM317", "mmengine / mmcv",
                  ("mmengine.runner.load_checkpoint", "mmengine.runner.checkpoint.load_checkpoint",
                   "mmcv.runner.load_checkpoint", "mmcv.runner.checkpoint.load_checkpoint"),
                  "An http(s):// or model-zoo filename (torchvision://, open-mmlab://) is downloaded.",
                  "Pass the path of the prepared checkpoint.",
                  (LocalWhen("filename", NOT_URL, 1, "`filename` not an http(s):// or model-zoo URL"),),
                  modules=("mmengine", "mmcv"), guard=_SOCKET),
    ForbiddenCall("MM318", "mmengine / mmcv", tuple(f"{lib}.runner.checkpoint.load_from_{kind}" for lib in (
                      "mmengine", "mmcv") for kind in ("http", "torchvision", "openmmlab")),
                  "Downloads a checkpoint into the torch hub cache.",
                  "Prepare the checkpoint before the run and load it by path.", modules=("mmengine", "mmcv"),
                  guard=_SOCKET),
    ForbiddenCall("MM319", "mirdata", ("mirdata.initialize.download", "mirdata.core.Dataset.download"),
                  "A dataset object's download() fetches its audio and annotations from their remote indexes.",
                  "Prepare the dataset before the run; mirdata.initialize(name, data_home=<local folder>).",
                  modules=("mirdata",), guard=_SOCKET),
    ForbiddenCall("MM320", "evaluate", ("evaluate.load",),
                  "A metric name ('accuracy') downloads the metric's script from the hub and runs it.",
                  "Pass the path of a prepared metric script folder.",
                  (LocalWhen("path", PATH, 0, "a local metric folder"),), modules=("evaluate",), guard=_HF),
    # --- raw HTTP -----------------------------------------------------------------------------
    ForbiddenCall(
        "MM401", "requests", _http_methods("requests", ("requests.Session",)),
        "An HTTP client can fetch anything; only loopback and mapped Triton endpoints are allowed.",
        "Talk to Triton through model_manager's client; read other data from local files.",
        (LocalWhen("url", LOOPBACK_URL, 0, "a literal loopback URL"),),
        category=HTTP, modules=("requests",), guard=_SOCKET),
    ForbiddenCall(
        "MM402", "httpx", _http_methods("httpx", ("httpx.Client", "httpx.AsyncClient")),
        "An HTTP client can fetch anything; only loopback and mapped Triton endpoints are allowed.",
        "Talk to Triton through model_manager's client; read other data from local files.",
        (LocalWhen("url", LOOPBACK_URL, 0, "a literal loopback URL"),),
        category=HTTP, modules=("httpx",), guard=_SOCKET),
    ForbiddenCall(
        "MM403", "python", ("urllib.request.urlopen", "urllib.request.urlretrieve",
                            "urllib.request.build_opener", "urllib.request.Request"),
        "The standard library's URL opener fetches http, https and ftp URLs.",
        "Read local files with open(); talk to Triton through model_manager's client.",
        (LocalWhen("url", LOOPBACK_URL, 0, "a literal loopback or file: URL"),),
        category=HTTP, modules=("urllib",), guard=_SOCKET),
    ForbiddenCall(
        "MM404", "urllib3", ("urllib3.request", "urllib3.PoolManager", "urllib3.HTTPConnectionPool",
                             "urllib3.HTTPSConnectionPool", "urllib3.ProxyManager"),
        "An HTTP client can fetch anything; only loopback and mapped Triton endpoints are allowed.",
        "Talk to Triton through model_manager's client; read other data from local files.",
        (LocalWhen("url", LOOPBACK_URL, 0, "a literal loopback URL"),),
        category=HTTP, modules=("urllib3",), guard=_SOCKET),
    ForbiddenCall(
        "MM405", "aiohttp", ("aiohttp.ClientSession", "aiohttp.request"),
        "An HTTP client can fetch anything; only loopback and mapped Triton endpoints are allowed.",
        "Talk to Triton through model_manager's client; read other data from local files.",
        category=HTTP, modules=("aiohttp",), guard=_SOCKET),
    ForbiddenCall(
        "MM406", "python", ("http.client.HTTPConnection", "http.client.HTTPSConnection",
                            "ftplib.FTP", "ftplib.FTP_TLS"),
        "Low-level HTTP/FTP connections to any host.",
        "Connect only to loopback or the mapped Triton endpoint.",
        (LocalWhen("host", LOOPBACK_URL, 0, "a literal loopback host"),),
        category=HTTP, modules=("http", "ftplib"), guard=_SOCKET),
    ForbiddenCall(
        "MM407", "gdown / wget", ("gdown.download", "gdown.download_folder", "gdown.cached_download",
                                "wget.download"),
        "Small helper packages whose only purpose is downloading.",
        "Prepare the files before the run.", category=HTTP, modules=("gdown", "wget"), guard=_SOCKET),
    # --- child processes ----------------------------------------------------------------------
    ForbiddenCall(
        "MM501", "python",
        ("subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call",
         "subprocess.check_output", "os.system", "os.popen", "os.exec*", "os.spawn*",
         "os.posix_spawn", "os.posix_spawnp"),
        "A download program (curl, wget, git clone ...) started as a child process; some "
        "libraries fall back to them when Python-level downloads fail.",
        "Prepare the files before the run; never shell out to a downloader.",
        category=SUBPROCESS, modules=("subprocess", "os"),
        guard="audit hook on subprocess/exec/spawn/system events",
        command_names=DOWNLOAD_PROGRAMS + ("git",)),
)


def by_code() -> dict[str, ForbiddenCall]:
    return {entry.code: entry for entry in CATALOGUE}

