"""Kernel mode: the kernel itself refuses TCP connects to unlisted ports, UDP and raw sockets.

``apply_kernel_mode(tcp_ports)`` is irreversible and covers this process, its later threads and
every child (forked, spawned, exec'd, any language): nothing in C can go around it. Two layers:

- Landlock (ABI 4+, Linux 6.7+): a ruleset that handles ``LANDLOCK_ACCESS_NET_CONNECT_TCP`` only,
  one ``landlock_net_port_attr`` rule per allowed port. Binding and the filesystem are not handled.
- seccomp-BPF, installed with ``SECCOMP_FILTER_FLAG_TSYNC`` (every thread): ``socket``/``socketpair``
  only for AF_UNIX, AF_NETLINK, and AF_INET/AF_INET6 with SOCK_STREAM and protocol 0 or IPPROTO_TCP
  (no UDP/DNS, raw, ICMP, SCTP, and no MPTCP or SMC, which Landlock's TCP rule does not see);
  ``sendto``/``sendmsg``/``sendmmsg`` without MSG_FASTOPEN (TCP Fast Open connects without
  ``connect()``, and Landlock does not see it); no ``io_uring_setup``; no foreign syscall ABI.
  Refusals are EACCES, never a kill.

Standard library only (ctypes); see docs/kernel-mode.md.
"""

from __future__ import annotations

import copy
import ctypes
import errno
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from model_manager.errors import InvalidModelSpec, KernelGuardUnavailable

__all__ = ["ALLOWED_FAMILIES", "apply_kernel_mode", "kernel_mode_active", "kernel_mode_report"]

# ---------------------------------------------------------------- kernel ABI (uapi headers)
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
_LANDLOCK_ACCESS_NET_CONNECT_TCP = 1 << 1
_LANDLOCK_RULE_NET_PORT = 2
_LANDLOCK_RESTRICT_SELF_TSYNC = 1 << 3       # ABI 8+: restrict every thread, not only the caller
_MIN_ABI, _TSYNC_ABI = 4, 8
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER, _SECCOMP_GET_ACTION_AVAIL = 1, 2
_SECCOMP_FILTER_FLAG_TSYNC = 1
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_RET_REFUSE = _RET_ERRNO | errno.EACCES
_MSG_FASTOPEN = 0x20000000
_SOCK_FLAGS = 0o4000 | 0o2000000            # SOCK_NONBLOCK | SOCK_CLOEXEC, masked out of the type
_X32_SYSCALL_BIT = 0x40000000

#: socket families the filter lets ``socket``/``socketpair`` create; everything else gets EACCES
#: (AF_VSOCK, AF_PACKET, AF_BLUETOOTH, AF_CAN, AF_XDP, AF_ALG ...). INET ones: TCP only.
ALLOWED_FAMILIES: dict[int, str] = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK"}
_INET = frozenset({2, 10})


@dataclass(frozen=True)
class _Arch:
    name: str
    audit: int                  # AUDIT_ARCH_*: seccomp_data.arch of a native syscall
    seccomp: int
    socket: int
    socketpair: int
    sendto: int
    sendmsg: int
    sendmmsg: int
    io_uring_setup: int
    x32: bool                   # x86_64 also accepts x32 syscalls (nr | 0x40000000): refuse them


_ARCHES = {
    "x86_64": _Arch("x86_64", 0xC000003E, 317, 41, 53, 44, 46, 307, 425, True),
    "aarch64": _Arch("aarch64", 0xC00000B7, 277, 198, 199, 206, 211, 269, 425, False),
}

_lock = threading.Lock()
_report: dict[str, Any] | None = None
_libc_handle: Any = None


# ---------------------------------------------------------------- probes (no side effects)
def _libc() -> Any:
    global _libc_handle
    if _libc_handle is None:
        _libc_handle = ctypes.CDLL(None, use_errno=True)
        _libc_handle.syscall.restype = ctypes.c_long
    return _libc_handle


def _syscall(*args: Any) -> tuple[int, int]:
    ctypes.set_errno(0)
    rc = int(_libc().syscall(*args))
    return rc, (ctypes.get_errno() if rc < 0 else 0)


def _landlock_abi() -> tuple[int, int]:
    """The raw probe: (return value, errno) of landlock_create_ruleset(NULL, 0, VERSION).
    The test seam: tests replace it in a child to simulate an older or Landlock-less kernel."""
    return _syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                    ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))


def _check_abi(value: int, err: int) -> int:
    """Landlock ABI from the probe, or KernelGuardUnavailable naming what is missing."""
    if value < 0:
        what = {errno.ENOSYS: "this kernel was built without Landlock (landlock_create_ruleset: ENOSYS)",
                errno.EOPNOTSUPP: "Landlock is compiled in but disabled at boot (EOPNOTSUPP)"}.get(
            err, f"the Landlock probe failed: {os.strerror(err)}")
        raise KernelGuardUnavailable(
            f"kernel mode needs Landlock network rules: {what}",
            hint="run on Linux 6.7+ with Landlock enabled (CONFIG_SECURITY_LANDLOCK=y and 'landlock' in "
                 "the lsm= boot parameter), or leave kernel mode off")
    if value < _MIN_ABI:
        raise KernelGuardUnavailable(
            f"kernel mode needs Landlock ABI {_MIN_ABI}+ (TCP port rules, Linux 6.7+); "
            f"this kernel has ABI {value}",
            hint="upgrade the kernel to 6.7 or later, or leave kernel mode off")
    return value


def _arch_for(machine: str, pointer_size: int) -> _Arch:
    arch = _ARCHES.get(machine)
    if arch is None or pointer_size != 8:
        raise KernelGuardUnavailable(
            f"kernel mode supports 64-bit x86_64 and aarch64 processes; this one is {machine} "
            f"with {pointer_size * 8}-bit pointers",
            hint="run the pipeline on x86_64 or aarch64 with a 64-bit Python, or leave kernel mode off")
    return arch


def _check_seccomp(arch: _Arch) -> None:
    action = ctypes.c_uint32(_RET_ERRNO)
    rc, err = _syscall(arch.seccomp, _SECCOMP_GET_ACTION_AVAIL, 0, ctypes.byref(action))
    if rc != 0:
        what = "without seccomp" if err == errno.ENOSYS else f"without seccomp filters ({os.strerror(err)})"
        raise KernelGuardUnavailable(
            f"kernel mode needs seccomp-BPF to refuse UDP and raw sockets; this kernel was built {what}",
            hint="run on a kernel with CONFIG_SECCOMP_FILTER=y, or leave kernel mode off")


def _other_threads() -> list[str]:
    me = threading.get_native_id()
    found = []
    for tid in sorted(os.listdir("/proc/self/task"), key=int):
        if int(tid) != me:
            try:
                with open(f"/proc/self/task/{tid}/comm", encoding="utf-8") as f:
                    found.append(f"{tid} ({f.read().strip()})")
            except OSError:
                continue            # it ended while we looked
    return found


def _existing_fds() -> tuple[list[int], list[str]]:
    """io_uring fds (refused: their SQPOLL thread keeps the creator's rights) and sockets that
    existed before activation and that the filter would not let be created now (reported)."""
    rings, odd = [], []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target == "anon_inode:[io_uring]":
            rings.append(int(name))
        elif target.startswith("socket:["):
            try:
                sock = socket.socket(fileno=int(name))      # reads SO_DOMAIN/SO_TYPE/SO_PROTOCOL
            except OSError:
                continue
            family, kind, proto = int(sock.family), int(sock.type), sock.proto
            sock.detach()
            tcp = family in _INET and kind == socket.SOCK_STREAM and proto in (0, socket.IPPROTO_TCP)
            if not tcp and family not in ALLOWED_FAMILIES.keys() - _INET:
                odd.append(f"fd {name} (family {family}, type {kind}, protocol {proto})")
    return sorted(rings), sorted(odd)


# ---------------------------------------------------------------- the seccomp program
def _bpf_program(arch: _Arch) -> list[tuple[int, int, int, int]]:
    """Classic BPF over ``struct seccomp_data`` (nr @0, arch @4, args[i] low 32 bits @16+8i):
    a list of (code, jt, jf, k). Built with labels, then jump offsets are resolved."""
    ld = lambda off: (0x20, 0, 0, off)                             # BPF_LD|BPF_W|BPF_ABS
    jeq = lambda k, t="", f="": (0x15, t, f, k)                    # BPF_JMP|BPF_JEQ|BPF_K
    arg = lambda i: 16 + 8 * i
    body: list[Any] = [
        ld(4), jeq(arch.audit, "", "refuse"),                      # foreign ABI (compat, big-endian)
        ld(0),
        *([(0x35, "refuse", "", _X32_SYSCALL_BIT)] if arch.x32 else []),   # BPF_JGE: x32
        jeq(arch.socket, "sock"), jeq(arch.socketpair, "sock"),
        jeq(arch.io_uring_setup, "refuse"),
        jeq(arch.sendto, "flags3"), jeq(arch.sendmmsg, "flags3"), jeq(arch.sendmsg, "flags2"),
        (0x06, 0, 0, _RET_ALLOW),
        "flags3", ld(arg(3)), (0x45, "refuse", "allow", _MSG_FASTOPEN),    # BPF_JSET
        "flags2", ld(arg(2)), (0x45, "refuse", "allow", _MSG_FASTOPEN),
        "sock", ld(arg(0)),
        *[jeq(family, "inet" if family in _INET else "allow") for family in sorted(ALLOWED_FAMILIES)],
        (0x06, 0, 0, _RET_REFUSE),
        "inet", ld(arg(1)), (0x54, 0, 0, ~_SOCK_FLAGS & 0xFFFFFFFF),    # BPF_ALU|BPF_AND|BPF_K
        jeq(int(socket.SOCK_STREAM), "", "refuse"),
        ld(arg(2)), jeq(0, "allow"), jeq(socket.IPPROTO_TCP, "allow", "refuse"),
        "allow", (0x06, 0, 0, _RET_ALLOW),
        "refuse", (0x06, 0, 0, _RET_REFUSE),
    ]
    labels, pc = {}, 0
    for item in body:
        if isinstance(item, str):
            labels[item] = pc
        else:
            pc += 1
    program, pc = [], 0
    for item in body:
        if isinstance(item, str):
            continue
        code, jt, jf, k = item
        jumps = [labels[j] - pc - 1 if j else 0 for j in (jt, jf)]
        assert all(0 <= j < 256 for j in jumps), item
        program.append((code, jumps[0], jumps[1], k))
        pc += 1
    return program


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _install_seccomp(arch: _Arch) -> None:
    program = _bpf_program(arch)
    filters = (_SockFilter * len(program))(*[_SockFilter(*ins) for ins in program])
    prog = _SockFprog(len(program), filters)
    rc, err = _syscall(arch.seccomp, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(prog))
    if rc > 0:
        raise KernelGuardUnavailable(f"seccomp could not synchronise thread {rc} (it has its own filter)",
                                     hint="activate kernel mode before that thread starts")
    if rc < 0:
        raise KernelGuardUnavailable(f"seccomp(SET_MODE_FILTER, TSYNC) failed: {os.strerror(err)}")


# ---------------------------------------------------------------- Landlock
def _landlock_ruleset(ports: list[int]) -> int:
    attr = _RulesetAttr(0, _LANDLOCK_ACCESS_NET_CONNECT_TCP)
    fd, err = _syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                       ctypes.c_uint32(0))
    if fd < 0:
        raise KernelGuardUnavailable(f"landlock_create_ruleset(CONNECT_TCP) failed: {os.strerror(err)}")
    for port in ports:
        rule = _NetPortAttr(_LANDLOCK_ACCESS_NET_CONNECT_TCP, port)
        rc, err = _syscall(_SYS_LANDLOCK_ADD_RULE, fd, _LANDLOCK_RULE_NET_PORT, ctypes.byref(rule),
                           ctypes.c_uint32(0))
        if rc < 0:
            os.close(fd)
            raise KernelGuardUnavailable(f"landlock_add_rule(port {port}) failed: {os.strerror(err)}")
    return fd


def _restrict_self(fd: int, abi: int) -> None:
    flags = _LANDLOCK_RESTRICT_SELF_TSYNC if abi >= _TSYNC_ABI else 0
    try:
        rc, err = _syscall(_SYS_LANDLOCK_RESTRICT_SELF, fd, ctypes.c_uint32(flags))
    finally:
        os.close(fd)
    if rc < 0:
        raise KernelGuardUnavailable(f"landlock_restrict_self failed: {os.strerror(err)}"
                                     + (" (at most 16 stacked Landlock layers)" if err == errno.E2BIG else ""))


def _parse_ports(tcp_ports: Iterable[int]) -> list[int]:
    if isinstance(tcp_ports, (str, bytes, int)):
        raise InvalidModelSpec(f"kernel mode tcp_ports must be a collection of ints, got {tcp_ports!r}",
                               field="tcp_ports")
    ports = set()
    for port in tcp_ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidModelSpec(f"kernel mode tcp_ports: {port!r} is not a TCP port from 1 to 65535",
                                   field="tcp_ports", hint="pass ints, e.g. [8000, 8001]")
        ports.add(port)
    return sorted(ports)


# ---------------------------------------------------------------- public API
def apply_kernel_mode(tcp_ports: Iterable[int], *, allow_threads: bool = False) -> dict[str, object]:
    """Let the kernel refuse, for good, every TCP connect except to ``tcp_ports`` (any address,
    loopback included), every UDP/raw/packet socket and io_uring, in this process and all its
    children. Returns the report (also ``kernel_mode_report()``).

    Threads that already exist are not under Landlock before ABI 8: they are named in a
    ``KernelGuardUnavailable`` unless ``allow_threads=True``, which applies anyway and lists them
    under ``limits`` (seccomp covers them either way). A second call with the same ports is a no-op;
    with a subset it stacks a narrower Landlock layer; any other port is refused (irreversible).
    """
    global _report
    ports = _parse_ports(tcp_ports)
    with _lock:
        if _report is not None:
            return _narrow(ports, allow_threads)
        start = time.perf_counter()
        arch = _arch_for(os.uname().machine, ctypes.sizeof(ctypes.c_void_p))
        abi = _check_abi(*_landlock_abi())
        _check_seccomp(arch)
        threads = _other_threads()
        if threads and abi < _TSYNC_ABI and not allow_threads:
            raise KernelGuardUnavailable(
                f"kernel mode: Landlock ABI {abi} restricts only the calling thread, and other threads "
                f"already run: {', '.join(threads)}",
                hint="activate kernel mode before starting threads, or pass allow_threads=True to accept "
                     "that those threads keep unrestricted TCP connects (seccomp still covers them)")
        rings, odd_sockets = _existing_fds()
        if rings:
            raise KernelGuardUnavailable(f"kernel mode: io_uring instances are open (fds {rings}); their "
                                         "kernel threads keep the rights they were created with",
                                         hint="activate kernel mode before creating io_uring instances")
        fd = _landlock_ruleset(ports)
        if _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            os.close(fd)
            raise KernelGuardUnavailable(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
        try:
            _install_seccomp(arch)
        except BaseException:
            os.close(fd)
            raise
        try:
            _restrict_self(fd, abi)
        except KernelGuardUnavailable as exc:
            raise KernelGuardUnavailable(f"{exc.message}; the seccomp filter IS on (no UDP, raw sockets or "
                                         "io_uring) but TCP connects are NOT restricted") from None
        limits = ["ports, not addresses: an allowed port is reachable on any host the process can route to",
                  "connections accepted by a listening socket are not restricted"]
        if threads and abi < _TSYNC_ABI:
            limits.append(f"threads that existed before activation are not under Landlock: {', '.join(threads)}")
        if odd_sockets:
            limits.append(f"sockets opened before activation stay usable: {', '.join(odd_sockets)}")
        _report = {
            "landlock_abi": abi,
            "tcp_ports": ports,
            "arch": arch.name,
            "landlock": "TCP connect restricted to tcp_ports (any address, loopback included); bind and "
                        "the filesystem are not handled",
            "landlock_threads": "all (TSYNC)" if abi >= _TSYNC_ABI else "the calling thread and its future children",
            "seccomp": {
                "threads": "all (TSYNC)",
                "socket_families": [ALLOWED_FAMILIES[f] for f in sorted(ALLOWED_FAMILIES)],
                "inet_sockets": "SOCK_STREAM with protocol 0 or IPPROTO_TCP only",
                "refused": ["other socket families (AF_PACKET, AF_VSOCK, ...)",
                            "UDP, raw, ICMP, SCTP, MPTCP and SMC inet sockets",
                            "sendto/sendmsg/sendmmsg with MSG_FASTOPEN", "io_uring_setup",
                            "syscalls of a foreign ABI (x32, 32-bit compat)"],
                "errno": "EACCES",
            },
            "layers": 1,
            "limits": limits,
            "activation_seconds": time.perf_counter() - start,
        }
        return copy.deepcopy(_report)


def _narrow(ports: list[int], allow_threads: bool) -> dict[str, object]:
    assert _report is not None
    current = _report["tcp_ports"]
    if ports == current:
        return copy.deepcopy(_report)
    wider = [p for p in ports if p not in current]
    if wider:
        raise KernelGuardUnavailable(
            f"kernel mode is already on in this process with TCP ports {current}; it cannot be widened "
            f"(ports {wider} are not in it): it is irreversible",
            hint="compute the full port list before the first activation, or start a new process")
    threads = _other_threads()
    if threads and _report["landlock_abi"] < _TSYNC_ABI and not allow_threads:
        raise KernelGuardUnavailable(f"kernel mode: narrowing would not cover threads {', '.join(threads)}",
                                     hint="narrow before starting threads, or pass allow_threads=True")
    _restrict_self(_landlock_ruleset(ports), int(_report["landlock_abi"]))
    _report["tcp_ports"] = ports
    _report["layers"] += 1
    return copy.deepcopy(_report)


def kernel_mode_active() -> bool:
    """Whether this process applied kernel mode (a forked child inherits the answer; a spawned child
    inherits the restriction itself but starts with a fresh report: applying again stacks)."""
    return _report is not None


def kernel_mode_report() -> dict[str, object] | None:
    """What ``apply_kernel_mode`` set up in this process, or None."""
    return copy.deepcopy(_report) if _report is not None else None
