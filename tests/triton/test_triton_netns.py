"""Endpoints off this host, inside a private network namespace that has only loopback (never the real network).

A mapped endpoint is allowed by the guard: with no route, the handle ends in ``triton_unavailable``.
An endpoint the mapping does not name is refused by the guard before any packet: the handle ends in
``network_access_forbidden``. Every message names the component, role, model, version and endpoint.
Only documentation addresses (RFC 5737, RFC 3849) are used.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from helpers.mappings import RUN_CONTEXT
from helpers.netns import run_in_netns
from triton_helpers import double, mapping

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent('''
    import json, sys
    import numpy as np
    from model_manager import ModelManager, guard
    from model_manager.errors import ModelManagerError
    from model_manager.runtimes import TritonTimeouts, triton_handle

    context, data = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    mm = ModelManager(context, data, triton_timeouts={"connect": 0.5, "network": 1})
    out = {}

    def record(name, call):
        try:
            call()
            out[name] = None
        except ModelManagerError as exc:
            out[name] = [exc.code, str(exc)]

    for role in ("v4", "v6"):
        h = mm.triton_client(mm.resolve(component="core_test", role=role))
        record(role + " check", h.check)
        record(role + " infer", lambda: h({"x": np.ones((1, 2), np.float32)}))
    spec = mm.resolve(component="core_test", role="v4")
    elsewhere = spec.model_copy(update={"triton": spec.triton.model_copy(update={"http_url": "198.51.100.7:8000"})})
    record("foreign spec", lambda: mm.triton_client(elsewhere))
    record("unmapped endpoint", lambda: triton_handle(elsewhere, TritonTimeouts(0.5, 1)).check())
    out["refused"] = [[a.host, a.port] for a in guard.blocked_attempts()]
    print(json.dumps(out))
''')


def test_off_host_endpoints_in_a_private_namespace() -> None:
    data = mapping(v4=double("192.0.2.10:8000"), v6=double("[2001:db8::10]:8000"))
    proc = run_in_netns([sys.executable, "-c", CHILD, json.dumps(RUN_CONTEXT), json.dumps(data)], cwd=REPO,
                        timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for role, endpoint in (("v4", "192.0.2.10:8000"), ("v6", "[2001:db8::10]:8000")):
        for step in ("check", "infer"):
            code, text = out[f"{role} {step}"]
            assert code == "triton_unavailable", text
            assert f"core_test/{role}" in text and "model 'double' version '1'" in text and f"at {endpoint}" in text
            assert "unreachable" in text.lower(), text
    code, text = out["foreign spec"]
    assert code == "invalid_model_spec" and "core_test/v4" in text
    code, text = out["unmapped endpoint"]
    assert code == "network_access_forbidden", text
    assert "core_test/v4" in text and "model 'double' version '1' at 198.51.100.7:8000" in text
    assert ["198.51.100.7", 8000] in out["refused"]
    assert not [h for h, _ in out["refused"] if h in ("192.0.2.10", "2001:db8::10")]
