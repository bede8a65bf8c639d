"""Random mappings and random YAML end only in ModelManagerError, never in another exception."""

from __future__ import annotations

import copy
import datetime
from typing import Any

from helpers.mappings import make_mapping
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_manager.artifacts.cache import DigestCache
from model_manager.errors import ModelManagerError
from model_manager.mapping.loader import parse_mapping
from model_manager.mapping.resolve import resolve_mapping
from model_manager.mapping.yaml_reader import parse_yaml

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.binary(max_size=8), st.dates().map(lambda d: datetime.datetime.combine(d, datetime.time())),
    st.sampled_from(["triton", "inprocess", "onnx", "torch", "fp16", "cuda:0", "any-gpu", "unknown",
                     "sha256:" + "0" * 64, "localhost:8000", "../x", "/abs", "a/b.onnx", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), inner, max_size=5)),
    max_leaves=30,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated_mappings(draw: st.DrawFn) -> Any:
    """A valid mapping with a few nodes replaced, removed or added: near misses find the most bugs."""
    data: Any = copy.deepcopy(make_mapping())
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        if not path:
            return draw(values)
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(values, mutated_mappings()))
def test_random_mappings_raise_only_model_manager_errors(data: Any) -> None:
    try:
        mapping = parse_mapping(data)
    except ModelManagerError as exc:
        assert str(exc).startswith(exc.code + ":")
        return
    try:  # no MM_MODELS_ROOT in most examples: resolution must fail cleanly too
        resolve_mapping(mapping, DigestCache(None))
    except ModelManagerError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_random_yaml_raises_only_model_manager_errors(raw: bytes | str) -> None:
    try:
        data = parse_yaml(raw, source="fuzz.yaml")
    except ModelManagerError:
        return
    try:
        parse_mapping(data, source="fuzz.yaml")
    except ModelManagerError:
        pass
