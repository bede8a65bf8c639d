"""``pytest -p pytest_mm``: the network guard is on for the whole test run (docs/pytest-mm.md).

The guard goes on when the plugin is registered, before conftests and test modules load, and
cannot be switched off for a run. Loopback and unix sockets are always allowed.

Options
    ``--mm-allow-hosts ENTRY[,ENTRY]`` (repeatable) and the ini option ``mm_allow_hosts``
    (one entry a line): allowed for the whole run. An entry is ``host:port``, an IP address
    (every port), or a network ``192.0.2.0/24``, ``192.0.2.0/24:8000``, ``[2001:db8::/32]:443``.

Markers
    ``@pytest.mark.mm_allow_hosts("127.0.0.1:8000", "192.0.2.0/24")``: more entries for one test.
    ``@pytest.mark.mm_allow_network(reason="...")``: the guard is off for the test.

Fixtures
    ``mm_expect_refusal``: ``with mm_expect_refusal() as refused:`` the block must be refused
    (raised, swallowed, in a forked child, inside an ExceptionGroup); those refusals pass.
    ``mm_allow_network``: ``with mm_allow_network(reason="..."):`` the guard is off in the block.
    Other families (``fake_triton``, ``fake_triton_mapping`` from ``pytest_mm.triton``) are
    registered when a test asks for them.

What fails
    A test that reaches the network; one whose refusal was swallowed (here or in a forked
    child); one that calls ``guard.suspended()``, ``allowing()`` or ``deactivate()`` or breaks
    the guard without ``mm_allow_network``. A refusal outside any test fails the run. The
    terminal summary lists the unguarded tests and those that switched the guard off; the
    header names plugins that loaded before pytest_mm (they were not guarded while loading).
"""

from __future__ import annotations

from typing import Any

# The hooks and fixtures live in pytest_mm.plugin; this package file imports nothing, so that
# `import pytest_mm.fake_triton` works where pytest is not installed (the demo, a worker process).
# `-p pytest_mm` registers this module, and pytest then loads the plugin named here; the
# pytest11 entry point names pytest_mm.plugin directly, under the same plugin name "pytest_mm".
pytest_plugins = ("pytest_mm.plugin",)

__all__ = ["acknowledge_refusals"]


def __getattr__(name: str) -> Any:
    if name == "acknowledge_refusals":
        from pytest_mm._state import acknowledge_refusals

        return acknowledge_refusals
    raise AttributeError(f"module 'pytest_mm' has no attribute {name!r}")
