"""Refusals the plugin must not lose or count twice: forked children, doctests, exception
groups, ``pytest.raises``; and refused sockets leave no descriptor open.

One inner run in a private network namespace (only documentation addresses are aimed at).
"""

from __future__ import annotations

import pytest
from plugin_runs import InnerRun, run_pytest

REFUSALS = '''
import multiprocessing, os, socket, time, urllib.request
import pytest
from model_manager.errors import NetworkAccessForbidden

FORK = multiprocessing.get_context("fork")

def _swallow(url):
    try:
        urllib.request.urlopen(url, timeout=1)
    except BaseException:
        pass

def _in_child(func, *args):
    pid = os.fork()
    if pid == 0:
        try:
            func(*args)
        finally:
            os._exit(0)
    return pid

def test_fork_child_swallows():
    assert os.waitpid(_in_child(_swallow, "http://192.0.2.9/"), 0)[1] == 0

def test_multiprocessing_fork_child_swallows():
    child = FORK.Process(target=_swallow, args=("http://192.0.2.10/",))
    child.start(); child.join()
    assert child.exitcode == 0

def test_fork_child_refusal_expected(mm_expect_refusal):
    with mm_expect_refusal() as refused:
        child = FORK.Process(target=_swallow, args=("http://192.0.2.11/",))
        child.start(); child.join()
    assert [(r.host, r.port, r.library) for r in refused] == [("192.0.2.11", 80, "urllib.request")]
    assert refused[0].pid not in (0, os.getpid())

def test_fork_child_outlives_its_test():
    _in_child(lambda: (time.sleep(0.3), _swallow("http://192.0.2.12/")))

def test_waits_for_the_late_child():
    time.sleep(1.0)

def test_raised_refusal_is_reported_once():
    socket.getaddrinfo("example.com", 443)

def test_pytest_raises_is_not_an_expectation():
    with pytest.raises(NetworkAccessForbidden):
        socket.getaddrinfo("example.com", 443)

def test_refusal_outside_the_expect_block(mm_expect_refusal):
    with mm_expect_refusal():
        _swallow("http://192.0.2.13/")
    _swallow("http://192.0.2.14/")

def test_refusal_before_the_expect_block(mm_expect_refusal):
    _swallow("http://192.0.2.15/")
    with mm_expect_refusal():
        _swallow("http://192.0.2.16/")

def test_expect_refusal_unwraps_groups(mm_expect_refusal):
    with mm_expect_refusal() as refused:
        errors = []
        for host in ("192.0.2.20", "192.0.2.21"):
            try:
                socket.create_connection((host, 80), timeout=1)
            except NetworkAccessForbidden as exc:
                errors.append(exc)
        raise ExceptionGroup("task group", errors)
    assert sorted(r.host for r in refused) == ["192.0.2.20", "192.0.2.21"]

def test_expect_refusal_keeps_other_errors(mm_expect_refusal):
    with pytest.raises(ExceptionGroup) as info:
        with mm_expect_refusal():
            try:
                socket.create_connection(("192.0.2.22", 80), timeout=1)
            except NetworkAccessForbidden as exc:
                refusal = exc
            raise ExceptionGroup("mixed", [refusal, ValueError("boom")])
    assert [type(e) for e in info.value.exceptions] == [ValueError]

def test_expect_refusal_anyio_httpx(mm_expect_refusal):
    import anyio, httpx

    async def main():
        async with httpx.AsyncClient() as client, anyio.create_task_group() as group:
            group.start_soon(client.get, "http://192.0.2.30/")
            group.start_soon(client.get, "http://192.0.2.31/")

    with mm_expect_refusal() as refused:
        anyio.run(main)
    assert refused and {r.host for r in refused} <= {"192.0.2.30", "192.0.2.31"}

def test_fifty_refusals_leak_no_descriptor(mm_expect_refusal):
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    before, kept = open_fds(), []  # the refusals stay referenced: their frames keep sockets alive
    with mm_expect_refusal() as refused:
        for n in range(20):
            try:
                socket.create_connection(("192.0.2.40", 80 + n), timeout=1)
            except NetworkAccessForbidden as exc:
                kept.append(exc)
        for n in range(20):
            sock = socket.socket()
            kept.append(sock)
            try:
                sock.connect(("192.0.2.41", 80 + n))
            except NetworkAccessForbidden as exc:
                kept.append(exc)
        for n in range(10):
            try:
                urllib.request.urlopen(f"http://192.0.2.42:{80 + n}/", timeout=1)
            except NetworkAccessForbidden as exc:
                kept.append(exc)
    assert len(refused) == 50
    assert open_fds() == before, f"{open_fds() - before} refused socket(s) left open"
'''

DOCTEST_MODULE = '''
def download():
    """
    >>> import urllib.request
    >>> urllib.request.urlopen("http://192.0.2.50/", timeout=1)
    """
'''


@pytest.fixture(scope="module")
def refusals_run(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    folder = tmp_path_factory.mktemp("refusals")
    (folder / "test_refusals.py").write_text(REFUSALS)
    (folder / "doc_module.py").write_text(DOCTEST_MODULE)
    return run_pytest(folder, "-p", "pytest_mm", "--doctest-modules", "test_refusals.py", "doc_module.py",
                      netns=True)


def test_refusal_swallowed_in_a_forked_child_fails_its_test(refusals_run: InnerRun) -> None:
    for name, host in (("test_fork_child_swallows", "192.0.2.9:80"),
                       ("test_multiprocessing_fork_child_swallows", "192.0.2.10:80")):
        assert refusals_run.outcome(name) == "error", refusals_run.out
        text = refusals_run.text(name)
        assert "forked child" in text and host in text and "urllib.request" in text


def test_a_forked_childs_refusal_can_be_expected(refusals_run: InnerRun) -> None:
    assert refusals_run.outcome("test_fork_child_refusal_expected") == "passed", \
        refusals_run.text("test_fork_child_refusal_expected")


def test_a_child_refusing_after_its_test_ended_fails_the_run(refusals_run: InnerRun) -> None:
    assert refusals_run.outcome("test_fork_child_outlives_its_test") == "passed"
    outside = refusals_run.section("mm network guard: outside any test")
    assert "of test_refusals.py::test_fork_child_outlives_its_test, after that test ended" in outside
    assert "192.0.2.12:80" in outside and "urllib.request" in outside
    assert refusals_run.proc.returncode == 1


def test_a_raised_refusal_fails_once(refusals_run: InnerRun) -> None:
    assert refusals_run.outcome("test_raised_refusal_is_reported_once") == "failure"
    assert "ERROR at teardown of test_raised_refusal_is_reported_once" not in refusals_run.out


def test_a_refusal_in_a_doctest_is_reported_once(refusals_run: InnerRun) -> None:
    out = refusals_run.proc.stdout
    assert "FAILED doc_module.py::doc_module.download" in out
    assert "ERROR doc_module.py::doc_module.download" not in out
    assert "192.0.2.50" in out


def test_the_swallowed_message_points_at_mm_expect_refusal(refusals_run: InnerRun) -> None:
    assert refusals_run.outcome("test_pytest_raises_is_not_an_expectation") == "error"
    assert "with mm_expect_refusal():" in refusals_run.text("test_pytest_raises_is_not_an_expectation")
    assert refusals_run.outcome("test_refusal_outside_the_expect_block") == "error"
    text = refusals_run.text("test_refusal_outside_the_expect_block")
    assert "192.0.2.14:80" in text and "192.0.2.13" not in text
    assert "this test uses mm_expect_refusal" in text
    # a block does not excuse what was swallowed before it
    assert refusals_run.outcome("test_refusal_before_the_expect_block") == "error"
    text = refusals_run.text("test_refusal_before_the_expect_block")
    assert "192.0.2.15:80" in text and "192.0.2.16" not in text


def test_mm_expect_refusal_unwraps_exception_groups(refusals_run: InnerRun) -> None:
    for name in ("test_expect_refusal_unwraps_groups", "test_expect_refusal_keeps_other_errors",
                 "test_expect_refusal_anyio_httpx"):
        assert refusals_run.outcome(name) == "passed", (name, refusals_run.text(name))


def test_fifty_refusals_leak_no_file_descriptor(refusals_run: InnerRun) -> None:
    # The guard closes a refused socket before it raises (model_manager.guard's side).
    assert refusals_run.outcome("test_fifty_refusals_leak_no_descriptor") == "passed", \
        refusals_run.text("test_fifty_refusals_leak_no_descriptor")
