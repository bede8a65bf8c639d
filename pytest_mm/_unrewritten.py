"""Load the guard past pytest's assertion rewriter.

pytest marks every module of a plugin's distribution for assertion rewriting, so without this the
guard's modules (``model_manager``, a dozen and a half of them) load through pytest's import hook,
which hashes each source file and reads its cached code with ``marshal.load`` from a file object:
about three times the instructions of a plain import, and the largest part of what ``-p pytest_mm``
added to a run (bench/bench_pytest_plugin.py). None of these modules holds a test's ``assert``,
so nothing is lost. The hook is stepped over only for the imports inside the block, only while
they run, and put back where it was; a pytest without it (``--assert=plain``) changes nothing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

_REWRITER_MODULE = "_pytest.assertion.rewrite"


@contextlib.contextmanager
def past_rewriter() -> Iterator[None]:
    saved = list(sys.meta_path)
    hooks = [(i, finder) for i, finder in enumerate(saved) if type(finder).__module__ == _REWRITER_MODULE]
    if not hooks:
        yield
        return
    sys.meta_path[:] = [finder for finder in saved if type(finder).__module__ != _REWRITER_MODULE]
    try:
        yield
    finally:
        now = [finder for finder in sys.meta_path if all(finder is not hook for _, hook in hooks)]
        for i, hook in hooks:  # anything put on the path meanwhile stays, after the hook
            now.insert(min(i, len(now)), hook)
        sys.meta_path[:] = now
