"""A fake Triton Inference Server: the KServe v2 HTTP protocol with Triton's extensions, on loopback.

Standard library and numpy only; usable without pytest. tritonclient cannot tell it from a real
Triton 2.51 in the scenarios of tests/triton/test_contract.py (status codes, error bodies and their
wording, metadata, config, JSON and binary tensors of every datatype, gzip and deflate)::

    double = FakeModel("double", inputs=[("x", "FP32", [-1])], outputs=[("y", "FP32", [-1])],
                       fn=lambda inputs: {"y": inputs["x"] * 2}, max_batch_size=8)
    with FakeTriton([double]) as server:     # 127.0.0.1, a free port
        server.url                           # "127.0.0.1:PORT"
        server.requests                      # every request received: .method .path .headers .json .body

``FakeTriton.from_mapping(mapping_or_profile_path)`` serves every Triton role of a mapping with
deterministic outputs and puts the mapping, each ``http_url`` pointed at it, in ``server.mapping``.
Faults: ``stop()`` (connection refused), ``unload(name)``, ``add(model)`` (also to replace one with
other metadata) and ``inject(kind, ...)`` (hang, close, truncate, garbage, error on the Nth call).
docs/triton.md describes it all.
"""

from __future__ import annotations

import contextlib
import copy
import os
import socket
import socketserver
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pytest_mm._triton_protocol import (
    NUMPY,
    REASONS,
    ROUTE,
    SERVER_METADATA,
    Fail,
    Fn,
    Tensor,
    config,
    decode,
    derived_outputs,
    dumps,
    encode,
    infer,
    metadata,
)

__all__ = ["FAULTS", "FakeModel", "FakeRequest", "FakeTriton", "derived_outputs"]

#: what ``FakeTriton.inject`` can do to a request
FAULTS = ("hang", "close", "truncate", "garbage", "error")


@dataclass(frozen=True)
class FakeModel:
    """A served model: ``fn`` gets the whole batch as ``{name: ndarray}`` and returns ``{name: ndarray}``;
    dims exclude the batch dimension when ``max_batch_size > 0`` (as in config.pbtxt)."""

    name: str
    inputs: Sequence[tuple[str, str, Sequence[int]]]
    outputs: Sequence[tuple[str, str, Sequence[int]]]
    fn: Fn
    versions: Sequence[str] = field(default=("1",), kw_only=True)
    max_batch_size: int = field(default=0, kw_only=True)
    platform: str = field(default="python", kw_only=True)

    def __post_init__(self) -> None:
        for attr in ("inputs", "outputs"):
            tensors = tuple((str(n), str(d), tuple(int(x) for x in s)) for n, d, s in getattr(self, attr))
            if bad := [d for _, d, _ in tensors if d not in NUMPY]:
                raise ValueError(f"{self.name}: unknown datatypes {bad}; use one of {sorted(NUMPY)}")
            object.__setattr__(self, attr, tensors)
        versions = {str(v) for v in self.versions}
        if not versions or not all(v.isdigit() and int(v) > 0 for v in versions) or self.max_batch_size < 0:
            raise ValueError(f"{self.name}: versions are positive integers ({sorted(versions)}), and "
                             f"max_batch_size is at least 0 ({self.max_batch_size})")
        object.__setattr__(self, "versions", tuple(sorted(versions, key=int)))

    def shape(self, dims: Sequence[int]) -> list[int]:
        return ([-1] if self.max_batch_size > 0 else []) + list(dims)


@dataclass(frozen=True)
class FakeRequest:
    method: str
    path: str
    headers: Any  # a dict of lower-case names, looked up case-insensitively
    json: Any     # the parsed JSON header of an infer request, else None
    body: bytes


@dataclass
class _Fault:
    kind: str
    model: str | None
    infer_only: bool
    on_call: int
    times: int | None
    status: int
    message: str
    seen: int = 0

    def fires(self, model: str | None, is_infer: bool) -> bool:
        if (self.infer_only and not is_infer) or (self.model is not None and self.model != model):
            return False
        self.seen += 1
        return self.seen >= self.on_call and (self.times is None or self.seen < self.on_call + self.times)


class _Headers(dict[str, str]):
    """Request headers, looked up case-insensitively (names are kept in lower case)."""

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive, as tritonclient expects
    disable_nagle_algorithm = True    # with one write per response: no Nagle/delayed-ACK stalls

    def handle_one_request(self) -> None:
        # A lean HTTP/1.1 reader: http.server's email-based header parser costs more than a fake infer.
        try:
            line = self.rfile.readline(65537)
            parts = line.split()
            headers = _Headers()
            while len(parts) == 3 and len(headers) < 100:
                field = self.rfile.readline(65537)
                if field in (b"\r\n", b"\n", b""):
                    break
                name, _, value = field.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
        except OSError:  # reset, or the fake was stopped under an idle keep-alive connection
            line, parts = b"", []
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self.close_connection = True
            if line.strip():
                self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        self.command, self.path = parts[0].decode("latin-1"), parts[1].decode("latin-1")
        self.headers = headers  # type: ignore[assignment]
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (parts[2] == b"HTTP/1.0" and connection != "keep-alive")
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.server.fake._serve(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeTriton

    def server_bind(self) -> None:  # HTTPServer's would look the host up in DNS (getfqdn)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        self.fake._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.fake._connections.discard(request)
        super().shutdown_request(request)


class FakeTriton:
    """A running fake Triton: ``with FakeTriton(models) as server`` (or ``start()``/``stop()``)."""

    def __init__(self, models: Iterable[FakeModel] = (), *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.mapping: dict[str, Any] | None = None  # set by from_mapping
        self._models: dict[str, FakeModel] = {}
        self._lock = threading.Lock()
        self._requests: list[FakeRequest] = []
        self._faults: list[_Fault] = []
        self._connections: set[socket.socket] = set()
        self._release = threading.Event()
        self._thread: threading.Thread | None = None
        for model in models:
            self.add(model)
        self._httpd: _Server | None = self._bind(port)
        self.port = int(self._httpd.server_address[1])

    def _bind(self, port: int) -> _Server:
        cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in self.host else _Server
        httpd = cls((self.host, port), _Handler)
        httpd.fake = self
        return httpd

    @property
    def url(self) -> str:
        """``host:port`` as tritonclient and a mapping's ``http_url`` take it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def requests(self) -> list[FakeRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def models(self) -> dict[str, FakeModel]:
        with self._lock:
            return dict(self._models)

    def start(self) -> FakeTriton:
        if self._thread is not None:
            return self
        if self._httpd is None:  # started again after stop(): same port
            self._httpd = self._bind(self.port)
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        name=f"fake-triton-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every open connection: from now on clients get 'connection refused'."""
        if self._httpd is None:
            return
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()
        self._httpd = None
        self._release.set()  # hanging requests end (without an answer)
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeTriton:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, model: FakeModel) -> None:
        """Serve ``model`` (replacing a model of the same name: e.g. one whose metadata disagrees)."""
        with self._lock:
            self._models[model.name] = model

    def unload(self, name: str) -> None:
        """The model is gone: ready answers 400, metadata, config and infer 404."""
        with self._lock:
            if self._models.pop(name, None) is None:
                raise ValueError(f"no model {name!r} is served")

    def inject(self, kind: str, *, model: str | None = None, on_call: int = 1, times: int | None = 1,
               infer_only: bool = True, status: int = 500, message: str = "injected failure") -> None:
        """From now on, the ``on_call``-th matching request (infer requests of ``model``; any model when
        None; every request when ``infer_only`` is False) and the ``times - 1`` after it (all later ones
        when ``times`` is None) get the fault: ``hang`` (read, never answered), ``close`` (closed without
        an answer), ``truncate`` (half a response, then closed), ``garbage`` (200 with a body that is not
        JSON) or ``error`` (``status`` with Triton's ``{"error": message}`` body)."""
        if kind not in FAULTS or on_call < 1 or (times is not None and times < 1):
            raise ValueError(f"inject({kind!r}, on_call={on_call}, times={times}): kinds are {FAULTS}, counts >= 1")
        with self._lock:
            self._faults.append(_Fault(kind, model, infer_only, on_call, times, status, message))

    # --- serving ------------------------------------------------------------------------------
    def _serve(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        path = handler.path.split("?", 1)[0]
        route = ROUTE.fullmatch(path)
        is_infer = route is not None and route["action"] == "/infer" and handler.command == "POST"
        doc, binary, failed = None, b"", None
        if is_infer:
            try:
                doc, binary = decode(body, handler.headers)
            except Fail as exc:
                failed = exc
        with self._lock:
            self._requests.append(FakeRequest(handler.command, path, handler.headers, doc, body))
            models = dict(self._models)
            fault = next((f for f in self._faults if f.fires(route and route["model"], is_infer)), None)
        if fault is not None:
            return self._fault(handler, fault)
        try:
            status, payload, content_type, headers = self._answer(handler, route, models, doc, binary, failed)
        except Fail as exc:
            status, payload, content_type, headers = exc.status, dumps({"error": exc.message}), exc.content_type, \
                exc.headers
        self._write(handler, status, payload, content_type, headers)

    def _answer(self, handler: _Handler, route: Any, models: dict[str, FakeModel], doc: Any, binary: bytes,
                failed: Fail | None) -> tuple[int, bytes, str, dict[str, str]]:
        if route is None:
            raise Fail(404, "Not Found", "text/plain")
        post = route["action"] == "/infer" or route["repo"] is not None
        if handler.command != ("POST" if post else "GET"):
            plain = route["repo"] is None and (route["model"] is None or route["action"] is not None)
            raise Fail(405, "Method Not Allowed", "text/plain" if plain else "application/json")
        if route["health"]:
            return 200, b"", "text/plain", {}
        if route["repo"] == "index":
            index = [{"name": m.name, "version": v, "state": "READY"} for m in sorted(models.values(),
                     key=lambda m: m.name) for v in m.versions]
            return 200, dumps(index), "application/json", {}
        if route["repo"]:
            raise Fail(503, "explicit model load / unload is not allowed if polling is enabled")
        if route["model"] is None:
            return 200, dumps(SERVER_METADATA), "application/json", {}
        name, action, model = route["model"], route["action"], models.get(route["model"])
        version = None if model is None else {int(v): v for v in model.versions}.get(
            int(route["version"] or model.versions[-1]))
        if action == "/ready":
            if model is None or version is None:
                raise Fail(400, "Model version not ready", "text/plain")
            return 200, b"", "text/plain", {}
        kind = "text/plain" if action == "/infer" else "application/json"
        if model is None:
            raise Fail(404, f"Request for unknown model: '{name}' is not found", kind)
        if version is None:
            raise Fail(404, f"Request for unknown model: '{name}' version {int(route['version'])} is not found", kind)
        if action is None:
            return 200, dumps(metadata(model, route["version"] and version)), "application/json", {}
        if action == "/config":
            return 200, dumps(config(model)), "application/json", {}
        if failed is not None:
            raise failed
        head, buffers = infer(model, version, doc, binary)
        return 200, *encode(head, buffers, handler.headers.get("Accept-Encoding"))

    def _fault(self, handler: _Handler, fault: _Fault) -> None:
        handler.close_connection = True
        if fault.kind == "hang":
            self._release.wait()
        elif fault.kind == "error":
            self._write(handler, fault.status, dumps({"error": fault.message}), "application/json", {})
        elif fault.kind == "garbage":
            self._write(handler, 200, b"\x00\xff this is not JSON", "application/json", {})
        elif fault.kind == "truncate":
            body = dumps({"error": fault.message})
            handler.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                f"{len(body)}\r\n\r\n".encode() + body[: len(body) // 2])

    @staticmethod
    def _write(handler: _Handler, status: int, body: bytes, content_type: str, headers: Mapping[str, str]) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if handler.close_connection:
            extra += "Connection: close\r\n"
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n")
        if handler.command == "HEAD":  # the length of the body a GET would get, and no body
            body = b""
        handler.wfile.write(head.encode("latin-1") + body)  # one write: header and body in one segment

    # --- a whole mapping ------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | str | os.PathLike[str], *, host: str = "127.0.0.1",
                     port: int = 0) -> FakeTriton:
        """A fake serving every Triton role of ``mapping`` (the run payload's dict, or a YAML profile's
        path) with its declared inputs and outputs and ``derived_outputs``; ``server.mapping`` is a copy of
        the mapping with each ``triton.http_url`` set to ``server.url`` (not started: use ``with``)."""
        if isinstance(mapping, (str, os.PathLike)):
            from model_manager.mapping.yaml_reader import read_yaml  # the project's safe YAML reader

            data = read_yaml(os.fspath(mapping))
        else:
            data = copy.deepcopy(dict(mapping))
        blocks = [(f"{c}/{r}", e["triton"]) for c, roles in data.get("components", {}).items()
                  for r, e in roles.items() if isinstance(e, Mapping) and e.get("triton")]
        served: dict[str, tuple[tuple[tuple[Tensor, ...], ...], set[str]]] = {}
        for where, block in blocks:
            io = tuple(tuple((t["name"], t["dtype"], tuple(t["shape"])) for t in block[side])
                       for side in ("inputs", "outputs"))
            known = served.setdefault(block["model_name"], (io, set()))
            if known[0] != io:
                raise ValueError(f"{where}: Triton model {block['model_name']!r} is declared with other inputs or "
                                 "outputs by another role; one fake model cannot serve both")
            known[1].add(str(block["model_version"]))
        server = cls([FakeModel(name, ins, outs, derived_outputs(name, ins, outs), versions=tuple(versions))
                      for name, ((ins, outs), versions) in served.items()], host=host, port=port)
        for _, block in blocks:
            block["http_url"] = server.url
        server.mapping = data
        return server
