"""A YAML reader that refuses what a profile must never contain.

Safe constructors only (no Python tags), and duplicate keys are errors rather
than last-one-wins: a typo'd second ``weights_digest:`` must not pass silently.
"""

from __future__ import annotations

from typing import Any

import yaml

from model_manager.errors import InvalidModelSpec, ModelMappingMissing

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int) -> None:
        self.key, self.line = key, line


class StrictSafeLoader(_Base):
    """libyaml's parser (when present) with SafeConstructor and a duplicate-key check."""


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key; the base constructor reports it
            break
        if duplicate:
            raise _DuplicateKey(key, key_node.start_mark.line + 1)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str) -> Any:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ModelMappingMissing(f"profile {path!r} does not exist", field="profile_path",
                                  hint="pass the path of an existing YAML profile") from None
    except OSError as exc:
        raise ModelMappingMissing(f"profile {path!r} cannot be read: {exc.strerror}", field="profile_path",
                                  hint="check the path and its permissions") from None
    return parse_yaml(raw, source=path)


def parse_yaml(raw: bytes | str, *, source: str) -> Any:
    try:
        data = yaml.load(raw, Loader=StrictSafeLoader)
    except _DuplicateKey as dup:
        raise InvalidModelSpec(f"duplicate key {dup.key!r} at line {dup.line} of {source}", field=str(dup.key),
                               hint="each key may appear once per mapping; remove or rename the repeat") from None
    except yaml.constructor.ConstructorError as exc:
        raise InvalidModelSpec(f"{source}: {_one_line(exc)}", field="(yaml)",
                               hint="profiles are plain YAML: no !!python tags or other custom tags") from None
    except yaml.YAMLError as exc:
        raise InvalidModelSpec(f"{source} is not valid YAML: {_one_line(exc)}", field="(yaml)",
                               hint="fix the YAML syntax at the reported line") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidModelSpec(f"{source} cannot be decoded: {exc}", field="(yaml)",
                               hint="profiles are UTF-8 YAML text") from None
    if data is None:
        raise InvalidModelSpec(f"{source} is empty", field="(top)",
                               hint="a profile holds schema_version and components")
    return data


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
