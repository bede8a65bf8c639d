"""A YAML reader that refuses what a profile must never contain.

Safe constructors only (no Python tags); duplicate keys are errors rather than
last-one-wins (a typo'd second ``weights_digest:`` must not pass silently); the
file must be a regular file of bounded size; and aliases may not expand the
document beyond a small budget (a 500-byte "billion laughs" profile must not
become gigabytes in memory, in validation or in a message).
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

from model_manager.errors import EnvironmentFailure, InvalidModelSpec, ModelMappingMissing, file_kind, os_failure, shown

#: the largest profile read (a 100-component profile is about 100 KB)
MAX_PROFILE_BYTES = 4 * 1024 * 1024
#: the most nodes a document may have once every alias is expanded (shared subtrees count each time)
MAX_EXPANDED_NODES = 100_000

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int) -> None:
        self.key, self.line = key, line


class StrictSafeLoader(_Base):
    """libyaml's parser (when present) with SafeConstructor and a duplicate-key check."""


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    # Keys written in this mapping must be unique. Keys brought in by a merge (``<<: *base``)
    # may be overridden by a written key: that is what a merge is for (YAML 1.1 merge keys).
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key; the base constructor reports it
            break
        if duplicate:
            raise _DuplicateKey(key, key_node.start_mark.line + 1)
        seen.add(key)
    loader.flatten_mapping(node)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str) -> Any:
    """Parse the profile at ``path``: a regular file of at most MAX_PROFILE_BYTES."""
    return parse_yaml(read_profile_bytes(path), source=path)


def read_profile_bytes(path: str) -> bytes:
    where = {"field": "profile_path"}
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ModelMappingMissing(f"profile {shown(path)} does not exist", **where,
                                  hint="pass the path of an existing YAML profile") from None
    except OSError as exc:
        raise _os_failure(path, exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ModelMappingMissing(f"profile {shown(path)} is {file_kind(st.st_mode)}, not a regular file", **where,
                                      hint="pass the path of a YAML profile file")
        if st.st_size > MAX_PROFILE_BYTES:
            raise _too_large(path)
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_PROFILE_BYTES:  # the file grew while it was read
                raise _too_large(path)
        return b"".join(chunks)
    except OSError as exc:
        raise _os_failure(path, exc) from None
    finally:
        os.close(fd)


def _too_large(path: str) -> InvalidModelSpec:
    return InvalidModelSpec(f"profile {shown(path)} is larger than {MAX_PROFILE_BYTES} bytes",
                            field="profile_path", hint="a profile holds one mapping; split or trim it")


def _os_failure(path: str, exc: OSError) -> EnvironmentFailure:
    return os_failure(exc, f"profile {shown(path)} cannot be read", field="profile_path",
                      hint="check the path, its permissions and the device")


def parse_yaml(raw: bytes | str, *, source: str) -> Any:
    src = shown(source) if len(source) > 200 else source
    loader = StrictSafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InvalidModelSpec(f"{src} is empty", field="(top)",
                                   hint="a profile holds schema_version and components")
        _check_expansion(node, src)
        return loader.construct_document(node)
    except _DuplicateKey as dup:
        raise InvalidModelSpec(f"duplicate key {shown(dup.key)} at line {dup.line} of {src}",
                               field=str(dup.key)[:160],
                               hint="each key may appear once per mapping; remove or rename the repeat "
                                    "(a key brought in by a '<<' merge may be overridden)") from None
    except yaml.constructor.ConstructorError as exc:
        raise InvalidModelSpec(f"{src}: {_one_line(exc)}", field="(yaml)",
                               hint="profiles are plain YAML: no !!python tags or other custom tags") from None
    except yaml.YAMLError as exc:
        raise InvalidModelSpec(f"{src} is not valid YAML: {_one_line(exc)}", field="(yaml)",
                               hint="fix the YAML syntax at the reported line") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidModelSpec(f"{src} cannot be decoded: {_one_line(exc)}", field="(yaml)",
                               hint="profiles are UTF-8 YAML text") from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Refuse a document whose aliases expand past MAX_EXPANDED_NODES, or that refers to itself.

    Each distinct node is sized once (memoised), so the check costs the size of the
    document as written, not as expanded.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > MAX_EXPANDED_NODES:
                raise InvalidModelSpec(
                    f"{source}: aliases expand the document past {MAX_EXPANDED_NODES} nodes "
                    f"(line {node.start_mark.line + 1})", field="(yaml)",
                    hint="a profile writes its entries out; use anchors and aliases sparingly")
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise InvalidModelSpec(f"{source}: an alias refers to a node that contains it "
                                   f"(line {node.start_mark.line + 1})", field="(yaml)",
                                   hint="remove the self-referencing alias")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 500 else text[:500] + "..."
