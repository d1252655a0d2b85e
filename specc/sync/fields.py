"""Comparing desired with live objects, and reading who owns a field from managedFields.

Desired objects are rendered in the canonical form the API server stores, so a field
specc sets compares equal to its live value unless someone changed it. Live objects
also carry fields the server defaulted or other managers set: the comparison is
"desired is contained in live", with lists of named things matched by their key.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

#: Path steps: a mapping key, or the index of a list element in the *live* object.
Step = str | int
Path = tuple[Step, ...]

# List elements that Kubernetes merges by key (x-kubernetes-list-map-keys); tried in order.
_LIST_KEYS: tuple[tuple[str, ...], ...] = (
    ("containerPort", "protocol"),
    ("port", "protocol"),
    ("name",),
    ("mountPath",),
    ("devicePath",),
    ("type",),
    ("ip",),
)

_IGNORED_METADATA = frozenset(
    {"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"}
)


@dataclass(frozen=True)
class Difference:
    """A field whose live value differs from the desired one (``live`` None if absent)."""

    path: Path
    desired: Any
    live: Any

    @property
    def dotted(self) -> str:
        return dotted(self.path)


def dotted(path: Path) -> str:
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else step
    return out


def _list_key(items: list[Any]) -> tuple[str, ...] | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _LIST_KEYS:
        if all(key[0] in i for i in items):
            return key
    return None


def _key_of(item: dict[str, Any], key: tuple[str, ...]) -> tuple[Any, ...]:
    # protocol defaults to TCP on the server; a desired port without it means TCP.
    return tuple(item.get(k, "TCP" if k == "protocol" else None) for k in key)


def differences(desired: Any, live: Any, path: Path = ()) -> list[Difference]:
    """Return the fields of ``desired`` whose value in ``live`` differs."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return [Difference(path, desired, live)]
        out: list[Difference] = []
        for key, value in desired.items():
            if path == ("metadata",) and key in _IGNORED_METADATA:
                continue
            if key not in live:
                if value in ({}, []):
                    continue  # the server drops empty containers it defaults anyway
                out.append(Difference((*path, key), value, None))
            else:
                out += differences(value, live[key], (*path, key))
        return out
    if isinstance(desired, list):
        if not isinstance(live, list):
            return [Difference(path, desired, live)]
        key = _list_key(desired)
        if key is not None and _list_key(live) == key:
            by_key = {_key_of(item, key): i for i, item in enumerate(live)}
            out = []
            for item in desired:
                i = by_key.get(_key_of(item, key))
                if i is None:
                    out.append(Difference((*path, len(live)), item, None))
                else:
                    out += differences(item, live[i], (*path, i))
            return out
        if len(desired) != len(live):
            return [Difference(path, desired, live)]
        out = []
        for i, (d, lv) in enumerate(zip(desired, live, strict=True)):
            out += differences(d, lv, (*path, i))
        return out
    if desired != live:
        return [Difference(path, desired, live)]
    return []


@dataclass(frozen=True)
class Owner:
    manager: str
    operation: str
    #: Empty when the entry has none: kube-apiserver records no time for /scale writes.
    time: str
    subresource: str = ""


def owners(live: dict[str, Any], path: Path) -> list[Owner]:
    """Return the managers whose managedFields cover ``path`` of ``live``."""
    out = []
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        fields = entry.get("fieldsV1")
        if isinstance(fields, dict) and _covers(fields, live, path):
            out.append(
                Owner(
                    str(entry.get("manager", "")),
                    str(entry.get("operation", "")),
                    str(entry.get("time") or ""),
                    str(entry.get("subresource") or ""),
                )
            )
    return out


def _covers(fields: dict[str, Any], live: Any, path: Path) -> bool:
    node: dict[str, Any] = fields
    value = live
    for i, step in enumerate(path):
        if i and not node:
            return True  # a leaf above the path: the manager owns it atomically
        token = _token(node, value, step)
        if token is None:
            return False
        node = node[token]
        value = _child(value, step)
    return True


def _child(value: Any, step: Step) -> Any:
    if isinstance(value, dict):
        return value.get(step) if isinstance(step, str) else None
    if isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
        return value[step]
    return None


def _token(node: dict[str, Any], value: Any, step: Step) -> str | None:
    if isinstance(step, str):
        token = f"f:{step}"
        return token if token in node else None
    element = value[step] if isinstance(value, list) and 0 <= step < len(value) else None
    for token in node:
        if token == f"i:{step}":
            return token
        if token.startswith("k:") and isinstance(element, dict):
            keys = _token_json(token)
            if isinstance(keys, dict) and all(element.get(k) == v for k, v in keys.items()):
                return token
        if token.startswith("v:") and _token_json(token) == element:
            return token
    return None


@functools.lru_cache(maxsize=4096)
def _token_json(token: str) -> Any:
    """Return the JSON value of a ``k:``/``v:`` token (the same few recur in every object)."""
    try:
        return json.loads(token[2:])
    except ValueError:
        return None


def owned_paths(fields: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Return every leaf path (in FieldsV1 tokens) of a managedFields entry's field set."""
    out = []
    for token, child in fields.items():
        if token == ".":
            continue
        if isinstance(child, dict) and child and set(child) != {"."}:
            out += owned_paths(child, (*prefix, token))
        else:
            out.append((*prefix, token))
    return out


def resolves(desired: Any, tokens: tuple[str, ...]) -> bool:
    """Return whether a FieldsV1 path names a field that ``desired`` sets."""
    value = desired
    for token in tokens:
        if token.startswith("f:"):
            if not isinstance(value, dict) or token[2:] not in value:
                return False
            value = value[token[2:]]
        elif token.startswith("k:"):
            if not isinstance(value, list):
                return False
            keys = _token_json(token)
            if not isinstance(keys, dict):
                return False
            match = [
                i
                for i in value
                if isinstance(i, dict) and all(_key_match(i, k, v) for k, v in keys.items())
            ]
            if not match:
                return False
            value = match[0]
        elif token.startswith("v:"):
            wanted = _token_json(token)
            if not isinstance(value, list) or wanted not in value:
                return False
            value = wanted
        elif token.startswith("i:"):
            idx = int(token[2:])
            if not isinstance(value, list) or idx >= len(value):
                return False
            value = value[idx]
        else:
            return False
    return True


def _key_match(item: dict[str, Any], key: str, value: Any) -> bool:
    return bool(item.get(key, "TCP" if key == "protocol" else None) == value)


def manager_fields(live: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    """Return the FieldsV1 set of ``manager``'s ``operation`` entry in ``live`` (empty if none)."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == operation:
            fields = entry.get("fieldsV1")
            return fields if isinstance(fields, dict) else {}
    return {}
