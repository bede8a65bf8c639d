"""Build many handles at once (``mm.preload``): every failure is collected, none hides another."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

from model_manager.errors import ModelManagerError

H = TypeVar("H")
Key = tuple[str, str]


def build_all(keys: Sequence[Key], build: Callable[[Key], H], workers: int | None = None
              ) -> tuple[dict[Key, H], list[tuple[Key, ModelManagerError]]]:
    """``build`` each key, on up to ``workers`` threads (default: one per CPU, at most 8): the handles built
    and the failures, both in the order of ``keys``. An error that is not a ModelManagerError is a bug and
    propagates once every build has ended."""
    workers = min(len(keys), workers or min(8, os.cpu_count() or 1))
    outcomes: list[H | ModelManagerError] = []
    if workers <= 1:
        for key in keys:
            outcomes.append(_attempt(build, key))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="mm-preload") as pool:
            futures = [pool.submit(_attempt, build, key) for key in keys]
            outcomes = [future.result() for future in futures]
    built = {key: out for key, out in zip(keys, outcomes, strict=True) if not isinstance(out, ModelManagerError)}
    failed = [(key, out) for key, out in zip(keys, outcomes, strict=True) if isinstance(out, ModelManagerError)]
    return built, failed


def _attempt(build: Callable[[Key], H], key: Key) -> H | ModelManagerError:
    try:
        return build(key)
    except ModelManagerError as exc:
        return exc


def preload_failure(tier: int, total: int, failed: list[tuple[Key, ModelManagerError]]) -> ModelManagerError:
    """One error that names every model that failed: the first failure's kind, every failure's code and
    message in its text."""
    first = failed[0][1]
    if len(failed) == 1:
        return first
    listed = "; ".join(f"{c}/{r} ({exc.code}: {exc.message})" for (c, r), exc in failed)
    return type(first)(f"tier {tier} preload: {len(failed)} of {total} models failed: {listed}",
                       hint="fix each model named; `model-manager health --profile P` lists them too")
