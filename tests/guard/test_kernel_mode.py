"""Kernel mode (model_manager/guard/kernel.py): the kernel refuses what no Python layer can see.

Kernel mode is irreversible, so it is applied only in child processes (tests/guard/kernel_child.py),
each inside a private network namespace with only ``lo`` (helpers.netns). There the documentation
addresses are put on ``lo`` and witness listeners in their own, unrestricted process count every
TCP connection and UDP datagram that arrives (helpers.listeners). A refusal counts only if the
attacker saw EACCES/EPERM *and* nothing arrived; the same attacks run again without kernel mode
(the control) must arrive, so each case is shown to be a real escape that kernel mode stopped.

The seccomp program itself is checked here, in this process, by running it in a small classic-BPF
interpreter: that is how AF_VSOCK is checked (no test opens a vsock socket anywhere: network
namespaces do not isolate vsock, it reaches the hypervisor host).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import sys
from pathlib import Path
from typing import Any

import kernel_child  # tests/guard is on sys.path (pytest prepends it); its constants only
import pytest
from helpers.netns import run_in_netns

from model_manager.errors import InvalidModelSpec, KernelGuardUnavailable
from model_manager.guard import kernel

CHILD = Path(__file__).resolve().parent / "kernel_child.py"

REFUSED = list(kernel_child.TARGETS)


def _run(*args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_NETWORK_GUARD", "MM_GUARD"))}
    env.update(MM_IN_PRIVATE_NETNS="1", PYTHONDONTWRITEBYTECODE="1")
    proc = run_in_netns([sys.executable, str(CHILD), *args], env=env, timeout=60)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MM-RESULTS ")]
    assert lines, f"kernel child failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len("MM-RESULTS "):])
    return result


@pytest.fixture(scope="module")
def escape() -> dict[str, Any]:
    result = _run("--netns-run")
    assert result["interfaces"] == [[1, "lo"]]
    for mode in ("kernel", "control"):
        assert "failed" not in result[mode], result[mode]
    return result


def _arrived(escape: dict[str, Any], endpoint: str) -> tuple[int, int]:
    """(arrivals during the kernel-mode attack, arrivals during the control run)."""
    under_kernel = escape["arrived_kernel"][endpoint]
    return under_kernel, escape["arrived_control"][endpoint] - under_kernel


# ---------------------------------------------------------------- the escapes, for real
@pytest.mark.parametrize("name", REFUSED)
def test_the_kernel_refuses_and_nothing_arrives(escape: dict[str, Any], name: str) -> None:
    result = escape["kernel"][name]
    assert result["outcome"] == "refused", result
    assert result["errno"] in (errno.EACCES, errno.EPERM), result
    under_kernel, control = _arrived(escape, kernel_child.TARGETS[name])
    assert under_kernel == 0, f"{name}: {under_kernel} arrived under kernel mode"
    assert control >= 1, f"{name}: the control run did not arrive either, so the case proves nothing"


def test_nothing_arrived_anywhere_but_the_allowed_port(escape: dict[str, Any]) -> None:
    allowed = set(kernel_child.ALLOWED_TARGETS.values())
    assert {k: v for k, v in escape["arrived_kernel"].items() if k not in allowed and v}.keys() == set()


def test_the_attacks_used_the_c_stacks_they_name(escape: dict[str, Any]) -> None:
    assert "uvloop" in escape["control"]["uvloop_create_connection"]["detail"]
    assert "'start_method': 'spawn'" in escape["kernel"]["multiprocessing_spawn_child"]["detail"]
    assert "'curl': 7" in escape["kernel"]["pycurl_fetch"]["detail"]          # CURLE_COULDNT_CONNECT
    assert "Permission denied" in escape["kernel"]["bash_dev_tcp"]["detail"]


def test_an_allowed_port_on_loopback_still_connects(escape: dict[str, Any]) -> None:
    assert escape["kernel"]["allowed_loopback"]["outcome"] == "connected"
    assert _arrived(escape, kernel_child.ALLOWED_TARGETS["allowed_loopback"])[0] == 1


def test_limit_an_allowed_port_is_reachable_on_any_address(escape: dict[str, Any]) -> None:
    # Landlock restricts ports, not addresses: documented in docs/kernel-mode.md.
    assert escape["kernel"]["allowed_port_other_address"]["outcome"] == "connected"
    assert _arrived(escape, kernel_child.ALLOWED_TARGETS["allowed_port_other_address"])[0] == 1


def test_unix_sockets_still_work(escape: dict[str, Any]) -> None:
    assert escape["kernel"]["unix_sockets"]["detail"] == "'pingpong'"


@pytest.mark.parametrize("name", ["packet_socket", "raw_socket", "icmp_ping_socket", "sctp_socket",
                                  "io_uring_setup"])
def test_seccomp_refuses_in_the_restricted_child(escape: dict[str, Any], name: str) -> None:
    result = escape["kernel"][name]
    assert (result["outcome"], result["errno"]) == ("refused", errno.EACCES), result


def test_a_second_apply_may_not_widen(escape: dict[str, Any]) -> None:
    assert escape["kernel"]["second_apply_other_ports"]["outcome"] == "kernel_guard_unavailable"
    assert "cannot be widened (ports [8001]" in escape["kernel"]["second_apply_other_ports"]["detail"]
    same = escape["kernel"]["second_apply_same_ports"]
    assert same["outcome"] == "accepted" and "'layers': 1" in same["detail"]


def test_a_second_apply_with_a_subset_narrows(escape: dict[str, Any]) -> None:
    # apply([]) after apply([ALLOWED]): the allowed loopback port is refused from then on, and the
    # witness saw only the one connection made before (test_an_allowed_port_on_loopback_still_connects).
    narrowed = escape["kernel"]["narrowed_to_no_ports"]
    assert (narrowed["outcome"], narrowed["errno"]) == ("refused", errno.EACCES), narrowed


def test_the_report(escape: dict[str, Any]) -> None:
    report = escape["kernel"]["report"]
    assert escape["kernel"]["active"] is True
    assert report["landlock_abi"] >= 4 and report["tcp_ports"] == [kernel_child.ALLOWED]
    assert report["seccomp"]["socket_families"] == ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"]
    assert report["seccomp"]["threads"] == "all (TSYNC)"
    assert any("ports, not addresses" in limit for limit in report["limits"])
    assert 0 < report["activation_seconds"] < 0.5


# ---------------------------------------------------------------- scenarios in fresh children
def test_threads_that_already_run_are_named_or_accepted_and_reported() -> None:
    out = _run("--scenario", "threads")
    assert out["refused"]["outcome"] == "kernel_guard_unavailable"
    assert f"{out['old_tid']} (" in out["refused"]["detail"]
    assert out["status_after_refusal"] == {"NoNewPrivs": "0", "Seccomp": "0", "Seccomp_filters": "0"}
    if out["report"]["landlock_abi"] < 8:
        assert any(str(out["old_tid"]) in limit for limit in out["report"]["limits"])
        assert out["old_thread_connect"]["outcome"] == "connected"     # the documented limit
    assert out["main_connect"]["errno"] == errno.EACCES
    assert out["new_thread_connect"]["errno"] == errno.EACCES
    assert out["old_thread_udp"]["errno"] == errno.EACCES              # seccomp TSYNC covers it


def test_unavailable_landlock_raises_and_applies_nothing() -> None:
    # Seam: the child replaces kernel._landlock_abi (the raw probe) with a fake result. No
    # environment switch exists for this in production code, and the real probe, ruleset and
    # filter code paths stay the ones that run.
    out = _run("--scenario", "fake_abi")
    assert "ABI 4+" in out["abi_3"]["detail"] and "ABI 3" in out["abi_3"]["detail"]
    assert "ENOSYS" in out["enosys"]["detail"]
    assert "disabled at boot" in out["eopnotsupp"]["detail"]
    for case in ("abi_3", "enosys", "eopnotsupp"):
        assert out[case]["outcome"] == "kernel_guard_unavailable"
    assert out["status"] == {"NoNewPrivs": "0", "Seccomp": "0", "Seccomp_filters": "0"}
    assert out["active"] is False
    assert out["udp_socket_still_allowed"]["outcome"] == "connected"


def test_io_uring_and_sockets_opened_before_activation() -> None:
    out = _run("--scenario", "opened_before")
    assert out["with_ring"]["outcome"] == "kernel_guard_unavailable"
    assert f"fds [{out['ring_fd']}]" in out["with_ring"]["detail"]
    assert out["status_after_refusal"]["Seccomp"] == "0"
    assert any(f"fd {out['udp_fd']} (family 2, type 2" in limit for limit in out["report"]["limits"])


# ---------------------------------------------------------------- the BPF program, interpreted here
def _run_bpf(program: list[tuple[int, int, int, int]], nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    acc, pc = 0, 0
    for _ in range(len(program)):
        code, jt, jf, k = program[pc]
        if code == 0x06:
            return k
        if code == 0x20:
            acc, pc = struct.unpack_from("<I", data, k)[0], pc + 1
        elif code == 0x54:
            acc, pc = acc & k, pc + 1
        else:
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)
    raise AssertionError("the program did not return")


ALLOW, REFUSE = 0x7FFF0000, 0x00050000 | errno.EACCES
ARCHES = sorted(kernel._ARCHES)


@pytest.mark.parametrize("machine", ARCHES)
def test_bpf_socket_families(machine: str) -> None:
    arch = kernel._ARCHES[machine]
    program = kernel._bpf_program(arch)
    for nr in (arch.socket, arch.socketpair):
        for family in range(64):
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET):
                for flags in (0, socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC):
                    got = _run_bpf(program, nr, arch.audit, (family, kind | flags, 0))
                    ok = family in (socket.AF_UNIX, socket.AF_NETLINK) or (
                        family in (socket.AF_INET, socket.AF_INET6) and kind == socket.SOCK_STREAM)
                    assert got == (ALLOW if ok else REFUSE), (machine, nr, family, kind, flags)


@pytest.mark.parametrize("machine", ARCHES)
def test_bpf_never_lets_vsock_or_packet_through(machine: str) -> None:
    arch = kernel._ARCHES[machine]
    assert 40 not in kernel.ALLOWED_FAMILIES and 17 not in kernel.ALLOWED_FAMILIES   # AF_VSOCK, AF_PACKET
    for family in (40, 17):
        for kind in range(1, 11):
            assert _run_bpf(kernel._bpf_program(arch), arch.socket, arch.audit, (family, kind, 0)) == REFUSE


@pytest.mark.parametrize("machine", ARCHES)
def test_bpf_inet_protocols_tcp_only(machine: str) -> None:
    arch = kernel._ARCHES[machine]
    program = kernel._bpf_program(arch)
    for proto, expected in ((0, ALLOW), (socket.IPPROTO_TCP, ALLOW), (262, REFUSE), (132, REFUSE), (256, REFUSE),
                            (socket.IPPROTO_UDP, REFUSE)):
        assert _run_bpf(program, arch.socket, arch.audit, (socket.AF_INET6, socket.SOCK_STREAM, proto)) == expected


@pytest.mark.parametrize("machine", ARCHES)
def test_bpf_fast_open_io_uring_foreign_abi(machine: str) -> None:
    arch = kernel._ARCHES[machine]
    program = kernel._bpf_program(arch)
    fastopen = 0x20000000
    for nr, flags_arg in ((arch.sendto, 3), (arch.sendmmsg, 3), (arch.sendmsg, 2)):
        args = [3, 0, 0, 0, 0, 0]
        assert _run_bpf(program, nr, arch.audit, tuple(args)) == ALLOW
        args[flags_arg] = fastopen | 0x40           # MSG_FASTOPEN among other flags
        assert _run_bpf(program, nr, arch.audit, tuple(args)) == REFUSE
    assert _run_bpf(program, arch.io_uring_setup, arch.audit, (8, 0)) == REFUSE
    assert _run_bpf(program, 0, 0x40000003) == REFUSE                         # i386 compat
    assert _run_bpf(program, 0, 0x40000028) == REFUSE                         # 32-bit arm compat
    for other in (0, 1, 3, 63, 101, 202, arch.seccomp):                       # anything else: allowed
        assert _run_bpf(program, other, arch.audit) == ALLOW
    if arch.x32:
        assert _run_bpf(program, 41 | 0x40000000, arch.audit, (socket.AF_UNIX, 1, 0)) == REFUSE


# ---------------------------------------------------------------- pure checks, this process
def test_probe_results_map_to_named_errors() -> None:
    assert kernel._check_abi(4, 0) == 4
    with pytest.raises(KernelGuardUnavailable, match=r"ABI 4\+.*ABI 2") as info:
        kernel._check_abi(2, 0)
    assert info.value.code == "kernel_guard_unavailable"
    with pytest.raises(KernelGuardUnavailable, match="without Landlock"):
        kernel._check_abi(-1, errno.ENOSYS)
    with pytest.raises(KernelGuardUnavailable, match="disabled at boot"):
        kernel._check_abi(-1, errno.EOPNOTSUPP)


def test_other_architectures_are_unavailable() -> None:
    assert kernel._arch_for("aarch64", 8).name == "aarch64"
    for machine, size in (("riscv64", 8), ("ppc64le", 8), ("x86_64", 4), ("i686", 4)):
        with pytest.raises(KernelGuardUnavailable, match="x86_64 and aarch64"):
            kernel._arch_for(machine, size)


@pytest.mark.parametrize("ports", ["8000", 8000, [0], [65536], [True], ["8000"], [8000, -1]])
def test_bad_ports_are_refused(ports: Any) -> None:
    # _parse_ports, not apply_kernel_mode: a regression must never restrict the pytest process.
    with pytest.raises(InvalidModelSpec, match="tcp_ports"):
        kernel._parse_ports(ports)
    assert kernel._parse_ports([8001, 8000, 8000]) == [8000, 8001]


def test_this_process_is_not_in_kernel_mode() -> None:
    assert kernel.kernel_mode_active() is False and kernel.kernel_mode_report() is None
