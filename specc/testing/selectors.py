"""Label and field selectors as LIST and WATCH take them.

Label selector syntax is ``k8s.io/apimachinery/pkg/labels``: equality (``=``, ``==``,
``!=``), set-based (``in``, ``notin``), existence (``key``, ``!key``), ANDed by commas.
Field selectors support ``metadata.name`` and ``metadata.namespace`` with ``=``, ``==``
and ``!=``, which every resource supports.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    """The selector does not parse."""


def _split(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ = re.compile(r"^([^\s!=]+)\s*(==|=|!=)\s*([^\s,]*)$")
_KEY = re.compile(r"^(!?)\s*([A-Za-z0-9][-A-Za-z0-9_./]*)$")


def parse_label_selector(text: str) -> Predicate:
    """Return a predicate over label maps for a label selector string."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for term in _split(text or ""):
        match = _SET.match(term)
        if match:
            key, op, raw = match.groups()
            values = {v.strip() for v in raw.split(",") if v.strip()}
            if op == "in":
                checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
            continue
        match = _EQ.match(term)
        if match:
            key, op, value = match.groups()
            if op == "!=":
                checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                checks.append(lambda labels, k=key, v=value: labels.get(k) == v)
            continue
        match = _KEY.match(term)
        if match:
            negate, key = match.groups()
            if negate:
                checks.append(lambda labels, k=key: k not in labels)
            else:
                checks.append(lambda labels, k=key: k in labels)
            continue
        raise SelectorError(f"unable to parse requirement: {term!r}")
    return lambda labels: all(check(labels) for check in checks)


FIELDS = {
    "metadata.name": lambda obj: obj.get("metadata", {}).get("name", ""),
    "metadata.namespace": lambda obj: obj.get("metadata", {}).get("namespace", ""),
}


def parse_field_selector(text: str) -> Predicate:
    """Return a predicate over objects for a field selector string."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for term in _split(text or ""):
        match = _EQ.match(term)
        if not match:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = match.groups()
        getter = FIELDS.get(field)
        if getter is None:
            raise SelectorError(f"field label not supported: {field}")
        if op == "!=":
            checks.append(lambda obj, g=getter, v=value: g(obj) != v)
        else:
            checks.append(lambda obj, g=getter, v=value: g(obj) == v)
    return lambda obj: all(check(obj) for check in checks)
