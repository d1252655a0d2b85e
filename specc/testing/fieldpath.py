"""Field sets in the trie form of ``FieldsV1``, and the set algebra server-side apply needs.

Internally a set is a nested dict keyed by path elements in their FieldsV1 spelling
(``f:name``, ``k:{"name":"app"}``, ``v:"x"``, ``i:0``); the key ``"."`` marks the node
itself as a member. Sets are never mutated after they are built, so subtrees are shared.
The wire form (``metadata.managedFields[].fieldsV1``) differs only in that a member
without children is written ``{}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

FieldSet = dict[str, Any]

MEMBER = "."
_EMPTY: FieldSet = {}


def from_fields_v1(wire: dict[str, Any]) -> FieldSet:
    """Return the internal set for a ``fieldsV1`` document."""
    out: FieldSet = {}
    for key, child in wire.items():
        if key == MEMBER:
            out[MEMBER] = _EMPTY
        elif not child:
            out[key] = {MEMBER: _EMPTY}
        else:
            out[key] = from_fields_v1(child)
    return out


def to_fields_v1(fields: FieldSet) -> dict[str, Any]:
    """Return the ``fieldsV1`` document for a set, with keys sorted as the API server writes them."""
    out: dict[str, Any] = {}
    for key in sorted(fields):
        child = fields[key]
        if key == MEMBER:
            out[MEMBER] = {}
        elif set(child) == {MEMBER}:
            out[key] = {}
        else:
            out[key] = to_fields_v1(child)
    return out


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    """Return the paths in either set."""
    if not a:
        return b
    if not b:
        return a
    out = dict(a)
    for key, child in b.items():
        if key == MEMBER:
            out[MEMBER] = _EMPTY
        elif key in a:
            out[key] = union(a[key], child)
        else:
            out[key] = child
    return out


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """Return the paths of ``a`` that are not in ``b``."""
    if not b:
        return a
    out: FieldSet = {}
    for key, child in a.items():
        if key == MEMBER:
            if MEMBER not in b:
                out[MEMBER] = _EMPTY
        elif key in b:
            rest = difference(child, b[key])
            if rest:
                out[key] = rest
        else:
            out[key] = child
    return out


def recursive_difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """Return ``a`` without the paths of ``b`` and everything below them (an exclude filter)."""
    if not b:
        return a
    out: FieldSet = {}
    for key, child in a.items():
        if key == MEMBER:
            if MEMBER not in b:
                out[MEMBER] = _EMPTY
            continue
        excluded = b.get(key)
        if excluded is None:
            out[key] = child
        elif MEMBER in excluded:
            continue
        else:
            rest = recursive_difference(child, excluded)
            if rest:
                out[key] = rest
    return out


def intersection(a: FieldSet, b: FieldSet) -> FieldSet:
    """Return the paths in both sets."""
    out: FieldSet = {}
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    for key, child in small.items():
        if key not in large:
            continue
        if key == MEMBER:
            out[MEMBER] = _EMPTY
        else:
            both = intersection(child, large[key])
            if both:
                out[key] = both
    return out


def has(fields: FieldSet, path: tuple[str, ...]) -> bool:
    """Return whether ``path`` is a member of the set."""
    node = fields
    for element in path:
        child = node.get(element)
        if child is None:
            return False
        node = child
    return MEMBER in node


def members(fields: FieldSet, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Yield every member path, parents before children, siblings in sorted order."""
    if MEMBER in fields and prefix:
        yield prefix
    for key in sorted(fields):
        if key != MEMBER:
            yield from members(fields[key], (*prefix, key))


def element_text(element: str) -> str:
    """Return the structured-merge-diff spelling of one path element (``.name``, ``[name="app"]``)."""
    kind, _, rest = element.partition(":")
    if kind == "f":
        return "." + rest
    if kind == "k":
        pairs = json.loads(rest)
        return "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in pairs.items()) + "]"
    if kind == "v":
        return "[=" + rest + "]"
    return "[" + rest + "]"


def path_text(path: tuple[str, ...]) -> str:
    """Return a path as structured-merge-diff prints it, e.g. ``.spec.replicas``."""
    return "".join(element_text(e) for e in path)


def field_element(name: str) -> str:
    """Return the path element of a struct field or map entry."""
    return "f:" + name


def key_element(key: dict[str, Any]) -> str:
    """Return the path element of an associative-list item identified by ``key``."""
    try:
        return _key_element(tuple(sorted(key.items())))
    except TypeError:  # unhashable key values (objects as keys are legal, if rare)
        return "k:" + json.dumps(
            dict(sorted(key.items())), separators=(",", ":"), ensure_ascii=False
        )


@lru_cache(maxsize=65536)
def _key_element(items: tuple[tuple[str, Any], ...]) -> str:
    return "k:" + json.dumps(dict(items), separators=(",", ":"), ensure_ascii=False)


def value_element(value: Any) -> str:
    """Return the path element of a set-list item."""
    return "v:" + json.dumps(value, separators=(",", ":"), ensure_ascii=False)
