"""The fake Triton's pytest fixtures (the pytest_mm plugin registers this module).

``fake_triton``
    A running ``FakeTriton`` on 127.0.0.1 (a free port) with no models; add them with
    ``fake_triton.add(FakeModel(...))``. Stopped at teardown.
``fake_triton_mapping``
    ``fake_triton_mapping(mapping_or_profile_path)`` starts a fake serving every Triton role of the
    mapping (deterministic outputs of the declared dtypes and shapes) and returns the mapping with each
    ``http_url`` pointed at it; ``fake_triton_mapping.server`` is the last server started (for faults).
    Every server is stopped at teardown. A Triton component end to end, without a GPU::

        def test_clip(fake_triton_mapping, run_context):
            mm = ModelManager(run_context, fake_triton_mapping("profile.yaml"))
            embeds = mm.get_runtime(mm.resolve(component="core_clip", role="image_encoder"))(batch)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from pytest_mm.fake_triton import FakeTriton

__all__ = ["FakeTritonMappings", "fake_triton", "fake_triton_mapping"]


@pytest.fixture
def fake_triton() -> Iterator[FakeTriton]:
    """A running fake Triton without models (``fake_triton.add(model)``), stopped at teardown."""
    with FakeTriton() as server:
        yield server


class FakeTritonMappings:
    """``fake_triton_mapping(mapping_or_path) -> mapping`` with its http_urls pointed at a started fake."""

    def __init__(self) -> None:
        self.servers: list[FakeTriton] = []

    def __call__(self, mapping: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
        server = FakeTriton.from_mapping(mapping).start()
        self.servers.append(server)
        assert server.mapping is not None
        return server.mapping

    @property
    def server(self) -> FakeTriton:
        if not self.servers:
            raise LookupError("fake_triton_mapping(...) has not started a server yet")
        return self.servers[-1]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def fake_triton_mapping() -> Iterator[FakeTritonMappings]:
    """Start fakes from mappings or profiles; every one is stopped at teardown."""
    mappings = FakeTritonMappings()
    try:
        yield mappings
    finally:
        mappings.stop()
