"""The Triton tests: the ``triton_contract`` marker, one real and one fake server of the contract models
for the whole session. The ``fake_triton`` fixtures come from the pytest_mm plugin, as for any user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contract_models import MODELS
from real_triton import real_triton

from pytest_mm.fake_triton import FakeTriton


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "triton_contract: runs against a real tritonserver (nvidia-pytriton) as "
                                       "well as the fake; deselect with -m 'not triton_contract' where it cannot "
                                       "start")


@pytest.fixture(scope="session")
def real_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real Triton 2.51 serving every contract model; failing to start fails the tests (never a skip)."""
    with real_triton(Path(tmp_path_factory.mktemp("tritonserver"))) as url:
        yield url


@pytest.fixture(scope="session")
def fake_url() -> Iterator[str]:
    with FakeTriton([m.fake() for m in MODELS]) as server:
        yield server.url
