"""One spelling of a field path, for every report: plan, sync and diff.

``spec.template.spec.containers[name=web].image``: fields joined by dots, a list of
uniquely named items keyed by ``[name=…]``, other list items by index, keys that are
not plain identifiers quoted (``metadata.labels["app.kubernetes.io/name"]``). Paths
come from three places, each turned into this form here: walks of object bodies (diff,
plan), managedFields tokens (``f:spec``, ``k:{"name":"web"}``; plan) and the API
server's conflict causes (``.spec.template.spec.containers[name="web"].image``; sync).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


class Named(str):
    """A list item's key in a list keyed by ``name``: printed as ``[name=<value>]``."""

    __slots__ = ()


class Selector(str):
    """Any other list item selector (``containerPort=80,protocol=TCP``): ``[<text>]``."""

    __slots__ = ()


Step = str | int


def format_path(path: Sequence[Any]) -> str:
    """Return ``path`` in the one spelling: ``spec.containers[name=web].ports[0]``."""
    parts: list[str] = []
    for p in path:
        if isinstance(p, Named):
            parts.append(f"[name={p}]")
        elif isinstance(p, Selector | int):
            parts.append(f"[{p}]")
        elif _IDENTIFIER.match(str(p)):
            parts.append(f".{p}" if parts else str(p))
        else:
            parts.append('["' + str(p).replace("\\", "\\\\").replace('"', '\\"') + '"]')
    return "".join(parts)


def named_list(items: Any) -> bool:
    """Return whether ``items`` is a non-empty list of objects with distinct string names."""
    if not isinstance(items, list) or not items:
        return False
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    return all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


def spell(body: Any, path: Sequence[Step], leaf: Any = None) -> str:
    """Return a path of keys and list indexes into ``body`` in the one spelling.

    An index into a list of uniquely named items becomes ``[name=…]``; ``leaf`` is the
    value at the path when the last item is not in ``body`` (a list item to be added).
    """
    out: list[Any] = []
    current = body
    for i, step in enumerate(path):
        if isinstance(step, int) and isinstance(current, list):
            item = current[step] if 0 <= step < len(current) else None
            if item is None and i == len(path) - 1:
                item = leaf
            if named_list(current) and isinstance(item, dict) and isinstance(item.get("name"), str):
                out.append(Named(item["name"]))
            else:
                out.append(step)
            current = item
        else:
            out.append(step)
            current = current.get(step) if isinstance(current, dict) else None
    return format_path(out)


def spell_tokens(tokens: Sequence[str]) -> str:
    """Return a managedFields (FieldsV1) path — ``f:``, ``k:``, ``v:``, ``i:`` tokens —
    in the one spelling."""
    out: list[Any] = []
    for token in tokens:
        kind, text = token[:2], token[2:]
        if kind == "f:":
            out.append(text)
        elif kind == "i:" and text.isdigit():
            out.append(int(text))
        elif kind == "k:":
            out.append(_selector(_json(text)))
        else:  # v: a set member, shown as the value it is
            out.append(Selector("=" + _plain(_json(text))))
    return format_path(out)


def spell_server(text: str, body: Any = None) -> str:
    """Return a path as the API server writes it (structured-merge-diff's ``String()``:
    ``.spec.containers[name="web"].image``, ``.data.a.b`` for the key ``a.b``) in the
    one spelling. ``body``, the object the path is in, tells keys holding dots apart."""
    out: list[Any] = []
    current = body
    i = 0
    while i < len(text):
        if text[i] == ".":
            rest = text[i + 1 :]
            key = _longest_key(current, rest)
            if key is None:
                m = re.match(r"[^.\[]*", rest)
                key = m.group(0) if m else rest
            out.append(key)
            current = current.get(key) if isinstance(current, dict) else None
            i += 1 + len(key)
        elif text[i] == "[":
            end = _closing(text, i)
            inner = text[i + 1 : end]
            step, current = _server_element(inner, current)
            out.append(step)
            i = end + 1
        else:  # not the server's form: keep it as it is
            return text
    return format_path(out)


def _longest_key(current: Any, rest: str) -> str | None:
    if not isinstance(current, dict):
        return None
    fits = [
        k
        for k in current
        if isinstance(k, str) and rest.startswith(k) and rest[len(k) : len(k) + 1] in ("", ".", "[")
    ]
    return max(fits, key=len) if fits else None


def _closing(text: str, start: int) -> int:
    """Return the index of the ``]`` closing the ``[`` at ``start`` (quotes respected)."""
    quoted = False
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and quoted:
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == "]" and not quoted:
            return i
        i += 1
    return len(text)


def _server_element(inner: str, current: Any) -> tuple[Any, Any]:
    """Return the step and the value below it of one ``[...]`` element of a server path."""
    if inner.isdigit():
        index = int(inner)
        item = current[index] if isinstance(current, list) and index < len(current) else None
        return index, item
    if inner.startswith("="):
        return Selector("=" + _plain(_json(inner[1:]))), None
    keys: dict[str, Any] = {}
    for part in re.findall(r'([^=,]+)=("(?:[^"\\]|\\.)*"|[^,]*)', inner):
        keys[part[0]] = _json(part[1])
    item = None
    if isinstance(current, list):
        item = next(
            (
                x
                for x in current
                if isinstance(x, dict) and all(x.get(k) == v for k, v in keys.items())
            ),
            None,
        )
    return _selector(keys), item


def _selector(keys: Any) -> Any:
    if isinstance(keys, dict) and list(keys) == ["name"] and isinstance(keys["name"], str):
        return Named(keys["name"])
    if isinstance(keys, dict):
        return Selector(",".join(f"{k}={_plain(v)}" for k, v in keys.items()))
    return Selector(_plain(keys))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
