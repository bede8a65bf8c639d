"""Fixtures of the guard's in-process tests: the guard switched on and off by the test itself."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from model_manager import guard


@pytest.fixture
def active(request: pytest.FixtureRequest) -> Iterator[None]:
    was_on, entries = guard.is_active(), list(guard.allowed())
    guard.deactivate()
    yield
    guard.deactivate()
    if was_on:  # leave the run as we found it (pytest -p pytest_mm keeps it on)
        guard.activate(entries)
    if request.config.pluginmanager.has_plugin("pytest_mm"):
        from pytest_mm import acknowledge_refusals

        acknowledge_refusals(request.node)  # refusals here are the point


class _Triton(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path in ("/v2/health/ready", "/v2/health/live") else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def triton_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Triton)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
